"""Loading valid manifests: every supported key ends up in the model, resolved and verified."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.wasm.conftest import CORE_WAT, HTTP_COMPONENT_WAT, WriteManifest
from zerowatt.errors import ValidationError
from zerowatt.wasm.manifest.load import load_app, load_apps
from zerowatt.wasm.model import ExecutorKind, Preopen


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_examples_load_with_their_executors_and_settings(built_examples: Path) -> None:
    apps = {app.name: app for app in load_apps(sorted(built_examples.glob("*/spin.toml")), env={})}
    assert {"hello-wat", "echo-c", "files-c", "variables-c", "slow-wat", "hello-wasi-http"} <= set(apps)
    assert apps["hello-wasi-http"].triggers[0].executor is ExecutorKind.WASI_HTTP
    for app in apps.values():
        for trigger in app.triggers:
            component = app.components[trigger.component_id]
            assert component.source.is_absolute() and component.source.is_file()
            assert component.source_digest == _sha(component.source.read_bytes())
            assert trigger.executor in (ExecutorKind.WAGI, ExecutorKind.WASI_HTTP)
    hello = apps["hello-wat"]
    assert [(t.route.pattern, t.executor) for t in hello.triggers] == [("/hello", ExecutorKind.WAGI)]
    assert apps["slow-wat"].triggers[0].executor is ExecutorKind.WAGI  # AUTO: a core module exporting _start
    assert apps["slow-wat"].components["slow"].limits.request_timeout == 2.0
    files = apps["files-c"].components["files"].files
    assert files == (Preopen(host_path=built_examples / "files-c" / "static", guest_path="/static"),)
    variables = apps["variables-c"].components["variables"]
    assert variables.variables == {"message": "Hello, world!", "token": "demo-token-not-for-production"}
    assert variables.secret_variables == frozenset({"token"})
    assert variables.guest_environment() == {
        "MODE": "demo",
        "SPIN_VARIABLE_MESSAGE": "Hello, world!",
        "SPIN_VARIABLE_TOKEN": "demo-token-not-for-production",
    }
    echo_build = apps["echo-c"].components["echo"].build
    assert echo_build is not None and echo_build.workdir == built_examples / "echo-c"


def test_auto_executor_from_the_real_wasi_http_example(write_manifest: WriteManifest, built_examples: Path) -> None:
    component = (built_examples / "hello-wasi-http" / "hello.wat").read_text()
    path = write_manifest(
        '[[trigger.http]]\nroute = "/..."\ncomponent = "c"\n[component.c]\nsource = "hello.wat"\n',
        files={"hello.wat": component},
    )
    assert load_app(path, env={}).triggers[0].executor is ExecutorKind.WASI_HTTP


def test_variable_precedence_cli_then_env_then_default(built_examples: Path) -> None:
    path = built_examples / "variables-c" / "spin.toml"
    env = {"SPIN_VARIABLE_GREETING": "Hi", "SPIN_VARIABLE_AUDIENCE": "env"}
    app = load_app(path, variable_values={"audience": "cli"}, env=env)
    assert app.components["variables"].variables["message"] == "Hi, cli!"
    assert load_app(path, env={}).components["variables"].variables["message"] == "Hello, world!"


def test_load_app_reads_os_environ_by_default(built_examples: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPIN_VARIABLE_GREETING", "Howdy")
    app = load_app(built_examples / "variables-c" / "spin.toml")
    assert app.components["variables"].variables["message"] == "Howdy, world!"


FULL = """description = "all the keys"
authors = ["A <a@example.com>"]
targets = ["spin-up:3.2", { url = "https://example.com/env.toml" }, { path = "envs/local.toml" }]

[application.trigger.http]
base = "/base"

[application.tool.spin-test]
source = "tests/test.wasm"

[variables]
host = { default = "api.example.com" }
optional_host = { default = "" }
token = { required = true, secret = true }
plain = { default = "p", description = "a plain one" }

[[trigger.http]]
route = "/wagi/..."
component = "core"
executor = { type = "wagi", argv = "${SCRIPT_NAME} -v ${ARGS}", entrypoint = "_start" }

[[trigger.http]]
route = { private = true }
component = "core"

