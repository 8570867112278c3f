"""``zerowatt energy measure``: run a command and account its energy (like ``perf stat``, for joules).

The command's CPU time is the larger of two views: its rusage once reaped (the child plus every descendant
it waited for) and the CPU time seen in ``/proc`` for its process tree while it ran (which also catches
descendants that were orphaned: the meter makes itself their sub-reaper). Its IT energy is that CPU time ×
the node's active joules per busy CPU-second over the run (Kepler's ratio model, as in
:mod:`zerowatt.energy.request`); with ``spread_idle`` it also takes its CPU-time share of the idle energy.
The node's whole energy over the run is reported beside it.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from zerowatt.energy.attribution import usage_ratio
from zerowatt.energy.detect import FallbackSource
from zerowatt.energy.procfs import ProcReader
from zerowatt.units import Joules, Seconds

PR_SET_CHILD_SUBREAPER = 36


@dataclass
class Measurement:
    """What happened while the command ran."""

    exit_code: int
    wall_seconds: Seconds
    cpu_seconds: Seconds
    rusage_cpu_seconds: Seconds
    tree_cpu_seconds: Seconds
    node_joules: Joules
    node_busy_cpu_seconds: Seconds
    node_capacity_cpu_seconds: Seconds
    it_joules: Joules
    joules_per_cpu_second: float
    usage: float
    notes: list[str] = field(default_factory=list)


def _become_subreaper() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _descendants(root: int, parents: dict[int, int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    out: set[int] = set()
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in out:
                out.add(child)
                stack.append(child)
    return out


def exit_code_of(status: int) -> int:
    """A wait status as a shell reports it: the exit code, or 128 + signal number."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def measure_command(
    argv: Sequence[str],
    source: FallbackSource,
    procs: ProcReader,
    *,
    interval: Seconds = 0.5,
    spread_idle: bool = False,
    stdout: int | None = None,
) -> Measurement:
    """Run ``argv`` to completion while sampling. Raises FileNotFoundError/PermissionError if it cannot start."""
    notes: list[str] = []
    if not _become_subreaper():
        notes.append("could not become sub-reaper: CPU time of orphaned descendants may be missed")
    me = os.getpid()
    node_before, cpus = procs.node()
    t0 = time.monotonic()
    source.sample(t0, 0.0)
    child = subprocess.Popen(list(argv), stdout=stdout)
    node_prev = node_before
    node_joules = 0.0
    node_seconds = 0.0  # the source's own clock over the run
    tree: dict[tuple[int, int], float] = {}
    status = 0
    rusage_cpu = 0.0

    def tick() -> None:
        nonlocal node_prev, node_joules, node_seconds
        now = time.monotonic()
        node_now, _ = procs.node()
        sample = source.sample(now, usage_ratio(node_prev, node_now))
        node_joules += sample.total
        node_seconds += sample.seconds
        node_prev = node_now
        cpu = procs.processes()
        parents = {pid: info.ppid for pid, info in procs.known.items()}
        for pid in _descendants(me, parents):
            if pid in cpu:
                key = (pid, procs.known[pid].starttime)
                tree[key] = max(tree.get(key, 0.0), cpu[pid])

    last_tick = time.monotonic()
    while True:
        pid, status, ru = os.wait4(child.pid, os.WNOHANG)
        if pid == child.pid:
            rusage_cpu = ru.ru_utime + ru.ru_stime
            break
        if time.monotonic() - last_tick >= interval:
            tick()  # the child may be a zombie here: its /proc/<pid>/stat still holds its CPU time
            last_tick = time.monotonic()
        time.sleep(min(0.01, interval))
    child.returncode = exit_code_of(status)
    tick()
    wall = time.monotonic() - t0
    node_after = node_prev
    busy = max(0.0, node_after.busy - node_before.busy)
    capacity = max(0.0, node_after.total - node_before.total)
    usage = usage_ratio(node_before, node_after)
    tree_cpu = sum(tree.values())
    cpu_seconds = max(rusage_cpu, tree_cpu)
    active = node_joules * usage
    # Kepler's price of a busy CPU-second is active / busy = E·u / (u·capacity) = E / capacity. The capacity is
    # the logical CPUs × the run's duration on the source's clock, the one E was integrated over: /proc/stat's
    # tick counts fall up to a tick per CPU short of it, which priced a CPU-second above P_max / n (issue 16:
    # 1.9628 against 1.9573 J on a 2-CPU node). The usage ratio still comes from /proc/stat (a ratio of ticks).
    wall_capacity = cpus * node_seconds
    rate = node_joules / wall_capacity if wall_capacity > 0 else (node_joules / capacity if capacity > 0 else 0.0)
    it = cpu_seconds * rate
    if spread_idle and busy > 0:
        it += (node_joules - active) * min(1.0, cpu_seconds / busy)
    notes.extend(source.notes)
    return Measurement(
        exit_code=child.returncode,
        wall_seconds=wall,
        cpu_seconds=cpu_seconds,
        rusage_cpu_seconds=rusage_cpu,
        tree_cpu_seconds=tree_cpu,
        node_joules=node_joules,
        node_busy_cpu_seconds=busy,
        node_capacity_cpu_seconds=capacity,
        it_joules=min(it, node_joules) if node_joules > 0 else it,
        joules_per_cpu_second=rate,
        usage=usage,
        notes=notes,
    )
