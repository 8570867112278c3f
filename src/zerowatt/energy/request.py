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

from zerowatt.energy.board import SeenBoard
from zerowatt.energy.config import EnergyConfig
from zerowatt.energy.grid import run_on_grid
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
    """Refreshes an :class:`ActiveRate` from the node's source once per ``interval`` seconds, at the multiples
    of ``interval`` since the epoch (:mod:`zerowatt.energy.grid`), so that its intervals are the exporter's.

    Either call :meth:`refresh` from your own loop (caller-driven), or :meth:`start` a daemon thread.
    The rate divides the interval's active energy by the node's busy time or the processes' summed CPU times,
    whichever is larger, as the exporter does (:meth:`zerowatt.energy.meter.Interval.active_joules_per_cpu_second`).
    That sum takes a scan of every process's ``stat`` (7-16 µs per process on the node): ``board`` shares
    one scan among the processes of a host (:mod:`zerowatt.energy.board`) — the one that ``publish``-es scans,
    the others read ``/proc/stat`` and the source only and take the sum for the same tick from the board
    (waiting up to ``board_wait`` seconds; without it, the busy time alone for that interval).
    """

    def __init__(
        self,
        source: PowerSource,
        initial: ActiveRate,
        *,
        proc_root: str = "/proc",
        interval: Seconds = 1.0,
        clock: Callable[[], float] = time.monotonic,
        board: SeenBoard | None = None,
        publish: bool = False,
        board_wait: Seconds = 0.25,
    ) -> None:
        self.scan = board is None or publish
        # The publisher is a supervisor (few descriptors of its own): it keeps the stat files open, 3.5x cheaper.
        reader = ProcReader(proc_root, describe=False, keep_open=publish)
        self.meter = Meter(source, reader, per_process=self.scan)
        self.interval = interval
        self.clock = clock
        self.board = board
        self.publish = publish
        self.board_wait = board_wait
        self._board_live = False  # a record for our tick was found once: a miss after that is worth a warning
        self._rate = initial
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.problems = LogOnce()
        #: Called with each interval's rate, on the refreshing thread (the host's ledger closes its interval).
        self.listeners: list[Callable[[ActiveRate], object]] = []

    def current(self) -> ActiveRate:
        return self._rate

    def refresh(self, now: Seconds | None = None, tick: int | None = None) -> ActiveRate:
        """Sample the node for the interval ending now (``tick``: its index on the grid, for the board); keeps
        the previous rate when an interval holds no information."""
        try:
            iv = self.meter.sample(self.clock() if now is None else now)
        except (SensorError, OSError) as exc:
            self.problems.warning(f"energy rate not refreshed: {exc}")
            return self._rate
        if iv is not None and iv.seconds > 0:
            seen: Seconds | None = None
            if self.scan:
                seen = sum(iv.process_cpu.values())
                if self.board is not None and tick is not None:  # the publisher
                    self.board.publish(tick, seen)
            elif self.board is not None and tick is not None:  # a follower: the publisher's sum for this tick
                seen = self.board.wait_for(tick, self.board_wait)
                if seen is not None:
                    self._board_live = True
                elif self._board_live:
                    self.problems.warning(
                        f"no process CPU sum for tick {tick} on {self.board.path} within {self.board_wait} s: "
                        "such intervals are priced by the node's busy time alone",
                        key="board",
                    )
            rate = ActiveRate(iv.active_joules_per_cpu_second(seen), iv.source.name)
            if rate.joules_per_cpu_second > 0:
                self._rate = rate
            for listener in self.listeners:  # the interval's own rate, 0 included: the exporter gave 0 too
                try:
                    listener(rate)
                except Exception as exc:  # a listener's bug must not stop the rate
                    self.problems.warning(f"energy interval listener failed: {exc!r}")
        return self._rate

    def _run(self) -> None:
        # On the wall-clock grid, as the exporter samples: both close the same intervals (energy/grid.py).
        run_on_grid(lambda tick: self.refresh(tick=round(tick / self.interval)), self.interval, self._stop, time.time)

    def start(self) -> LiveRate:
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="zerowatt-energy-rate", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            if not self._thread.is_alive():
                self.meter.procs.close()  # the publisher's open stat files


def default_rate() -> ActiveRate:
    """The rate to use before a live reading exists: the detected node model at full load."""
    from zerowatt.energy.detect import Roots, model_choice

    return ActiveRate.from_model(model_choice(Roots()).model)


def start_live_rate(
    config: EnergyConfig | None = None,
    *,
    interval: Seconds = 1.0,
    listeners: list[Callable[[ActiveRate], object]] | None = None,
    board: SeenBoard | None = None,
    publish: bool = False,
) -> LiveRate:
    """One call for the app host: detect this node's source and start refreshing the rate every
    ``interval`` seconds in a daemon thread (read it with ``.current``). Stop it with ``.stop()``.
    ``board``/``publish``: share one ``/proc`` scan among a host's processes (see :class:`LiveRate`)."""
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
    live = LiveRate(source, initial, proc_root=roots.proc, interval=interval, board=board, publish=publish)
    live.listeners.extend(listeners or [])
    return live.start()