[[trigger.http]]
route = "/inline"
component = { source = "http.wat", description = "inline" }

[[trigger.http]]
route = "/users/:id/..."
component = "core"

[[trigger.http]]
id = "explicit-http"
route = "/http"
component = "http"
executor = { type = "http" }

[component.core]
source = "core.wat"
description = "the core module"
environment = { MODE = "test", EMPTY = "" }
files = [
    "assets/*.txt",
    "assets/deep/**/*.css",
    { source = "static", destination = "/www" },
    { source = "one.cfg", destination = "/etc/app.cfg" },
]
exclude_files = ["assets/secret.txt"]
allowed_outbound_hosts = [
    "https://{{ host }}", "*://*.example.org:8000..8099", "http://127.0.0.1:*", "http://10.0.0.0/24",
    "https://{{ optional_host }}",
]
targets = ["spin-up:3.2"]

[component.core.variables]
auth = "Bearer {{ token }}"
greeting = "{{plain}}-{{ plain }}"

[component.core.build]
command = ["make core", "make check"]
workdir = "src"
watch = ["src/*.c"]

[component.core.tool.zerowatt]
request_timeout = 1.5
memory_limit = "64Mi"

[component.core.tool.other-tool]
anything = "goes"

[component.core.profile.debug]
source = "core-debug.wat"
environment = { MODE = "debug" }
build.command = "make debug"

[component.http]
source = { url = "FILE_URL", digest = "DIGEST" }

