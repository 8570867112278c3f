"""Per-request energy in the app host: every CPU-second of the host's process tree goes to an app or to the host.

A request is charged the CPU time measured for it: the worker's event-loop thread between two checkpoints
(:class:`LoopCpu`: receiving, parsing, routing, the Python around the guest, a guest that ran inline) plus
the guest's CPU on another thread or process (the pool, a ``wasmtime serve`` child). Once per sampling interval
the :class:`~zerowatt.energy.ledger.EnergyLedger` prices the interval's charges at the interval's rate and
gives the tree's CPU that no request claimed to a named host part (``startup``, ``metrics``, ``idle``), so
that Σ apps + host = the energy an exporter attributes to the host's processes (docs/energy.md).

Records ``zerowatt_app_joules_total{app,component}``, ``zerowatt_request_joules`` and
``zerowatt_host_joules_total{part}`` on the host's :class:`~zerowatt.host.metrics.EnergyMetrics`, and keeps
running totals per component so that ``zerowatt up`` can log a joules-per-request summary at most once per
``interval`` and once at shutdown.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from zerowatt.energy.ledger import EnergyLedger, Priced
from zerowatt.energy.request import ActiveRate, default_rate
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


class LoopCpu:
    """The event-loop thread's CPU clock, cut at checkpoints: each request takes what was spent since the last.

    :meth:`take` runs on the loop thread when a request is answered (one ``thread_time`` call, no lock: only
    the loop thread moves the checkpoint). :meth:`settle_idle` runs on the sampler's thread: when no request
    is in flight it reads the loop thread's clock and tells :meth:`take` to start from there, so the event
    loop's housekeeping between requests (timers, a quiet minute) goes to the host, not to the next request.
    Recording a batch's metrics on the loop thread is part of the requests' work (the next checkpoint).
    """

    __slots__ = ("_clock", "_idle_to", "_mark", "in_flight")

    def __init__(self) -> None:
        self._clock: int | None = None
        self._mark = 0.0  # written by the loop thread only
        self._idle_to = 0.0  # written by the sampler thread only
        self.in_flight = 0

    def bind(self) -> None:
        """Call on the loop thread before the first request."""
        self._clock = time.pthread_getcpuclockid(threading.get_ident())
        self._mark = time.thread_time()

    def take(self) -> Seconds:
        """Loop-thread CPU since the last checkpoint (on the loop thread)."""
        if self._clock is None:
            self.bind()
            return 0.0
        now = time.thread_time()
        start = self._mark if self._mark > self._idle_to else self._idle_to
        self._mark = now
        return now - start if now > start else 0.0

    def settle_idle(self) -> None:
        """From the sampler's thread: with nothing in flight, the next request starts counting from now."""
        if self._clock is None or self.in_flight:
            return
        with contextlib.suppress(OSError):  # OSError: the loop's thread is gone
            self._idle_to = time.clock_gettime(self._clock)


class EnergyAccounting:
    """A request observer (see :class:`zerowatt.host.metrics.RequestObserver`) that prices each request."""

    def __init__(
        self,
        *,
        rate: Callable[[], ActiveRate] | None = None,
        metrics: EnergyMetrics | None = None,
        interval: Seconds = 60.0,
        clock: Callable[[], float] = time.monotonic,
        tree_cpu: Callable[[], Seconds | None] | None = None,
        loop: LoopCpu | None = None,
    ) -> None:
        """``rate``: the rate :meth:`close_interval` uses when given none (default: the detected node model at
        full load, computed once); ``metrics``: where to record (default: a registry of its own);
        ``tree_cpu``: the host's process tree's cumulative CPU seconds (None: only requests are charged);
        ``loop``: the event loop's checkpoints (its idle CPU is settled at each interval)."""
        self.rate = rate
        self.metrics = metrics if metrics is not None else EnergyMetrics()
        self._fallback: ActiveRate | None = None
        self.interval = interval
        self.clock = clock
        self.tree_cpu = tree_cpu
        self.loop = loop
        self.ledger = EnergyLedger()
        self._lock = threading.Lock()
        self.totals: dict[tuple[str, str], ComponentEnergy] = {}
        self.host_totals: dict[str, ComponentEnergy] = {}
        self._last_summary = clock()

    def __call__(self, app: str, component: str, status: int, duration: float, cpu_seconds: float) -> None:
        self.observe_many(((app, component, status, duration, cpu_seconds),))

    def observe_many(self, batch: Sequence[Observation]) -> None:
        """Charge every request of ``batch`` its CPU time; priced when the interval closes."""
        with self._lock:
            pending = self.ledger.pending
            for item in batch:
                cpus = pending.get((item[0], item[1]))
                if cpus is None:
                    pending[(item[0], item[1])] = [item[4] if item[4] > 0 else 0.0]
                else:
                    cpus.append(item[4] if item[4] > 0 else 0.0)

    def host_work(self, part: str, cpu_seconds: Seconds) -> None:
        """Measured host work (``metrics``: the supervisor rendering /metrics for a scrape)."""
        with self._lock:
            self.ledger.host(part, cpu_seconds)

    def close_interval(self, rate: ActiveRate | None = None) -> Priced:
        """Price the interval's charges and the tree's unclaimed CPU at ``rate`` (the interval's), and record
        them. The live rate calls this once per interval from its thread."""
        r = rate or (self.rate() if self.rate is not None else self._default_rate())
        if self.loop is not None:
            self.loop.settle_idle()  # its CPU is in the tree's delta: the ledger gives it to the host
        tree = self.tree_cpu() if self.tree_cpu is not None else None
        with self._lock:
            priced = self.ledger.close(tree, r.joules_per_cpu_second)
        for (app, component), charge in priced.apps.items():
            self.metrics.record(app, component, charge.cpu_seconds, charge.requests)
            entry = self.totals.get((app, component))
            if entry is None:
                entry = self.totals[(app, component)] = ComponentEnergy()
            entry.requests += len(charge.requests)
            entry.cpu_seconds += charge.cpu_seconds
            entry.joules += charge.joules
        for part, (cpu, joules) in priced.host.items():
            self.metrics.record_host(part, cpu, joules)
            host = self.host_totals.get(part)
            if host is None:
                host = self.host_totals[part] = ComponentEnergy()
            host.cpu_seconds += cpu
            host.joules += joules
        self.metrics.intervals.inc()
        now = self.clock()
        if now - self._last_summary >= self.interval:
            self._last_summary = now
            self.log_summary()
        return priced

    def _default_rate(self) -> ActiveRate:
        if self._fallback is None:
            self._fallback = default_rate()
        return self._fallback

    def summary(self) -> list[str]:
        """One line per component (requests, CPU, joules in all and per request), then one per host part."""
        return [
            f"{app}/{component}: {e.requests} requests, {e.cpu_seconds * 1e3:.1f} ms CPU, "
            f"{e.joules:.4g} J ({e.joules_per_request * 1e6:.3g} µJ/request)"
            for (app, component), e in sorted(self.totals.items())
        ] + [
            f"host {part}: {e.cpu_seconds * 1e3:.1f} ms CPU, {e.joules:.4g} J"
            for part, e in sorted(self.host_totals.items())
        ]

    def log_summary(self) -> None:
        for line in self.summary():
            log.info("energy %s", line)
