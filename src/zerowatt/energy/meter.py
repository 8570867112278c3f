"""The meter: one call per interval reads the node source and ``/proc``, and attributes the energy.

This is the adapter that ties the pieces together for ``top``, ``serve`` and ``measure``. The arithmetic
lives in :mod:`zerowatt.energy.attribution`; :class:`Totals` (pure) accumulates intervals into the
monotonic counters an exporter publishes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zerowatt.energy.attribution import Attribution, CpuTimes, attribute, usage_ratio
from zerowatt.energy.containers import ContainerRef
from zerowatt.energy.procfs import ProcessInfo, ProcReader
from zerowatt.energy.sources.base import EnergySample, PowerSource, SourceInfo, ZoneKey
from zerowatt.units import Joules, Seconds, Watts


@dataclass(frozen=True)
class Interval:
    """Everything known about one sampling interval."""

    end: Seconds
    seconds: Seconds
    source: SourceInfo
    usage: float
    logical_cpus: int
    node_busy_cpu: Seconds
    energy: EnergySample
    processes: Attribution[int]
    process_cpu: dict[int, Seconds]
    info: dict[int, ProcessInfo]

    @property
    def node_watts(self) -> Watts:
        return self.energy.total / self.seconds if self.seconds > 0 else 0.0

    def containers(self) -> dict[ContainerRef, Joules]:
        out: dict[ContainerRef, Joules] = {}
        for pid, joules in self.processes.workloads.items():
            p = self.info.get(pid)
            if p is not None and p.container is not None:
                out[p.container] = out.get(p.container, 0.0) + joules
        return out

    def active_joules_per_cpu_second(self, seen: Seconds | None = None) -> float:
        """Active energy per CPU-second of a process over this interval (see :mod:`zerowatt.energy.request`).

        The denominator is :func:`~zerowatt.energy.attribution.attribute`'s: the node's busy time, or the
        processes' CPU times when they add up to more. They do on virtual machines: a process's CPU time
        includes time the hypervisor stole from it, which ``/proc/stat`` books as steal, not busy (a 2-vCPU
        VM under load showed Σ processes 5-19 % above busy). A host that divided by busy alone priced its
        CPU-seconds that much above the exporter's (issue 16). ``seen``: the processes' sum when another
        process scanned them (:mod:`zerowatt.energy.board`); by default, this interval's own scan.
        """
        if seen is None:
            seen = sum(self.process_cpu.values())
        denominator = max(self.node_busy_cpu, seen)
        if denominator > 0:
            return self.processes.active / denominator
        capacity = self.seconds * self.logical_cpus
        return self.energy.total / capacity if capacity > 0 else 0.0


class Meter:
    """Samples a power source and the processes of a ``/proc`` tree."""

    def __init__(
        self, source: PowerSource, procs: ProcReader, *, spread_idle: bool = False, per_process: bool = True
    ) -> None:
        self.source = source
        self.procs = procs
        self.spread_idle = spread_idle
        self.per_process = per_process
        self._node: CpuTimes | None = None
        self._cpu: dict[int, tuple[int, Seconds]] = {}

    def sample(self, now: Seconds) -> Interval | None:
        """Read everything; returns the interval since the previous call (None on the first call)."""
        node, cpus = self.procs.node()
        usage = 0.0 if self._node is None else usage_ratio(self._node, node)
        busy = 0.0 if self._node is None else max(0.0, node.busy - self._node.busy)
        first = self._node is None
        self._node = node
        energy = self.source.sample(now, usage)
        deltas: dict[int, Seconds] = {}
        if self.per_process:
            cpu_now = self.procs.processes()
            known = self.procs.known
            fresh: dict[int, tuple[int, Seconds]] = {}
            prev = self._cpu
            for pid, cpu in cpu_now.items():
                start = known[pid].starttime
                fresh[pid] = (start, cpu)
                before = prev.get(pid)
                if before is not None and before[0] == start:
                    d = cpu - before[1]
                elif not first:
                    d = cpu  # born during the interval: all its CPU time is new
                else:
                    d = 0.0
                if d > 0:
                    deltas[pid] = d
            self._cpu = fresh
        if first:
            return None
        split = attribute(energy.total, usage, deltas, busy, spread_idle=self.spread_idle)
        return Interval(
            end=now,
            seconds=energy.seconds,
            source=self.source.info,
            usage=usage,
            logical_cpus=cpus,
            node_busy_cpu=busy,
            energy=energy,
            processes=split,
            process_cpu=deltas,
            info=dict(self.procs.known) if self.per_process else {},
        )


#: Terminated processes kept with ``state="terminated"`` (Kepler 0.10's ``monitor.max-terminated`` default).
MAX_TERMINATED = 500


@dataclass
class ProcessTotal:
    info: ProcessInfo
    joules: Joules = 0.0
    cpu_seconds: Seconds = 0.0
    watts: Watts = 0.0
    state: str = "running"

    def identity(self) -> tuple[int, str, str, str]:
        """The labels that name its series: a terminated process keeps them (pid, comm, exe, container)."""
        cid = self.info.container.container_id if self.info.container else ""
        return (self.info.pid, self.info.comm, self.info.exe, cid)


@dataclass
class ContainerTotal:
    ref: ContainerRef
    joules: Joules = 0.0
    watts: Watts = 0.0
    cpu_seconds: Seconds = 0.0
    state: str = "running"


@dataclass
class Totals:
    """Cumulative counters over all intervals seen (what an exporter publishes). Pure.

    Conserves: Σ processes (running and terminated) + ``terminated_joules`` (the terminated ones beyond the
    ``max_terminated`` kept, lowest energy first) + ``unattributed`` + ``idle_at_node`` == ``node_joules``.
    A process that exits keeps its series with ``state="terminated"`` (Kepler 0.10 does the same); when more
    than ``max_terminated`` have exited, the lowest-energy ones leave their series and add to the aggregate,
    so memory and the scrape stay bounded. ``max_terminated`` 0 keeps none, negative keeps all.
    """

    zones: dict[ZoneKey, Joules] = field(default_factory=dict)
    zone_watts: dict[ZoneKey, Watts] = field(default_factory=dict)
    active: dict[ZoneKey, Joules] = field(default_factory=dict)
    idle: dict[ZoneKey, Joules] = field(default_factory=dict)
    node_joules: Joules = 0.0
    node_watts: Watts = 0.0
    usage: float = 0.0
    processes: dict[tuple[int, int], ProcessTotal] = field(default_factory=dict)
    terminated: dict[tuple[int, str, str, str], ProcessTotal] = field(default_factory=dict)
    terminated_joules: Joules = 0.0  # terminated processes no longer kept as series of their own
    terminated_cpu_seconds: Seconds = 0.0
    unattributed: Joules = 0.0  # active energy of CPU time no sampled process accounts for
    idle_at_node: Joules = 0.0  # idle energy kept at node level (all of it unless spread_idle)
    max_terminated: int = MAX_TERMINATED
    containers: dict[str, ContainerTotal] = field(default_factory=dict)
    source: SourceInfo | None = None
    intervals: int = 0

    def add(self, iv: Interval) -> None:
        self.intervals += 1
        self.source = iv.source
        self.usage = iv.usage
        self.node_joules += iv.energy.total
        self.node_watts = iv.node_watts
        self.unattributed += iv.processes.unattributed
        self.idle_at_node += iv.processes.idle_at_node
        for key, joules in iv.energy.zones.items():
            self.zones[key] = self.zones.get(key, 0.0) + joules
            self.active[key] = self.active.get(key, 0.0) + joules * iv.usage
            self.idle[key] = self.idle.get(key, 0.0) + joules * (1.0 - iv.usage)
            self.zone_watts[key] = joules / iv.seconds if iv.seconds > 0 else 0.0
        live: dict[tuple[int, int], ProcessTotal] = {}
        for pid, info in iv.info.items():
            k = (pid, info.starttime)
            t = self.processes.pop(k, None) or ProcessTotal(info)
            joules = iv.processes.workloads.get(pid, 0.0)
            t.joules += joules
            t.cpu_seconds += iv.process_cpu.get(pid, 0.0)
            t.watts = joules / iv.seconds if iv.seconds > 0 else 0.0
            live[k] = t
        # Processes given energy but absent from info (a reader without per-process details) are not lost.
        for pid, joules in iv.processes.workloads.items():
            if pid not in iv.info:
                self.unattributed += joules
        for gone in self.processes.values():  # what is left exited during the interval
            self._terminate(gone)
        self.processes = live
        seen: set[str] = set()
        for pid, info in iv.info.items():
            if info.container is not None:
                cid = info.container.container_id
                c = self.containers.get(cid) or ContainerTotal(info.container)
                c.cpu_seconds += iv.process_cpu.get(pid, 0.0)
                self.containers[cid] = c
                seen.add(cid)
        for ref, joules in iv.containers().items():
            c = self.containers.get(ref.container_id) or ContainerTotal(ref)
            c.joules += joules
            c.watts = joules / iv.seconds if iv.seconds > 0 else 0.0
            self.containers[ref.container_id] = c
            seen.add(ref.container_id)
        for cid, c in self.containers.items():
            if cid not in seen:
                c.state, c.watts = "terminated", 0.0
            else:
                c.state = "running"
        # Terminated containers are bounded like processes (their energy stays in their processes' figures).
        ended = [cid for cid, c in self.containers.items() if c.state == "terminated"]
        if self.max_terminated >= 0 and len(ended) > self.max_terminated:
            ended.sort(key=lambda cid: self.containers[cid].joules)
            for cid in ended[: len(ended) - self.max_terminated]:
                del self.containers[cid]

    def _terminate(self, t: ProcessTotal) -> None:
        t.state, t.watts = "terminated", 0.0
        if t.joules <= 0 and t.cpu_seconds <= 0:
            return
        if self.max_terminated == 0:
            self.terminated_joules += t.joules
            self.terminated_cpu_seconds += t.cpu_seconds
            return
        key = t.identity()
        kept = self.terminated.get(key)
        if kept is not None:  # the same pid, name and binary again (pid reuse): one series, summed
            kept.joules += t.joules
            kept.cpu_seconds += t.cpu_seconds
        else:
            self.terminated[key] = t
        if 0 < self.max_terminated < len(self.terminated):
            lowest = min(self.terminated, key=lambda k: self.terminated[k].joules)
            evicted = self.terminated.pop(lowest)
            self.terminated_joules += evicted.joules
            self.terminated_cpu_seconds += evicted.cpu_seconds
