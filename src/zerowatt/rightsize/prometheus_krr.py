"""KRR's strategies from Prometheus: KRR's own PromQL, evaluated by Prometheus, for many containers per query.

KRR (robusta-dev/krr) sends about seven queries per container, one container at a time. The numbers come
from four of them, each a subquery over the whole history at KRR's step (``quantile_over_time`` of the
rate, ``max_over_time`` of the working set, two ``count_over_time``), so the same expressions are sent here
with ``by (namespace, container, pod, job)`` for up to ``pods_per_query`` pods of a namespace at once:
Prometheus computes exactly what it computes for KRR, and the answer is one number per pod-container,
not a series. ``simple_limit`` pools the raw rate series (``np.percentile``), so it reads them with range
queries on KRR's grid (start = end − history, end = now rounded down to the minute, as KRR's loader),
cut into windows of at most ``max_points`` points.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zerowatt.rightsize import krr
from zerowatt.rightsize.model import ContainerId, Recommendation
from zerowatt.rightsize.prometheus import (
    CONTAINER_FILTER,
    ChunkPlan,
    PrometheusClient,
    PrometheusError,
    _label_regex,
    _matchers,
    _note_warnings,
    _owners,
    _quote,
    discover,
)
from zerowatt.rightsize.samples import LoadStats

Progress = Callable[[int, int], None]
Job = tuple[str, str, str, tuple[float, float] | None]  # kind, namespace, matcher, range window


@dataclass
class KrrFetch:
    recommendations: list[Recommendation]
    stats: LoadStats
    partial: bool = False
    queries: int = 0
    failed_chunks: list[str] = field(default_factory=list)


def fetch_krr(
    url: str,
    now: float,
    history: float,
    *,
    cfg: krr.KrrConfig,
    plan: ChunkPlan | None = None,
    namespaces: Iterable[str] = (),
    selector: dict[str, str] | None = None,
    allow_partial: bool = False,
    progress: Progress | None = None,
) -> KrrFetch:
    """KRR's recommendations for every container found in ``[now − history, now]``."""
    plan = plan or ChunkPlan(step=cfg.step)
    sel = _matchers(namespaces, selector or {})
    client = PrometheusClient(url, plan)
    stats = LoadStats()
    shim = KrrFetch([], stats)
    step, duration = krr.step_literal(cfg.step), krr.duration_literal(history)
    data = krr.PodData({}, {}, {}, {}, {})
    current: dict[krr.PodKey, list[float]] = {}
    try:
        pods, known = discover(client, sel, now, history, shim, allow_partial)
        owners = _owners(client, now, history, sorted(pods), shim, allow_partial)
        jobs: list[Job] = []
        range_end = math.floor(now / 60) * 60
        windows = ChunkPlan(step=cfg.step, max_points=plan.max_points).windows(range_end - history, range_end)
        for ns, names in sorted(pods.items()):
            ordered = sorted(names)
            for i in range(0, len(ordered), plan.pods_per_query):
                pods_of = f'namespace="{_quote(ns)}",pod=~"{_label_regex(ordered[i : i + plan.pods_per_query])}"'
                m = f"{sel},{pods_of}"
                if cfg.strategy == "simple":
                    jobs.append(("cpu", ns, m, None))
                else:
                    jobs += [("cpu_points", ns, m, w) for w in windows]
                jobs += [("cpu_count", ns, m, None), ("memory", ns, m, None), ("memory_count", ns, m, None)]
                jobs += [("requests", ns, f"{CONTAINER_FILTER},{pods_of}", None)]
                jobs += [("limits", ns, f"{CONTAINER_FILTER},{pods_of}", None)]

        def run(job: Job) -> tuple[list[dict[str, Any]], list[str]]:
            kind, _, m, window = job
            if kind == "cpu":
                return client.instant(krr.cpu_quantile(cfg.cpu_quantiles[0], m, duration, step), now)
            if kind == "cpu_points":
                assert window is not None
                return client.range(krr.cpu_rate(m, step), window[0], window[1], cfg.step)
            if kind in ("requests", "limits"):
                q = (
                    "max by (namespace, pod, container, resource) "
                    f"(last_over_time(kube_pod_container_resource_{kind}{{{m}}}[1h]))"
                )
                return client.instant(q, now)
            build = {"cpu_count": krr.cpu_count, "memory": krr.memory_max, "memory_count": krr.memory_count}[kind]
            return client.instant(build(m, duration, step), now)

        points: dict[krr.PodKey, list[np.ndarray]] = {}
        done = 0
        with ThreadPoolExecutor(max_workers=plan.concurrency) as pool:
            futures = [(job, pool.submit(run, job)) for job in jobs]
            try:
                for job, fut in futures:
                    kind, ns = job[0], job[1]
                    label = f"{kind} {ns} ({job[2][len(sel) + 1 :][:60]}…)"
                    try:
                        series, warns = fut.result()
                    except PrometheusError as exc:
                        if not allow_partial:
                            raise
                        shim.partial = True
                        shim.failed_chunks.append(str(exc))
                        stats.warnings.append(f"chunk {label} failed and was skipped: {exc}")
                        series, warns = [], []
                    _note_warnings(warns, label, shim, allow_partial)
                    _store(kind, series, data, points, current)
                    done += 1
                    if progress:
                        progress(done, len(jobs))
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        for key, parts in points.items():
            data.cpu_points[key] = np.concatenate(parts)
    finally:
        client.close()
    stats.rows = int(sum(data.cpu_count.values()) + sum(data.memory_count.values()))
    stats.finish(url)
    if shim.failed_chunks and not (data.cpu or data.cpu_points or data.memory):
        raise PrometheusError(f"every query failed; the first error: {shim.failed_chunks[0]}")
    running = {k for k, v in current.items() if not math.isnan(v[0]) or not math.isnan(v[1])}
    replicas: dict[ContainerId, int] = {}
    for key in known:
        if key in running:
            cid = krr._aggregate_of(key, owners)
            replicas[cid] = replicas.get(cid, 0) + 1
    shim.recommendations = krr.recommend(data, owners, cfg, known=known, current=current, replicas=replicas)
    shim.queries = client.queries
    return shim


def _store(
    kind: str,
    series: list[dict[str, Any]],
    data: krr.PodData,
    points: dict[krr.PodKey, list[np.ndarray]],
    current: dict[krr.PodKey, list[float]],
) -> None:
    if kind in ("requests", "limits"):
        for s in series:
            m = s.get("metric", {})
            ns, pod, container, res = m.get("namespace"), m.get("pod"), m.get("container"), m.get("resource")
            if not (ns and pod and container) or res not in ("cpu", "memory"):
                continue
            col = (0 if res == "cpu" else 1) + (2 if kind == "limits" else 0)
            current.setdefault((ns, pod, container), [math.nan] * 4)[col] = float(s["value"][1])
        return
    if kind == "cpu_points":
        chosen = krr.pick_jobs(
            (s.get("metric", {}), np.array([float(v[1]) for v in s.get("values") or []])) for s in series
        )
        for key, arr in chosen.items():
            points.setdefault(key, []).append(arr)  # type: ignore[arg-type]
        return
    values = krr.pick_jobs((s.get("metric", {}), float(s["value"][1])) for s in series)
    target = {"cpu": data.cpu, "cpu_count": data.cpu_count, "memory": data.memory, "memory_count": data.memory_count}
    target[kind].update({k: float(v) for k, v in values.items()})  # type: ignore[arg-type]
