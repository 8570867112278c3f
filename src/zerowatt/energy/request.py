"""Per-request energy for the app host: guest CPU seconds × the node's active joules per busy CPU-second.

Under Kepler's ratio model a workload's energy over an interval is active × Δcpu / Δbusy, so the price of
one busy CPU-second is ``active / busy`` (= node watts / logical CPUs when the CPU times add up). A request
that ran for ``c`` CPU-seconds therefore costs ``c × rate`` joules. The per-request figures add up to what the
exporter attributes to the host's processes because the host charges all of its CPU time (requests, and a
named host share for the rest) and prices each interval at that interval's rate (:mod:`zerowatt.energy.ledger`,
fed by :attr:`LiveRate.listeners`).

Nothing here is process-global: :class:`LiveRate` keeps a rate current from the node's source and whoever
records the figures owns the metrics (the app host: :class:`zerowatt.host.metrics.EnergyMetrics` on its own
registry, fed by :class:`zerowatt.host.energy.EnergyAccounting`). Importing this module imports no
Prometheus client and starts nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

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
        #: Called with each interval's rate, on the refreshing thread (the host's ledger closes its interval).
        self.listeners: list[Callable[[ActiveRate], object]] = []

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
            for listener in self.listeners:
                try:
                    listener(self._rate)
                except Exception as exc:  # a listener's bug must not stop the rate
                    self.problems.warning(f"energy interval listener failed: {exc!r}")
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


def default_rate() -> ActiveRate:
    """The rate to use before a live reading exists: the detected node model at full load."""
    from zerowatt.energy.detect import Roots, model_choice

    return ActiveRate.from_model(model_choice(Roots()).model)


def start_live_rate(
    config: EnergyConfig | None = None,
    *,
    interval: Seconds = 1.0,
    listeners: list[Callable[[ActiveRate], object]] | None = None,
) -> LiveRate:
    """One call for the app host: detect this node's source and start refreshing the rate every
    ``interval`` seconds in a daemon thread (read it with ``.current``). Stop it with ``.stop()``."""
    from zerowatt.energy.detect import Roots, detect_source
    from zerowatt.energy.sources.model import ModelSource

    cfg = config or EnergyConfig()
    roots = Roots()
    source = detect_source(roots, cfg.overrides(), cfg.source)
    # The chain ends with the node's model (the fallback): the initial rate comes from the same choice
    # instead of matching the CPU against the SPECpower table a second time (~35 ms of a worker's start).
    fallback = source.chain[-1]
    assert isinstance(fallback, ModelSource)
    initial = ActiveRate.from_model(fallback.choice.model)
    live = LiveRate(source, initial, proc_root=roots.proc, interval=interval)
    live.listeners.extend(listeners or [])
    return live.start()
