"""The simulator's shared core: busy periods, idle gaps, window replay and the accounting of one policy's run.

Model (written out with its assumptions in ``docs/scaling.md``):

* an *instance* of a function serves any number of concurrent requests (the unit Shahrad et al. keep warm:
  the loaded application; in zerowatt, a loaded component); KPA pods hold ~70 concurrent requests each;
* a *busy period* is a maximal union of overlapping ``[arrival, arrival + duration]`` intervals; between two
  busy periods the instance is idle and the policy decides whether it stays loaded;
* a request that finds no instance loaded or starting is a *cold start*: an instance starts, taking
  ``cold_start`` seconds; requests arriving while it starts wait for it (added latency). Execution is
  accounted from the arrival; the start adds ``cold_start`` seconds of instance time per cold start;
* everything is cut at the trace horizon (one day).

This module holds what every policy's batch simulation shares: busy periods, idle gaps
(:func:`prepare`), window accounting and the result record. Each policy's batch simulation is its
``zerowatt.scaling.policies.*_batch`` module; :mod:`.driver` runs them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from zerowatt.scaling.power import EnergyParams
from zerowatt.scaling.sim.trace import Invocations
from zerowatt.units import Seconds

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Progress = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class Periods:
    """Busy periods of every function, sorted by (function, start); plus each invocation's period."""

    fid: IntArray
    start: FloatArray
    end: FloatArray  # may exceed the horizon
    first_invocation: IntArray  # index of the invocation that opened the period
    first_of_function: npt.NDArray[np.bool_]

    @property
    def size(self) -> int:
        return int(self.start.size)


def busy_periods(inv: Invocations) -> Periods:
    """Merge overlapping invocations per function (vectorised running maximum with a per-function offset)."""
    n = inv.size
    if n == 0:
        z = np.zeros(0, dtype=np.int64)
        f = np.zeros(0)
        return Periods(z, f, f, z, np.zeros(0, dtype=np.bool_))
    end = inv.arrival + inv.duration
    # Keys fid * big + time are globally increasing across functions, so one running maximum suffices.
    big = float(2 ** math.ceil(math.log2(max(float(end.max()), inv.horizon) + 2.0)))
    run_max = np.maximum.accumulate(inv.fid * big + end)
    prev_max = np.empty(n)
    prev_max[0] = -np.inf
    prev_max[1:] = run_max[:-1] - inv.fid[1:] * big
    first_fn = np.ones(n, dtype=np.bool_)
    first_fn[1:] = inv.fid[1:] != inv.fid[:-1]
    prev_max[first_fn] = -np.inf
    opens = first_fn | (inv.arrival > prev_max)
    idx = np.flatnonzero(opens)
    # A period ends at the running maximum just before the next period opens (or at the function's last).
    last_of_period = np.empty(idx.size, dtype=np.int64)
    last_of_period[:-1] = idx[1:] - 1
    last_of_period[-1] = n - 1
    p_end = run_max[last_of_period] - inv.fid[last_of_period] * big
    return Periods(inv.fid[idx], inv.arrival[idx], p_end, idx, first_fn[idx])


@dataclass(slots=True)
class PolicyResult:
    """What one policy did on one trace (the CLI's JSON object per policy, plus details)."""

    policy: str
    invocations: int
    cold_starts: int
    instance_starts: int
    waited: int
    latency_added_ms: dict[str, float]
    instance_seconds: float
    idle_instance_seconds: float
    idle_memory_gb_seconds: float
    busy_seconds: float
    energy_joules: float
    idle_energy_joules: float
    facility_energy_joules: float
    #: 75th percentile over functions of each function's cold-start share: the metric of Shahrad et al.'s
    #: Pareto plots ("3rd quartile app cold start %"), robust to a few very busy functions.
    cold_start_share_p75: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def cold_start_share(self) -> float:
        return self.cold_starts / self.invocations if self.invocations else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "invocations": self.invocations,
            "cold_starts": self.cold_starts,
            "cold_start_share": self.cold_start_share,
            "instance_seconds": self.instance_seconds,
            "idle_instance_seconds": self.idle_instance_seconds,
            "idle_memory_gb_seconds": self.idle_memory_gb_seconds,
            "energy_joules": self.energy_joules,
            "facility_energy_joules": self.facility_energy_joules,
            "latency_added_ms": dict(self.latency_added_ms),
            "instance_starts": self.instance_starts,
            "waited_for_start": self.waited,
            "busy_seconds": self.busy_seconds,
            "idle_energy_joules": self.idle_energy_joules,
            "cold_start_share_p75_by_function": self.cold_start_share_p75,
            "params": dict(self.params),
        }


