"""Knative's KPA, batch: its decision vectorised over functions, the 2-second tick loop over a whole trace, and
the window shortcut for light functions (the parameters and the online autoscaler are :mod:`.kpa`).

KPA runs Knative's tick loop, vectorised across functions, for the functions whose load can ever need more
than one pod; for the others (never more than ``target`` concurrent requests) the KPA provably keeps
exactly one pod from a scale-from-zero until the first tick past ``end + stable window`` plus the
scale-to-zero grace after each busy period, which is a window policy again (see
:func:`kpa_light_keep_alive`; a unit test checks the tick loop against it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from zerowatt.scaling.policies import kpa
from zerowatt.scaling.power import EnergyParams
from zerowatt.scaling.sim.periods import (
    FloatArray,
    Gaps,
    IntArray,
    Periods,
    PolicyResult,
    Prepared,
    Progress,
    account,
)
from zerowatt.scaling.sim.trace import Invocations
from zerowatt.units import Seconds

BoolArray = npt.NDArray[np.bool_]


@dataclass(slots=True)
class KpaState:
    """Decider state per function (arrays): Knative's ``panicTime``/``maxPanicPods`` plus the zero grace.

    ``-inf`` stands for Knative's zero time (not panicking / not asking for zero).
    """

    panic_since: FloatArray
    max_panic_pods: IntArray
    zero_since: FloatArray

    @classmethod
    def fresh(cls, n: int) -> KpaState:
        return cls(np.full(n, -np.inf), np.zeros(n, dtype=np.int64), np.full(n, -np.inf))


def floor6(x: FloatArray) -> FloatArray:
    """Knative's ``roundToNDigits(6, x)``: averages are floored to 6 decimal digits."""
    out: FloatArray = np.floor(x * 1e6) / 1e6
    return out


def decide(
    params: kpa.KpaParams,
    state: KpaState,
    now: Seconds,
    ready: IntArray,
    stable: FloatArray,
    panic: FloatArray,
    has_data: BoolArray,
) -> IntArray:
    """One KPA tick for every function: the desired pod count, updating ``state`` in place.

    ``ready`` is the current pod count, ``stable``/``panic`` the window averages of observed concurrency,
    ``has_data`` False where Knative's metric client would answer ``ErrNoData`` (no decision: keep ``ready``).
    The simulator calls this 43,200 times a day, so it is written with few, in-place array operations;
    :class:`~zerowatt.scaling.policies.kpa.KpaDecider` is the same decision for one component.
    """
    target = params.target
    ready_f = np.maximum(ready, 1).astype(np.float64)
    max_up = np.ceil(ready_f * params.max_scale_up_rate)
    max_down = np.floor(ready_f / params.max_scale_down_rate)
    dspc = np.ceil(stable / target)
    dppc = np.ceil(panic / target)
    desired_stable = np.minimum(np.maximum(dspc, max_down), max_up)
    desired_panic = np.minimum(np.maximum(dppc, max_down), max_up)
    over = dppc >= ready_f * params.panic_threshold
    over &= has_data

    # Begin or extend panic while over the threshold; stop once a stable window passed without it.
    ps = state.panic_since
    ps[over] = now
    end = ps + params.stable_window < now
    end &= has_data
    end &= ps > -np.inf
    ps[end] = -np.inf
    state.max_panic_pods[end] = 0

    in_panic = ps > -np.inf
    desired = desired_stable.astype(np.int64)
    if in_panic.any():
        both = np.maximum(desired_stable, desired_panic).astype(np.int64)
        mpp = state.max_panic_pods
        np.maximum(mpp, both, out=mpp, where=in_panic)
        desired[in_panic] = mpp[in_panic]
    if params.max_scale > 0:
        np.minimum(desired, params.max_scale, out=desired)

    # Scale to zero only after the grace period; meanwhile keep one pod (handleScaleToZero).
    wants_zero = desired == 0
    wants_zero &= has_data
    wants_zero &= ready > 0
    zs = state.zero_since
    zs[wants_zero & (zs == -np.inf)] = now
    zs[~wants_zero] = -np.inf
    hold = wants_zero & (now - zs < params.scale_to_zero_grace_period)
    desired[hold] = 1
    no_data = ~has_data
    desired[no_data] = ready[no_data]
    return desired


def simulate(
    params: kpa.KpaParams, prep: Prepared, cold_start: Seconds, power: EnergyParams, progress: Progress | None = None
) -> PolicyResult:
    """The batch simulation of the registry (:mod:`zerowatt.scaling.policies`): :func:`simulate_kpa`."""
    return simulate_kpa(prep.inv, prep.periods, prep.gaps, params, cold_start, power, progress)


def kpa_light_keep_alive(params: kpa.KpaParams, idle_start: FloatArray) -> FloatArray:
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
    params: kpa.KpaParams,
    cold_start: Seconds,
    power: EnergyParams,
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
        res = kpa_tick_loop(inv, periods, heavy_ids, params, cold_start, progress)
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
    return account(
        "kpa",
        inv,
        periods,
        cold_period,
        idle,
        gaps,
        no_prewarm,
        np.zeros(gaps.fid.size),
        cold_start,
        power,
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


def kpa_tick_loop(
    inv: Invocations,
    periods: Periods,
    ids: IntArray,
    params: kpa.KpaParams,
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
    full_st = floor6((conc - conc[np.maximum(idx - k_st, 0)]) / w_st)
    full_pa = floor6((conc - conc[np.maximum(idx - k_pa, 0)]) / w_pa)
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
    state = KpaState.fresh(n)
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
            stable[pc] = floor6((conc[j, pc] - base) / (t - fw))
            ds = np.ceil(stable / target)
            short = t - fw < w_pa
            if short.any():
                panic = panic.copy()
                panic[pc[short]] = floor6((conc[j, pc[short]] - base[short]) / (t - fw[short]))
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
            desired = decide(params, state, t, pods, stable, panic, active)
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
