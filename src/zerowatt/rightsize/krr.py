"""Robusta KRR's ``simple`` and ``simple_limit`` strategies, number for number.

Pure: the adapters (Prometheus, sample files) hand in per pod-container values; nothing here reads a clock,
a file or a socket. Written after KRR's source (robusta-dev/krr d6baa74); no code is copied:

* ``strategies/simple.py``: CPU request = the ``cpu_percentile`` (95) of each pod's CPU series, then the
  **maximum over pods**; no CPU limit. Memory request = limit = the maximum over pods of each pod's peak
  × (1 + ``memory_buffer_percentage`` / 100) (15 %).
* ``strategies/simple_limit.py``: CPU request / limit = the 66th / 96th percentile (``np.percentile``,
  linear) of **all pods' CPU points pooled**; memory as ``simple``.
* Both: a resource whose pods have no series is ``"No data"``; one whose pods have fewer than
  ``points_required`` (100) points in total is ``"Not enough data"`` (undefined, shown as ``?``).
* ``core/integrations/prometheus/metrics/{cpu,memory}.py``: the CPU series is
  ``max(rate(container_cpu_usage_seconds_total[STEP])) by (container, pod, job)`` at KRR's step
  (``timeframe_duration`` 1.25 min = 75 s; the ``rate`` window is the step itself), the percentile is
  Prometheus' ``quantile_over_time`` over a ``[HISTORY:STEP]`` subquery, the quantile rounded to two
  decimals; the peak is ``max_over_time`` of the working set; the point counts ``count_over_time``.
* ``core/integrations/prometheus/metrics/base.py``: where a pod has series of several ``job`` labels, the
  ``kubelet`` one counts, else the alphabetically first.
* ``core/runner.py`` (``_round_value``) with ``core/models/config.py``: CPU rounded **up** to whole
  millicores, at least ``cpu_min_value`` (10) millicores; memory rounded up to whole MiB, at least
  ``memory_min_value`` (100) × 1024² bytes (MiB, although KRR's help says MB).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from zerowatt.rightsize.histogram import FloatArray
from zerowatt.rightsize.model import ContainerId, Recommendation, Resources

KrrStrategy = Literal["simple", "simple_limit"]
#: KRR's ``timeframe_duration`` default, 1.25 minutes, in seconds: the step of its subqueries and rate().
KRR_STEP = 75.0
MIB = 1024.0 * 1024.0
PodKey = tuple[str, str, str]  # namespace, pod, container


@dataclass(frozen=True)
class KrrConfig:
    """KRR's strategy settings with KRR's defaults (percentages as KRR writes them)."""

    strategy: KrrStrategy = "simple"
    cpu_percentile: float = 95.0  # simple
    cpu_request: float = 66.0  # simple_limit
    cpu_limit: float = 96.0  # simple_limit
    memory_buffer_percentage: float = 15.0
    points_required: int = 100
    cpu_min_millicores: int = 10  # config.py cpu_min_value
    memory_min_mib: int = 100  # config.py memory_min_value (× 1024²)
    step: float = KRR_STEP

    @property
    def cpu_quantiles(self) -> tuple[float, ...]:
        """The quantiles PromQL is asked for, rounded to two decimals as KRR's ``PercentileCPULoader``."""
        if self.strategy == "simple":
            return (round(self.cpu_percentile / 100, 2),)
        return ()


def step_literal(step: float) -> str:
    """KRR's step in PromQL: whole seconds (``f"{round(step)}s"``)."""
    return f"{round(step)}s"


def duration_literal(history: float) -> str:
    """KRR's subquery range (``_step_to_string``): whole days above one day, else whole minutes.

    KRR truncates: 36 h of history is a ``1d`` subquery. Reproduced on purpose, so that the numbers match.
    """
    if history > 86400:
        return f"{int(history) // 86400}d"
    return f"{int(history) // 60}m"


