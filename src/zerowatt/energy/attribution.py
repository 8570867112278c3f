"""Kepler's ratio model: split node energy into idle and active, then share active energy by CPU time.

Over one interval (Kepler power-attribution guide, v0.10):

- usage ratio u = Δbusy / Δtotal CPU time of the node (``/proc/stat``);
- active = node energy × u, idle = node energy − active;
- a workload's energy = active × Δcpu(workload) / Δbusy(node).

CPU time no listed workload accounts for (interrupts, exited processes, rounding) keeps its active energy at
node level as ``unattributed``. With ``spread_idle`` idle energy is also shared, by each workload's share of
the workloads' CPU time (Scaphandre's full-cost view); otherwise it stays at node level. Either way

    sum(workloads) + unattributed + idle_at_node == node energy      (exactly, up to float rounding)

which ``tests/energy/test_attribution.py`` checks as a property over arbitrary intervals.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from zerowatt.units import Joules, Seconds

K = TypeVar("K", bound=Hashable)
G = TypeVar("G", bound=Hashable)


@dataclass(frozen=True)
class CpuTimes:
    """Cumulative node CPU time from ``/proc/stat`` (any unit, as long as both samples use the same)."""

    busy: float
    total: float


def usage_ratio(before: CpuTimes, after: CpuTimes) -> float:
    """Fraction of the node's CPU capacity that was busy between two samples, in [0, 1]."""
    total = after.total - before.total
    if total <= 0:
        return 0.0
    return min(1.0, max(0.0, (after.busy - before.busy) / total))


@dataclass(frozen=True)
class Attribution(Generic[K]):
    """One interval's node energy and its split among workloads keyed by ``K``."""

    total: Joules
    active: Joules
    idle: Joules
    workloads: dict[K, Joules]
    unattributed: Joules
    idle_at_node: Joules

    def accounted(self) -> Joules:
        """Workloads + unattributed active + idle kept at node level: equals :attr:`total`."""
        return sum(self.workloads.values()) + self.unattributed + self.idle_at_node


def attribute(
    node_joules: Joules,
    usage: float,
    cpu_deltas: Mapping[K, Seconds],
    node_busy: Seconds,
    *,
    spread_idle: bool = False,
) -> Attribution[K]:
    """Split ``node_joules`` of one interval among workloads by their CPU-time deltas.

    ``node_busy`` is the node's busy CPU time over the interval; when the workloads' own deltas add up to
    more (tick rounding between two files), their sum is used instead so no one gets more than the active
    energy. Negative deltas (a pid reused) count as zero.
    """
    total = max(0.0, node_joules)
    u = min(1.0, max(0.0, usage))
    active = total * u
    idle = total - active
    deltas = {k: max(0.0, v) for k, v in cpu_deltas.items()}
    seen = sum(deltas.values())
    denominator = max(node_busy, seen)
    workloads: dict[K, Joules] = {}
    given = 0.0
    if denominator > 0 and active > 0:
        for k, d in deltas.items():
            if d > 0:
                share = active * (d / denominator)
                workloads[k] = share
                given += share
    unattributed = max(0.0, active - given)
    idle_at_node = idle
    if spread_idle and seen > 0 and idle > 0:
        spent = 0.0
        for k, d in deltas.items():
            if d > 0:
                part = idle * (d / seen)
                workloads[k] = workloads.get(k, 0.0) + part
                spent += part
        idle_at_node = max(0.0, idle - spent)
    return Attribution(total, active, idle, workloads, unattributed, idle_at_node)


def aggregate(per_workload: Mapping[K, Joules], group_of: Callable[[K], G | None]) -> dict[G, Joules]:
    """Sum workload energy into groups (processes → containers, components → apps); None = no group."""
    out: dict[G, Joules] = {}
    for k, joules in per_workload.items():
        g = group_of(k)
        if g is not None:
            out[g] = out.get(g, 0.0) + joules
    return out
