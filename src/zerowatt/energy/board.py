"""One ``/proc`` scan per host per interval, shared: the supervisor publishes, its workers read.

Pricing a CPU-second as the exporter does needs the interval's Σ of every process's CPU time
(:meth:`zerowatt.energy.meter.Interval.active_joules_per_cpu_second`): one scan of ``/proc`` — 7-16 µs per
process on the node. Every process of ``zerowatt up`` scanning on its own would cost (workers + 1) scans a
second; instead the supervisor scans and writes the figure for each grid tick to a small file in the host's
state directory, and each worker, which samples ``/proc/stat`` and the power source itself (microseconds),
reads it for the same tick. The file is replaced whole (write, then rename), so a reader never sees half a
record. A worker that does not find its tick in time falls back to the node's busy time for that interval.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path

from zerowatt.units import Seconds


class SeenBoard:
    """The processes' summed CPU seconds of the interval ending at each tick (tick = its index on the grid)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._partial = self.path.with_name(self.path.name + f".{os.getpid()}.partial")

    def publish(self, tick: int, seen: Seconds) -> None:
        """Record the interval ending at ``tick`` (errors: the workers fall back, nothing else breaks)."""
        with contextlib.suppress(OSError):
            self._partial.write_text(f"{tick} {seen!r}\n")
            os.replace(self._partial, self.path)

    def read(self) -> tuple[int, Seconds] | None:
        """The last record, or None (no record yet, or not one this module wrote)."""
        try:
            tick, seen = self.path.read_text().split()
            value = float(seen)
            return int(tick), value if value >= 0 else 0.0
        except (OSError, ValueError):
            return None

    def wait_for(
        self,
        tick: int,
        timeout: Seconds,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
        poll: Seconds = 0.002,
    ) -> Seconds | None:
        """The figure for ``tick`` once published, or None if it is not there within ``timeout`` seconds, a
        later tick already replaced it, or nothing was ever published (no publisher to wait for: it starts
        after the workers)."""
        deadline = clock() + timeout
        while True:
            record = self.read()
            if record is None or record[0] > tick:
                return None
            if record[0] == tick:
                return record[1]
            if clock() >= deadline:
                return None
            sleep(poll)
