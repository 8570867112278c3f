"""Per-request energy in the app host: guest CPU seconds × the node's active joules per busy CPU-second.

The energy subsystem prices CPU time (:mod:`zerowatt.energy.request`, the Kepler ratio model) and exports
``zerowatt_app_joules_total{app,component}`` and the ``zerowatt_request_joules`` histogram; this observer
feeds it every request the host serves and keeps running totals per component so that ``zerowatt up`` can
log a joules-per-request summary. The summary is written from the request path at most once per
``interval`` (no timer task: an idle host has nothing to report and stays idle) and once at shutdown.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from zerowatt.energy import ActiveRate, observe_request
from zerowatt.units import Joules, Seconds

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
        interval: Seconds = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.interval = interval
        self.clock = clock
        self.totals: dict[tuple[str, str], ComponentEnergy] = {}
        self._last_summary = clock()

    def __call__(self, app: str, component: str, status: int, duration: float, cpu_seconds: float) -> None:
        joules = observe_request(app, component, cpu_seconds, self.rate() if self.rate is not None else None)
        entry = self.totals.get((app, component))
        if entry is None:
            entry = self.totals[(app, component)] = ComponentEnergy()
        entry.requests += 1
        entry.cpu_seconds += max(0.0, cpu_seconds)
        entry.joules += joules
        now = self.clock()
        if now - self._last_summary >= self.interval:
            self._last_summary = now
            self.log_summary()

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
