"""Usage summaries per container row: base, peak, upper bound, typical use and the right-sized request.

The breakdown needs five numbers per container and resource, not the samples: what is always used (a low
percentile), the peak (a high percentile), the right-sizer's upper bound, the typical use (the median, for
the node power model) and the right-sizer's target (the right-sized request). :func:`from_accumulator`
reads them from the right-sizer's :class:`~zerowatt.rightsize.accumulator.UsageAccumulator` (its VPA
histograms and estimators, the same numbers ``zerowatt rightsize`` reports); a benchmark or a test builds
:class:`Usage` directly. CPU is in millicores and memory in bytes, NaN where nothing is known.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zerowatt.capacity.model import Cluster, FloatArray
from zerowatt.rightsize.accumulator import UsageAccumulator
from zerowatt.rightsize.histogram import percentiles
from zerowatt.rightsize.model import ContainerId

#: Defaults: base load is the 10th percentile of usage, the peak the 95th (the percentile the VPA's upper
#: bound is built on, so the safety reservation is exactly the right-sizer's margin and confidence widening).
BASE_PERCENTILE = 0.10
PEAK_PERCENTILE = 0.95


@dataclass(frozen=True)
class Usage:
    """(C, 2) arrays over container rows, columns CPU millicores and memory bytes; NaN: unknown."""

    base: FloatArray
    peak: FloatArray
    upper: FloatArray
    typical: FloatArray
    target: FloatArray

    @classmethod
    def unknown(cls, rows: int) -> Usage:
        nan = np.full((rows, 2), np.nan)
        return cls(nan, nan.copy(), nan.copy(), nan.copy(), nan.copy())

    def known_rows(self) -> int:
        """Rows with a known peak in at least one resource."""
        return int((~np.isnan(self.peak)).any(axis=1).sum())


def from_accumulator(
    cluster: Cluster,
    acc: UsageAccumulator,
    base_percentile: float = BASE_PERCENTILE,
    peak_percentile: float = PEAK_PERCENTILE,
) -> Usage:
    """Each container row's usage from the right-sizer's state: its own series' aggregate (the VPA aggregates
    a workload's pods per container name), else its workload's aggregate by name (``Kind/name`` as the
    Prometheus loader writes it, or the bare name a samples file may use)."""
    n_agg = acc.n_aggregates
    usage = Usage.unknown(cluster.n_rows)
    if n_agg == 0 or cluster.n_rows == 0:
        return usage
    states = acc.states()
    est = acc.vpa_estimates()
    cpu_known = states.cpu.sum(axis=1) > 0
    mem_known = states.memory.sum(axis=1) > 0
    agg = np.full((n_agg, 5, 2), np.nan)
    for j, q in enumerate((base_percentile, peak_percentile, 0.5)):
        c = percentiles(states.cpu, q, states.cpu_options) * 1000.0
        m = percentiles(states.memory, q, states.memory_options)
        agg[:, (0, 1, 3)[j], 0] = np.where(cpu_known, c, np.nan)
        agg[:, (0, 1, 3)[j], 1] = np.where(mem_known, m, np.nan)
    agg[:, 2, 0] = np.where(cpu_known, est["upper_bound_cpu_millicores"], np.nan)
    agg[:, 2, 1] = np.where(mem_known, est["upper_bound_memory_bytes"], np.nan)
    agg[:, 4, 0] = np.where(cpu_known, est["target_cpu_millicores"], np.nan)
    agg[:, 4, 1] = np.where(mem_known, est["target_memory_bytes"], np.nan)
    series = {key: i for i, key in enumerate(acc.series_keys)}
    series_agg = acc.aggregate_of_series()
    by_id = {cid: i for i, cid in enumerate(acc.aggregate_ids)}
    row_agg = np.full(cluster.n_rows, -1, dtype=np.int64)
    for i in range(cluster.n_rows):
        p = int(cluster.row_pod[i])
        ns, name = cluster.pod_ns[p], cluster.row_name[i]
        s = series.get((ns, cluster.pod_names[p], name))
        if s is not None:
            row_agg[i] = series_agg[s]
            continue
        wl = cluster.workloads[int(cluster.pod_workload[p])]
        for owner in (f"{wl.kind}/{wl.name}", wl.name):
            a = by_id.get(ContainerId(ns, owner, name, "workload"))
            if a is not None:
                row_agg[i] = a
                break
    hit = row_agg >= 0
    out = np.full((cluster.n_rows, 5, 2), np.nan)
    out[hit] = agg[row_agg[hit]]
    return Usage(out[:, 0], out[:, 1], out[:, 2], out[:, 3], out[:, 4])
