"""Replay invocations through a policy and account cold starts, latency, instance time and energy.

Model (written out with its assumptions in ``docs/scaling.md``):

* an *instance* of a function serves any number of concurrent requests (the unit Shahrad et al. keep warm:
  the loaded application; in zerowatt, a loaded component); KPA pods hold ~70 concurrent requests each;
* a *busy period* is a maximal union of overlapping ``[arrival, arrival + duration]`` intervals; between two
  busy periods the instance is idle and the policy decides whether it stays loaded;
* a request that finds no instance loaded or starting is a *cold start*: an instance starts, taking
  ``cold_start`` seconds; requests arriving while it starts wait for it (added latency). Execution is
  accounted from the arrival; the start adds ``cold_start`` seconds of instance time per cold start;
* everything is cut at the trace horizon (one day).

Window policies (keep-alive, hybrid, energy) reduce to per-gap windows and are fully vectorised. KPA runs
Knative's 2-second tick loop, vectorised across functions, for the functions whose load can ever need more
than one pod; for the others (never more than ``target`` concurrent requests) the KPA provably keeps
exactly one pod from a scale-from-zero until ``2*ceil((end + stable window)/2) + grace`` after the busy
period ends, which is a window policy again (see :func:`kpa_light_keep_alive`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from zerowatt.errors import UsageError
from zerowatt.scaling import kpa as kpa_core
from zerowatt.scaling.energy import EnergyParams
from zerowatt.scaling.policies import EnergyAware, FixedKeepAlive, HybridHistogram, HybridParams, hybrid_windows
from zerowatt.scaling.trace import Invocations
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


# --------------------------------------------------------------------------------------- window policies


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
    return _account(
        name, inv, periods, cold_period, idle, gaps, prewarm_loads, prewarm, cold_start, energy, params or {}
    )


def _account(
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
    delays = _wait_for_starts(inv, ev_fid, ev_time, cold_start)

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


def _wait_for_starts(inv: Invocations, ev_fid: IntArray, ev_time: FloatArray, cold_start: Seconds) -> FloatArray:
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


#: Functions with at most this many idle gaps in the trace get the hybrid windows recomputed after every
#: idle time (as Shahrad et al. and the live autoscaler do); busier ones once per minute (see below).
HYBRID_EXACT_MAX_GAPS = 2000


def hybrid_gap_windows(
    params: HybridParams, gaps: Gaps, n_functions: int, horizon: float, progress: Progress | None = None
) -> tuple[FloatArray, FloatArray]:
    """Windows of the hybrid policy for every gap, from its function's idle-time histogram so far.

    The histogram learns an idle time when the next request arrives, i.e. before the next gap starts, so
    gap ``k`` of a function is decided from the idle times of its gaps ``0..k-1``. That is computed exactly
    (one vectorised step per gap index) for functions with up to :data:`HYBRID_EXACT_MAX_GAPS` gaps. For
    busier functions the windows are recomputed at every histogram-bin boundary (each minute) from the idle
    times learnt before it: with thousands of idle times in the histogram, the few learnt in the current
    minute do not move its 5th/99th percentiles.
    """
    nb = params.bins
    out_p = np.empty(gaps.fid.size)
    out_k = np.empty(gaps.fid.size)
    per_fn = np.bincount(gaps.fid, minlength=n_functions)
    exact_fn = per_fn <= HYBRID_EXACT_MAX_GAPS
    in_bin = np.floor(gaps.length / params.bin_width).astype(np.int64)
    exact_gap = exact_fn[gaps.fid]
    if exact_gap.any():
        idx = np.flatnonzero(exact_gap)
        fid = gaps.fid[idx]
        first = np.searchsorted(fid, fid, side="left")
        local = np.arange(idx.size) - first  # gap index within its function
        row_of = np.full(n_functions, -1, dtype=np.int64)
        fns = np.flatnonzero(exact_fn & (per_fn > 0))
        row_of[fns] = np.arange(fns.size)
        rows_all = row_of[fid]
        hist = np.zeros((fns.size, nb), dtype=np.int64)
        oob = np.zeros(fns.size, dtype=np.int64)
        order = np.argsort(local, kind="stable")
        bounds = np.searchsorted(local[order], np.arange(int(local.max()) + 2))
        for k in range(int(local.max()) + 1):
            sel = order[bounds[k] : bounds[k + 1]]  # gap k of every function that has one
            rows = rows_all[sel]
            if k > 0:
                prev = idx[sel] - 1  # gap k - 1 of the same functions: its idle time is known now
                b = in_bin[prev]
                inb = b < nb
                hist[rows[inb], b[inb]] += 1  # one gap per function per step: no repeated indices
                oob[rows[~inb]] += 1
            p, kk, _ = hybrid_windows(params, hist[rows], oob[rows])
            out_p[idx[sel]] = p
            out_k[idx[sel]] = kk
    busy_gap = ~exact_gap
    if busy_gap.any():
        bp, bk = _hybrid_per_minute(params, gaps, busy_gap, n_functions, horizon, progress)
        out_p[busy_gap] = bp
        out_k[busy_gap] = bk
    return out_p, out_k


def _hybrid_per_minute(
    params: HybridParams,
    gaps: Gaps,
    sel: npt.NDArray[np.bool_],
    n_functions: int,
    horizon: float,
    progress: Progress | None,
) -> tuple[FloatArray, FloatArray]:
    bw = params.bin_width
    nb = params.bins
    n_steps = math.ceil(horizon / bw) + 1
    obs = ~gaps.censored & sel
    o_fid = gaps.fid[obs]
    o_len = gaps.length[obs]
    o_step = np.floor((gaps.idle_start[obs] + o_len) / bw).astype(np.int64) + 1  # known from the next minute
    o_bin = np.floor(o_len / bw).astype(np.int64)
    order = np.argsort(o_step, kind="stable")
    o_fid, o_bin, o_step = o_fid[order], o_bin[order], o_step[order]
    bounds = np.searchsorted(o_step, np.arange(n_steps + 1))
    hist = np.zeros((n_functions, nb), dtype=np.int64)
    oob = np.zeros(n_functions, dtype=np.int64)
    p0, k0, _ = hybrid_windows(params, np.zeros((1, nb), dtype=np.int64), np.zeros(1, dtype=np.int64))
    cur_p = np.full(n_functions, p0[0])
    cur_k = np.full(n_functions, k0[0])
    table_p = np.empty((n_steps, n_functions))
    table_k = np.empty((n_steps, n_functions))
    for step in range(n_steps):
        lo, hi = bounds[step], bounds[step + 1]
        if hi > lo:
            f = o_fid[lo:hi]
            b = o_bin[lo:hi]
            inb = b < nb
            np.add.at(hist, (f[inb], b[inb]), 1)
            np.add.at(oob, f[~inb], 1)
            rows = np.unique(f)
            p, k, _ = hybrid_windows(params, hist[rows], oob[rows])
            cur_p[rows] = p
            cur_k[rows] = k
        table_p[step] = cur_p
        table_k[step] = cur_k
        if progress is not None and step % 60 == 0:
            progress(step / n_steps)
    d_step = np.minimum(np.floor(gaps.idle_start[sel] / bw).astype(np.int64), n_steps - 1)
    return table_p[d_step, gaps.fid[sel]], table_k[d_step, gaps.fid[sel]]


# ------------------------------------------------------------------------------------------------ KPA


def kpa_light_keep_alive(params: kpa_core.KpaParams, idle_start: FloatArray) -> FloatArray:
    """Keep-alive of a KPA pod that never needs more than one pod, measured from the busy-period end ``e``.

    The stable average first reads 0 at the first tick ``t >= e + stable_window``; the pod is then held for
    the scale-to-zero grace period and removed at ``t + grace``.
    """
    tick = params.tick
    # Knative floors averages to 6 digits, so the window reads 0 once less than 1e-6 * window of
    # request-seconds remain in it: a single request's tail shorter than that no longer counts.
    t0 = (np.floor((idle_start + params.stable_window - params.stable_window * 1e-6) / tick) + 1) * tick
    out: FloatArray = t0 + params.scale_to_zero_grace_period - idle_start
    return out


def peak_concurrency(inv: Invocations, periods: Periods, only_above: float = 0.0) -> FloatArray:
    """Each function's peak number of overlapping invocations (exact where the cheap bound exceeds ``only_above``).

    The bound is the most invocations in one busy period; functions under it keep the bound.
    """
    n_per_period = np.diff(np.append(periods.first_invocation, inv.size)).astype(np.float64)
    peak: FloatArray = np.zeros(inv.n_functions)
    np.maximum.at(peak, periods.fid, n_per_period)
    cand = peak > only_above
    if not cand.any():
        return peak
    sel = cand[inv.fid]
    fid = inv.fid[sel]
    a = inv.arrival[sel]
    e = a + inv.duration[sel]
    big = float(2 ** math.ceil(math.log2(max(float(e.max()), inv.horizon) + 2.0)))
    end_keys = np.sort(fid * big + e)
    first_of = np.searchsorted(fid, fid, side="left")  # index of the function's first invocation
    local = np.arange(fid.size) - first_of
    ended = np.searchsorted(end_keys, fid * big + a, side="right") - first_of
    conc = (local + 1 - ended).astype(np.float64)
    exact = np.zeros(inv.n_functions)
    np.maximum.at(exact, fid, conc)
    peak[cand] = exact[cand]
    return peak


def _ramp_cumulative(
    starts: FloatArray, ends: FloatArray, col: IntArray, n_cols: int, n_steps: int, step: float
) -> FloatArray:
    """``C[j, c] = integral over [0, j*step) of the number of intervals of column c covering t``."""

    def g(points: FloatArray) -> FloatArray:
        b = np.minimum(np.floor(points / step).astype(np.int64), n_steps)
        flat = b * n_cols + col
        cnt = np.bincount(flat, minlength=(n_steps + 1) * n_cols).reshape(n_steps + 1, n_cols)
        sx = np.bincount(flat, weights=points, minlength=(n_steps + 1) * n_cols).reshape(n_steps + 1, n_cols)
        n_lt = np.zeros((n_steps + 1, n_cols))
        s_lt = np.zeros((n_steps + 1, n_cols))
        n_lt[1:] = np.cumsum(cnt[:-1], axis=0)
        s_lt[1:] = np.cumsum(sx[:-1], axis=0)
        grid = (np.arange(n_steps + 1) * step)[:, None]
        out: FloatArray = grid * n_lt - s_lt
        return out

    return g(starts) - g(ends)


def simulate_kpa(
    inv: Invocations,
    periods: Periods,
    gaps: Gaps,
    params: kpa_core.KpaParams,
    cold_start: Seconds,
    energy: EnergyParams,
    progress: Progress | None = None,
) -> PolicyResult:
    """Knative's KPA on every function: window shortcut for light ones, the tick loop for the rest."""
    heavy = peak_concurrency(inv, periods, params.target) > params.target
    keep = kpa_light_keep_alive(params, gaps.idle_start)
    light_gap = ~heavy[gaps.fid]
    g = gaps.length
    hit = (g <= keep) & ~gaps.censored
    idle = np.where(light_gap, np.minimum(g, keep), 0.0)
    cold_period = periods.first_of_function.copy()
    cold_period[1:] |= ~hit[:-1] & ~periods.first_of_function[1:]
    cold_period &= ~heavy[periods.fid]

    heavy_ids = np.flatnonzero(heavy)
    extra_starts = 0
    override = None
    if heavy_ids.size:
        res = _kpa_tick_loop(inv, periods, heavy_ids, params, cold_start, progress)
        inst_o = np.zeros(inv.n_functions)
        idle_o = np.zeros(inv.n_functions)
        inst_o[heavy_ids] = res.instance_seconds
        idle_o[heavy_ids] = res.idle_seconds
        override = (heavy, inst_o, idle_o)
        extra_starts = res.scale_up_starts
        # Their cold starts are the scale-from-zero events, each at the arrival that opens a busy period.
        cold_period |= np.isin(
            periods.fid * inv.horizon * 4 + periods.start, res.event_fid * inv.horizon * 4 + res.event_time
        )
    no_prewarm = np.zeros(gaps.fid.size, dtype=np.bool_)
    return _account(
        "kpa",
        inv,
        periods,
        cold_period,
        idle,
        gaps,
        no_prewarm,
        np.zeros(gaps.fid.size),
        cold_start,
        energy,
        {"heavy_functions": int(heavy_ids.size), "target_concurrency": params.target},
        extra_starts=extra_starts,
        override=override,
    )


