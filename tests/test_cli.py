"""The CLI assembles every capability and reports its version."""

from __future__ import annotations

from tests.conftest import run_cli
from zerowatt import __version__


def test_version_command_prints_package_version() -> None:
    result = run_cli(["version"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == __version__


def test_unknown_command_is_a_usage_error() -> None:
    result = run_cli(["no-such-command"])
    assert result.returncode == 2
