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
import numpy.typing as npt

from zerowatt.rightsize import krr
from zerowatt.rightsize.model import ContainerId, Recommendation
from zerowatt.rightsize.prometheus import (
    CONTAINER_FILTER,
    RE,
    ChunkPlan,
    Matcher,
    PrometheusClient,
    _label_regex,
    _matchers,
    _note_warnings,
    _owners,
    _pods_matchers,
    _quote,
    discover,
    matcher_list,
    read_raw,
)
from zerowatt.rightsize.prommatrix import Matrix, PrometheusError
from zerowatt.rightsize.promql_local import LOOKBACK_MS, group_max, instant_values, rate, subquery_steps
from zerowatt.rightsize.samples import LoadStats

Progress = Callable[[int, int], None]
Job = tuple[str, str, str, tuple[float, float] | None]  # kind, namespace, matcher, range window
#: Raw samples that certainly make ``points_required`` (100) subquery steps at any scrape interval ≥ 3.75 s.
RAW_ENOUGH = 2000
#: Samples per raw read (two series of 14 days at 1 minute are ≈ 40,000): ≈ 3 MB of JSON.
RAW_SAMPLES = 100_000


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
    compute: str = "local",
) -> KrrFetch:
    """KRR's recommendations for every container found in ``[now − history, now]``.

    ``compute="local"``: raw samples are read and KRR's PromQL is evaluated here (:mod:`promql_local`);
    ``"server"``: Prometheus evaluates KRR's queries.
    """
    if compute not in ("local", "server"):
        raise ValueError(f"compute must be local or server, not {compute!r}")
    plan = plan or ChunkPlan(step=cfg.step)
    sel = _matchers(namespaces, selector or {})
    client = PrometheusClient(url, plan)
    stats = LoadStats()
    shim = KrrFetch([], stats)
    step, duration = krr.step_literal(cfg.step), krr.duration_literal(history)
    eval_ms = round(now * 1000)
    duration_ms = krr.duration_seconds(history) * 1000
    # Raw samples far enough back for the first rate window, the lookback and simple_limit's range grid.
    raw_range = math.ceil(max(duration_ms / 1000, history + 60) + max(LOOKBACK_MS / 1000, cfg.step))
    end_ms = math.floor(now / 60) * 60 * 1000  # KRR's range queries end at now rounded down to the minute
    limit_steps = np.arange(end_ms - round(history * 1000), end_ms + 1, round(cfg.step * 1000), dtype=np.int64)
    data = krr.PodData({}, {}, {}, {}, {})
    current: dict[krr.PodKey, list[float]] = {}
    try:
        pods, known = discover(client, sel, now, history, shim, allow_partial)
        owners = _owners(client, now, history, sorted(pods), shim, allow_partial)
        jobs: list[Job] = []
        sel_list = matcher_list(namespaces, selector or {})
        raw_pods_of: dict[str, list[Matcher]] = {}
        range_end = math.floor(now / 60) * 60
        windows = ChunkPlan(step=cfg.step, max_points=plan.max_points).windows(range_end - history, range_end)
        # Raw reads are cut finer than pods_per_query: at most RAW_SAMPLES samples (≈ 3 MB of JSON) per answer
        # bounds what is in memory at once (concurrency × one answer and its parsed copy).
        raw_pods = max(1, min(plan.pods_per_query, RAW_SAMPLES // max(1, round(2 * raw_range / 60))))
        for ns, names in sorted(pods.items()):
            ordered = sorted(names)
            for i in range(0, len(ordered), plan.pods_per_query):
                chunk = ordered[i : i + plan.pods_per_query]
                pods_of = f'namespace="{_quote(ns)}",pod=~"{_label_regex(chunk)}"'
                jobs.append(("main", ns, pods_of, None))
                if compute == "local":
                    for j in range(0, len(chunk), raw_pods):
                        part = f'namespace="{_quote(ns)}",pod=~"{_label_regex(chunk[j : j + raw_pods])}"'
                        jobs.append(("raw", ns, f"{sel},{part}", None))
                        raw_pods_of[f"{sel},{part}"] = _pods_matchers(ns, chunk[j : j + raw_pods])
                elif cfg.strategy == "simple_limit":
                    jobs += [("cpu_points", ns, f"{sel},{pods_of}", w) for w in windows]

        def main_query(pods_of: str) -> str:
            """Everything one batch needs in one query, each part tagged with a ``zw_kind`` label."""
            m, cm = f"{sel},{pods_of}", f"{CONTAINER_FILTER},{pods_of}"
            parts = [("memory", krr.memory_max(m, duration, step))] if compute == "server" else []
            if cfg.strategy == "simple" and compute == "server":
                parts.insert(0, ("cpu", krr.cpu_quantile(cfg.cpu_quantiles[0], m, duration, step)))
            for kind, metric in (("cpu_raw", "container_cpu_usage_seconds_total"),
                                 ("memory_raw", "container_memory_working_set_bytes")):  # fmt: skip
                if compute == "server":
                    parts.append((kind, f"max {krr.BY} (count_over_time({metric}{{{m}}}[{duration}]))"))
            for kind in ("requests", "limits"):
                parts.append((kind, "max by (namespace, pod, container, resource) "
                              f"(last_over_time(kube_pod_container_resource_{kind}{{{cm}}}[1h]))"))  # fmt: skip
            return " or ".join(f'label_replace({expr}, "zw_kind", "{kind}", "", "")' for kind, expr in parts)

        def run(job: Job) -> tuple[list[dict[str, Any]], list[str]]:
            kind, _, m, window = job
            if kind == "main":
                return client.instant(main_query(m), now)
            if kind == "raw":
                names = "container_cpu_usage_seconds_total|container_memory_working_set_bytes"
                structured = [(RE, "__name__", names), *sel_list, *raw_pods_of[m]]
                series, warns = read_raw(client, f'{{__name__=~"{names}",{m}}}', structured, now, raw_range)
                return evaluate_locally(series, cfg, eval_ms, duration_ms, limit_steps), warns
            if kind == "cpu_points":
                assert window is not None
                return client.range(krr.cpu_rate(m, step), window[0], window[1], cfg.step)
            build = {"cpu_count": krr.cpu_count, "memory_count": krr.memory_count}[kind]
            return client.instant(build(m, duration, step), now)

        points: dict[krr.PodKey, list[np.ndarray]] = {}
        raw: dict[str, dict[krr.PodKey, float]] = {"cpu_raw": {}, "memory_raw": {}}
        done = 0

        def run_all(batch: list[Job]) -> None:
            nonlocal done
            with ThreadPoolExecutor(max_workers=plan.concurrency) as pool:
                futures = [(job, pool.submit(run, job)) for job in batch]
                try:
                    for job, fut in futures:
                        kind, ns = job[0], job[1]
                        label = f"{kind} {ns} ({job[2][:60]}…)"
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
                        if kind in ("main", "raw"):
                            tagged: dict[str, list[dict[str, Any]]] = {}
                            for s_ in series:
                                tagged.setdefault(s_.get("metric", {}).pop("zw_kind", ""), []).append(s_)
                            for part, got in tagged.items():
                                if part in raw:
                                    raw[part].update(_instant_values(got))  # type: ignore[arg-type]
                                elif part == "cpu_points":
                                    chosen = krr.pick_jobs((s_["metric"], s_["points"]) for s_ in got)
                                    for key, arr in chosen.items():
                                        points.setdefault(key, []).append(arr)  # type: ignore[arg-type]
                                elif part:
                                    _store(part, got, data, points, current)
                        else:
                            _store(kind, series, data, points, current)
                        done += 1
                        if progress:
                            progress(done, len(jobs))
                except BaseException:
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise

        run_all(jobs)
        # KRR's point counts are counts of subquery steps (costly: one evaluation per step). A pod-container with
        # at least RAW_ENOUGH raw samples has at least points_required steps unless it is scraped more often than
        # every step × points_required / RAW_ENOUGH seconds (75 × 100 / 2000 = 3.75 s by default), so only the
        # others are counted KRR's way; for the rest the raw count stands (it decides nothing).
        exact: list[Job] = []
        for kind, counts in (("cpu_count", raw["cpu_raw"]), ("memory_count", raw["memory_raw"])):
            target = data.cpu_count if kind == "cpu_count" else data.memory_count
            few: dict[str, list[str]] = {}
            for key, n in counts.items():
                if n >= RAW_ENOUGH:
                    target[key] = n
                else:
                    few.setdefault(key[0], []).append(key[1])
            for ns, few_names in sorted(few.items()):
                few_pods = sorted(set(few_names))
                for i in range(0, len(few_pods), plan.pods_per_query):
                    pods_of = f'namespace="{_quote(ns)}",pod=~"{_label_regex(few_pods[i : i + plan.pods_per_query])}"'
                    exact.append((kind, ns, f"{sel},{pods_of}", None))
        if exact:
            jobs += exact
            run_all(exact)
        for key, parts in points.items():
            data.cpu_points[key] = np.concatenate(parts)
    finally:
        client.close()
    if compute == "local" and not client.remote_read_ok:
        stats.warnings.append(f"remote read not used ({client.remote_read_why}): raw samples came as JSON (slower)")
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
    values = _instant_values(series)
    target = {"cpu": data.cpu, "cpu_count": data.cpu_count, "memory": data.memory, "memory_count": data.memory_count}
    target[kind].update({k: float(v) for k, v in values.items()})  # type: ignore[arg-type]


def _instant_values(series: list[dict[str, Any]]) -> dict[krr.PodKey, object]:
    return krr.pick_jobs((s.get("metric", {}), float(s["value"][1])) for s in series)


def evaluate_locally(
    series: Matrix, cfg: krr.KrrConfig, eval_ms: int, duration_ms: int, limit_steps: npt.NDArray[np.int64]
) -> list[dict[str, Any]]:
    """KRR's four subqueries (and ``simple_limit``'s range query) per pod-container-job, from raw samples.

    Answers look like an instant query's series tagged with ``zw_kind`` (``points`` holds simple_limit's
    series), so that they are stored as Prometheus' own answers are.
    """
    step_ms = round(cfg.step * 1000)
    steps = subquery_steps(eval_ms, duration_ms, step_ms)
    groups: dict[tuple[str, str, str, str], dict[str, list[npt.NDArray[np.float64]]]] = {}
    for lab, ts, v in series:
        ns, pod, container = lab.get("namespace"), lab.get("pod"), lab.get("container")
        if not (ns and pod and container) or ts.size == 0:
            continue
        g = groups.setdefault((ns, pod, container, lab.get("job", "")), {})
        if lab.get("__name__") == "container_cpu_usage_seconds_total":
            g.setdefault("rate", []).append(rate(ts, v, steps, step_ms))
            g.setdefault("counter", []).append(instant_values(ts, v, steps))
            if cfg.strategy == "simple_limit":
                g.setdefault("points", []).append(rate(ts, v, limit_steps, step_ms))
        else:
            g.setdefault("memory", []).append(instant_values(ts, v, steps))
    out: list[dict[str, Any]] = []
    for (ns, pod, container, job), g in groups.items():
        base = {"namespace": ns, "pod": pod, "container": container, **({"job": job} if job else {})}

        def emit(kind: str, value: float, base: dict[str, str] = base) -> None:
            out.append({"metric": {**base, "zw_kind": kind}, "value": [eval_ms / 1000, repr(value)]})

        if "rate" in g:
            r = group_max(g["rate"], steps.size)
            r = r[~np.isnan(r)]
            if r.size and cfg.cpu_quantiles:
                emit("cpu", krr.prometheus_quantile(r, cfg.cpu_quantiles[0]))
            present = int((~np.isnan(group_max(g["counter"], steps.size))).sum())
            if present:
                emit("cpu_count", float(present))
            if "points" in g:
                p = group_max(g["points"], limit_steps.size)
                p = p[~np.isnan(p)]
                if p.size:
                    out.append({"metric": {**base, "zw_kind": "cpu_points"}, "points": p})
        if "memory" in g:
            mem = group_max(g["memory"], steps.size)
            mem = mem[~np.isnan(mem)]
            if mem.size:
                emit("memory", float(mem.max()))
                emit("memory_count", float(mem.size))
    return out
