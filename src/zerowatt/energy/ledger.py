"""Per-interval energy ledger of one process tree: every CPU-second goes to an app or to a named host part.

The exporter (Kepler's ratio model) gives a process ``active × Δcpu / Δbusy`` joules per interval, that is
its CPU time × the interval's rate ``active / busy``. A host that wants its per-app figures to add up to what
the exporter attributes to it must therefore (1) charge *all* of its process tree's CPU time, and (2) price
each interval's CPU time at that interval's rate. This ledger does both:

- requests are charged the CPU time measured for them (:meth:`EnergyLedger.charge`);
- named host work that is measured is charged to its part (:meth:`EnergyLedger.host`, e.g. ``metrics``);
- at the end of each interval (:meth:`EnergyLedger.close`) the tree's CPU delta that nothing claimed goes to
  the host part ``startup`` (the first interval: everything since the processes started) or ``idle``
  (event-loop housekeeping, timers, threads no request owns), and everything is priced at the interval's rate.

So Σ apps + Σ host parts = the tree's CPU × rate in every interval. When the charges exceed the tree's delta
(clock granularity: ``/proc`` counts ticks, threads count nanoseconds) the excess is carried as ``debt`` and
repaid from the next intervals' unclaimed CPU, so counters never go backwards and the sums agree to within
the debt. Pure: the caller reads the clocks and passes them in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zerowatt.units import Joules, Seconds

#: Host parts. ``startup``: CPU before the first interval closed (imports, compiling, spawning);
#: ``metrics``: recording request metrics and serving scrapes; ``idle``: the rest (event-loop housekeeping
#: with no request in flight, timers, the sampler itself, threads no request owns).
HOST_PARTS = ("startup", "metrics", "idle")


@dataclass(frozen=True)
class AppCharge:
    """One (app, component)'s share of an interval: CPU time, energy, and each request's energy."""

    cpu_seconds: Seconds
    joules: Joules
    requests: tuple[Joules, ...]


@dataclass(frozen=True)
class Priced:
    """One closed interval: the rate used and what each app and host part was charged."""

    rate: float
    tree_cpu: Seconds
    apps: dict[tuple[str, str], AppCharge]
    host: dict[str, tuple[Seconds, Joules]]

    def joules(self) -> Joules:
        """Σ apps + Σ host parts."""
        return sum(a.joules for a in self.apps.values()) + sum(j for _, j in self.host.values())


@dataclass
class EnergyLedger:
    """Accumulates one interval's charges; :meth:`close` prices them and the unclaimed rest."""

    last_tree: Seconds = 0.0  # the tree's cumulative CPU at the last close (0: processes start at 0)
    debt: Seconds = 0.0
    closed: int = 0
    #: (app, component) → each request's CPU seconds this interval (callers on a hot path append directly)
    pending: dict[tuple[str, str], list[Seconds]] = field(default_factory=dict)
    _host: dict[str, Seconds] = field(default_factory=dict)

    def charge(self, app: str, component: str, cpu_seconds: Seconds) -> None:
        """One request of ``(app, component)`` cost ``cpu_seconds`` (negative readings count as 0)."""
        key = (app, component)
        cpus = self.pending.get(key)
        if cpus is None:
            self.pending[key] = [max(0.0, cpu_seconds)]
        else:
            cpus.append(max(0.0, cpu_seconds))

    def host(self, part: str, cpu_seconds: Seconds) -> None:
        """Measured host work of ``part`` (one of :data:`HOST_PARTS`)."""
        if cpu_seconds > 0:
            self._host[part] = self._host.get(part, 0.0) + cpu_seconds

    def close(self, tree_cpu: Seconds | None, rate: float) -> Priced:
        """End the interval: ``tree_cpu`` is the tree's cumulative CPU now (None: unknown, nothing unclaimed
        is charged), ``rate`` the interval's active joules per busy CPU-second."""
        rate = max(0.0, rate)
        apps = {key: AppCharge(sum(c), sum(c) * rate, tuple(x * rate for x in c)) for key, c in self.pending.items()}
        host_cpu = dict(self._host)
        delta = 0.0
        if tree_cpu is not None:
            delta = max(0.0, tree_cpu - self.last_tree)
            self.last_tree = max(self.last_tree, tree_cpu)
            claimed = sum(a.cpu_seconds for a in apps.values()) + sum(host_cpu.values())
            unclaimed = delta - claimed - self.debt
            if unclaimed >= 0:
                self.debt = 0.0
                part = "startup" if self.closed == 0 else "idle"
                host_cpu[part] = host_cpu.get(part, 0.0) + unclaimed
            else:
                self.debt = -unclaimed
        self.closed += 1
        self.pending = {}
        self._host = {}
        return Priced(rate, delta, apps, {part: (cpu, cpu * rate) for part, cpu in host_cpu.items()})
