"""``zerowatt schedule check``: outputs, JSON, defaults from flags and environment, exit codes."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from typer.testing import CliRunner

from tests.conftest import run_cli
from zerowatt.cli.main import app
from zerowatt.parsing import parse_timestamp

BERLIN_WORKDAY = "Mon-Fri 07:30-20:30 Europe/Berlin"


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.delenv("DEFAULT_TIMEZONE", raising=False)
    monkeypatch.delenv("DEFAULT_WEEKDAYS", raising=False)
    return CliRunner()


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2026-11-27T06:30:00Z", "true"),
        ("2026-11-27T07:30:00+01:00", "true"),
        ("2026-11-27T06:29:59", "false"),  # naive means UTC: 07:29:59 in Berlin
        ("2026-11-27T06:30:00", "true"),
        ("2026-11-28T12:00:00Z", "false"),  # Saturday
    ],
)
def test_check_prints_true_or_false(runner: CliRunner, at: str, expected: str) -> None:
    result = runner.invoke(app, ["schedule", "check", BERLIN_WORKDAY, "--at", at])
    assert result.exit_code == 0, result.output
    assert result.stdout == expected + "\n"


def test_check_json_has_spec_at_matches_and_next_change(runner: CliRunner) -> None:
    result = runner.invoke(app, ["schedule", "check", BERLIN_WORKDAY, "--at", "2026-11-27T19:30:00Z", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "spec": BERLIN_WORKDAY,
        "at": "2026-11-27T19:30:00+00:00",
        "matches": False,
        "next_change": "2026-11-30T06:30:00+00:00",
    }


def test_check_json_next_change_is_null_when_nothing_changes(runner: CliRunner) -> None:
    result = runner.invoke(app, ["schedule", "check", "always", "--at", "2026-01-01T00:00:00Z", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["next_change"] is None
    assert json.loads(result.stdout)["matches"] is True


def test_defaults_from_flags(runner: CliRunner) -> None:
    args = ["schedule", "check", "07:30-20:30", "--at", "2026-11-28T07:00:00Z"]
    result = runner.invoke(app, [*args, "--default-timezone", "Europe/Berlin", "--default-weekdays", "Sat-Sun"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "true\n"


def test_defaults_from_environment(runner: CliRunner) -> None:
    args = ["schedule", "check", "07:30-20:30", "--at", "2026-11-28T07:00:00Z", "--json"]
    result = runner.invoke(app, args, env={"DEFAULT_TIMEZONE": "Europe/Berlin", "DEFAULT_WEEKDAYS": "Mon-Fri"})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["matches"] is False
    assert json.loads(result.stdout)["next_change"] == "2026-11-30T06:30:00+00:00"


def test_without_at_it_judges_now(runner: CliRunner) -> None:
    result = runner.invoke(app, ["schedule", "check", "never", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["matches"] is False
    assert json.loads(result.stdout)["at"].endswith("+00:00")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["Mon-Fry 07:30-20:30 UTC"], 'schedule "Mon-Fry 07:30-20:30 UTC": unknown weekday "Fry"'),
        (["Mon-Fri 07:30-20:30"], "no default time zone is set"),
        (["07:30-20:30"], "no default weekdays are set"),
        (["always", "--at", "yesterday"], '--at: "yesterday" is not an ISO 8601 time'),
        (["Mon-Fri 07:30-20:30 UTC", "--default-weekdays", "Mon-Fry"], 'unknown weekday "Fry"'),
    ],
)
def test_invalid_spec_or_time_exits_2_with_the_message_on_stderr(
    runner: CliRunner, args: list[str], fragment: str
) -> None:
    result = runner.invoke(app, ["schedule", "check", *args, "--json"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert fragment in " ".join(result.stderr.split())


def test_parse_instant() -> None:
    def parse_instant(text: str) -> datetime:  # as `zerowatt schedule check --at` reads it
        return parse_timestamp(text, key="--at")

    assert parse_instant("2026-01-01T00:00:00").isoformat() == "2026-01-01T00:00:00+00:00"
    assert parse_instant("2026-01-01T00:00:00Z").isoformat() == "2026-01-01T00:00:00+00:00"
    assert parse_instant(" 2026-01-01T00:00:00+05:30 ").isoformat() == "2026-01-01T00:00:00+05:30"


def test_the_installed_command_end_to_end() -> None:
    """The real entry point in a subprocess: stdout, stderr and exit codes as a shell sees them."""
    ok = run_cli(["schedule", "check", "Mon-Fri 20:00-08:00 UTC", "--at", "2026-11-30T07:59:59Z"])
    assert (ok.returncode, ok.stdout) == (0, "true\n"), ok.stderr
    bad = run_cli(["schedule", "check", "Mon-Fri 07:30-20:30 Mars/Olympus"])
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert 'unknown time zone "Mars/Olympus"' in bad.stderr
    assert "Accepted forms" in bad.stderr
