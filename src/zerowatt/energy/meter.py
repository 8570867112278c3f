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

    def active_joules_per_cpu_second(self) -> float:
        """Active energy per busy CPU-second over this interval (see :mod:`zerowatt.energy.request`)."""
        if self.node_busy_cpu > 0:
            return self.processes.active / self.node_busy_cpu
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


@dataclass
class ProcessTotal:
    info: ProcessInfo
    joules: Joules = 0.0
    cpu_seconds: Seconds = 0.0
    watts: Watts = 0.0


@dataclass
class ContainerTotal:
    ref: ContainerRef
    joules: Joules = 0.0
    watts: Watts = 0.0


@dataclass
class Totals:
    """Cumulative counters over all intervals seen (what an exporter publishes). Pure."""

    zones: dict[ZoneKey, Joules] = field(default_factory=dict)
    zone_watts: dict[ZoneKey, Watts] = field(default_factory=dict)
    active: dict[ZoneKey, Joules] = field(default_factory=dict)
    idle: dict[ZoneKey, Joules] = field(default_factory=dict)
    node_joules: Joules = 0.0
    node_watts: Watts = 0.0
    usage: float = 0.0
    processes: dict[tuple[int, int], ProcessTotal] = field(default_factory=dict)
    containers: dict[str, ContainerTotal] = field(default_factory=dict)
    source: SourceInfo | None = None
    intervals: int = 0

    def add(self, iv: Interval) -> None:
        self.intervals += 1
        self.source = iv.source
        self.usage = iv.usage
        self.node_joules += iv.energy.total
        self.node_watts = iv.node_watts
        for key, joules in iv.energy.zones.items():
            self.zones[key] = self.zones.get(key, 0.0) + joules
            self.active[key] = self.active.get(key, 0.0) + joules * iv.usage
            self.idle[key] = self.idle.get(key, 0.0) + joules * (1.0 - iv.usage)
            self.zone_watts[key] = joules / iv.seconds if iv.seconds > 0 else 0.0
        live: dict[tuple[int, int], ProcessTotal] = {}
        for pid, info in iv.info.items():
            k = (pid, info.starttime)
            t = self.processes.get(k) or ProcessTotal(info)
            joules = iv.processes.workloads.get(pid, 0.0)
            t.joules += joules
            t.cpu_seconds += iv.process_cpu.get(pid, 0.0)
            t.watts = joules / iv.seconds if iv.seconds > 0 else 0.0
            live[k] = t
        self.processes = live  # exited processes leave the exporter, as their pid may be reused
        for ref, joules in iv.containers().items():
            c = self.containers.get(ref.container_id) or ContainerTotal(ref)
            c.joules += joules
            c.watts = joules / iv.seconds if iv.seconds > 0 else 0.0
            self.containers[ref.container_id] = c
