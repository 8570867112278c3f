"""Helpers for a real ``zerowatt up`` process: wait until it is ready, read its Prometheus metrics.

Shared by the host's end-to-end tests and ``benchmarks/bench_live.py``.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " "):  # no labels
            found: dict[str, str] = {}
        elif line.startswith(name + "{"):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        else:
            continue
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def wait_ready(admin: str, proc: subprocess.Popen[Any], log: Path, timeout: float = 60) -> None:
    """Return once ``admin``'s ``/readyz`` answers 200; fail with the log if the process exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"zerowatt up exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{admin}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"zerowatt up not ready after {timeout} s:\n{log.read_text()}")


def stop(proc: subprocess.Popen[Any], timeout: float = 20) -> None:
    """Stop a server the test started: SIGTERM (its graceful drain), SIGKILL after ``timeout`` s; reap it."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