def latency_percentiles(delays: FloatArray, total: int) -> dict[str, float]:
    """p50/p99/p999 (ms) of ``total`` delays of which only the non-zero ones are given (NumPy's linear rule)."""
    nz = np.sort(delays[delays > 0])
    zeros = total - nz.size
    out: dict[str, float] = {}
    for name, q in (("p50", 50.0), ("p99", 99.0), ("p999", 99.9)):
        if total == 0:
            out[name] = 0.0
            continue
        pos = q / 100.0 * (total - 1)
        lo, hi = math.floor(pos), math.ceil(pos)

        def at(k: int) -> float:
            return 0.0 if k < zeros else float(nz[k - zeros])

        out[name] = (at(lo) + (at(hi) - at(lo)) * (pos - lo)) * 1000.0
    return out


@dataclass(frozen=True, slots=True)
class Gaps:
    """Idle gaps after each busy period (the last one of each function runs to the horizon)."""

    fid: IntArray
    idle_start: FloatArray  # busy-period end, clipped to the horizon
    length: FloatArray  # time to the next arrival (horizon - idle_start for the last gap)
    censored: npt.NDArray[np.bool_]  # True: no next arrival (trailing gap)


def gaps_of(periods: Periods, horizon: float) -> Gaps:
    end = np.minimum(periods.end, horizon)
    nxt_start = np.empty(periods.size)
    censored = np.ones(periods.size, dtype=np.bool_)
    if periods.size:
        same = periods.fid[1:] == periods.fid[:-1]
        censored[:-1] = ~same
        nxt_start[:-1] = np.where(same, periods.start[1:], horizon)
        nxt_start[-1] = horizon
    length = np.maximum(nxt_start - end, 0.0)
    return Gaps(periods.fid, end, length, censored)


def simulate_windows(
    name: str,
    inv: Invocations,
    periods: Periods,
    gaps: Gaps,
    prewarm: FloatArray,
    keep: FloatArray,
    cold_start: Seconds,
    energy: EnergyParams,
    params: dict[str, Any] | None = None,
) -> PolicyResult:
    """Account a window policy given its (pre-warm, keep-alive) decision for every gap."""
    g = gaps.length
    hit = (g >= prewarm) & (g <= prewarm + keep) & ~gaps.censored
    idle = np.maximum(np.minimum(g, prewarm + keep) - prewarm, 0.0)
    prewarm_loads = (prewarm > 0) & (g >= prewarm)
    # A period is cold when it is its function's first, or the gap before it missed the windows.
    cold_period = periods.first_of_function.copy()
    cold_period[1:] |= ~hit[:-1] & ~periods.first_of_function[1:]
    return account(
        name, inv, periods, cold_period, idle, gaps, prewarm_loads, prewarm, cold_start, energy, params or {}
    )