[component.http.tool.zerowatt]
memory_limit = 1048576
"""


@pytest.fixture
def full_manifest(write_manifest: WriteManifest, tmp_path: Path) -> Path:
    http = tmp_path / "http.wat"
    body = FULL.replace("FILE_URL", http.as_uri()).replace("DIGEST", _sha(HTTP_COMPONENT_WAT.encode()))
    return write_manifest(
        body,
        files={
            "core.wat": CORE_WAT,
            "http.wat": HTTP_COMPONENT_WAT,
            "assets/a.txt": "A",
            "assets/b.txt": "B",
            "assets/secret.txt": "S",
            "assets/deep/x/y.css": "css",
            "static/index.html": "<p>",
            "one.cfg": "cfg",
        },
    )


def test_every_supported_key_is_loaded(full_manifest: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    app = load_app(full_manifest, variable_values={"token": "t0k"}, env={}, cache_dir=cache)
    assert (app.name, app.version, app.description, app.authors, app.base) == (
        "test-app",
        "1.0.0",
        "all the keys",
        ("A <a@example.com>",),
        "/base",
    )
    assert app.variables["token"].secret and app.variables["token"].required
    assert app.variables["plain"].description == "a plain one"
    wagi, private, inline, users, http = app.triggers
    assert users.route.pattern == "/users/:id/..." and users.component_id == "core"
    assert wagi.executor is ExecutorKind.WAGI and wagi.wagi.argv == "${SCRIPT_NAME} -v ${ARGS}"
    assert private.route.private and private.component_id == "core"
    assert inline.executor is ExecutorKind.WASI_HTTP  # AUTO on a component exporting incoming-handler
    assert inline.component_id == "test-app-trigger-2" and app.components[inline.component_id].description == "inline"
    assert http.executor is ExecutorKind.WASI_HTTP

    core = app.components["core"]
    assert core.environment == {"MODE": "test", "EMPTY": ""}
    assert core.variables == {"auth": "Bearer t0k", "greeting": "p-p"}
    assert core.secret_variables == frozenset({"auth"})
    assert core.allowed_outbound_hosts == (
        "https://api.example.com",
        "*://*.example.org:8000..8099",
        "http://127.0.0.1:*",
        "http://10.0.0.0/24",
    )  # "https://{{ optional_host }}" resolved to "https://": skipped, as Spin does
    assert core.build is not None and core.build.commands == ("make core", "make check")
    assert core.build.workdir == full_manifest.parent / "src" and core.build.watch == ("src/*.c",)
    assert (core.limits.request_timeout, core.limits.memory_limit) == (1.5, 64 * 1024 * 1024)
    assert app.components["http"].limits.memory_limit == 1048576
    assert app.components["http"].source == (tmp_path / "http.wat").resolve()

    staged, www = core.files
    assert www == Preopen(host_path=(tmp_path / "static").resolve(), guest_path="/www")
    assert staged.guest_path == "/" and staged.host_path.is_relative_to(cache)
    contents = {
        p.relative_to(staged.host_path).as_posix(): p.read_text() for p in staged.host_path.rglob("*") if p.is_file()
    }
    assert contents == {"assets/a.txt": "A", "assets/b.txt": "B", "assets/deep/x/y.css": "css", "etc/app.cfg": "cfg"}


def test_staging_is_reused_and_refreshed_when_files_change(full_manifest: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = load_app(full_manifest, variable_values={"token": "x"}, env={}, cache_dir=cache)
    again = load_app(full_manifest, variable_values={"token": "x"}, env={}, cache_dir=cache)
    assert first.components["core"].files[0] == again.components["core"].files[0]
    changed = tmp_path / "assets" / "a.txt"
    changed.write_text("A, changed")
    os.utime(changed, ns=(1, 1))
    third = load_app(full_manifest, variable_values={"token": "x"}, env={}, cache_dir=cache)
    staged = third.components["core"].files[0].host_path
    assert staged != first.components["core"].files[0].host_path
    assert (staged / "assets" / "a.txt").read_text() == "A, changed"


def test_default_cache_is_next_to_the_manifest(full_manifest: Path) -> None:
    app = load_app(full_manifest, variable_values={"token": "x"}, env={})
    assert app.components["core"].files[0].host_path.is_relative_to(full_manifest.parent / ".zerowatt-cache")


def test_directory_mount_with_exclusions_is_staged(write_manifest: WriteManifest) -> None:
    path = write_manifest(
        """
        [[trigger.http]]
        route = "/..."
        component = "c"

        [component.c]
        source = "m.wat"
        files = [{ source = "static", destination = "/static" }]
        exclude_files = ["static/private/**"]
        """,
        files={"m.wat": CORE_WAT, "static/ok.txt": "ok", "static/private/key": "no"},
    )
    (mount,) = load_app(path, env={}).components["c"].files
    assert mount.guest_path == "/"
    assert sorted(p.relative_to(mount.host_path).as_posix() for p in mount.host_path.rglob("*") if p.is_file()) == [
        "static/ok.txt"
    ]


def test_a_glob_naming_a_directory_mounts_its_files(write_manifest: WriteManifest) -> None:
    path = write_manifest(
        '[[trigger.http]]\nroute = "/x"\ncomponent = "c"\n[component.c]\nsource = "m.wat"\nfiles = ["conf"]\n',
        files={"m.wat": CORE_WAT, "conf/a.ini": "a", "conf/sub/b.ini": "b"},
    )
    (mount,) = load_app(path, env={}).components["c"].files
    staged = sorted(p.relative_to(mount.host_path).as_posix() for p in mount.host_path.rglob("*") if p.is_file())
    assert mount.guest_path == "/" and staged == ["conf/a.ini", "conf/sub/b.ini"]


def test_secret_values_stay_out_of_reprs(full_manifest: Path) -> None:
    app = load_app(full_manifest, variable_values={"token": "t0k-s3cret"}, env={})
    assert "t0k-s3cret" not in repr(app) and "t0k-s3cret" in app.components["core"].variables["auth"]


def test_file_url_with_matching_digest(write_manifest: WriteManifest, tmp_path: Path) -> None:
    module = tmp_path / "lib" / "m.wat"
    path = write_manifest(
        f"""
        [[trigger.http]]
        route = "/x"
        component = "c"

        [component.c]
        source = {{ url = "{module.as_uri()}", digest = "{_sha(CORE_WAT.encode())}" }}
        """,
        files={"lib/m.wat": CORE_WAT},
    )
    component = load_app(path, env={}).components["c"]
    assert component.source == module and component.source_digest == _sha(CORE_WAT.encode())


def test_binary_module_is_inspected_like_text(write_manifest: WriteManifest, tmp_path: Path) -> None:
    import wasmtime

    binary = bytes(wasmtime.wat2wasm(CORE_WAT))
    path = write_manifest(
        '[[trigger.http]]\nroute = "/x"\ncomponent = "c"\n[component.c]\nsource = "m.wasm"\n',
        files={"m.wasm": binary},
    )
    app = load_app(path, env={})
    assert app.triggers[0].executor is ExecutorKind.WAGI
    assert app.components["c"].source_digest == _sha(binary)


TWO_ROUTES = """
[[trigger.http]]
route = "ROUTE"
component = "c"

