"""User strings printed through Rich come out as written: ``[component.x]`` and ``[bold]`` are text, not markup.

``zerowatt check`` in-process (the same Rich console writes stderr), ``build`` in a real subprocess; also the
version 1 manifest message.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import invoke_cli, run_cli
from tests.wasm.conftest import CORE_WAT, WriteManifest


def flat(text: str) -> str:
    return " ".join(text.split())  # Rich wraps long lines


def test_missing_component_error_keeps_its_brackets(write_manifest: WriteManifest) -> None:
    path = write_manifest('[[trigger.http]]\nroute = "/x"\ncomponent = "nothere"\n')
    result = invoke_cli(["check", str(path)])
    assert result.returncode == 2
    assert "no [component.nothere] in this manifest" in flat(result.stderr), result.stderr


def test_markup_like_names_are_printed_verbatim(write_manifest: WriteManifest) -> None:
    body = (
        'description = "x"\n\n[[trigger.http]]\nroute = "/[bold]loud[/bold]"\ncomponent = "c"\n\n'
        '[component.c]\nsource = "m.wat"\nenvironment = { E = "[red]x" }\n'
        'build = { command = "echo [bold]built[/bold]" }\n'
    )
    path = write_manifest(body, files={"m.wat": CORE_WAT})
    path.write_text(path.read_text().replace('version = "1.0.0"', 'version = "[bold]2.0[/bold]"'))
    result = invoke_cli(["check", str(path)])
    assert result.returncode == 0, result.stderr
    out = flat(result.stdout)
    assert "/[bold]loud[/bold]" in out and "[bold]2.0[/bold]" in out, result.stdout
    built = run_cli(["build", str(path)])
    assert built.returncode == 0, built.stderr
    assert "echo [bold]built[/bold]" in flat(built.stderr), built.stderr


def test_an_error_message_with_markup_like_text_is_printed_verbatim(tmp_path: Path) -> None:
    missing = tmp_path / "[bold]nope[/bold]" / "spin.toml"
    result = invoke_cli(["check", str(missing)])
    assert result.returncode == 2
    assert f"{missing}: manifest not found" in flat(result.stderr), result.stderr


def test_version_1_manifest_is_named_as_such(write_manifest: WriteManifest) -> None:
    for key in ('spin_version = "1"', 'spin_manifest_version = "1"'):
        path = write_manifest(
            f'{key}\nauthors = ["someone"]\nname = "old"\n'
            'trigger = { type = "http", base = "/" }\nversion = "1.0.0"\n'
            '[[component]]\nid = "c"\nsource = "m.wasm"\n[component.trigger]\nroute = "/..."\n',
            header=False,
        )
        result = invoke_cli(["check", str(path)])
        assert result.returncode == 2
        message = flat(result.stderr)
        assert (
            f"{path}: {key.split(' ')[0]}: version 1 manifests are not supported: convert with `spin doctor`" in message
        )
        assert "unknown key" not in message
