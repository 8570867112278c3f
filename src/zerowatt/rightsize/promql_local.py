"""The few PromQL evaluations KRR's queries need, computed here from raw samples, as Prometheus 2.x does.

Pure NumPy: raw samples in, the values Prometheus would return for KRR's subqueries out. Prometheus then
only reads and sends samples (no evaluation at each of the 16,128 steps of a 14-day subquery at 75 s, which
is what its CPU goes to for KRR). Semantics written after Prometheus 2.42 (``promql/engine.go``,
``promql/functions.go``); no code is copied:

* Subquery steps (``SubqueryExpr`` in ``engine.go``): every multiple of the step from the first one at or
  after ``eval − range`` up to ``eval``, in milliseconds.
* Instant selectors (``vectorSelectorSingle``): at a step the latest sample at or before it, if it is at most
  the lookback delta (5 min) older (closed interval).
* Range selectors in 2.x are closed intervals ``[t − range, t]``; ``rate`` is ``extrapolatedRate``: at least two
  samples, counter resets add the previous value, extrapolation towards the window's ends by up to 1.1 × the
  average spacing (else half of it), never below a zero counter, divided by the range in seconds. The
  operations are done in the same order as Go's, so the floats are the same (a window with a counter reset
  may differ in the last bit: the resets are summed as a difference of prefix sums).
* ``quantile_over_time`` is :func:`zerowatt.rightsize.krr.prometheus_quantile`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from zerowatt.rightsize.histogram import FloatArray

IntArray = npt.NDArray[np.int64]
#: Prometheus' default ``--query.lookback-delta``.
LOOKBACK_MS = 300_000
#: ``value.StaleNaN``: the NaN bit pattern of a staleness marker (remote read keeps them; the query API not).
STALE_NAN_BITS = 0x7FF0000000000002


def stale(v: FloatArray) -> npt.NDArray[np.bool_]:
    """Which samples are staleness markers."""
    return np.asarray(v.view(np.uint64) == STALE_NAN_BITS)


def subquery_steps(eval_ms: int, range_ms: int, step_ms: int) -> IntArray:
    """The evaluation times of ``expr[range:step]`` evaluated at ``eval_ms`` (all integers, milliseconds)."""
    low = eval_ms - range_ms
    start = step_ms * int(low / step_ms)  # Go's integer division truncates towards zero
    if start < low:
        start += step_ms
    return np.arange(start, eval_ms + 1, step_ms, dtype=np.int64)


def instant_values(ts: IntArray, v: FloatArray, steps: IntArray, lookback_ms: int = LOOKBACK_MS) -> FloatArray:
    """An instant vector selector at each step: the latest sample within the lookback, NaN where none (or
    where that sample is a staleness marker: the series has ended)."""
    idx = np.searchsorted(ts, steps, side="right") - 1
    ok = idx >= 0
    ok[ok] = ts[idx[ok]] >= steps[ok] - lookback_ms
    out = np.full(steps.size, np.nan)
    out[ok] = v[idx[ok]]
    out[stale(out)] = np.nan  # a plain NaN: the marker's bits must not leak into results
    return out


def rate(ts: IntArray, v: FloatArray, steps: IntArray, range_ms: int) -> FloatArray:
    """``rate(counter[range])`` at each step, NaN where the window holds fewer than two samples (staleness
    markers are not samples of a range selector)."""
    out = np.full(steps.size, np.nan)
    marks = stale(v)
    if marks.any():
        ts, v = ts[~marks], v[~marks]
    if ts.size < 2:
        return out
    lo = np.searchsorted(ts, steps - range_ms, side="left")
    hi = np.searchsorted(ts, steps, side="right")
    ok = hi - lo >= 2
    if not ok.any():
        return out
    first, last = lo[ok], hi[ok] - 1
    resets = np.zeros(v.size)
    resets[1:] = np.where(v[1:] < v[:-1], v[:-1], 0.0)
    acc = np.cumsum(resets)
    result = v[last] - v[first]
    extra = acc[last] - acc[first]
    result = np.where(extra != 0.0, result + extra, result)
    range_start, range_end = steps[ok] - range_ms, steps[ok]
    to_start = (ts[first] - range_start) / 1000
    to_end = (range_end - ts[last]) / 1000
    sampled = (ts[last] - ts[first]) / 1000
    average = sampled / (last - first).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        to_zero = sampled * (v[first] / result)
    use_zero = (result > 0) & (v[first] >= 0) & (to_zero < to_start)
    to_start = np.where(use_zero, to_zero, to_start)
    threshold = average * 1.1
    interval = sampled + np.where(to_start < threshold, to_start, average / 2)
    interval = interval + np.where(to_end < threshold, to_end, average / 2)
    factor = interval / sampled
    factor = factor / (range_ms / 1000)
    out[ok] = result * factor
    return out


def group_max(rows: list[FloatArray], size: int) -> FloatArray:
    """``max by (...)`` across the series of one group at each step (NaN: no series has a value)."""
    if not rows:
        return np.full(size, np.nan)
    out = rows[0]
    for r in rows[1:]:
        out = np.fmax(out, r)
    return out
