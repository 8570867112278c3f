"""Adapter over ``/proc``: node CPU times, per-process CPU times, process names and containers.

Lean on purpose, because it runs every second over every process: one ``read`` of ``/proc/<pid>/stat``
per process, parsed with ``split``; ``comm``, ``exe`` and the container are read once per new process
(keyed by pid and start time, so a reused pid is a new process). Every path is relative to ``root`` so
tests can point it at a synthetic tree.
"""

from __future__ import annotations

import contextlib
import os
import resource
from collections.abc import Iterator
from dataclasses import dataclass

from zerowatt.energy.attribution import CpuTimes
from zerowatt.energy.containers import ContainerRef, container_from_cgroup
from zerowatt.energy.vms import VM_COMMS, VmRef, vm_from_cmdline


def _raise_file_limit() -> None:
    """Let the reader keep one file open per process (the soft limit is often 1,024)."""
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 1 << 20, hard))


def clock_ticks() -> int:
    """Kernel clock ticks per second (USER_HZ), the unit of ``/proc/stat`` and ``/proc/<pid>/stat`` times."""
    return int(os.sysconf("SC_CLK_TCK"))


def parse_stat_cpu(text: str) -> tuple[CpuTimes, int]:
    """Node CPU times (in ticks) from ``/proc/stat`` text, and the number of ``cpuN`` lines (logical CPUs).

    busy = user + nice + system + irq + softirq; total = busy + idle + iowait + steal. Guest time is already
    inside user/nice. Steal (the hypervisor running someone else) counts as capacity this node did not use.
    """
    times = CpuTimes(0.0, 0.0)
    cpus = 0
    for line in text.splitlines():
        if line.startswith("cpu "):
            f = [int(x) for x in line.split()[1:9]] + [0] * 8
            busy = f[0] + f[1] + f[2] + f[5] + f[6]
            times = CpuTimes(float(busy), float(busy + f[3] + f[4] + f[7]))
        elif line.startswith("cpu") and line[3:4].isdigit():
            cpus += 1
    return times, max(1, cpus)


def parse_pid_stat(text: str) -> tuple[str, int, int, int]:
    """``(comm, ppid, utime+stime ticks, starttime)`` from ``/proc/<pid>/stat`` text.

    The command name sits in parentheses and may itself contain spaces and ')', so split at the last ')'.
    Field numbers follow proc(5): after the name come state (3), ppid (4), ..., utime (14), stime (15),
    ..., starttime (22).
    """
    open_paren = text.index("(")
    close = text.rindex(")")
    rest = text[close + 2 :].split()
    return text[open_paren + 1 : close], int(rest[1]), int(rest[11]) + int(rest[12]), int(rest[19])


@dataclass
class ProcessInfo:
    """What the meter remembers about one process between samples."""

    pid: int
    comm: str
    ppid: int
    starttime: int
    exe: str = ""
    container: ContainerRef | None = None
    vm: VmRef | None = None


