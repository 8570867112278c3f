"""``zerowatt check`` (in-process: it only reads and validates) and ``zerowatt build`` as a user runs them (real
subprocesses: the build commands' own output streams through)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import invoke_cli, run_cli
from tests.wasm.conftest import CORE_WAT, WriteManifest

SECRET_DEFAULT = "demo-token-not-for-production"


def test_check_examples_prints_routes_and_redacts_secrets(built_examples: Path) -> None:
    manifests = [str(p) for p in sorted(built_examples.glob("*/spin.toml"))]
    human = invoke_cli(["check", *manifests])
    assert human.returncode == 0, human.stderr
    for route in ("/hello", "/echo/...", "/files/...", "/variables", "/slow"):
        assert route in human.stdout
    assert "<redacted>" in human.stdout

    result = invoke_cli(["check", "--json", "--variable", "api_token=sup3r-s3cret", *manifests])
    assert result.returncode == 0, result.stderr
    apps = {app["name"]: app for app in json.loads(result.stdout)["apps"]}
    assert apps["hello-wat"]["routes"] == [
        {"route": "/hello", "private": False, "component": "hello", "executor": "wagi"}
    ]
    variables = apps["variables-c"]
    assert variables["components"]["variables"]["variables"] == {"message": "Hello, world!", "token": "<redacted>"}
    assert variables["variables"]["api_token"]["default"] == "<redacted>"
    assert apps["slow-wat"]["components"]["slow"]["limits"]["request_timeout"] == 2.0
    for output in (human.stdout + human.stderr, result.stdout + result.stderr):
        assert SECRET_DEFAULT not in output and "sup3r-s3cret" not in output


def test_check_bad_manifest_exits_2_naming_file_and_key(write_manifest: WriteManifest) -> None:
    path = write_manifest('[[trigger.http]]\nroute = "nope"\ncomponent = "c"\n[component.c]\nsource = "m.wat"\n')
    result = invoke_cli(["check", str(path)])
    assert result.returncode == 2
    assert f"{path}: trigger.http[0].route" in result.stderr.replace("\n", "")
    assert result.stdout == ""


def test_check_defaults_to_spin_toml_in_the_current_directory(
    write_manifest: WriteManifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_manifest(
        '[[trigger.http]]\nroute = "/x"\ncomponent = "c"\n[component.c]\nsource = "m.wat"\n', files={"m.wat": CORE_WAT}
    )
    monkeypatch.chdir(tmp_path)
    ok = invoke_cli(["check", "--json"])
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["apps"][0]["routes"][0]["route"] == "/x"
    monkeypatch.chdir(tmp_path.parent)
    missing = invoke_cli(["check"])
    assert missing.returncode == 2 and "manifest not found" in missing.stderr


BUILD = """
[[trigger.http]]
route = "/a"
component = "first"

[[trigger.http]]
route = "/b"
component = "second"

[[trigger.http]]
route = "/c"
component = "third"

[component.first]
source = "not-built-yet.wasm"
[component.first.build]
command = "echo built first > first.out"

[component.second]
source = "second.wasm"
[component.second.build]
command = "echo failing second; exit 3"
workdir = "sub"

[component.third]
source = "third.wasm"
[component.third.build]
command = "echo built third > third.out"
"""


def test_build_runs_commands_in_order_and_stops_at_the_first_failure(
    write_manifest: WriteManifest, tmp_path: Path
) -> None:
    (tmp_path / "sub").mkdir()
    path = write_manifest(BUILD)
    result = run_cli(["build", str(path)])
    assert result.returncode == 3
    assert (tmp_path / "first.out").read_text() == "built first\n"
    assert "failing second" in result.stdout  # the command's own output is streamed through
    assert not (tmp_path / "third.out").exists()

    only = run_cli(["build", str(path), "--component", "third"])
    assert only.returncode == 0, only.stderr
    assert (tmp_path / "third.out").read_text() == "built third\n"

    unknown = invoke_cli(["build", str(path), "--component", "fourth"])
    assert unknown.returncode == 2 and "fourth" in unknown.stderr


def test_build_rejects_a_bad_manifest_with_exit_2(write_manifest: WriteManifest) -> None:
    path = write_manifest(BUILD.replace('command = "echo built first > first.out"', "command = 5"))
    result = invoke_cli(["build", str(path)])
    assert result.returncode == 2
    assert "component.first.build.command" in result.stderr
