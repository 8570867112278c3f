"""Fixtures shared by every test module."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from zerowatt.wasm.engine import EngineSettings, Runtime

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
EXAMPLES = ROOT / "examples"
#: The reference data (trace samples, SPECpower, NVML recording) shipped in the repository's ``data/`` with its
#: credits. ``ZEROWATT_SHARED_DATA`` points elsewhere (a test of the skip path points it nowhere).
SHARED_DATA = Path(os.environ.get("ZEROWATT_SHARED_DATA") or ROOT / "data")
#: The tables the package ships, derived from the reference data (a test checks they match it when present).
SHIPPED_ENERGY_DATA = SRC / "zerowatt" / "energy" / "data"


def missing_shared(relative: str, what: str) -> str | None:
    """Why a test needing ``SHARED_DATA/relative`` cannot run, or None when it is there."""
    path = SHARED_DATA / relative
    if path.exists():
        return None
    return (
        f"needs {what} at {path}: reference data shipped in the repository's data/ (see data/README.md); "
        "restore it, or set ZEROWATT_SHARED_DATA to a directory holding it"
    )


def shared_path(relative: str, what: str) -> Path:
    """``SHARED_DATA/relative``, or skip the calling test with a reason naming the path and what it is."""
    reason = missing_shared(relative, what)
    if reason is not None:
        pytest.skip(reason)
    return SHARED_DATA / relative


def requires_shared(relative: str, what: str) -> pytest.MarkDecorator:
    """A ``skipif`` mark for tests (or a module's ``pytestmark``) that read ``SHARED_DATA/relative``."""
    reason = missing_shared(relative, what)
    return pytest.mark.skipif(reason is not None, reason=reason or "")


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (bound and released; good enough for tests on loopback)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli_env() -> dict[str, str]:
    """Environment for running the working tree's CLI in a subprocess."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def run_cli(args: Sequence[str], timeout: float = 120, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run ``python -m zerowatt ARGS`` from the working tree and capture its output."""
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "zerowatt", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(),
        **kwargs,
    )


def invoke_cli(args: Sequence[str], env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``zerowatt ARGS`` in this process (typer's runner), with :func:`run_cli`'s result shape.

    For commands that end before doing anything a separate process must show (validation errors, ``check``,
    bad flags, ``--help``): no interpreter start or imports per call. An exception the CLI does not turn into
    an exit code propagates and fails the test, as a traceback would in a subprocess. Signals, serving,
    import weight and a real run's stderr keep :func:`run_cli`.
    """
    from typer.testing import CliRunner

    from zerowatt.cli.main import app

    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    return subprocess.CompletedProcess(["zerowatt", *args], result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def cli() -> object:
    """The :func:`run_cli` helper as a fixture."""
    return run_cli


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The reference data directory (skips the test when it is absent)."""
    return shared_path(".", "the reference data (Azure trace samples, SPECpower/CCF tables, NVML recording)")


@pytest.fixture(scope="module")
def runtime() -> Iterator[Runtime]:
    """A wasmtime runtime (engine, epoch ticker, WASI linker) with the default settings, per test module."""
    rt = Runtime(EngineSettings())
    yield rt
    rt.close()
