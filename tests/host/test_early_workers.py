"""``zerowatt up`` starts its workers before typer parses its options (``zerowatt.cli.main``): the
guess is taken over at the right size, and an aborted start leaves no worker and no state behind."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, cli_env
from tests.host.test_startup_e2e import _marked_processes
from zerowatt.host import spawn
from zerowatt.host.settings import HostSettings

ECHO = str(EXAMPLES / "echo-c" / "spin.toml")


@pytest.mark.parametrize(("guessed", "wanted"), [(2, 1), (1, 2), (2, 2)])
def test_prestart_takes_over_the_early_workers_at_the_size_asked_for(
    guessed: int, wanted: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(spawn.tempfile, "tempdir", None)  # mkdtemp reads TMPDIR again
    spawn.prestart_early(guessed)
    early = list(spawn._early.processes) if spawn._early else []
    started = spawn.prestart(HostSettings(workers=wanted))
    try:
        assert spawn._early is None  # claimed: nothing left for the exit handler
        assert len(started.processes) == wanted
        assert started.processes == early[:wanted] + started.processes[len(early) :]  # the early ones first
        assert all(p.is_alive() for p in started.processes)
        for dropped in early[wanted:]:
            assert dropped.popen.returncode is not None  # stopped and reaped
    finally:
        spawn.discard(started)
    assert not any(tmp_path.iterdir())


def test_a_usage_error_after_the_early_start_leaves_nothing_behind(tmp_path: Path) -> None:
    """The workers started before typer saw ``--log-level bogus``: they are stopped and their
    state directory is removed when ``up`` exits 2."""
    marker = uuid.uuid4().hex
    env = cli_env() | {"ZEROWATT_TEST_MARKER": marker, "TMPDIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "zerowatt", "up", ECHO, "--workers", "2", "--log-level", "bogus"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "--log-level" in result.stderr
    assert _marked_processes(marker) == []
    assert not any(tmp_path.iterdir())
