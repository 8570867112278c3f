"""``zerowatt pull`` against a real registry on loopback, with artifacts laid out as ``spin registry push``
lays them out, then served by a real ``zerowatt up``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import EXAMPLES, cli_env, free_port, run_cli
from tests.host.serving import wait_ready
from tests.oci.conftest import USER, docker_config, needs_registry
from tests.oci.registry import Registry, start_registry, stop
from tests.oci.spinpush import ImageArtifact, digest, lock_and_assemble, push
from tests.oci.tokenauth import SERVICE, TokenServer
from zerowatt.errors import ValidationError
from zerowatt.oci.pull import PullSettings, pull

pytestmark = needs_registry
FILES = EXAMPLES / "files-c"
VARIABLES = EXAMPLES / "variables-c"


def settings(tmp_path: Path, **kwargs: object) -> PullSettings:
    return PullSettings(pull_secrets=tmp_path / "no-secrets", **kwargs)  # type: ignore[arg-type]


def test_pulled_apps_are_served_by_zerowatt_up(registry: Registry, tmp_path: Path) -> None:
    push(registry.base, "apps/files", "v1", lock_and_assemble(FILES / "spin.toml"))
    push(registry.base, "apps/variables", "v1", lock_and_assemble(VARIABLES / "spin.toml"))
    for name in ("files", "variables"):
        done = run_cli(["pull", f"{registry.host}/apps/{name}:v1", "--to", str(tmp_path / name), "--json"])
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["manifest"] == str(tmp_path / name / "spin.toml")
        assert report["digest"].startswith("sha256:")
    # the static files are where the guest looks (/static/...), byte for byte
    for f in (FILES / "static").iterdir():
        assert (tmp_path / "files" / "files" / "files" / "static" / f.name).read_bytes() == f.read_bytes()
    port, admin = free_port(), free_port()
    log = tmp_path / "up.log"
    args = ["--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}", "--cache-dir", str(tmp_path / "c")]
    manifests = [str(tmp_path / "files" / "spin.toml"), str(tmp_path / "variables" / "spin.toml")]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "zerowatt", "up", *manifests, "--workers", "1", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=cli_env(),
        )
    try:
        wait_ready(f"http://127.0.0.1:{admin}", proc, log)
        for name in ("hello.txt", "index.html"):
            answer = httpx.get(f"http://127.0.0.1:{port}/files/{name}", timeout=30)
            assert answer.status_code == 200
            assert answer.content == (FILES / "static" / name).read_bytes()
        answer = httpx.get(f"http://127.0.0.1:{port}/variables", timeout=30)
        assert answer.status_code == 200 and "Hello, world!" in answer.text
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize("mode", ["archive", "legacy-config"])
def test_archive_layers_and_pre_2_0_config_layout(registry: Registry, tmp_path: Path, mode: str) -> None:
    artifact = lock_and_assemble(FILES / "spin.toml", archive=mode == "archive", legacy=mode == "legacy-config")
    pinned = push(registry.base, f"apps/{mode}", "v1", artifact)
    result = pull(f"{registry.host}/apps/{mode}@{pinned}", tmp_path / "app", settings(tmp_path))
    assert result.digest == pinned and result.app == "files-c" and result.files == 2
    for f in (FILES / "static").iterdir():
        assert (tmp_path / "app" / "files" / "files" / "static" / f.name).read_bytes() == f.read_bytes()
    wasm = (FILES / "files.wasm").read_bytes()
    assert (tmp_path / "app" / "wasm" / (digest(wasm)[7:] + ".wasm")).read_bytes() == wasm
    assert json.loads((tmp_path / "app" / "spin.lock").read_text())["metadata"]["name"] == "files-c"


def test_a_layer_altered_in_the_registry_is_refused(tmp_path: Path) -> None:
    registry = start_registry(tmp_path / "registry")  # its own: the altered blob would poison the shared one
    try:
        push(registry.base, "apps/tampered", "v1", lock_and_assemble(FILES / "spin.toml"))
    except BaseException:
        stop(registry)
        raise
    wasm_digest = digest((FILES / "files.wasm").read_bytes())
    root = tmp_path / "registry" / "data"
    hexd = wasm_digest[7:]
    blob = root / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    try:
        done = run_cli(["pull", f"{registry.host}/apps/tampered:v1", "--to", str(tmp_path / "app")])
    finally:
        stop(registry)
    assert done.returncode == 2
    assert wasm_digest in done.stderr and "digest mismatch" in done.stderr
    assert not (tmp_path / "app" / "spin.toml").exists()
    assert [p.name for p in (tmp_path / "app").iterdir()] == []  # the staging directory is gone


def test_a_hostile_locked_app_cannot_write_outside_the_directory(registry: Registry, tmp_path: Path) -> None:
    artifact = lock_and_assemble(FILES / "spin.toml")
    artifact.locked["components"][0]["files"][0]["path"] = "../../escaped.txt"
    push(registry.base, "apps/hostile", "v1", artifact)
    done = run_cli(["pull", f"{registry.host}/apps/hostile:v1", "--to", str(tmp_path / "deep" / "app")])
    assert done.returncode == 2
    assert "unsafe file path '../../escaped.txt'" in done.stderr and "components[0] (files).files[0]" in done.stderr
    assert not (tmp_path / "escaped.txt").exists()


def test_unknown_tags_and_wrong_pins_exit_2_naming_the_reference(registry: Registry, tmp_path: Path) -> None:
    push(registry.base, "apps/pins", "v1", lock_and_assemble(FILES / "spin.toml"))
    done = run_cli(["pull", f"{registry.host}/apps/pins:nope", "--to", str(tmp_path / "a")])
    assert done.returncode == 2 and f"{registry.host}/apps/pins:nope" in done.stderr and "404" in done.stderr
    wrong = "sha256:" + "0" * 64
    with pytest.raises(ValidationError, match=r"not found or not allowed \(HTTP 404\)"):
        pull(f"{registry.host}/apps/pins@{wrong}", tmp_path / "b", settings(tmp_path))


def test_size_limit_and_non_empty_directories(registry: Registry, tmp_path: Path) -> None:
    push(registry.base, "apps/sized", "v1", lock_and_assemble(FILES / "spin.toml"))
    ref = f"{registry.host}/apps/sized:v1"
    with pytest.raises(ValidationError, match="limit is 1000"):
        pull(ref, tmp_path / "small", settings(tmp_path, max_bytes=1000))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "mine.txt").write_text("keep me")
    with pytest.raises(ValidationError, match=r"is not empty \(mine.txt\)"):
        pull(ref, tmp_path / "busy", settings(tmp_path))
    assert (tmp_path / "busy" / "mine.txt").read_text() == "keep me"
    # an earlier pull (a restarted init container) is replaced cleanly
    pull(ref, tmp_path / "again", settings(tmp_path))
    first = sorted(p.name for p in (tmp_path / "again").iterdir())
    pull(ref, tmp_path / "again", settings(tmp_path))
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == first


def test_basic_auth_from_auth_file_and_mounted_pull_secrets(private_registry: Registry, tmp_path: Path) -> None:
    push(private_registry.base, "team/app", "v1", lock_and_assemble(FILES / "spin.toml"), auth=USER)
    ref = f"{private_registry.host}/team/app:v1"
    done = run_cli(["pull", ref, "--to", str(tmp_path / "anon"), "--pull-secrets", str(tmp_path / "none")])
    assert done.returncode == 2 and "no pull secret has credentials for" in done.stderr
    auth = docker_config(tmp_path / "auth.json", private_registry.host, *USER)
    done = run_cli(["pull", ref, "--to", str(tmp_path / "a"), "--auth-file", str(auth), "--pull-secrets", "/nope"])
    assert done.returncode == 0, done.stderr
    secrets = tmp_path / "pull-secrets"
    docker_config(secrets / "other" / ".dockerconfigjson", "elsewhere.example", "x", "y")
    docker_config(secrets / "regcred" / ".dockerconfigjson", f"https://{private_registry.host}/v1/", *USER)
    assert pull(ref, tmp_path / "b", PullSettings(pull_secrets=secrets)).app == "files-c"
    bad = docker_config(tmp_path / "bad.json", private_registry.host, USER[0], "wrong")
    with pytest.raises(ValidationError, match="authentication failed"):
        pull(ref, tmp_path / "c", PullSettings(auth_files=(bad,), pull_secrets=secrets))


def test_bearer_tokens_from_the_registry_realm(token_registry: tuple[Registry, TokenServer], tmp_path: Path) -> None:
    registry, server = token_registry
    token = httpx.get(
        server.realm, params={"service": SERVICE, "scope": "repository:team/app:pull,push"}, auth=USER, timeout=30
    ).json()["token"]
    push(registry.base, "team/app", "v1", lock_and_assemble(FILES / "spin.toml"), bearer=token)
    ref = f"{registry.host}/team/app:v1"
    with pytest.raises(ValidationError, match=r"token endpoint .* answered 401: the registry requires authentication"):
        pull(ref, tmp_path / "anon", settings(tmp_path))
    secrets = tmp_path / "pull-secrets"
    docker_config(secrets / "regcred" / ".dockerconfigjson", registry.host, *USER)
    server.requests.clear()
    assert pull(ref, tmp_path / "app", PullSettings(pull_secrets=secrets)).app == "files-c"
    assert server.requests == [{"service": SERVICE, "scope": "repository:team/app:pull", "user": USER[0]}]
    bad = docker_config(tmp_path / "bad.json", registry.host, USER[0], "wrong")
    with pytest.raises(ValidationError, match=r"credentials from .*bad\.json were refused"):
        pull(ref, tmp_path / "bad", PullSettings(auth_files=(bad,), pull_secrets=tmp_path / "none"))


def test_apps_packaged_as_from_scratch_images(registry: Registry, tmp_path: Path) -> None:
    base = {"spin.toml": b"broken =", "files.wasm": (FILES / "files.wasm").read_bytes()}
    static = {f"static/{f.name}": f.read_bytes() for f in (FILES / "static").iterdir()}
    fixed = {"spin.toml": (FILES / "spin.toml").read_bytes()}  # a later layer replaces the file
    push(registry.base, "images/files", "v1", ImageArtifact([base, static, fixed]))
    result = pull(f"{registry.host}/images/files:v1", tmp_path / "app", settings(tmp_path))
    assert result.app == "files-c" and result.files == 4
    assert (tmp_path / "app" / "spin.toml").read_bytes() == fixed["spin.toml"]
    check = run_cli(["check", str(tmp_path / "app" / "spin.toml")])
    assert check.returncode == 0, check.stderr
    push(registry.base, "images/whiteout", "v1", ImageArtifact([base, {"static/.wh.hello.txt": b""}]))
    with pytest.raises(ValidationError, match="whiteout files are refused"):
        pull(f"{registry.host}/images/whiteout:v1", tmp_path / "w", settings(tmp_path))
