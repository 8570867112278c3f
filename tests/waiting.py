"""Waiting on a condition, not on the clock: poll a predicate until it holds or a generous deadline passes.

Tests must not flake under CPU load, so they never ``sleep(x)`` and hope something happened meanwhile: they
wait for the thing itself (a counter, an executor's state, a line in a log, a process's CPU time in /proc).
The deadline is only a bound on a broken run; a passing run returns as soon as the condition holds.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

#: Long enough for a loaded 2-core CI machine; a passing run never waits for it.
TIMEOUT = 30.0


def wait_until(predicate: Callable[[], object], what: str, timeout: float = TIMEOUT, interval: float = 0.01) -> None:
    """Return once ``predicate()`` is true; AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(interval)


async def await_until(
    predicate: Callable[[], object], what: str, timeout: float = TIMEOUT, interval: float = 0.01
) -> None:
    """:func:`wait_until` for a coroutine: the event loop keeps running while it waits."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(interval)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, from ``/proc/PID/stat`` (0 once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds of ``root`` and every living process descending from it (a scan of /proc)."""
    return sum(cpu_seconds(pid) for pid in process_tree(root))


def process_tree(root: int) -> set[int]:
    """``root`` and the pids of every living process descending from it (a scan of /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree = {root}
    grew = True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return tree