class ProcReader:
    """Reads node and per-process CPU times from a ``/proc``-shaped directory.

    The exporter keeps every process's ``stat`` file open (re-read with ``pread``: a third of the cost of
    opening it again) and describes each new process (container, exe, VM). The app host only needs the
    processes' CPU times, to price a CPU-second as the exporter does (:class:`zerowatt.energy.request.LiveRate`):
    ``describe=False`` reads nothing but ``stat``, and ``keep_open=False`` keeps no file open (for a process
    whose descriptors are for its clients).
    """

    def __init__(self, root: str = "/proc", *, describe: bool = True, keep_open: bool = True) -> None:
        self.root = root
        self.ticks = clock_ticks()
        self.known: dict[int, ProcessInfo] = {}
        self._fds: dict[int, int] = {}
        if describe and not keep_open:
            raise ValueError("ProcReader: describe=True needs keep_open=True (descriptions are kept per open file)")
        self.describe = describe
        self.keep_open = keep_open
        if keep_open:
            _raise_file_limit()

    def node(self) -> tuple[CpuTimes, int]:
        """Node CPU times in seconds and the logical CPU count."""
        with open(f"{self.root}/stat") as f:
            times, cpus = parse_stat_cpu(f.read())
        return CpuTimes(times.busy / self.ticks, times.total / self.ticks), cpus

    def cpuinfo(self) -> str:
        try:
            with open(f"{self.root}/cpuinfo") as f:
                return f.read()
        except OSError:
            return ""

    def _describe(self, pid: int, comm: str, ppid: int, starttime: int) -> ProcessInfo:
        info = ProcessInfo(pid, comm, ppid, starttime)
        base = f"{self.root}/{pid}"
        try:
            with open(f"{base}/cgroup") as f:
                info.container = container_from_cgroup(f.read())
        except OSError:
            pass
        with contextlib.suppress(OSError):
            info.exe = os.readlink(f"{base}/exe")
        if any(name in comm for name in VM_COMMS):  # only likely hypervisors: one more read per new process
            try:
                with open(f"{base}/cmdline", "rb") as f:
                    argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
                info.vm = vm_from_cmdline(argv)
            except OSError:
                pass
        return info

    def processes(self) -> dict[int, float]:
        """Cumulative CPU seconds (user + system) of every live process; refreshes :attr:`known`.

        With ``keep_open`` each process's ``stat`` file stays open and is re-read with ``pread``: that skips
        the path lookup (a third of the cost) and tells a reused pid apart for free (the old file answers
        ESRCH). Processes that vanish between listing and reading (they exit all the time) are skipped.
        """
        out: dict[int, float] = {}
        fresh: dict[int, ProcessInfo] = {}
        known = self.known
        ticks = float(self.ticks)
        for pid, data in self._kept() if self.keep_open else self._read_and_close():
            try:
                close = data.rindex(b")")
                rest = data[close + 2 :].split(None, 20)
                cpu = int(rest[11]) + int(rest[12])
                start = int(rest[19])
                ppid = int(rest[1])
            except (ValueError, IndexError):
                continue
            info = known.get(pid)
            if info is None or info.starttime != start:
                if self.describe:
                    comm = data[data.index(b"(") + 1 : close].decode(errors="replace")
                    info = self._describe(pid, comm, ppid, start)
                else:
                    info = ProcessInfo(pid, "", ppid, start)
            else:
                info.ppid = ppid  # orphans are re-parented
            fresh[pid] = info
            out[pid] = cpu / ticks
        self.known = fresh
        return out

    def _kept(self) -> Iterator[tuple[int, bytes]]:
        """Every live process's ``stat`` text, through files kept open between calls."""
        fds = self._fds
        root = self.root
        pread = os.pread
        for name in os.listdir(root):
            if name[0].isdigit() and int(name) not in fds:
                try:
                    fds[int(name)] = os.open(f"{root}/{name}/stat", os.O_RDONLY)
                except OSError:
                    continue  # gone already, or out of file descriptors: seen next time
        for pid, fd in list(fds.items()):
            try:
                data = pread(fd, 4096, 0)
                if data:
                    yield pid, data
                    continue
            except OSError:
                pass
            os.close(fd)  # exited (ESRCH); a new process with this pid (reused) gets a new file, now
            del fds[pid]
            try:
                fd = fds[pid] = os.open(f"{root}/{pid}/stat", os.O_RDONLY)
                yield pid, pread(fd, 4096, 0)
            except OSError:
                continue

    def _read_and_close(self) -> Iterator[tuple[int, bytes]]:
        """Every live process's ``stat`` text, each file opened, read and closed."""
        root = self.root
        for name in os.listdir(root):
            if not name[0].isdigit():
                continue
            try:
                fd = os.open(f"{root}/{name}/stat", os.O_RDONLY)
                try:
                    data = os.read(fd, 4096)
                finally:
                    os.close(fd)
            except OSError:
                continue  # exited between listing and reading
            yield int(name), data

    def close(self) -> None:
        """Close the per-process files kept open between samples."""
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


def _children(root: str, pid: int | str) -> list[int]:
    """Live children of ``pid`` (every thread's ``task/<tid>/children``; needs CONFIG_PROC_CHILDREN)."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"{root}/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"{root}/{pid}/task/{tid}/children") as f:
                out.extend(int(c) for c in f.read().split())
        except (OSError, ValueError):
            continue
    return out


def self_cpu_seconds(root: str = "/proc", *, reaped: bool = True) -> float:
    """CPU seconds of this process (all threads) and, with ``reaped``, of the children it has waited for.

    Read from ``/proc/self/stat`` in clock ticks — the very counters an exporter reads for this process — and
    not from ``getrusage`` (microseconds): a host that prices its own CPU must count it as the exporter does,
    or the two disagree by up to two ticks per process at each end of any stretch, which is most of an idle
    stretch's CPU (issue 16). ``getrusage`` only when ``/proc`` cannot be read.
    """
    try:
        return _stat_cpu_seconds(f"{root}/self/stat", reaped)
    except (OSError, ValueError, IndexError):
        own = resource.getrusage(resource.RUSAGE_SELF)
        total = own.ru_utime + own.ru_stime
        if reaped:
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            total += children.ru_utime + children.ru_stime
        return total


def _stat_cpu_seconds(path: str, reaped: bool) -> float:
    """utime + stime (+ cutime + cstime with ``reaped``) of one ``stat`` file, in seconds."""
    with open(path, "rb") as f:
        data = f.read()
    rest = data[data.rindex(b")") + 2 :].split(None, 15)
    ticks = int(rest[11]) + int(rest[12]) + (int(rest[13]) + int(rest[14]) if reaped else 0)
    return ticks / clock_ticks()


def tree_cpu_seconds(root: str = "/proc") -> float:
    """CPU seconds of this process and all its descendants, live or reaped.

    This process (all threads) and the children it has waited for come from :func:`self_cpu_seconds`; live
    descendants from ``/proc/<pid>/stat`` (utime + stime + cutime + cstime), all in the ticks an exporter reads.
    A child that exits and is reaped moves from the second term to the first, so the sum does not drop (by
    more than a tick's rounding, which the ledger absorbs).
    """
    total = self_cpu_seconds(root)
    stack = _children(root, "self")
    seen: set[int] = set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            total += _stat_cpu_seconds(f"{root}/{pid}/stat", reaped=True)
        except (OSError, ValueError, IndexError):
            continue
        stack.extend(_children(root, pid))
    return total