@dataclass(frozen=True, slots=True)
class _TickResult:
    instance_seconds: FloatArray
    idle_seconds: FloatArray
    scale_up_starts: int
    event_fid: IntArray
    event_time: FloatArray


def _kpa_tick_loop(
    inv: Invocations,
    periods: Periods,
    ids: IntArray,
    params: kpa_core.KpaParams,
    cold_start: Seconds,
    progress: Progress | None,
) -> _TickResult:
    """Knative's decider every ``tick`` seconds for the functions ``ids`` (columns), exact to the model.

    Full-window averages are precomputed for every tick at once; only functions whose window restarted
    after a scale from zero (Knative's partial window) are averaged inside the loop.
    """
    tick = params.tick
    n_ticks = math.ceil(inv.horizon / tick)
    h = n_ticks * tick
    col_of = np.full(inv.n_functions, -1, dtype=np.int64)
    col_of[ids] = np.arange(ids.size)
    sel = col_of[inv.fid] >= 0
    a = inv.arrival[sel]
    e = np.minimum(a + inv.duration[sel], h)
    col = col_of[inv.fid[sel]]
    n = ids.size
    conc = _ramp_cumulative(a, e, col, n, n_ticks, tick)  # integral of concurrency, at tick times
    psel = col_of[periods.fid] >= 0
    busy = _ramp_cumulative(
        periods.start[psel], np.minimum(periods.end[psel], h), col_of[periods.fid[psel]], n, n_ticks, tick
    )
    d_conc = np.diff(conc, axis=0)
    d_busy = np.diff(busy, axis=0)
    w_st = params.stable_window
    w_pa = params.panic_window
    k_st = round(w_st / tick)
    k_pa = max(1, round(w_pa / tick))
    idx = np.arange(n_ticks + 1)
    full_st = kpa_core.floor6((conc - conc[np.maximum(idx - k_st, 0)]) / w_st)
    full_pa = kpa_core.floor6((conc - conc[np.maximum(idx - k_pa, 0)]) / w_pa)
    # First arrival of each tick interval, per function (NaN: none). Arrivals are sorted per function.
    t_idx = np.minimum(np.floor(a / tick).astype(np.int64), n_ticks - 1)
    first = np.full((n_ticks, n), np.nan)
    flat = t_idx * n + col
    uniq, first_pos = np.unique(flat, return_index=True)
    first.reshape(-1)[uniq] = a[first_pos]
    any_first = ~np.isnan(first)

    target = params.target
    ds_full = np.ceil(full_st / target)
    dp_full = np.ceil(full_pa / target)
    thr = params.panic_threshold
    state = kpa_core.KpaState.fresh(n)
    pods = np.zeros(n, dtype=np.int64)
    first_write = np.full(n, -np.inf)  # start of Knative's partial window after a reset
    last_write = np.full(n, -np.inf)  # last tick a function had pods (read when it scales from zero)
    partial_until = -np.inf  # no partial window is open after this time
    slow_state = False  # some function is panicking or waiting out the scale-to-zero grace
    inst = np.zeros(n)
    idle = np.zeros(n)
    ups = 0
    ev_cols: list[IntArray] = []
    ev_times: list[FloatArray] = []
    for j in range(1, n_ticks + 1):
        t = j * tick
        present = pods * tick
        ev = any_first[j - 1] & (pods == 0)
        if ev.any():
            # Scale from zero: the activator pokes the decider at the first arrival (Knative's Poke).
            cols = np.flatnonzero(ev)
            at = first[j - 1, cols]
            ev_cols.append(cols)
            ev_times.append(at)
            reset = at - last_write[cols] >= w_st
            if reset.any():
                first_write[cols[reset]] = np.floor(at[reset])
                partial_until = max(partial_until, float(first_write[cols[reset]].max()) + w_st)
            pods[cols] = 1
            present = present.astype(np.float64)
            present[cols] = t - at
            inst[cols] += cold_start
        inst += present
        idle += np.maximum(present - np.minimum(pods * d_busy[j - 1], d_conc[j - 1]), 0.0)
        stable = full_st[j]
        panic = full_pa[j]
        ds = ds_full[j]
        dp = dp_full[j]
        if t < partial_until:
            partial = t - first_write < w_st
            # Knative's partial window: average over the buckets since the first write only. The integral up
            # to first_write equals the one at the tick before it (no load in between).
            pc = np.flatnonzero(partial)
            fw = first_write[pc]
            base = conc[np.floor(fw / tick).astype(np.int64), pc]
            stable = stable.copy()
            stable[pc] = kpa_core.floor6((conc[j, pc] - base) / (t - fw))
            ds = np.ceil(stable / target)
            short = t - fw < w_pa
            if short.any():
                panic = panic.copy()
                panic[pc[short]] = kpa_core.floor6((conc[j, pc[short]] - base[short]) / (t - fw[short]))
                dp = np.ceil(panic / target)
        active = pods > 0
        ready_f = np.maximum(pods, 1)
        fast = (
            not slow_state
            and not (dp >= ready_f * thr).any()
            and not (active & (ds == 0)).any()
            and ds.max() <= params.max_scale_up_rate
        )
        if fast:
            # Stable mode everywhere, nobody asks for zero: Scale() reduces to max(dspc, floor(ready / 2))
            # (the scale-up bound ceil(1000 * ready) cannot bind: checked above).
            desired = np.maximum(ds, np.floor(ready_f / params.max_scale_down_rate)).astype(np.int64)
            desired *= active
            if params.max_scale > 0:
                np.minimum(desired, params.max_scale, out=desired)
        else:
            desired = kpa_core.decide(params, state, t, pods, stable, panic, active)
            slow_state = bool((state.panic_since > -np.inf).any() or (state.zero_since > -np.inf).any())
            gone = active & (desired == 0)
            last_write[gone] = t
        ups += int(np.maximum(desired - ready_f, 0).sum())
        pods = desired
        if progress is not None and j % 1800 == 0:
            progress(j / n_ticks)
    ev_c = np.concatenate(ev_cols) if ev_cols else np.zeros(0, dtype=np.int64)
    ev_t = np.concatenate(ev_times) if ev_times else np.zeros(0)
    return _TickResult(inst, idle, ups, ids[ev_c], ev_t)


# -------------------------------------------------------------------------------------------- driver

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
