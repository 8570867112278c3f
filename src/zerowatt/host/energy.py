"""Per-request energy in the app host: guest CPU seconds × the node's active joules per busy CPU-second.

The energy subsystem prices CPU time (:mod:`zerowatt.energy.request`, the Kepler ratio model); this
observer prices every request the host serves, records ``zerowatt_app_joules_total{app,component}`` and
the ``zerowatt_request_joules`` histogram on the host's :class:`~zerowatt.host.metrics.EnergyMetrics`,
and keeps running totals per component so that ``zerowatt up`` can log a joules-per-request summary.
The summary is written from the request path at most once per ``interval`` (no timer task: an idle
host has nothing to report and stays idle) and once at shutdown.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from zerowatt.energy.request import ActiveRate, default_rate, joules_for_cpu
from zerowatt.units import Joules, Seconds

from .metrics import EnergyMetrics, Observation

log = logging.getLogger("zerowatt.host.energy")


@dataclass(slots=True)
class ComponentEnergy:
    """Running totals for one (app, component) since the worker started."""

    requests: int = 0
    cpu_seconds: Seconds = 0.0
    joules: Joules = 0.0

    @property
    def joules_per_request(self) -> Joules:
        return self.joules / self.requests if self.requests else 0.0


class EnergyAccounting:
    """A request observer (see :class:`zerowatt.host.metrics.RequestObserver`) that prices each request."""

    def __init__(
        self,
        *,
        rate: Callable[[], ActiveRate] | None = None,
        metrics: EnergyMetrics | None = None,
        interval: Seconds = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``rate``: the live rate (default: the detected node model at full load, computed once);
        ``metrics``: where to record (default: a registry of its own)."""
        self.rate = rate
        self.metrics = metrics if metrics is not None else EnergyMetrics()
        self._fallback: ActiveRate | None = None
        self.interval = interval
        self.clock = clock
        self.totals: dict[tuple[str, str], ComponentEnergy] = {}
        self._last_summary = clock()

    def __call__(self, app: str, component: str, status: int, duration: float, cpu_seconds: float) -> None:
        self.observe_many(((app, component, status, duration, cpu_seconds),))

    def observe_many(self, batch: Sequence[Observation]) -> None:
        """Price every observation of ``batch``: the same metric values as one call each, fewer writes."""
        rate = self.rate() if self.rate is not None else self._default_rate()
        groups: dict[tuple[str, str], list[float]] = {}
        for app, component, _status, _duration, cpu in batch:
            cpus = groups.get((app, component))
            if cpus is None:
                groups[(app, component)] = [cpu]
            else:
                cpus.append(cpu)
        for key, cpus in groups.items():
            joules = [joules_for_cpu(cpu, rate) for cpu in cpus]
            spent = sum(max(0.0, cpu) for cpu in cpus)
            total = sum(joules)
            self.metrics.record(key[0], key[1], spent, joules)
            entry = self.totals.get(key)
            if entry is None:
                entry = self.totals[key] = ComponentEnergy()
            entry.requests += len(cpus)
            entry.cpu_seconds += spent
            entry.joules += total
        now = self.clock()
        if now - self._last_summary >= self.interval:
            self._last_summary = now
            self.log_summary()

    def _default_rate(self) -> ActiveRate:
        if self._fallback is None:
            self._fallback = default_rate()
        return self._fallback

    def summary(self) -> list[str]:
        """One line per component: requests, guest CPU, joules in all and per request."""
        return [
            f"{app}/{component}: {e.requests} requests, {e.cpu_seconds * 1e3:.1f} ms guest CPU, "
            f"{e.joules:.4g} J ({e.joules_per_request * 1e6:.3g} µJ/request)"
            for (app, component), e in sorted(self.totals.items())
        ]

    def log_summary(self) -> None:
        for line in self.summary():
            log.info("energy %s", line)