def duration_seconds(history: float) -> int:
    """The subquery range :func:`duration_literal` writes, in seconds."""
    return (int(history) // 86400) * 86400 if history > 86400 else (int(history) // 60) * 60


BY = "by (namespace, container, pod, job)"


def cpu_rate(matcher: str, step: str) -> str:
    """The per-pod CPU series KRR reads (``CPULoader``), here for many containers at once."""
    return f"max(rate(container_cpu_usage_seconds_total{{{matcher}}}[{step}])) {BY}"


def cpu_quantile(q: float, matcher: str, duration: str, step: str) -> str:
    """``PercentileCPULoader``: the quantile over the subquery of the rate series."""
    return f"quantile_over_time({q:g}, {cpu_rate(matcher, step)}[{duration}:{step}])"


def cpu_count(matcher: str, duration: str, step: str) -> str:
    """``CPUAmountLoader``: points of the counter at the subquery's steps."""
    return f"count_over_time(max(container_cpu_usage_seconds_total{{{matcher}}}) {BY}[{duration}:{step}])"


def memory_max(matcher: str, duration: str, step: str) -> str:
    """``MaxMemoryLoader``: the working set's peak at the subquery's steps."""
    return f"max_over_time(max(container_memory_working_set_bytes{{{matcher}}}) {BY}[{duration}:{step}])"


def memory_count(matcher: str, duration: str, step: str) -> str:
    """``MemoryAmountLoader``."""
    return f"count_over_time(max(container_memory_working_set_bytes{{{matcher}}}) {BY}[{duration}:{step}])"


def pick_jobs(series: Iterable[tuple[Mapping[str, str], object]]) -> dict[PodKey, object]:
    """One value per pod-container: the ``job="kubelet"`` series if there is exactly one, else the first job
    in alphabetical order (KRR's ``filter_prom_jobs_results``)."""
    by_key: dict[PodKey, list[tuple[str, object]]] = {}
    for labels, value in series:
        ns, pod, container = labels.get("namespace"), labels.get("pod"), labels.get("container")
        if not (ns and pod and container):
            continue
        by_key.setdefault((ns, pod, container), []).append((labels.get("job", ""), value))
    out: dict[PodKey, object] = {}
    for key, items in by_key.items():
        kubelet = [v for job, v in items if job == "kubelet"]
        out[key] = kubelet[0] if len(kubelet) == 1 else sorted(items, key=lambda jv: jv[0])[0][1]
    return out


def prometheus_quantile(values: FloatArray, q: float) -> float:
    """Prometheus' ``quantile``/``quantile_over_time``: linear between the two closest ranks, rank q·(n−1)."""
    n = values.size
    if n == 0:
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    v = np.sort(values)
    rank = q * (n - 1)
    lower = max(0, math.floor(rank))
    upper = min(n - 1, lower + 1)
    weight = rank - math.floor(rank)
    return float(v[lower] * (1 - weight) + v[upper] * weight)


def round_cpu(value: float | None, cfg: KrrConfig) -> float | None:
    """``_round_value`` for CPU: up to whole millicores, at least ``cpu_min_millicores``."""
    if value is None or math.isnan(value):
        return value
    return max(math.ceil(value * 1000) / 1000, cfg.cpu_min_millicores / 1000)


def round_memory(value: float | None, cfg: KrrConfig) -> float | None:
    """``_round_value`` for memory: up to whole MiB, at least ``memory_min_mib`` MiB."""
    if value is None or math.isnan(value):
        return value
    prec = 1 / MIB
    return max(math.ceil(value * prec) / prec, MIB * cfg.memory_min_mib)


@dataclass
class PodData:
    """What KRR's loaders return for the pods of one container, keyed by pod-container."""

    cpu: dict[PodKey, float]  # simple: the percentile per pod
    cpu_points: dict[PodKey, FloatArray]  # simple_limit: the CPU series per pod
    cpu_count: dict[PodKey, float]
    memory: dict[PodKey, float]  # the peak per pod
    memory_count: dict[PodKey, float]


def _aggregate_of(key: PodKey, owners: Mapping[tuple[str, str], str]) -> ContainerId:
    owner = owners.get(key[:2])
    if owner:
        return ContainerId(key[0], owner, key[2], "workload")
    return ContainerId(key[0], key[1], key[2], "pod")


def recommend(
    data: PodData,
    owners: Mapping[tuple[str, str], str],
    cfg: KrrConfig,
    known: Iterable[PodKey] = (),
    current: Mapping[PodKey, Sequence[float]] | None = None,
    replicas: Mapping[ContainerId, int] | None = None,
) -> list[Recommendation]:
    """One recommendation per container of a workload (or pod), as KRR's runner formats it.

    ``known`` pod-containers without any value still get a row (with the reason), so that nothing found in
    discovery disappears silently. ``current`` maps a pod-container to (cpu request, memory request, cpu
    limit, memory limit), NaN where unknown; an aggregate reports the largest of its pods'.
    """
    groups: dict[ContainerId, list[PodKey]] = {}
    keys = {*known, *data.cpu, *data.cpu_points, *data.memory, *data.cpu_count, *data.memory_count}
    for key in sorted(keys):
        groups.setdefault(_aggregate_of(key, owners), []).append(key)
    out: list[Recommendation] = []
    for cid, pods in sorted(groups.items()):
        cpu_req, cpu_lim, cpu_why = _cpu(data, pods, cfg)
        mem, mem_why = _memory(data, pods, cfg)
        cpu_req, cpu_lim = round_cpu(cpu_req, cfg), round_cpu(cpu_lim, cfg)
        mem = round_memory(mem, cfg)
        reasons = [f"{what}: {why}" for what, why in (("cpu", cpu_why), ("memory", mem_why)) if why]
        cur = np.full(4, np.nan)
        for p in pods:
            if current and p in current:
                cur = np.fmax(cur, np.asarray(current[p], dtype=np.float64))

        def opt(v: float | None) -> float | None:
            return None if v is None or math.isnan(v) else float(v)

        target = Resources(opt(cpu_req), opt(mem))
        out.append(
            Recommendation(
                id=cid,
                target=target,
                lower_bound=target,
                upper_bound=target,
                request=target,
                limit=Resources(opt(cpu_lim), opt(mem)),
                current_request=Resources(opt(cur[0]), opt(cur[1])),
                current_limit=Resources(opt(cur[2]), opt(cur[3])),
                replicas=(replicas or {}).get(cid, len(pods)),
                samples=int(sum(data.cpu_count.get(p, 0.0) for p in pods)),
                reason="; ".join(reasons) or None,
            )
        )
    return out


def _cpu(data: PodData, pods: list[PodKey], cfg: KrrConfig) -> tuple[float | None, float | None, str | None]:
    """(request, limit, reason when undefined)."""
    if cfg.strategy == "simple":
        values = [data.cpu[p] for p in pods if p in data.cpu]
        present = bool(values)
    else:
        series = [data.cpu_points[p] for p in pods if p in data.cpu_points]
        present = bool(series)
    if not present:
        return None, None, "No data"
    if sum(data.cpu_count.get(p, 0.0) for p in pods) < cfg.points_required:
        return None, None, "Not enough data"
    if cfg.strategy == "simple":
        value = float(np.max(np.asarray(values, dtype=np.float64)))
        return value, None, None if not math.isnan(value) else "NaN"
    pooled = np.concatenate(series)
    req = float(np.percentile(pooled, cfg.cpu_request)) if pooled.size else math.nan
    lim = float(np.percentile(pooled, cfg.cpu_limit)) if pooled.size else math.nan
    return req, lim, None if not math.isnan(req) else "NaN"


def _memory(data: PodData, pods: list[PodKey], cfg: KrrConfig) -> tuple[float | None, str | None]:
    peaks = [data.memory[p] for p in pods if p in data.memory]
    if not peaks:
        return None, "No data"
    if sum(data.memory_count.get(p, 0.0) for p in pods) < cfg.points_required:
        return None, "Not enough data"
    value = float(np.max(np.asarray(peaks, dtype=np.float64)) * (1 + cfg.memory_buffer_percentage / 100))
    return value, None if not math.isnan(value) else "NaN"
