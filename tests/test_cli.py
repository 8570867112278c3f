"""The CLI assembles every capability and reports its version (in-process: tests/test_imports.py runs the real
entry point in a subprocess)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import cli_env, invoke_cli, run_cli
from zerowatt import __version__


def test_version_command_prints_package_version() -> None:
    result = invoke_cli(["version"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == __version__


def test_unknown_command_is_a_usage_error() -> None:
    result = invoke_cli(["no-such-command"])
    assert result.returncode == 2


def test_root_help_lists_every_command_with_its_own_summary() -> None:
    """``zerowatt --help`` lists placeholders without importing the commands: each summary must be
    the real command's first help paragraph, and each module must register exactly its commands."""
    from zerowatt.cli.main import COMMANDS, load_command

    for name, entry in COMMANDS.items():
        real = load_command(name)
        assert (real.help or "").split("\n\n")[0].strip() == entry.summary, name
    for module in {entry.module for entry in COMMANDS.values()}:
        import importlib

        import typer

        scratch = typer.Typer()
        importlib.import_module(module).register(scratch)
        registered = set(typer.main.get_group(scratch).commands)
        assert registered == {n for n, e in COMMANDS.items() if e.module == module}, module
    result = invoke_cli(["--help"])
    assert result.returncode == 0
    for name in ("version", *COMMANDS):
        assert f" {name} " in result.stdout, name


def test_a_lazy_command_runs_and_shows_its_own_help() -> None:
    result = invoke_cli(["schedule", "check", "--help"])
    assert result.returncode == 0 and "--at" in result.stdout, result.stdout


def _typer_root_help(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, width: int) -> str:
    """What typer itself prints for ``zerowatt --help`` at ``width`` columns (no terminal)."""
    from zerowatt.cli.root import app

    monkeypatch.setenv("COLUMNS", str(width))
    with pytest.raises(SystemExit) as exit_:
        app(["--help"], prog_name="python -m zerowatt")
    assert exit_.value.code == 0
    return capsys.readouterr().out


def test_the_fast_root_help_is_typers_help(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """``zerowatt --help`` is rendered without typer (cli/roothelp.py); it must stay the text typer
    prints, line for line, at every width it answers for (narrower: typer prints it)."""
    from zerowatt.cli.roothelp import MIN_WIDTH, render_root_help

    monkeypatch.delenv("TERMINAL_WIDTH", raising=False)
    for width in [*range(MIN_WIDTH, MIN_WIDTH + 30), 100, 137, 200]:
        assert render_root_help("python -m zerowatt", width) == _typer_root_help(capsys, monkeypatch, width), width
    assert render_root_help("python -m zerowatt", MIN_WIDTH - 1) is None


def _cli_at_width(args: list[str], width: int) -> subprocess.CompletedProcess[str]:
    env = cli_env() | {"COLUMNS": str(width)}
    env.pop("TERMINAL_WIDTH", None)
    return subprocess.run(
        [sys.executable, "-m", "zerowatt", *args], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.mark.parametrize(("args", "code"), [(["--help"], 0), (["-h"], 0), ([], 2)])
def test_root_help_runs_without_typer(args: list[str], code: int) -> None:
    """The subprocess's help equals typer's; exit 2 without arguments, as click's no_args_is_help."""
    from zerowatt.cli.roothelp import render_root_help

    result = _cli_at_width(args, 90)
    assert result.returncode == code, result.stderr
    assert result.stdout == render_root_help("python -m zerowatt", 90)
    narrow = _cli_at_width(args, 40)  # typer's own layout
    assert narrow.returncode == code and "Commands" in narrow.stdout and "│ version" in narrow.stdout


def test_version_flag_and_command_agree() -> None:
    from importlib.metadata import version

    assert run_cli(["--version"]).stdout == run_cli(["version"]).stdout == version("zerowatt") + "\n"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["spin.toml", "--workers", "3"], 3),
        (["--workers=2", "spin.toml"], 2),
        (["--workers", "2", "--workers", "5"], 5),  # the last one wins, as in click
        (["spin.toml", "--help"], None),
        (["-h"], None),
        (["--workers", "0"], None),  # typer rejects it: start nothing
        (["--workers", "x"], None),
        (["--workers"], None),
        (["--", "--workers", "4"], "default"),
        (["spin.toml"], "default"),
    ],
)
def test_up_guesses_its_workers_before_typer_parses(args: list[str], expected: int | str | None) -> None:
    from zerowatt.cli.main import early_workers
    from zerowatt.host.spawn import default_workers

    assert early_workers(args) == (default_workers() if expected == "default" else expected)
