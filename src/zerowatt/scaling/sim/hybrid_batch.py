"""The hybrid histogram policy, batch: its windows vectorised over functions, and for every idle gap of a trace.

:func:`hybrid_windows` is the histogram arithmetic on ``[F, bins]`` arrays (the one-function form, used
online, is :func:`zerowatt.scaling.policies.hybrid.histogram_windows`); :func:`hybrid_gap_windows` feeds it
each function's idle times in the order the policy learns them.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from zerowatt.scaling.policies.hybrid import HybridParams, ar1_forecast
from zerowatt.scaling.power import EnergyParams
from zerowatt.scaling.sim.periods import FloatArray, Gaps, PolicyResult, Prepared, Progress, simulate_windows
from zerowatt.units import Seconds

HYBRID_EXACT_MAX_GAPS = 2000


def out_of_range(
    params: HybridParams, hist: npt.NDArray[np.int64], oob: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    """Rows whose share of idle times beyond the histogram range reaches ``oob_threshold``."""
    total = np.atleast_2d(hist).sum(axis=1) + oob
    out: npt.NDArray[np.bool_] = (total > 0) & (oob >= params.oob_threshold * np.maximum(total, 1))
    return out


def hybrid_windows(
    params: HybridParams,
    hist: npt.NDArray[np.int64],
    oob: npt.NDArray[np.int64],
    forecast: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    """Pre-warm and keep-alive windows from idle-time histograms ``hist[F, bins]`` and out-of-range counts.

    ``forecast[F]`` is the predicted next idle time (:func:`ar1_forecast`) of the rows that are
    :func:`out_of_range` (NaN or ``None``: no forecast, the not-representative fallback is used).
    Returns ``(prewarm[F], keep_alive[F], representative[F])``: representative rows use the histogram.
    """
    hist = np.atleast_2d(hist)
    nb = hist.shape[1]
    total = hist.sum(axis=1)
    counts = hist.astype(np.float64)
    mean = total / nb
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.sqrt(((counts - mean[:, None]) ** 2).sum(axis=1) / (nb - 1))
        cv = np.where(total > 0, std / mean, 0.0)
    oob_rows = out_of_range(params, hist, oob)
    representative = (total > 0) & (cv >= params.cv_threshold) & ~oob_rows
    cum = np.cumsum(hist, axis=1)
    safe_total = np.maximum(total, 1)[:, None]
    head_bin = np.argmax(cum * 100.0 >= params.head_percentile * safe_total, axis=1)
    tail_bin = np.argmax(cum * 100.0 >= params.tail_percentile * safe_total, axis=1)
    prewarm = head_bin * params.bin_width * (1.0 - params.margin)  # lower edge of the head bin, less 10 %
    end = (tail_bin + 1) * params.bin_width * (1.0 + params.margin)  # upper edge of the tail bin, plus 10 %
    prewarm = np.where(representative, prewarm, 0.0)
    keep = np.where(representative, end - prewarm, params.fallback)
    if forecast is not None:
        fc = np.asarray(forecast, dtype=np.float64)
        use = oob_rows & np.isfinite(fc)
        m = params.forecast_margin
        prewarm = np.where(use, fc * (1.0 - m), prewarm)
        keep = np.where(use, fc * 2.0 * m, keep)
    return prewarm, keep, representative


def simulate(
    params: HybridParams, prep: Prepared, cold_start: Seconds, power: EnergyParams, progress: Progress | None = None
) -> PolicyResult:
    """The batch simulation of the registry: the windows of every gap, replayed (``capacity`` is online only)."""
    inv = prep.inv
    p, k = hybrid_gap_windows(params, prep.gaps, inv.n_functions, inv.horizon, progress)
    extra = {
        "bin_width_s": params.bin_width,
        "range_s": params.range,
        "margin": params.margin,
        "fallback_keep_alive_s": params.fallback,
        "forecast_margin": params.forecast_margin,
    }
    return simulate_windows("hybrid", inv, prep.periods, prep.gaps, p, k, cold_start, power, extra)


def hybrid_gap_windows(
    params: HybridParams, gaps: Gaps, n_functions: int, horizon: float, progress: Progress | None = None
) -> tuple[FloatArray, FloatArray]:
    """Windows of the hybrid policy for every gap, from its function's idle-time histogram so far.

    The histogram learns an idle time when the next request arrives, i.e. before the next gap starts, so
    gap ``k`` of a function is decided from the idle times of its gaps ``0..k-1``. That is computed exactly
    (one vectorised step per gap index) for functions with up to :data:`HYBRID_EXACT_MAX_GAPS` gaps. For
    busier functions the windows are recomputed at every histogram-bin boundary (each minute) from the idle
    times learnt before it: with thousands of idle times in the histogram, the few learnt in the current
    minute do not move its 5th/99th percentiles. (Nor can such a function reach the out-of-range branch:
    half of more than 2,000 idle times in a day cannot exceed 4 hours, so its forecast is never needed.)
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
            forecast = None
            cand = np.flatnonzero(oob[rows] > 0)  # only rows with an out-of-range idle time can need it
            oob_rows = np.zeros(rows.size, dtype=np.bool_)
            if cand.size:
                oob_rows[cand] = out_of_range(params, hist[rows[cand]], oob[rows[cand]])
            if oob_rows.any():
                # Out-of-range branch: forecast from the function's idle times so far (gaps 0..k-1, which
                # are consecutive in ``gaps``). Few functions and few steps reach it: a Python loop is fine.
                forecast = np.full(rows.size, np.nan)
                for j in np.flatnonzero(oob_rows):
                    g0 = int(idx[sel[j]]) - k
                    forecast[j] = ar1_forecast(gaps.length[g0 : g0 + k])
            p, kk, _ = hybrid_windows(params, hist[rows], oob[rows], forecast)
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
