"""Per-request energy for the app host: guest CPU seconds × the node's active joules per busy CPU-second.

Under Kepler's ratio model a workload's energy over an interval is active × Δcpu / Δbusy, so the price of
one busy CPU-second is ``active / busy`` (= node watts / logical CPUs when the CPU times add up). A request
that ran for ``c`` CPU-seconds therefore costs ``c × rate`` joules, and the per-request figures add up to
what the exporter attributes to the host process.

The host calls :func:`observe_request`; :class:`LiveRate` keeps the rate current from the node's source.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import Counter, Histogram

from zerowatt.energy.config import EnergyConfig
from zerowatt.energy.meter import Meter
from zerowatt.energy.model import NodePowerModel
from zerowatt.energy.procfs import ProcReader
from zerowatt.energy.sources.base import LogOnce, PowerSource, SensorError
from zerowatt.units import Joules, Seconds


@dataclass(frozen=True)
class ActiveRate:
    """Active joules per busy CPU-second on this node right now, and where the figure came from."""

    joules_per_cpu_second: float
    source: str

    @classmethod
    def from_model(cls, model: NodePowerModel, utilisation: float = 1.0) -> ActiveRate:
        """The rate the ratio model gives a node at ``utilisation``: P(u) / logical CPUs.

        With no live reading yet, utilisation 1.0 (the default) gives the full-load figure.
        """
        return cls(model.watts(utilisation) / model.logical_cpus, "model")


def joules_for_cpu(cpu_seconds: Seconds, rate: ActiveRate) -> Joules:
    """Energy of work that kept one CPU busy for ``cpu_seconds``."""
    return max(0.0, cpu_seconds) * rate.joules_per_cpu_second


class LiveRate:
    """Refreshes an :class:`ActiveRate` from the node's source once per ``interval`` seconds.

    Either call :meth:`refresh` from your own loop (caller-driven), or :meth:`start` a daemon thread.
    It samples only ``/proc/stat`` and the source (no per-process scan), so it costs microseconds.
    """

    def __init__(
        self,
        source: PowerSource,
        initial: ActiveRate,
        *,
        proc_root: str = "/proc",
        interval: Seconds = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.meter = Meter(source, ProcReader(proc_root), per_process=False)
        self.interval = interval
        self.clock = clock
        self._rate = initial
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.problems = LogOnce()

    def current(self) -> ActiveRate:
        return self._rate

    def refresh(self, now: Seconds | None = None) -> ActiveRate:
        """Sample the node; keeps the previous rate when an interval holds no information."""
        try:
            iv = self.meter.sample(self.clock() if now is None else now)
        except (SensorError, OSError) as exc:
            self.problems.warning(f"energy rate not refreshed: {exc}")
            return self._rate
        if iv is not None and iv.seconds > 0:
            rate = iv.active_joules_per_cpu_second()
            if rate > 0:
                self._rate = ActiveRate(rate, iv.source.name)
        return self._rate

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.refresh()

    def start(self) -> LiveRate:
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="zerowatt-energy-rate", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


APP_JOULES = Counter(
    "zerowatt_app_joules", "Energy attributed to WebAssembly app components (IT joules).", ["app", "component"]
)
APP_CPU_SECONDS = Counter("zerowatt_app_cpu_seconds", "Guest CPU time of app components.", ["app", "component"])
REQUEST_JOULES = Histogram(
    "zerowatt_request_joules",
    "Energy of one request (IT joules).",
    ["app", "component"],
    buckets=(1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0),
)

_provider: Callable[[], ActiveRate] | None = None


def set_rate_provider(provider: Callable[[], ActiveRate] | None) -> None:
    """Where :func:`observe_request` gets its rate (e.g. ``LiveRate(...).start().current``)."""
    global _provider
    _provider = provider


def default_rate() -> ActiveRate:
    """The rate used before a provider is set: the detected node model at full load."""
    from zerowatt.energy.detect import Roots, model_choice

    return ActiveRate.from_model(model_choice(Roots()).model)


_fallback: ActiveRate | None = None


def current_rate() -> ActiveRate:
    """The rate :func:`observe_request` uses when given none: the provider's, else :func:`default_rate`."""
    global _fallback
    if _provider is not None:
        return _provider()
    if _fallback is None:
        _fallback = default_rate()
    return _fallback


def observe_request(app: str, component: str, cpu_seconds: Seconds, rate: ActiveRate | None = None) -> Joules:
    """Record one request's energy on the Prometheus metrics and return it."""
    if rate is None:
        rate = current_rate()
    joules = joules_for_cpu(cpu_seconds, rate)
    APP_JOULES.labels(app, component).inc(joules)
    APP_CPU_SECONDS.labels(app, component).inc(max(0.0, cpu_seconds))
    REQUEST_JOULES.labels(app, component).observe(joules)
    return joules


def start_live_rate(config: EnergyConfig | None = None, *, interval: Seconds = 1.0) -> LiveRate:
    """One call for the app host: detect this node's source, start refreshing the rate every ``interval``
    seconds in a daemon thread, and make :func:`observe_request` use it. Stop it with ``.stop()``."""
    from zerowatt.energy.detect import Roots, detect_source, model_choice

    cfg = config or EnergyConfig()
    roots = Roots()
    initial = ActiveRate.from_model(model_choice(roots, cfg.overrides()).model)
    live = LiveRate(detect_source(roots, cfg.overrides(), cfg.source), initial, proc_root=roots.proc, interval=interval)
    live.start()
    set_rate_provider(live.current)
    return live
