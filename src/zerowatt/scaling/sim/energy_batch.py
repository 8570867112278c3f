"""The energy-aware policy, batch: each function's break-even keep-alive after each of its busy periods."""

from __future__ import annotations

import dataclasses

import numpy as np

from zerowatt.scaling.policies.energy import EnergyAware
from zerowatt.scaling.power import EnergyParams
from zerowatt.scaling.sim.periods import PolicyResult, Prepared, Progress, simulate_windows
from zerowatt.units import Seconds


def simulate(
    params: EnergyAware, prep: Prepared, cold_start: Seconds, power: EnergyParams, progress: Progress | None = None
) -> PolicyResult:
    """The batch simulation of the registry. The break-even prices instances with the run's power model
    (the one the accounting uses) and, unless ``start_latency`` is given, the run's cold start."""
    start = cold_start if params.start_latency is None else params.start_latency
    pol = dataclasses.replace(params, start_latency=start, energy=power)
    inv, gaps = prep.inv, prep.gaps
    kf = pol.windows(inv.memory_gb)[1]
    k = kf[gaps.fid]
    extra = {
        "keep_alive_s_median": float(np.median(kf)) if kf.size else 0.0,
        "keep_alive_s_max": float(kf.max()) if kf.size else 0.0,
    }
    return simulate_windows("energy", inv, prep.periods, gaps, np.zeros_like(k), k, cold_start, power, extra)