[component.c]
source = "m.wat"
"""


def _app_dir(tmp_path: Path, name: str, route: str) -> Path:
    directory = tmp_path / name
    directory.mkdir()
    (directory / "m.wat").write_text(CORE_WAT)
    manifest = directory / "spin.toml"
    header = f'spin_manifest_version = 2\n[application]\nname = "{name}"\n'
    manifest.write_text(header + TWO_ROUTES.replace("ROUTE", route))
    return manifest


def test_load_apps_serves_disjoint_routes_together(tmp_path: Path) -> None:
    apps = load_apps([_app_dir(tmp_path, "a", "/a/..."), _app_dir(tmp_path, "b", "/...")], env={})
    assert [app.name for app in apps] == ["a", "b"]


def test_load_apps_reports_route_conflicts_naming_both_manifests(tmp_path: Path) -> None:
    first = _app_dir(tmp_path, "a", "/same/...")
    second = _app_dir(tmp_path, "b", "/same/...")
    with pytest.raises(ValidationError) as info:
        load_apps([first, second], env={})
    assert info.value.where == f"{second}: trigger.http[0].route"
    assert str(first) in info.value.message and "'/same/...'" in info.value.message


def test_load_apps_rejects_duplicate_app_names(tmp_path: Path) -> None:
    first = _app_dir(tmp_path, "a", "/one")
    other = tmp_path / "other"
    other.mkdir()
    second = other / "spin.toml"
    (other / "m.wat").write_text(CORE_WAT)
    second.write_text(first.read_text().replace('"/one"', '"/two"'))
    with pytest.raises(ValidationError) as info:
        load_apps([first, second], env={})
    assert info.value.where == f"{second}: application.name"


def test_load_apps_variables_apply_to_the_apps_that_declare_them(tmp_path: Path, built_examples: Path) -> None:
    apps = load_apps(
        [_app_dir(tmp_path, "a", "/a"), built_examples / "variables-c" / "spin.toml"],
        variable_values={"greeting": "Yo"},
        env={},
    )
    assert apps[1].components["variables"].variables["message"] == "Yo, world!"
    with pytest.raises(ValidationError, match="nobody"):
        load_apps([_app_dir(tmp_path, "b", "/b")], variable_values={"nobody": "x"}, env={})


def test_load_apps_needs_a_manifest() -> None:
    with pytest.raises(ValidationError, match="no manifest"):
        load_apps([], env={})


def test_selected_components_keep_only_their_routes(built_examples: Path) -> None:
    paths = [built_examples / name / "spin.toml" for name in ("hello-wat", "slow-wat", "echo-c")]
    apps = load_apps(paths, env={}, components=["slow", "echo"])
    assert [(a.name, list(a.components), [t.component_id for t in a.triggers]) for a in apps] == [
        ("slow-wat", ["slow"], ["slow"]),
        ("echo-c", ["echo"], ["echo"]),
    ]  # hello-wat had none of them: dropped
    with pytest.raises(ValidationError) as unknown:
        load_apps(paths, env={}, components=["slow", "nope"])
    assert unknown.value.where == "--component" and "'nope'" in str(unknown.value)


def test_up_serves_only_the_selected_component(built_examples: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    import httpx

    from tests.conftest import cli_env, free_port
    from tests.host.serving import wait_ready

    port, admin, log = free_port(), free_port(), tmp_path / "up.log"
    manifests = [str(built_examples / name / "spin.toml") for name in ("hello-wat", "echo-c")]
    args = ["up", *manifests, "--component", "echo", "--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "zerowatt", *args, "--workers", "1"], stdout=out, stderr=out, env=cli_env()
        )
    try:
        wait_ready(f"http://127.0.0.1:{admin}", proc, log)
        assert httpx.post(f"http://127.0.0.1:{port}/echo/x", content=b"hi").status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/hello").status_code == 404  # not selected: not served
    finally:
        proc.terminate()
        proc.wait(30)
