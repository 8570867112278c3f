"""Prometheus answers → the usage accumulator (pure): CPU rates, working sets and OOM kills, per container.

The range answers (or their local evaluation, :mod:`zerowatt.rightsize.promql_local`) arrive as series of
``{"metric": labels, "values": [[t, "v"], ...]}`` or the pre-parsed ``{"metric", "_t", "_x"}``; each series is
keyed by (namespace, pod, container), its workload looked up in ``owners``, and its samples added to the
:class:`~zerowatt.rightsize.accumulator.UsageAccumulator` in time order, as the file loaders add theirs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from zerowatt.rightsize.accumulator import UsageAccumulator
from zerowatt.rightsize.promql_local import LOOKBACK_MS, stale
from zerowatt.rightsize.samples import LoadStats


def present(ts: np.ndarray, v: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Steps where an instant selector has a sample within the lookback (its value may itself be NaN, but not
    a staleness marker)."""
    idx = np.searchsorted(ts, steps, side="right") - 1
    ok = idx >= 0
    ok[ok] = ts[idx[ok]] >= steps[ok] - LOOKBACK_MS
    ok[ok] = ~stale(v[idx[ok]])
    return ok


def series_values(series: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    if "_t" in series:
        return series["_t"], series["_x"]
    vals = series.get("values") or []
    if not vals:
        return np.zeros(0), np.zeros(0)
    t = np.fromiter((float(v[0]) for v in vals), dtype=np.float64, count=len(vals))
    x = np.fromiter((float(v[1]) for v in vals), dtype=np.float64, count=len(vals))  # "NaN" parses to nan
    return t, x


def series_key(s: dict[str, Any]) -> tuple[str, str, str] | None:
    m = s.get("metric", {})
    ns, pod, container = m.get("namespace"), m.get("pod"), m.get("container")
    return (ns, pod, container) if ns and pod and container else None


def ingest_cpu(
    acc: UsageAccumulator, series: list[dict[str, Any]], owners: dict[tuple[str, str], str], stats: LoadStats
) -> None:
    for s in series:
        key = series_key(s)
        t, x = series_values(s)
        if key is None or t.size == 0:
            continue
        sid = acc.series_id(*key, owners.get(key[:2]))
        stats.rows += int(t.size)
        stats.nan_samples += int(np.isnan(x).sum())
        stats.negative_samples += int((x < 0).sum())
        acc.add_samples(np.full(t.size, sid), t, cpu=x)


def oom_events(
    series: list[dict[str, Any]], state: dict[tuple[str, str, str], tuple[float, bool]], step: float
) -> dict[tuple[str, str, str], np.ndarray]:
    """Times where ``last_terminated_reason{reason="OOMKilled"}`` turns 1 (or reappears as 1 after a gap).

    ``state`` carries each series' last point across chunks, so a kill is not counted again when the gauge
    simply stays 1 into the next time window.
    """
    out: dict[tuple[str, str, str], np.ndarray] = {}
    for s in series:
        key = series_key(s)
        t, x = series_values(s)
        if key is None or t.size == 0:
            continue
        last_t, last_on = state.get(key, (-math.inf, False))
        on = x > 0
        prev_on = np.concatenate(([last_on], on[:-1]))
        prev_t = np.concatenate(([last_t], t[:-1]))
        events = on & (~prev_on | (t - prev_t > 1.5 * step))
        state[key] = (float(t[-1]), bool(on[-1]))
        if events.any():
            out[key] = t[events]
    return out


def ingest_memory(
    acc: UsageAccumulator,
    series: list[dict[str, Any]],
    events: dict[tuple[str, str, str], np.ndarray],
    owners: dict[tuple[str, str], str],
    stats: LoadStats,
) -> None:
    """Working-set samples of one chunk together with its OOM kills, in time order (as the file path)."""
    keys: set[tuple[str, str, str]] = set(events)
    by_key: dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]] = {}
    for s in series:
        key = series_key(s)
        t, x = series_values(s)
        if key is None or t.size == 0:
            continue
        by_key[key] = (t, x)
        keys.add(key)
        stats.rows += int(t.size)
        stats.nan_samples += int(np.isnan(x).sum())
        stats.negative_samples += int((x < 0).sum())
    for key in sorted(keys):
        t, x = by_key.get(key, (np.zeros(0), np.zeros(0)))
        kills = events.get(key, np.zeros(0))
        oom = np.isin(t, kills)
        extra = kills[~np.isin(kills, t)]
        if extra.size:
            t = np.concatenate((t, extra))
            x = np.concatenate((x, np.full(extra.size, np.nan)))
            oom = np.concatenate((oom, np.ones(extra.size, dtype=np.bool_)))
            order = np.argsort(t, kind="stable")
            t, x, oom = t[order], x[order], oom[order]
        sid = acc.series_id(*key, owners.get(key[:2]))
        acc.add_samples(np.full(t.size, sid), t, memory=x, oom=oom)
