"""Fixtures shared by every test module."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from zerowatt.wasm.engine import EngineSettings, Runtime

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
EXAMPLES = ROOT / "examples"
#: ../shared/data beside the checkout holds the reference data (traces, SPECpower, NVML recording).
SHARED_DATA = ROOT.parent / "shared" / "data"


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


@pytest.fixture
def cli() -> object:
    """The :func:`run_cli` helper as a fixture."""
    return run_cli


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"reference data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="module")
def runtime() -> Iterator[Runtime]:
    """A wasmtime runtime (engine, epoch ticker, WASI linker) with the default settings, per test module."""
    rt = Runtime(EngineSettings())
    yield rt
    rt.close()
