"""The CLI assembles every capability and reports its version (in-process: tests/test_imports.py runs the real
entry point in a subprocess)."""

from __future__ import annotations

from tests.conftest import invoke_cli
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
