"""Fixed keep-alive, batch: the same window after every busy period of every function, replayed."""

from __future__ import annotations

import numpy as np

from zerowatt.scaling.policies.keepalive import FixedKeepAlive
from zerowatt.scaling.power import EnergyParams
from zerowatt.scaling.sim.periods import PolicyResult, Prepared, Progress, simulate_windows
from zerowatt.units import Seconds


def simulate(
    params: FixedKeepAlive, prep: Prepared, cold_start: Seconds, power: EnergyParams, progress: Progress | None = None
) -> PolicyResult:
    """The batch simulation of the registry (``capacity`` is online only: a simulated instance serves all)."""
    gaps = prep.gaps
    p, k = params.windows(prep.inv.memory_gb[gaps.fid] if gaps.fid.size else np.zeros(0))
    extra = {"keep_alive_s": params.keep_alive}
    return simulate_windows("keepalive", prep.inv, prep.periods, gaps, p, k, cold_start, power, extra)
