"""The VPA recommender's aggregate container state, for many containers at once: the accumulator.

Pure: the caller passes the end of the history (``now``), the samples and the current requests; nothing
here reads a clock, a file or a socket. Samples arrive in batches of NumPy arrays (a file is streamed, a
Prometheus range is fetched in chunks), so memory stays bounded by the number of containers, not samples.
What comes out are the decaying histograms (and confidence) per aggregate, which the composable
estimators of :mod:`zerowatt.rightsize.estimator` turn into target and bounds.

Upstream (kubernetes/autoscaler, ``vertical-pod-autoscaler/pkg/recommender``) semantics reproduced:

* CPU: every sample goes into the aggregate's decaying histogram with the same weight (``minSampleWeight``
  0.1). Upstream 1.x weighs a sample by ``max(request cores, 0.1)`` (``model/aggregate_container_state.go``,
  ``addCPUSample``); with an unchanging request that is a constant factor and gives the same percentiles.
  Usage is truncated to whole millicores first, as ``CPUAmountFromCores`` does (``model/types.go``).
* Memory: one peak per pod-container per 24 h aggregation interval, added at the interval's end; a higher
  sample in the same interval replaces the peak (upstream subtracts the old one and adds the new,
  ``model/container.go``, ``addMemorySample``), i.e. the interval contributes its maximum. Only the last
  ``MemoryAggregationIntervalCount`` × 24 h (8 days) of memory history are used, as a VPA that loads 8 days
  of Prometheus history (``model/aggregations_config.go``), and each pod-container's intervals start at its
  first memory sample, as upstream's ``WindowEnd`` does.
* OOM kills: the interval's peak becomes ``max(used + 100 MiB, used × 1.2)`` with ``used = max(memory
  request, usage peak of the interval up to the kill)`` (``model/container.go``, ``RecordOOM``).
* Confidence (``logic/estimator.go``, ``getConfidence``): min(days between first and last CPU sample,
  CPU samples / 1440).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt

from zerowatt.rightsize import krr
from zerowatt.rightsize.estimator import (
    AggregateStates,
    SimpleConfig,
    VpaConfig,
    scale_amount,
    vpa_estimators,
)
from zerowatt.rightsize.histogram import FloatArray, IntArray, decay_reference, percentiles
from zerowatt.rightsize.krr import KrrConfig
from zerowatt.rightsize.model import ContainerId, Recommendation, Resources

BoolArray = npt.NDArray[np.bool_]
Strategy = Literal["vpa", "simple"]
DAY = 86400.0
#: CPU samples up to this many millicores get their bucket from a precomputed table.
_LUT_SIZE = 1 << 20

_Scalar = TypeVar("_Scalar", bound=np.generic)


def oom_bump(used: FloatArray, config: VpaConfig) -> FloatArray:
    """Memory needed after an OOM kill at ``used`` bytes: ``max(used + min bump, used × ratio)``."""
    used = np.floor(used)
    return np.asarray(
        np.maximum(used + np.floor(config.oom_min_bump_bytes), scale_amount(used, config.oom_bump_ratio)),
        dtype=np.float64,
    )


def _grow(arr: npt.NDArray[_Scalar], n: int, fill: float | bool) -> npt.NDArray[_Scalar]:
    """``arr`` with room for at least ``n`` rows (capacity doubling), new rows set to ``fill``.

    Per-series and per-aggregate arrays grow as new names appear in the stream.
    """
    if arr.shape[0] >= n:
        return arr
    cap = max(n, 2 * arr.shape[0], 16)
    out = np.full((cap, *arr.shape[1:]), fill, dtype=arr.dtype)
    out[: arr.shape[0]] = arr
    return out


class UsageAccumulator:
    """Streams usage samples of many containers into VPA histograms; yields recommendations at the end.

    Series are pod-containers (``namespace/pod/container``); aggregates are what recommendations are for
    (``namespace/workload/container``, or the pod when no workload is known). ``now`` is the end of the
    history and ``history`` its length in seconds: samples outside ``[now − history, now]`` are ignored.
    """

    def __init__(
        self,
        now: float,
        history: float,
        config: VpaConfig | None = None,
        track_simple: bool = True,
        keep_series: bool = False,
    ) -> None:
        self.config = config or VpaConfig()
        cfg = self.config
        if history <= 0:
            raise ValueError("history must be positive")
        if history > 3 * 365 * DAY:
            raise ValueError("history longer than three years is not supported")
        self.now = float(now)
        self.start = self.now - float(history)
        self.memory_start = self.now - cfg.memory_interval * cfg.memory_interval_count
        # One global reference for the decay weights while streaming: weights stay ≤ 2^0.5 and are rescaled
        # per aggregate to upstream's own reference at the end (an exact power-of-two factor).
        self._ref = math.floor(self.now / cfg.cpu_half_life + 0.5) * cfg.cpu_half_life
        self.track_simple = track_simple
        self._series: dict[tuple[str, str, str], int] = {}
        self._aggregates: dict[ContainerId, int] = {}
        self.series_keys: list[tuple[str, str, str]] = []
        self.aggregate_ids: list[ContainerId] = []
        nb_cpu = cfg.cpu_histogram.num_buckets
        self._agg_of = np.zeros(0, dtype=np.int64)
        self._series_last = np.zeros(0)
        # One slot per aggregation interval since the series' first memory sample, plus one: a sample exactly
        # at ``now`` after an anchor exactly at ``now − 8 × 24 h`` opens a ninth interval, as upstream's would.
        self._slots = cfg.memory_interval_count + 1
        self._mem_peak = np.zeros((0, self._slots))
        self._oom_need = np.zeros((0, self._slots))  # memory needed after OOM kills per interval (−1: none)
        self._oom_count = np.zeros(0, dtype=np.int64)
        self._mem_anchor = np.zeros(0)
        self.memory_out_of_order = 0
        self._current = np.zeros((0, 4))  # cpu_request, memory_request, cpu_limit, memory_limit (NaN: unknown)
        self._current_t = np.zeros(0)
        self._has_memory = np.zeros(0, dtype=np.bool_)
        self._cpu_lut = cfg.cpu_histogram.find_buckets(np.arange(_LUT_SIZE) / 1000.0).astype(np.int16)
        self._cpu_hist = np.zeros((0, nb_cpu))
        self._cpu_plain = np.zeros((0, nb_cpu))
        self._first = np.zeros(0)
        self._last = np.zeros(0)
        self._count = np.zeros(0, dtype=np.int64)
        self._mem_max = np.zeros(0)
        self.oom_events = 0
        # KRR's strategies need every CPU sample of each pod (an exact percentile per pod): kept only when asked.
        self.keep_series = keep_series
        self._cpu_series: dict[int, list[FloatArray]] = {}
        self._series_mem_max = np.zeros(0)
        self._series_mem_count = np.zeros(0, dtype=np.int64)

    # -- registration -------------------------------------------------------------------------------------

    def series_id(self, namespace: str, pod: str, container: str, workload: str | None = None) -> int:
        """The integer id of a pod-container, registering it (and its aggregate) on first sight."""
        key = (namespace, pod, container)
        sid = self._series.get(key)
        if sid is not None:
            return sid
        if workload:
            agg_key = ContainerId(namespace, workload, container, "workload")
        else:
            agg_key = ContainerId(namespace, pod, container, "pod")
        aid = self._aggregates.get(agg_key)
        if aid is None:
            aid = len(self.aggregate_ids)
            self._aggregates[agg_key] = aid
            self.aggregate_ids.append(agg_key)
            n = aid + 1
            self._cpu_hist = _grow(self._cpu_hist, n, 0.0)
            if self.track_simple:
                self._cpu_plain = _grow(self._cpu_plain, n, 0.0)
            self._has_memory = _grow(self._has_memory, n, False)
            self._first = _grow(self._first, n, np.inf)
            self._last = _grow(self._last, n, -np.inf)
            self._count = _grow(self._count, n, 0)
            self._mem_max = _grow(self._mem_max, n, -1.0)
        sid = len(self.series_keys)
        self._series[key] = sid
        self.series_keys.append(key)
        n = sid + 1
        self._agg_of = _grow(self._agg_of, n, 0)
        self._agg_of[sid] = aid
        self._series_last = _grow(self._series_last, n, -np.inf)
        self._mem_peak = _grow(self._mem_peak, n, -1.0)
        self._oom_need = _grow(self._oom_need, n, -1.0)
        self._oom_count = _grow(self._oom_count, n, 0)
        self._mem_anchor = _grow(self._mem_anchor, n, np.nan)
        self._current = _grow(self._current, n, np.nan)
        self._current_t = _grow(self._current_t, n, -np.inf)
        if self.keep_series:
            self._series_mem_max = _grow(self._series_mem_max, n, -1.0)
            self._series_mem_count = _grow(self._series_mem_count, n, 0)
        return sid

    def aggregate_of_series(self) -> IntArray:
        """The aggregate index of every series (pod-container), in ``series_keys`` order (a copy)."""
        return np.asarray(self._agg_of[: self.n_series].copy(), dtype=np.int64)

    def has_data(self) -> bool:
        """Whether any valid CPU or memory sample landed in the history window."""
        n = self.n_aggregates
        return bool(((self._count[:n] > 0) | (self._mem_max[:n] >= 0) | self._has_memory[:n]).any())

    @property
    def n_series(self) -> int:
        return len(self.series_keys)

    @property
    def n_aggregates(self) -> int:
        return len(self.aggregate_ids)

    # -- samples --------------------------------------------------------------------------------------------

    def add_samples(
        self,
        series: npt.ArrayLike,
        timestamps: npt.ArrayLike,
        cpu: npt.ArrayLike | None = None,
        memory: npt.ArrayLike | None = None,
        oom: npt.ArrayLike | None = None,
    ) -> None:
        """Add one batch: parallel arrays of series id, Unix seconds, cores, bytes and OOM flags.

        NaN marks a missing value (a CPU reading without memory, say). Negative values are invalid for the
        VPA (``isValid``) and ignored; adapters count and report them before they get here.
        """
        cfg = self.config
        sid = np.asarray(series, dtype=np.int64)
        t = np.asarray(timestamps, dtype=np.float64)
        if sid.size == 0:
            return
        if sid.max() >= self.n_series or sid.min() < 0:
            raise ValueError("unknown series id in batch")
        in_history = (t >= self.start) & (t <= self.now)
        everything = bool(in_history.all())
        n_agg = self.n_aggregates
        if cpu is not None:
            c = np.asarray(cpu)
            ok = in_history & (c >= 0)  # NaN compares False
            if ok.all():
                agg, tc, cc = self._agg_of[sid], t, c
            elif ok.any():
                agg, tc, cc = self._agg_of[sid[ok]], t[ok], c[ok]
            else:
                agg = None
            if agg is not None and self.keep_series:
                self._keep_cpu(sid if ok.all() else sid[ok], cc)
            if agg is not None:
                nb = cfg.cpu_histogram.num_buckets
                flat = agg * nb + self._cpu_buckets(cc)
                weight = np.exp2((tc - self._ref) * (1.0 / cfg.cpu_half_life))
                weight *= cfg.cpu_sample_weight
                size = n_agg * nb
                self._cpu_hist[:n_agg] += np.bincount(flat, weights=weight, minlength=size).reshape(n_agg, nb)
                if self.track_simple:
                    self._cpu_plain[:n_agg] += np.bincount(flat, minlength=size).reshape(n_agg, nb)
                np.minimum.at(self._first, agg, tc)
                np.maximum.at(self._last, agg, tc)
                self._count[:n_agg] += np.bincount(agg, minlength=n_agg)
        batch_memory: tuple[IntArray, FloatArray, FloatArray] | None = None
        if memory is not None:
            m = np.asarray(memory)
            ok = in_history & (m >= 0)
            if ok.any():
                if self.keep_series:
                    np.maximum.at(self._series_mem_max, sid[ok], m[ok])
                    self._series_mem_count[: self.n_series] += np.bincount(sid[ok], minlength=self.n_series)
                if self.track_simple:
                    np.maximum.at(self._mem_max, self._agg_of[sid[ok]], np.floor(m[ok]))
                else:
                    self._has_memory[self._agg_of[sid[ok]]] = True
                recent = ok & (t >= self.memory_start)
                if recent.all():
                    rs, rt, rm = sid, t, m
                elif recent.any():
                    rs, rt, rm = sid[recent], t[recent], m[recent]
                else:
                    rs = None
                if rs is not None:
                    flat, valid = self._interval(rs, rt)
                    if not valid.all():
                        flat, rt, rm = flat[valid], rt[valid], rm[valid]
                    batch_memory = (flat, rt, np.floor(rm))
        if oom is not None:
            o = np.asarray(oom).astype(np.bool_) & in_history & (t >= self.memory_start)
            if o.any():
                self._record_ooms(sid[o], t[o], batch_memory)
        if batch_memory is not None:
            np.maximum.at(self._mem_peak.reshape(-1), batch_memory[0], batch_memory[2])
        if everything:
            np.maximum.at(self._series_last, sid, t)
        elif in_history.any():
            np.maximum.at(self._series_last, sid[in_history], t[in_history])

    def _keep_cpu(self, sid: IntArray, cores: FloatArray) -> None:
        order = np.argsort(sid, kind="stable")
        sid, cores = sid[order], np.asarray(cores, dtype=np.float64)[order]
        uniq, starts = np.unique(sid, return_index=True)
        for s_i, part in zip(uniq.tolist(), np.split(cores, starts[1:]), strict=True):
            self._cpu_series.setdefault(s_i, []).append(part)

    def krr_recommend(self, cfg: KrrConfig, running_within: float = 3600.0) -> list[Recommendation]:
        """KRR's ``simple``/``simple_limit`` from the kept per-pod samples (needs ``keep_series=True``).

        A file gives CPU in cores per sample already, so a pod's CPU series is its samples: the percentile is
        Prometheus' ``quantile`` of them (what ``quantile_over_time`` computes for KRR), the peak their max.
        """
        if not self.keep_series:
            raise ValueError("KRR's strategies need keep_series=True")
        data = krr.PodData({}, {}, {}, {}, {})
        owners: dict[tuple[str, str], str] = {}
        current: dict[krr.PodKey, list[float]] = {}
        replicas: dict[ContainerId, int] = {}
        alive = self._series_last[: self.n_series] >= self.now - running_within
        q = cfg.cpu_quantiles
        for sid, key in enumerate(self.series_keys):
            cid = self.aggregate_ids[int(self._agg_of[sid])]
            if cid.owner_kind == "workload":
                owners[key[:2]] = cid.owner
            parts = self._cpu_series.get(sid)
            if parts:
                cpu = np.concatenate(parts)
                data.cpu_count[key] = float(cpu.size)
                if q:
                    data.cpu[key] = krr.prometheus_quantile(cpu, q[0])
                else:
                    data.cpu_points[key] = cpu
            if self._series_mem_count[sid] > 0:
                data.memory[key] = float(self._series_mem_max[sid])
                data.memory_count[key] = float(self._series_mem_count[sid])
            current[key] = [float(v) for v in self._current[sid]]
            if alive[sid]:
                replicas[cid] = replicas.get(cid, 0) + 1
        return krr.recommend(data, owners, cfg, known=self.series_keys, current=current, replicas=replicas)

    def _cpu_buckets(self, cores: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.integer[Any]]:
        """Bucket of each CPU sample after truncation to whole millicores (``CPUAmountFromCores``).

        Usage is a whole number of millicores, so the bucket comes from a table computed once with the
        exact ``FindBucket`` arithmetic on ``millicores / 1000.0`` (what ``CoresFromCPUAmount`` returns):
        the same result as the logarithm per sample, several times faster.
        """
        milli = np.floor(np.multiply(cores, 1000.0, dtype=np.float64))
        big = milli >= _LUT_SIZE
        np.minimum(milli, _LUT_SIZE - 1, out=milli)
        out: npt.NDArray[np.integer[Any]] = self._cpu_lut[milli.astype(np.intp)]
        if big.any():
            out = out.astype(np.int64)
            out[big] = self.config.cpu_histogram.find_buckets(np.floor(np.asarray(cores)[big] * 1000.0) / 1000.0)
        return out

    def _record_ooms(
        self, sid: IntArray, t: FloatArray, batch_memory: tuple[IntArray, FloatArray, FloatArray] | None
    ) -> None:
        """``RecordOOM`` for each kill: the interval must hold ``max(used + 100 MiB, used × 1.2)``.

        ``used`` is the larger of the memory request and the interval's usage peak up to the kill: the peak
        of earlier batches plus this batch's samples of the same interval at or before the kill (kills are
        rare, so a scan of the batch per kill is fine). Upstream does not raise ``used`` for a second kill in
        an interval when usage stayed under the first kill's bump; that corner is not reproduced.
        """
        cfg = self.config
        flat, valid = self._interval(sid, t)
        peaks = self._mem_peak.reshape(-1)
        need = self._oom_need.reshape(-1)
        for s_i, f_i, t_i in zip(sid[valid].tolist(), flat[valid].tolist(), t[valid].tolist(), strict=True):
            used = max(0.0, float(peaks[f_i]))
            if batch_memory is not None:
                before = (batch_memory[0] == f_i) & (batch_memory[1] <= t_i)
                if before.any():
                    used = max(used, float(batch_memory[2][before].max()))
            request = float(self._current[s_i, 1])
            if math.isfinite(request):
                used = max(used, math.floor(request))
            need[f_i] = max(need[f_i], float(oom_bump(np.array([used]), cfg)[0]))
            self._oom_count[s_i] += 1
            self.oom_events += 1

    def _interval(self, sid: IntArray, t: FloatArray) -> tuple[IntArray, BoolArray]:
        """Flat (series, interval) slot of each memory sample, and which samples are in order.

        A series' intervals start at its first memory sample (upstream's ``WindowEnd`` starts there), taken
        as the earliest one in the first batch that has any; a later sample before that anchor is out of
        order and dropped, as upstream drops memory samples older than the last one it aggregated.
        """
        cfg = self.config
        anchor = self._mem_anchor[sid]
        new = np.isnan(anchor)
        if new.any():
            np.fmin.at(self._mem_anchor, sid[new], t[new])
            anchor = self._mem_anchor[sid]
        k = np.floor((t - anchor) / cfg.memory_interval)
        valid = k >= 0
        if not valid.all():
            self.memory_out_of_order += int((~valid).sum())
        idx = np.clip(k, 0, self._slots - 1).astype(np.int64)
        return sid * self._slots + idx, valid

    def set_current(
        self,
        series: npt.ArrayLike,
        cpu_request: npt.ArrayLike | None = None,
        memory_request: npt.ArrayLike | None = None,
        cpu_limit: npt.ArrayLike | None = None,
        memory_limit: npt.ArrayLike | None = None,
        timestamps: npt.ArrayLike | None = None,
    ) -> None:
        """Record what series reserve (NaN: unknown): with timestamps, the value at each series' latest one.

        With timestamps, call it after :meth:`add_samples` for the same rows (it uses their latest time).

        An aggregate reports the largest of its pods' values.
        """
        sid = np.asarray(series, dtype=np.int64)
        if timestamps is not None:
            t = np.asarray(timestamps, dtype=np.float64)
            latest = self._series_last[sid]  # add_samples has seen these rows: their latest time so far
            rows = np.flatnonzero((t >= latest) & (t >= self._current_t[sid]))
            sid = sid[rows]
            self._current_t[sid] = t[rows]
        else:
            rows = None
        for col, values in enumerate((cpu_request, memory_request, cpu_limit, memory_limit)):
            if values is None:
                continue
            v = np.asarray(values, dtype=np.float64)
            if rows is not None:
                v = v[rows]
            ok = np.isfinite(v) & (v >= 0)
            if timestamps is not None:
                self._current[sid[ok], col] = v[ok]
            else:
                np.fmax.at(self._current[:, col], sid[ok], v[ok])

    # -- estimation -----------------------------------------------------------------------------------------

    def _memory_histograms(self) -> tuple[FloatArray, IntArray]:
        """Memory-peak histograms per aggregate, and OOM-bumped interval counts."""
        cfg = self.config
        n_s, n_agg = self.n_series, self.n_aggregates
        value = np.maximum(self._mem_peak[:n_s], self._oom_need[:n_s])
        present = value >= 0
        s_idx, w_idx = np.nonzero(present)
        agg = self._agg_of[s_idx]
        window_end = self._mem_anchor[s_idx] + (w_idx + 1) * cfg.memory_interval
        first = np.full(n_agg, np.inf)
        last = np.full(n_agg, -np.inf)
        np.minimum.at(first, agg, window_end)
        np.maximum.at(last, agg, window_end)
        ref = decay_reference(first, last, cfg.memory_half_life)
        weight = cfg.memory_sample_weight * np.exp2((window_end - ref[agg]) / cfg.memory_half_life)
        nb = cfg.memory_histogram.num_buckets
        flat = agg * nb + cfg.memory_histogram.find_buckets(value[s_idx, w_idx])
        hist = np.bincount(flat, weights=weight, minlength=n_agg * nb).reshape(n_agg, nb).astype(np.float64)
        ooms = np.bincount(self._agg_of[:n_s], weights=self._oom_count[:n_s], minlength=n_agg).astype(np.int64)
        return hist, ooms

    def _cpu_histograms(self) -> FloatArray:
        """CPU histograms rescaled from the streaming reference to each aggregate's upstream reference."""
        cfg = self.config
        n = self.n_aggregates
        first, last = self._first[:n], self._last[:n]
        has = np.isfinite(first)
        ref = np.where(has, decay_reference(np.where(has, first, 0), np.where(has, last, 0), cfg.cpu_half_life), 0)
        factor = np.exp2(np.where(has, (self._ref - ref) / cfg.cpu_half_life, 0.0))
        return self._cpu_hist[:n] * factor[:, None]

    def confidence(self) -> FloatArray:
        """estimator.go ``getConfidence``: min(days between first and last CPU sample, samples / 1440)."""
        n = self.n_aggregates
        first, last = self._first[:n], self._last[:n]
        span = np.where(np.isfinite(first), (last - first) / DAY, 0.0)
        return np.asarray(np.minimum(span, self._count[:n] / (60.0 * 24.0)), dtype=np.float64)

    def _containers_per_pod(self) -> IntArray:
        """How many containers each aggregate's pod has (the floors are split across them)."""
        owners: dict[tuple[str, str], int] = {}
        for cid in self.aggregate_ids:
            owners[(cid.namespace, cid.owner)] = owners.get((cid.namespace, cid.owner), 0) + 1
        return np.array([owners[(c.namespace, c.owner)] for c in self.aggregate_ids], dtype=np.int64)

    def _replicas(self, running_within: float) -> IntArray:
        alive = self._series_last[: self.n_series] >= self.now - running_within
        return np.bincount(self._agg_of[: self.n_series][alive], minlength=self.n_aggregates)

    def _current_per_aggregate(self) -> FloatArray:
        cur = np.full((self.n_aggregates, 4), np.nan)
        for col in range(4):
            v = self._current[: self.n_series, col]
            ok = np.isfinite(v)
            np.fmax.at(cur[:, col], self._agg_of[: self.n_series][ok], v[ok])
        return cur

    def states(self) -> AggregateStates:
        """What the estimators read of every aggregate: its two histograms and its confidence."""
        cfg = self.config
        memory, _ = self._memory_histograms()
        return AggregateStates(
            cpu=self._cpu_histograms(),
            memory=memory,
            confidence=self.confidence(),
            cpu_options=cfg.cpu_histogram,
            memory_options=cfg.memory_histogram,
        )

    def vpa_estimates(self) -> dict[str, FloatArray]:
        """Target/lower/upper per aggregate in millicores and bytes (whole numbers, as upstream).

        ``GetRecommendedPodResources`` (``logic/recommender.go``): the pod floors are split evenly across
        the pod's containers, then each of the three composed estimators runs over every aggregate.
        """
        cfg = self.config
        fraction = 1.0 / np.maximum(self._containers_per_pod(), 1)
        min_cpu = scale_amount(np.full(self.n_aggregates, math.floor(cfg.pod_min_cpu_millicores)), fraction)
        min_mem = scale_amount(np.full(self.n_aggregates, math.floor(cfg.pod_min_memory_bytes)), fraction)
        states = self.states()
        out: dict[str, FloatArray] = {}
        for name, estimator in vpa_estimators(cfg, min_cpu, min_mem).items():
            est = estimator.estimate(states)
            out[f"{name}_cpu_millicores"] = est.cpu_millicores
            out[f"{name}_memory_bytes"] = est.memory_bytes
        return out

    def recommend(
        self,
        strategy: Strategy = "vpa",
        simple: SimpleConfig | None = None,
        running_within: float = 3600.0,
    ) -> list[Recommendation]:
        """One recommendation per aggregate; one without any valid sample gets a row with a reason only."""
        n = self.n_aggregates
        if n == 0:
            return []
        cur = self._current_per_aggregate()
        conf = self.confidence()
        _, ooms = self._memory_histograms()
        replicas = self._replicas(running_within)
        has_data = (self._count[:n] > 0) | (self._mem_max[:n] >= 0) | self._has_memory[:n]
        if strategy == "vpa":
            est = self.vpa_estimates()
            t_cpu, t_mem = est["target_cpu_millicores"] / 1000.0, est["target_memory_bytes"]
            l_cpu, l_mem = est["lower_bound_cpu_millicores"] / 1000.0, est["lower_bound_memory_bytes"]
            u_cpu, u_mem = est["upper_bound_cpu_millicores"] / 1000.0, est["upper_bound_memory_bytes"]
        elif strategy == "simple":
            sc = simple or SimpleConfig()
            if not self.track_simple:
                raise ValueError("the simple strategy needs track_simple=True")
            p = percentiles(self._cpu_plain[:n], sc.cpu_percentile, replace(self.config.cpu_histogram, epsilon=0.5))
            t_cpu = p * (1.0 + sc.cpu_margin)
            t_mem = np.floor(np.maximum(self._mem_max[:n], 0.0) * (1.0 + sc.memory_margin))
            l_cpu = u_cpu = t_cpu
            l_mem = u_mem = t_mem
        else:
            raise ValueError(f"unknown strategy {strategy!r}")

        def opt(v: float) -> float | None:
            return None if math.isnan(v) else float(v)

        result: list[Recommendation] = []
        for i in range(n):
            cur_req = Resources(opt(cur[i, 0]), opt(cur[i, 1]))
            cur_lim = Resources(opt(cur[i, 2]), opt(cur[i, 3]))
            if not has_data[i]:
                # Named, not dropped: every sample NaN or negative (counted in the warnings).
                none = Resources()
                result.append(
                    Recommendation(
                        id=self.aggregate_ids[i],
                        target=none,
                        lower_bound=none,
                        upper_bound=none,
                        request=none,
                        limit=none,
                        current_request=cur_req,
                        current_limit=cur_lim,
                        replicas=int(replicas[i]),
                        reason="no valid samples in the history (all NaN or negative)",
                    )
                )
                continue
            request = Resources(float(t_cpu[i]), float(t_mem[i]))
            if strategy == "simple":
                limit = Resources(None, float(t_mem[i]))
            else:
                limit = Resources(
                    _proportional(cur_lim.cpu, cur_req.cpu, request.cpu),
                    _proportional(cur_lim.memory, cur_req.memory, request.memory),
                )
            result.append(
                Recommendation(
                    id=self.aggregate_ids[i],
                    target=request,
                    lower_bound=Resources(float(l_cpu[i]), float(l_mem[i])),
                    upper_bound=Resources(float(u_cpu[i]), float(u_mem[i])),
                    request=request,
                    limit=limit,
                    current_request=cur_req,
                    current_limit=cur_lim,
                    replicas=int(replicas[i]),
                    samples=int(self._count[i]),
                    confidence_days=float(conf[i]),
                    oom_kills=int(ooms[i]),
                )
            )
        result.sort(key=lambda r: r.id)
        return result


def _proportional(cur_limit: float | None, cur_request: float | None, new_request: float | None) -> float | None:
    """The VPA keeps a limit's ratio to its request (``RequestsAndLimits``); no limit today → none."""
    if cur_limit is None or new_request is None:
        return None
    if not cur_request:
        return cur_limit
    return new_request * cur_limit / cur_request
