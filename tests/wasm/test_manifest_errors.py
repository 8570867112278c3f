"""Every way a manifest can be wrong gets a ValidationError naming the file, the dotted key and what was expected."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.wasm.conftest import CORE_WAT, HTTP_COMPONENT_WAT, LIBRARY_WAT, OTHER_COMPONENT_WAT, WriteManifest
from zerowatt.errors import ValidationError
from zerowatt.wasm.manifest.load import load_app

TRIGGER = 'route = "/x"\ncomponent = "c"'
COMPONENT = 'source = "m.wat"'
FILES: dict[str, str | bytes] = {
    "m.wat": CORE_WAT,
    "lib.wat": LIBRARY_WAT,
    "http.wat": HTTP_COMPONENT_WAT,
    "other.wat": OTHER_COMPONENT_WAT,
    "bad.wat": "(module (func bad))",
    "garbage.wasm": b"\x00\x01\xff\xfe",
    "s/a.txt": "a",
}


def manifest(trigger: str = TRIGGER, component: str = COMPONENT, before: str = "") -> str:
    return f"{before}\n[[trigger.http]]\n{trigger}\n\n[component.c]\n{component}\n"


DIGEST = "sha256:" + "a" * 64
CASES: list[tuple[str, str, str, str]] = [
    # (case id, manifest body after the [application] header, dotted key, message fragment)
    ("app-unknown", "colour = 'x'\n" + manifest(), "application.colour", "unknown key 'colour'"),
    ("app-redis", "[application.trigger.redis]\naddress = 'x'\n" + manifest(), "application.trigger.redis", "HTTP"),
    ("app-base", "[application.trigger.http]\nbase = 'x'\n" + manifest(), "application.trigger.http.base", "'/'"),
    ("var-both", manifest(before="[variables]\nv = { default = 'a', required = true }"), "variables.v", "exactly one"),
    ("var-none", manifest(before="[variables]\nv = { secret = true }"), "variables.v", "exactly one"),
    ("var-name", manifest(before="[variables]\nBad = { default = 'a' }"), "variables.Bad", "lower-case"),
    ("var-type", manifest(before="[variables]\nv = { default = 1 }"), "variables.v.default", "expected a string"),
    ("var-key", manifest(before="[variables]\nv = { default = 'a', colour = 'b' }"), "variables.v.colour", "unknown"),
    ("var-not-table", manifest(before="[variables]\nv = 'a'"), "variables.v", "expected a table"),
    ("var-required", manifest(before="[variables]\ntoken = { required = true }"), "variables.token", "no value"),
    ("trigger-redis", manifest() + "[[trigger.redis]]\nchannel = 'x'\ncomponent = 'c'\n", "trigger.redis", "HTTP"),
    ("route-missing", manifest(trigger='component = "c"'), "trigger.http[0].route", "required"),
    ("route-relative", manifest(trigger='route = "x"\ncomponent = "c"'), "trigger.http[0].route", "starting with '/'"),
    ("route-param-empty", manifest(trigger='route = "/a/:"\ncomponent = "c"'), "trigger.http[0].route", "':name'"),
    ("route-param-chars", manifest(trigger='route = "/a/:i-d"\ncomponent = "c"'), "trigger.http[0].route", "':i-d'"),
    ("route-param-twice", manifest(trigger='route = "/:a/:a"\ncomponent = "c"'), "trigger.http[0].route", "twice"),
    (
        "trigger-dependencies",
        manifest(trigger='route = "/"\ncomponent = "c"\ndependencies = { "a:b/c" = "d" }'),
        "trigger.http[0].dependencies",
        "not supported",
    ),
    ("app-timer", "[application.trigger.timer]\nspeedup = 1\n" + manifest(), "application.trigger.timer", "HTTP"),
    ("trigger-cron", manifest() + "[[trigger.cron]]\ncron_expression = 'x'\n", "trigger.cron", "HTTP triggers only"),
    ("app-targets", "targets = 'spin-up:3.2'\n" + manifest(), "application.targets", "array"),
    ("app-targets-item", "targets = [{ uri = 'x' }]\n" + manifest(), "application.targets[0].uri", "url"),
    ("app-tool", "tool = { x = 1 }\n" + manifest(), "application.tool.x", "expected a table"),
    (
        "profile-key",
        manifest(component=COMPONENT + "\nprofile.debug.colour = 'x'"),
        "component.c.profile.debug.colour",
        "unknown",
    ),
    (
        "profile-build",
        manifest(component=COMPONENT + "\nprofile.debug.build.command = []"),
        "component.c.profile.debug.build.command",
        "non-empty",
    ),
    (
        "build-command-array",
        manifest(component=COMPONENT + "\nbuild.command = ['a', 1]"),
        "component.c.build.command[1]",
        "string",
    ),
    (
        "outbound-cidr",
        manifest(component=COMPONENT + "\nallowed_outbound_hosts = ['http://10.0.0.0/33']"),
        "component.c.allowed_outbound_hosts[0]",
        "IP network",
    ),
    ("route-dots", manifest(trigger='route = "/a/.../b"\ncomponent = "c"'), "trigger.http[0].route", "trailing"),
    ("route-query", manifest(trigger='route = "/a?b"\ncomponent = "c"'), "trigger.http[0].route", "query"),
    ("route-type", manifest(trigger='route = 5\ncomponent = "c"'), "trigger.http[0].route", "a number (5)"),
    (
        "route-private-false",
        manifest(trigger='route = { private = false }\ncomponent = "c"'),
        "trigger.http[0].route.private",
        "private = true",
    ),
    ("component-unknown", manifest(trigger='route = "/x"\ncomponent = "nope"'), "trigger.http[0].component", "nope"),
    ("component-type", manifest(trigger='route = "/x"\ncomponent = 3'), "trigger.http[0].component", "expected"),
    (
        "inline-component-error",
        manifest(trigger='route = "/y"\ncomponent = { source = 5 }'),
        "trigger.http[0].component.source",
        "expected a path",
    ),
    (
        "executor-type",
        manifest(trigger=TRIGGER + '\nexecutor = { type = "cgi" }'),
        "trigger.http[0].executor.type",
        "'wagi', 'spin' or 'http'",
    ),
    (
        "executor-wagi-key",
        manifest(trigger=TRIGGER + '\nexecutor = { type = "wagi", bogus = 1 }'),
        "trigger.http[0].executor.bogus",
        "unknown key",
    ),
    (
        "executor-spin-argv",
        manifest(trigger=TRIGGER + '\nexecutor = { type = "spin", argv = "x" }'),
        "trigger.http[0].executor.argv",
        "unknown key",
    ),
    (
        "trigger-static-response",
        manifest(trigger=TRIGGER + "\nstatic_response = { status_code = 404 }"),
        "trigger.http[0].static_response",
        "not supported",
    ),
    (
        "duplicate-route",
        manifest() + '[[trigger.http]]\nroute = "/x"\ncomponent = "c"\n',
        "trigger.http[1].route",
        "duplicate route '/x': trigger.http[0]",
    ),
    (
        "duplicate-route-slash",
        manifest() + '[[trigger.http]]\nroute = "/x/"\ncomponent = "c"\n',
        "trigger.http[1].route",
        "duplicate route",
    ),
    ("source-missing-key", manifest(component='description = "d"'), "component.c.source", "required"),
    ("source-type", manifest(component="source = 5"), "component.c.source", "expected a path"),
    (
        "source-registry",
        manifest(component='source = { registry = "r", package = "p:q", version = "1" }'),
        "component.c.source",
        "registry sources are not supported",
    ),
    (
        "source-https",
        manifest(component=f'source = {{ url = "https://example.com/m.wasm", digest = "{DIGEST}" }}'),
        "component.c.source",
        "URL scheme 'https' is not supported",
    ),
    (
        "source-bad-digest",
        manifest(component='source = { url = "file:///x.wasm", digest = "md5:abc" }'),
        "component.c.source.digest",
        "sha256:",
    ),
    (
        "source-no-digest",
        manifest(component='source = { url = "file:///x.wasm" }'),
        "component.c.source.digest",
        "required",
    ),
    ("source-not-found", manifest(component='source = "nope.wasm"'), "component.c.source", "not found"),
    ("source-library", manifest(component='source = "lib.wat"'), "component.c.source", "no function '_start'"),
    ("source-bad-wat", manifest(component='source = "bad.wat"'), "component.c.source", "invalid WebAssembly text"),
    ("source-garbage", manifest(component='source = "garbage.wasm"'), "component.c.source", "neither"),
    (
        "component-no-handler",
        manifest(component='source = "other.wat"'),
        "component.c.source",
        "does not export wasi:http/incoming-handler",
    ),
    (
        "wagi-on-component",
        manifest(trigger=TRIGGER + '\nexecutor = { type = "wagi" }', component='source = "http.wat"'),
        "trigger.http[0].executor",
        "runs core modules",
    ),
    (
        "spin-on-core",
        manifest(trigger=TRIGGER + '\nexecutor = { type = "spin" }'),
        "trigger.http[0].executor",
        "needs a component",
    ),
    (
        "wagi-entrypoint",
        manifest(trigger=TRIGGER + '\nexecutor = { type = "wagi", entrypoint = "main" }'),
        "trigger.http[0].executor",
        "no function 'main'",
    ),
    ("env-value", manifest(component=COMPONENT + "\nenvironment = { A = 1 }"), "component.c.environment.A", "string"),
    ("env-type", manifest(component=COMPONENT + '\nenvironment = "A=1"'), "component.c.environment", "a table"),
    ("cvar-name", manifest(component=COMPONENT + '\nvariables = { Bad = "x" }'), "component.c.variables.Bad", "lower"),
    (
        "cvar-unknown",
        manifest(component=COMPONENT + '\nvariables = { msg = "{{ nope }}" }'),
        "component.c.variables.msg",
        "unknown application variable 'nope'",
    ),
    (
        "cvar-unbalanced",
        manifest(component=COMPONENT + '\nvariables = { msg = "{{ a" }'),
        "component.c.variables.msg",
        "unbalanced",
    ),
    (
        "cvar-bad-ref",
        manifest(component=COMPONENT + '\nvariables = { msg = "{{ Bad-Name }}" }'),
        "component.c.variables.msg",
        "variable_name",
    ),
    (
        "cvar-env-collision",
        manifest(component=COMPONENT + '\nenvironment = { SPIN_VARIABLE_MSG = "a" }\nvariables = { msg = "b" }'),
        "component.c.variables.msg",
        "SPIN_VARIABLE_MSG",
    ),
    (
        "outbound-no-scheme",
        manifest(component=COMPONENT + '\nallowed_outbound_hosts = ["example.com"]'),
        "component.c.allowed_outbound_hosts[0]",
        "scheme://host",
    ),
    (
        "outbound-no-port",
        manifest(component=COMPONENT + '\nallowed_outbound_hosts = ["*://example.com"]'),
        "component.c.allowed_outbound_hosts[0]",
        "needs a port",
    ),
    (
        "outbound-port-range",
        manifest(component=COMPONENT + '\nallowed_outbound_hosts = ["http://x:99999"]'),
        "component.c.allowed_outbound_hosts[0]",
        "0..65535",
    ),
    (
        "outbound-template",
        manifest(component=COMPONENT + '\nallowed_outbound_hosts = ["https://{{ nope }}"]'),
        "component.c.allowed_outbound_hosts[0]",
        "unknown application variable",
    ),
    (
        "outbound-type",
        manifest(component=COMPONENT + "\nallowed_outbound_hosts = [1]"),
        "component.c.allowed_outbound_hosts[0]",
        "expected a string",
    ),
    (
        "allowed-http-hosts",
        manifest(component=COMPONENT + '\nallowed_http_hosts = ["example.com"]'),
        "component.c.allowed_http_hosts",
        "allowed_outbound_hosts",
    ),
    (
        "kv-stores",
        manifest(component=COMPONENT + '\nkey_value_stores = ["default"]'),
        "component.c.key_value_stores",
        "not supported",
    ),
    ("component-key", manifest(component=COMPONENT + "\ncolour = 1"), "component.c.colour", "unknown key"),
    ("files-type", manifest(component=COMPONENT + '\nfiles = "x"'), "component.c.files", "expected an array"),
    ("files-item", manifest(component=COMPONENT + "\nfiles = [1]"), "component.c.files[0]", "glob string"),
    (
        "files-no-destination",
        manifest(component=COMPONENT + '\nfiles = [{ source = "s" }]'),
        "component.c.files[0].destination",
        "required",
    ),
    (
        "files-relative-destination",
        manifest(component=COMPONENT + '\nfiles = [{ source = "s", destination = "rel" }]'),
        "component.c.files[0].destination",
        "absolute guest path",
    ),
    ("files-escape", manifest(component=COMPONENT + '\nfiles = ["../x"]'), "component.c.files[0]", "without '..'"),
    ("files-no-match", manifest(component=COMPONENT + '\nfiles = ["s/*.png"]'), "component.c.files[0]", "no files"),
    (
        "files-missing-source",
        manifest(component=COMPONENT + '\nfiles = [{ source = "missing", destination = "/m" }]'),
        "component.c.files[0].source",
        "not found",
    ),
    (
        "files-overlap",
        manifest(component=COMPONENT + '\nfiles = [{ source = "s", destination = "/s" }, "s/a.txt"]'),
        "component.c.files",
        "overlap",
    ),
    (
        "exclude-escape",
        manifest(component=COMPONENT + '\nexclude_files = ["../x"]'),
        "component.c.exclude_files",
        "without '..'",
    ),
    ("exclude-type", manifest(component=COMPONENT + '\nexclude_files = "x"'), "component.c.exclude_files", "array"),
    (
        "build-command",
        manifest(component=COMPONENT + "\nbuild = { workdir = 'x' }"),
        "component.c.build.command",
        "required",
    ),
    (
        "build-key",
        manifest(component=COMPONENT + "\nbuild = { command = 'x', shell = 'y' }"),
        "component.c.build.shell",
        "unknown",
    ),
    (
        "timeout-type",
        manifest(component=COMPONENT + '\n[component.c.tool.zerowatt]\nrequest_timeout = "2"'),
        "component.c.tool.zerowatt.request_timeout",
        "seconds",
    ),
    (
        "timeout-zero",
        manifest(component=COMPONENT + "\n[component.c.tool.zerowatt]\nrequest_timeout = 0"),
        "component.c.tool.zerowatt.request_timeout",
        "seconds",
    ),
    (
        "memory-words",
        manifest(component=COMPONENT + '\n[component.c.tool.zerowatt]\nmemory_limit = "lots"'),
        "component.c.tool.zerowatt.memory_limit",
        "64Mi",
    ),
    (
        "memory-negative",
        manifest(component=COMPONENT + "\n[component.c.tool.zerowatt]\nmemory_limit = -1"),
        "component.c.tool.zerowatt.memory_limit",
        "positive",
    ),
    (
        "tool-key",
        manifest(component=COMPONENT + "\n[component.c.tool.zerowatt]\ncpu = 1"),
        "component.c.tool.zerowatt.cpu",
        "unknown key",
    ),
    ("component-id", manifest() + '[component.Bad]\nsource = "m.wat"\n', "component.Bad", "kebab-case"),
    ("trigger-http-table", "[trigger.http]\nroute = '/x'\ncomponent = 'c'\n", "trigger.http", "[[trigger.http]]"),
]


@pytest.mark.parametrize(("body", "key", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_error_names_file_and_key(write_manifest: WriteManifest, body: str, key: str, fragment: str) -> None:
    path = write_manifest(body, files=FILES)
    with pytest.raises(ValidationError) as info:
        load_app(path, env={})
    assert info.value.where == f"{path}: {key}", str(info.value)
    assert fragment in info.value.message


@pytest.mark.parametrize(
    ("header", "key", "fragment"),
    [
        ("[application]\nname = 'a'\n", "spin_manifest_version", "expected 2"),
        ("spin_manifest_version = 1\n[application]\nname = 'a'\n", "spin_manifest_version", "version 1 manifests"),
        ("spin_manifest_version = 2\nextra = 1\n[application]\nname = 'a'\n", "extra", "unknown key 'extra'"),
        ("spin_manifest_version = 2\n[application]\nversion = '1'\n", "application.name", "required"),
        ("spin_manifest_version = 2\n[application]\nname = 'a b'\n", "application.name", "letters"),
        ("spin_manifest_version = 2\n", "application", "required"),
    ],
)
def test_top_level_errors(write_manifest: WriteManifest, header: str, key: str, fragment: str) -> None:
    path = write_manifest(header + manifest(), header=False, files=FILES)
    with pytest.raises(ValidationError) as info:
        load_app(path, env={})
    assert info.value.where == f"{path}: {key}"
    assert fragment in info.value.message


def test_missing_trigger_table(write_manifest: WriteManifest) -> None:
    path = write_manifest('[component.c]\nsource = "m.wat"\n', files=FILES)
    with pytest.raises(ValidationError) as info:
        load_app(path, env={})
    assert info.value.where == f"{path}: trigger"


def test_toml_syntax_error_names_file_and_line(write_manifest: WriteManifest) -> None:
    path = write_manifest('\n[[trigger.http]]\nroute = "/x\ncomponent = "c"\n', files=FILES)
    with pytest.raises(ValidationError) as info:
        load_app(path, env={})
    line = HEADER_LINES + 3
    assert info.value.where == f"{path}:{line}"
    assert "invalid TOML" in info.value.message


HEADER_LINES = 5  # the standard header written by write_manifest


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="manifest not found"):
        load_app(tmp_path / "spin.toml")


def test_file_url_digest_mismatch(write_manifest: WriteManifest, tmp_path: Path) -> None:
    module = tmp_path / "m.wat"
    path = write_manifest(
        manifest(component=f'source = {{ url = "{module.as_uri()}", digest = "{DIGEST}" }}'), files=FILES
    )
    with pytest.raises(ValidationError) as info:
        load_app(path, env={})
    assert info.value.where == f"{path}: component.c.source"
    actual = "sha256:" + hashlib.sha256(CORE_WAT.encode()).hexdigest()
    assert f"expected {DIGEST}, file has {actual}" in info.value.message


def test_unknown_cli_variable_is_an_error(write_manifest: WriteManifest) -> None:
    path = write_manifest(manifest(before="[variables]\ngreeting = { default = 'hi' }"), files=FILES)
    with pytest.raises(ValidationError) as info:
        load_app(path, variable_values={"greting": "x"}, env={})
    assert info.value.where == "--variable"
    assert "greting" in info.value.message and "greeting" in info.value.message