def account(
    name: str,
    inv: Invocations,
    periods: Periods,
    cold_period: npt.NDArray[np.bool_],
    idle: FloatArray,
    gaps: Gaps,
    prewarm_loads: npt.NDArray[np.bool_],
    prewarm: FloatArray,
    cold_start: Seconds,
    energy: EnergyParams,
    params: dict[str, Any],
    extra_starts: int = 0,
    override: tuple[npt.NDArray[np.bool_], FloatArray, FloatArray] | None = None,
) -> PolicyResult:
    """Per-function sums into a :class:`PolicyResult`.

    ``override`` = (functions, instance-seconds, idle seconds) replaces the window accounting of those
    functions (the KPA tick loop's figures for functions that can need several pods).
    """
    f = inv.n_functions
    h = inv.horizon
    mem = inv.memory_gb
    cold_idx = periods.first_invocation[cold_period]
    cold_fid = periods.fid[cold_period]
    # Instance starts that requests may wait for: cold starts at the arrival, pre-warm loads at idle + p.
    ev_fid = np.concatenate([cold_fid, gaps.fid[prewarm_loads]])
    ev_time = np.concatenate([inv.arrival[cold_idx], (gaps.idle_start + prewarm)[prewarm_loads]])
    delays = wait_for_starts(inv, ev_fid, ev_time, cold_start)

    busy_len = np.clip(np.minimum(periods.end, h) - periods.start, 0.0, None)
    busy_by_fn = np.bincount(periods.fid, weights=busy_len, minlength=f)
    idle_by_fn = np.bincount(gaps.fid, weights=idle, minlength=f)
    starts_by_fn = np.bincount(cold_fid, minlength=f).astype(np.float64)
    inst_by_fn = busy_by_fn + idle_by_fn + starts_by_fn * cold_start
    if override is not None:
        which, inst_o, idle_o = override
        inst_by_fn = np.where(which, inst_o, inst_by_fn)
        idle_by_fn = np.where(which, idle_o, idle_by_fn)
    cpu_busy = float(np.clip(np.minimum(inv.duration, h - inv.arrival), 0.0, None).sum())
    n_cold = int(cold_period.sum())
    n_starts = n_cold + int(prewarm_loads.sum()) + extra_starts
    present_w = mem * energy.memory_watts_per_gb + energy.vcpus_per_instance * energy.cpu_min_watts_per_vcpu
    it_joules = float((inst_by_fn * present_w).sum() + (cpu_busy + n_starts * cold_start) * energy.active_extra_watts)
    n_by_fn = np.bincount(inv.fid, minlength=f)
    invoked = n_by_fn > 0
    share_by_fn = starts_by_fn[invoked] / n_by_fn[invoked]
    return PolicyResult(
        policy=name,
        invocations=inv.size,
        cold_starts=n_cold,
        instance_starts=n_starts,
        waited=int((delays > 0).sum()),
        latency_added_ms=latency_percentiles(delays, inv.size),
        instance_seconds=float(inst_by_fn.sum()),
        idle_instance_seconds=float(idle_by_fn.sum()),
        idle_memory_gb_seconds=float((idle_by_fn * mem).sum()),
        busy_seconds=cpu_busy,
        energy_joules=it_joules,
        idle_energy_joules=float((idle_by_fn * present_w).sum()),
        facility_energy_joules=it_joules * energy.pue,
        cold_start_share_p75=float(np.percentile(share_by_fn, 75)) if share_by_fn.size else 0.0,
        params=params,
    )


def wait_for_starts(inv: Invocations, ev_fid: IntArray, ev_time: FloatArray, cold_start: Seconds) -> FloatArray:
    """Per invocation: how long it waits for the latest instance start of its function still in progress."""
    if inv.size == 0 or ev_fid.size == 0 or cold_start <= 0:
        return np.zeros(inv.size)
    big = float(2 ** math.ceil(math.log2(max(inv.horizon, float(ev_time.max()), float(inv.arrival.max())) + 2.0)))
    ev_key = ev_fid * big + ev_time
    order = np.argsort(ev_key, kind="stable")
    ev_key = ev_key[order]
    ev_f = ev_fid[order]
    ev_t = ev_time[order]
    pos = np.searchsorted(ev_key, inv.fid * big + inv.arrival, side="right") - 1
    ok = pos >= 0
    pos_c = np.maximum(pos, 0)
    ok &= ev_f[pos_c] == inv.fid
    delay: FloatArray = np.where(ok, np.maximum(ev_t[pos_c] + cold_start - inv.arrival, 0.0), 0.0)
    return delay


@dataclass(frozen=True, slots=True)
class Prepared:
    """Per-trace work shared by every policy: busy periods and the gaps between them."""

    inv: Invocations
    periods: Periods
    gaps: Gaps


def prepare(inv: Invocations) -> Prepared:
    periods = busy_periods(inv)
    return Prepared(inv, periods, gaps_of(periods, inv.horizon))
