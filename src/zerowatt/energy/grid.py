"""Sampling on a shared wall-clock grid, so that independent samplers on one node see the same intervals.

The exporter (``zerowatt energy serve``) and every process of ``zerowatt up`` sample the node on their own.
Each prices a CPU-second at its interval's rate, ``active / busy`` = P(u) / logical CPUs, which rises with
the node's utilisation ``u``. Two samplers whose intervals start at different instants weigh the same
CPU-seconds by different rates: under bursty load, a host sampling every second at its own phase and an
exporter sampling every 0.5 s put the host's per-app joules 1-3 % away from the exporter's figure for the
same processes (issue 16).

When every sampler ends its intervals at the multiples of one interval since the Unix epoch, they all close
the same intervals up to their wake-up latency (milliseconds), see the same ``u`` and the same rate, and
their figures add up (docs/energy.md, "Conservation law 1"). Sleeping ``interval`` after each sample
instead would drift by the sample's own duration every time, so two samplers' phases would wander apart.

:func:`next_tick` is pure; :func:`run_on_grid` is the loop both samplers use (clock and sleep passed in).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

from zerowatt.units import Seconds


def next_tick(now: Seconds, interval: Seconds) -> Seconds:
    """The first multiple of ``interval`` (seconds since the epoch) strictly after ``now``."""
    if not (interval > 0 and math.isfinite(interval)):
        raise ValueError(f"interval must be a positive number of seconds, not {interval!r}")
    tick = (math.floor(now / interval) + 1) * interval
    return tick if tick > now else tick + interval  # float rounding at a boundary


def run_on_grid(
    step: Callable[[float], object],
    interval: Seconds,
    stop: threading.Event,
    wall: Callable[[], float],
) -> None:
    """Call ``step(tick)`` at every multiple ``tick`` of ``interval`` on the ``wall`` clock until ``stop`` is set.

    A wake-up before its tick waits again for the rest; a step that overran one or more ticks is followed
    by the next tick still ahead (intervals are skipped, never squeezed together).
    """
    target = next_tick(wall(), interval)
    while True:
        delay = target - wall()
        if delay > 0:
            if stop.wait(delay):
                return
            continue
        if stop.is_set():
            return
        step(target)
        target = next_tick(max(wall(), target), interval)
