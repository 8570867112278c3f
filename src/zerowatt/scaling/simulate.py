"""Replay a trace through any policy: the driver behind ``zerowatt simulate`` and the benchmark.

``prepare()`` computes what every policy shares (busy periods, idle gaps); ``run_policy(name, ...)`` runs
one policy (``kpa``, ``keepalive``, ``hybrid``, ``energy``) and returns a :class:`PolicyResult`. The
model and its assumptions are in :mod:`.replay` and ``docs/scaling.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from zerowatt.errors import UsageError
from zerowatt.scaling import kpa as kpa_core
from zerowatt.scaling.energy import EnergyParams
from zerowatt.scaling.hybrid_replay import hybrid_gap_windows
from zerowatt.scaling.kpa_replay import simulate_kpa
from zerowatt.scaling.policies import EnergyAware, FixedKeepAlive, HybridHistogram
from zerowatt.scaling.replay import Gaps, Periods, PolicyResult, Progress, busy_periods, gaps_of, simulate_windows
from zerowatt.scaling.trace import Invocations
from zerowatt.units import Seconds

__all__ = [
    "POLICY_NAMES",
    "PolicyResult",
    "Prepared",
    "SimulationConfig",
    "keepalive_matching_idle_memory",
    "keepalive_sweep",
    "parse_policies",
    "prepare",
    "run_policies",
    "run_policy",
]

POLICY_NAMES = ("kpa", "keepalive", "hybrid", "energy")


def parse_policies(spec: str) -> list[str]:
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise UsageError("--policy: give at least one of " + ", ".join(POLICY_NAMES))
    for n in names:
        if n not in POLICY_NAMES:
            raise UsageError(f"--policy: unknown policy {n!r}; expected one of {', '.join(POLICY_NAMES)}")
    return list(dict.fromkeys(names))


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    """Everything a run depends on besides the invocations."""

    cold_start: Seconds = 0.0003
    energy: EnergyParams = field(default_factory=EnergyParams)
    keepalive: FixedKeepAlive = field(default_factory=FixedKeepAlive)
    hybrid: HybridHistogram = field(default_factory=HybridHistogram)
    kpa: kpa_core.KpaParams = field(default_factory=kpa_core.KpaParams)
    energy_latency_watts: float = 0.0


@dataclass(frozen=True, slots=True)
class Prepared:
    """Per-trace work shared by every policy: busy periods and the gaps between them."""

    inv: Invocations
    periods: Periods
    gaps: Gaps


def prepare(inv: Invocations) -> Prepared:
    periods = busy_periods(inv)
    return Prepared(inv, periods, gaps_of(periods, inv.horizon))


def run_policy(name: str, prep: Prepared, config: SimulationConfig, progress: Progress | None = None) -> PolicyResult:
    inv, periods, gaps = prep.inv, prep.periods, prep.gaps
    mem_of_gap = inv.memory_gb[gaps.fid] if gaps.fid.size else np.zeros(0)
    if name == "keepalive":
        p, k = config.keepalive.windows(mem_of_gap)
        return simulate_windows(
            name,
            inv,
            periods,
            gaps,
            p,
            k,
            config.cold_start,
            config.energy,
            {"keep_alive_s": config.keepalive.keep_alive},
        )
    if name == "energy":
        pol = EnergyAware(config.cold_start, config.energy, latency_watts=config.energy_latency_watts)
        p, k = pol.windows(mem_of_gap)
        kf = pol.windows(inv.memory_gb)[1]
        return simulate_windows(
            name,
            inv,
            periods,
            gaps,
            p,
            k,
            config.cold_start,
            config.energy,
            {
                "keep_alive_s_median": float(np.median(kf)) if kf.size else 0.0,
                "keep_alive_s_max": float(kf.max()) if kf.size else 0.0,
            },
        )
    if name == "hybrid":
        hp = config.hybrid.params
        p, k = hybrid_gap_windows(hp, gaps, inv.n_functions, inv.horizon, progress)
        return simulate_windows(
            name,
            inv,
            periods,
            gaps,
            p,
            k,
            config.cold_start,
            config.energy,
            {"bin_width_s": hp.bin_width, "range_s": hp.range, "margin": hp.margin},
        )
    if name == "kpa":
        return simulate_kpa(inv, periods, gaps, config.kpa, config.cold_start, config.energy, progress)
    raise UsageError(f"unknown policy {name!r}; expected one of {', '.join(POLICY_NAMES)}")


def run_policies(
    names: Sequence[str], prep: Prepared, config: SimulationConfig, progress: Progress | None = None
) -> dict[str, PolicyResult]:
    return {n: run_policy(n, prep, config, progress) for n in names}


def keepalive_sweep(prep: Prepared, config: SimulationConfig, windows: Sequence[Seconds]) -> list[PolicyResult]:
    """Fixed keep-alive at several windows: the frontier the hybrid policy is compared against."""
    out = []
    for w in windows:
        k = np.full(prep.gaps.fid.size, float(w))
        out.append(
            simulate_windows(
                f"keepalive-{w:g}s",
                prep.inv,
                prep.periods,
                prep.gaps,
                np.zeros_like(k),
                k,
                config.cold_start,
                config.energy,
                {"keep_alive_s": float(w)},
            )
        )
    return out


def keepalive_matching_idle_memory(
    prep: Prepared, config: SimulationConfig, target_gb_s: float, hi: Seconds = 24 * 3600.0
) -> PolicyResult:
    """The fixed keep-alive whose idle memory (GB-s) equals ``target_gb_s`` (bisection; idle memory grows
    monotonically with the window)."""
    lo_w, hi_w = 0.0, hi
    best = keepalive_sweep(prep, config, [hi_w])[0]
    for _ in range(40):
        mid = (lo_w + hi_w) / 2
        r = keepalive_sweep(prep, config, [mid])[0]
        if r.idle_memory_gb_seconds < target_gb_s:
            lo_w = mid
        else:
            hi_w, best = mid, r
    return best
