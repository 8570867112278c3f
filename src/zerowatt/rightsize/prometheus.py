"""Usage history from Prometheus's HTTP API, fetched in bounded chunks.

A scan of a large cluster must not overload Prometheus (KRR issues queries per container over the whole
range, which is the usual complaint): here every range query covers at most ``max_points`` steps per series
(below Prometheus's 11,000-point limit) and at most ``pods_per_query`` pods, and at most ``concurrency``
queries are in flight. Every chunk must succeed: a failed chunk (error, timeout, ``warnings`` in the
response) fails the whole run unless ``allow_partial`` is set, in which case the chunk is skipped, a warning
is recorded and the result is marked partial (and the CLI then refuses ``--apply``). Answers are parsed by
:mod:`~zerowatt.rightsize.prommatrix` and added to the accumulator by :mod:`~zerowatt.rightsize.promingest`.

Series (cAdvisor and kube-state-metrics): ``container_cpu_usage_seconds_total`` (``rate``),
``container_memory_working_set_bytes``, ``kube_pod_container_status_last_terminated_reason{reason="OOMKilled"}``
(an OOM event is the step where it turns to 1), ``kube_pod_container_resource_requests`` / ``_limits`` and
``kube_pod_owner`` / ``kube_replicaset_owner`` (pods → workloads, as the VPA aggregates them).
"""

from __future__ import annotations

import math
import re
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import numpy as np

from zerowatt.errors import SettingError, ValidationError
from zerowatt.parsing import parse_duration
from zerowatt.rightsize.accumulator import UsageAccumulator
from zerowatt.rightsize.estimator import VpaConfig
from zerowatt.rightsize.promingest import ingest_cpu, ingest_memory, oom_events, present
from zerowatt.rightsize.prommatrix import Matrix, parse_matrix
from zerowatt.rightsize.prommatrix import PrometheusError as PrometheusError  # re-exported: part of this API
from zerowatt.rightsize.promql_local import LOOKBACK_MS, instant_values, rate
from zerowatt.rightsize.samples import LoadStats

Progress = Callable[[int, int], None]
#: Samples per raw read in local evaluation (one series of 14 days at 1 minute is ≈ 20,000): ≈ 3 MB of JSON.
RAW_SAMPLES = 100_000
CONTAINER_FILTER = 'container!="",container!="POD"'
Matcher = tuple[int, str, str]  # remote-read type (EQ, NEQ, RE, NRE), label, value
EQ, NEQ, RE, NRE = 0, 1, 2, 3
CONTAINER_MATCHERS: tuple[Matcher, ...] = ((NEQ, "container", ""), (NEQ, "container", "POD"))


@dataclass(frozen=True)
class ChunkPlan:
    """How a scan is cut: ``step`` seconds between points, at most ``max_points`` per series per query."""

    step: float = 60.0
    max_points: int = 10_000
    pods_per_query: int = 50
    concurrency: int = 4
    timeout: float = 30.0
    retries: int = 1
    rate_window: str = "5m"

    def windows(self, start: float, end: float) -> list[tuple[float, float]]:
        """Consecutive [t0, t1] ranges on the step grid, each with at most ``max_points`` points."""
        span = self.step * (self.max_points - 1)
        out: list[tuple[float, float]] = []
        t0 = start
        while t0 <= end:
            t1 = min(end, t0 + span)
            out.append((t0, t1))
            t0 = t1 + self.step
        return out


@dataclass
class FetchResult:
    accumulator: UsageAccumulator
    stats: LoadStats
    partial: bool = False
    queries: int = 0
    failed_chunks: list[str] = field(default_factory=list)
    first_error: str = ""


class Outcome(Protocol):
    """What chunk failures and warnings are recorded on (a fetch's result)."""

    partial: bool
    stats: LoadStats


def discover(
    client: PrometheusClient, sel: str, now: float, history: float, result: Outcome, allow_partial: bool
) -> tuple[dict[str, set[str]], set[tuple[str, str, str]]]:
    """Pods per namespace and the pod-containers with a working-set series in the window.

    The series API reads the index, not the samples: a cheap first look at what the history holds.
    """
    found, warns = client.series(f"container_memory_working_set_bytes{{{sel}}}", now - history, now)
    _note_warnings(warns, "discovery", result, allow_partial)
    pods: dict[str, set[str]] = defaultdict(set)
    known: set[tuple[str, str, str]] = set()
    for m in found:
        if m.get("namespace") and m.get("pod") and m.get("container"):
            pods[m["namespace"]].add(m["pod"])
            known.add((m["namespace"], m["pod"], m["container"]))
    if not pods:
        raise ValidationError(
            client.url, f"no container_memory_working_set_bytes series matching {{{sel}}} in the history"
        )
    return dict(pods), known


def _quote(value: str) -> str:
    """Escape a value for a PromQL double-quoted string."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _label_regex(values: Iterable[str]) -> str:
    """An RE2 alternation matching exactly these values, escaped for a PromQL string."""
    return _quote(_alternation(values))


def _alternation(values: Iterable[str]) -> str:
    """An RE2 alternation matching exactly these values (unquoted: for remote-read matchers)."""
    meta = set("\\.+*?()|[]{}^$")
    return "|".join("".join("\\" + ch if ch in meta else ch for ch in v) for v in sorted(values))


def matcher_list(namespaces: Iterable[str], selector: dict[str, str]) -> list[Matcher]:
    """:func:`_matchers` as remote-read label matchers."""
    out: list[Matcher] = list(CONTAINER_MATCHERS)
    ns = list(namespaces)
    if ns:
        out.append((RE, "namespace", _alternation(ns)))
    out += [(EQ, k, v) for k, v in selector.items()]
    return out


def _pods_matchers(ns: str, pods: Iterable[str]) -> list[Matcher]:
    return [(EQ, "namespace", ns), (RE, "pod", _alternation(pods))]


def read_raw(
    client: PrometheusClient, selector: str, matchers: list[Matcher], now: float, raw_range: int
) -> tuple[Matrix, list[str]]:
    """Raw samples of ``selector`` in [now − raw_range s, now]: through remote read (streamed chunks) where the
    decoder and the server allow it, else a range selector through the query API (then for the whole run)."""
    now_ms = round(float(f"{now:.3f}") * 1000)  # the instant the query API would be given
    if client.remote_read_ok:
        from zerowatt.rightsize.remoteread import RemoteReadUnavailable, parse_chunked

        try:
            start_ms = now_ms - raw_range * 1000
            return parse_chunked(client.remote_read(matchers, start_ms, now_ms), start_ms, now_ms), []
        except (RemoteReadUnavailable, PrometheusError) as exc:
            # Not a streamed-chunks server (or it dropped the connection on the binary request): the query API
            # then serves this and every later read, and reports its own error if the server is really down.
            client.remote_read_ok = False
            client.remote_read_why = str(exc)
    return parse_matrix(client.instant_raw(f"{selector}[{raw_range}s]", now))


def _matchers(namespaces: Iterable[str], selector: dict[str, str]) -> str:
    parts = [CONTAINER_FILTER]
    ns = list(namespaces)
    if ns:
        parts.append(f'namespace=~"{_label_regex(ns)}"')
    for k, v in selector.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k):
            raise SettingError("selector", f"{k!r} is not a Prometheus label name")
        parts.append(f'{k}="{_quote(v)}"')
    return ",".join(parts)


class PrometheusClient:
    """Thin synchronous client of ``/api/v1/query`` and ``/api/v1/query_range`` with clear errors."""

    def __init__(self, url: str, plan: ChunkPlan) -> None:
        if not re.match(r"^https?://", url):
            raise SettingError("prometheus_url", f"expected an http(s):// URL, got {url!r}")
        self.url = url.rstrip("/")
        self.plan = plan
        self.client = httpx.Client(timeout=httpx.Timeout(plan.timeout), follow_redirects=True)
        self.queries = 0
        #: Whether to try remote read (cleared, with the reason, the first time it is not available).
        self.remote_read_ok = True
        self.remote_read_why = ""

    def close(self) -> None:
        self.client.close()

    def _get(self, path: str, params: dict[str, str], raw: bool = False) -> tuple[Any, list[str]]:
        """``data`` and ``warnings`` of a successful answer; with ``raw``, the body's bytes (not decoded, and
        asked for uncompressed: on loopback gzip costs Prometheus more CPU than it saves)."""
        last: str = ""
        headers = {"Accept-Encoding": "identity"} if raw else None
        for attempt in range(self.plan.retries + 1):
            self.queries += 1
            try:
                resp = self.client.post(f"{self.url}{path}", data=params, headers=headers)
            except httpx.TimeoutException:
                last = f"timed out after {self.plan.timeout:g} s"
            except httpx.HTTPError as exc:
                last = f"cannot reach {self.url}: {exc}"
            else:
                if (
                    raw
                    and resp.status_code == 200
                    and resp.content[:64].replace(b" ", b"").startswith(b'{"status":"success"')
                ):
                    return resp.content, []
                try:
                    body = resp.json()
                except ValueError:
                    body = None
                if resp.status_code == 200 and isinstance(body, dict) and body.get("status") == "success":
                    return body.get("data"), [str(w) for w in body.get("warnings") or []]
                if isinstance(body, dict) and body.get("error"):
                    last = f"HTTP {resp.status_code}: {body.get('errorType', 'error')}: {body['error']}"
                else:
                    last = f"HTTP {resp.status_code}: {resp.text[:200]!r}"
                if resp.status_code < 500 and resp.status_code != 429:
                    break  # a bad query does not get better by asking again
            if attempt < self.plan.retries:
                time.sleep(0.2 * (attempt + 1))
        raise PrometheusError(f"Prometheus {self.url}{path} ({params.get('query', '')[:120]}): {last}")

    def series(self, match: str, start: float, end: float) -> tuple[list[dict[str, str]], list[str]]:
        """Label sets of the series matching ``match`` in [start, end] (index only: no samples are read)."""
        params = {"match[]": match, "start": f"{start:.3f}", "end": f"{end:.3f}", "query": match}
        data, warnings = self._get("/api/v1/series", params)
        return [d for d in data or [] if isinstance(d, dict)], warnings

    def instant(self, query: str, at: float) -> tuple[list[dict[str, Any]], list[str]]:
        data, warnings = self._get("/api/v1/query", {"query": query, "time": f"{at:.3f}"})
        return list(data.get("result") or []), warnings

    def remote_read(self, matchers: list[tuple[int, str, str]], start_ms: int, end_ms: int) -> bytes:
        """The streamed-chunks answer of ``/api/v1/read`` (see :mod:`zerowatt.rightsize.remoteread`).

        :class:`RemoteReadUnavailable` when the server answers but not with streamed chunks (callers then use
        the query API); :class:`PrometheusError` when it cannot be reached or times out.
        """
        from zerowatt.rightsize.remoteread import RemoteReadUnavailable, read_request

        body = read_request(matchers, start_ms, end_ms)
        headers = {
            "Content-Encoding": "snappy",
            "Content-Type": "application/x-protobuf",
            "X-Prometheus-Remote-Read-Version": "0.1.0",
            "Accept-Encoding": "identity",
        }
        last = ""
        for attempt in range(self.plan.retries + 1):
            self.queries += 1
            try:
                resp = self.client.post(f"{self.url}/api/v1/read", content=body, headers=headers)
            except httpx.TimeoutException:
                last = f"timed out after {self.plan.timeout:g} s"
            except httpx.HTTPError as exc:
                last = f"cannot reach {self.url}: {exc}"
            else:
                kind = resp.headers.get("content-type", "")
                if resp.status_code == 200 and kind.startswith("application/x-streamed-protobuf"):
                    return resp.content
                if resp.status_code >= 500 and attempt < self.plan.retries:
                    last = f"HTTP {resp.status_code}: {resp.text[:200]!r}"
                    time.sleep(0.2 * (attempt + 1))
                    continue
                raise RemoteReadUnavailable(f"HTTP {resp.status_code} {kind}: {resp.text[:200]!r}")
            if attempt < self.plan.retries:
                time.sleep(0.2 * (attempt + 1))
        raise PrometheusError(f"Prometheus {self.url}/api/v1/read: {last}")

    def instant_raw(self, query: str, at: float) -> bytes:
        """The undecoded body of a successful instant query (for :func:`parse_matrix`)."""
        body, _ = self._get("/api/v1/query", {"query": query, "time": f"{at:.3f}"}, raw=True)
        return bytes(body)

    def range(self, query: str, start: float, end: float, step: float) -> tuple[list[dict[str, Any]], list[str]]:
        params = {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        data, warnings = self._get("/api/v1/query_range", params)
        return list(data.get("result") or []), warnings


def fetch(
    url: str,
    now: float,
    history: float,
    *,
    plan: ChunkPlan | None = None,
    config: VpaConfig | None = None,
    namespaces: Iterable[str] = (),
    selector: dict[str, str] | None = None,
    allow_partial: bool = False,
    progress: Progress | None = None,
    track_simple: bool = True,
    compute: str = "server",
) -> FetchResult:
    """Scan ``[now − history, now]`` and return the filled accumulator.

    ``compute="server"``: range queries (``rate()`` evaluated by Prometheus) in windows of ``max_points``;
    ``"local"``: raw samples of at most ``RAW_SAMPLES`` per query, evaluated here at the same steps with
    Prometheus' semantics (:mod:`promql_local`), so Prometheus only reads and sends samples.
    """
    plan = plan or ChunkPlan()
    sel_list = matcher_list(namespaces, selector or {})
    if compute not in ("local", "server"):
        raise ValueError(f"compute must be local or server, not {compute!r}")
    local = compute == "local"
    rate_ms = round(parse_duration(plan.rate_window, key="rate_window") * 1000)
    raw_range = math.ceil(history + plan.step + rate_ms / 1000 + LOOKBACK_MS / 1000)
    per_query = plan.pods_per_query
    if local:  # one series per pod-container and query: bounded in samples, as KRR's raw reads
        per_query = max(1, min(per_query, RAW_SAMPLES // max(1, round(raw_range / 60))))
    sel = _matchers(namespaces, selector or {})
    client = PrometheusClient(url, plan)
    stats = LoadStats()
    acc = UsageAccumulator(now, history, config, track_simple)
    result = FetchResult(acc, stats)
    try:
        pods, _ = discover(client, sel, now, history, result, allow_partial)
        owners = _owners(client, now, history, sorted(pods), result, allow_partial)
        batches = [
            (ns, sorted(names)[i : i + per_query])
            for ns, names in sorted(pods.items())
            for i in range(0, len(names), per_query)
        ]
        start = math.ceil((now - history) / plan.step) * plan.step
        windows = plan.windows(start, now) if not local else [(start, now)]
        jobs = [(ns, batch, w, what) for ns, batch in batches for w in windows for what in ("cpu", "memory", "oom")]
        total = len(jobs) + 2 * len(batches)
        done = 0

        def run(job: tuple[str, list[str], tuple[float, float], str]) -> tuple[str, list[dict[str, Any]], list[str]]:
            ns, batch, (t0, t1), what = job
            pods_of = f'namespace="{_quote(ns)}",pod=~"{_label_regex(batch)}"'
            # Selector labels live on the cAdvisor series; kube-state-metrics ones are matched by pod only.
            matcher = f"{sel},{pods_of}" if what != "oom" else f"{CONTAINER_FILTER},{pods_of}"
            if what == "cpu":
                q = f"rate(container_cpu_usage_seconds_total{{{matcher}}}[{plan.rate_window}])"
            elif what == "memory":
                q = f"container_memory_working_set_bytes{{{matcher}}}"
            else:
                q = f'kube_pod_container_status_last_terminated_reason{{{matcher},reason="OOMKilled"}}'
            if local:
                if what == "cpu":
                    q = f"container_cpu_usage_seconds_total{{{matcher}}}"
                name = q.split("{", 1)[0]
                structured = [(EQ, "__name__", name), *sel_list, *_pods_matchers(ns, batch)]
                if what == "oom":
                    structured = [(EQ, "__name__", name), *CONTAINER_MATCHERS, *_pods_matchers(ns, batch)]
                    structured.append((EQ, "reason", "OOMKilled"))
                return what, *_local_range(
                    client, q, structured, what == "cpu", t0, t1, now, raw_range, plan.step, rate_ms
                )
            res, w = client.range(q, t0, t1, plan.step)
            return what, res, w

        memory_of: dict[tuple[str, tuple[str, ...], tuple[float, float]], list[dict[str, Any]]] = {}
        oom_state: dict[tuple[str, str, str], tuple[float, bool]] = {}

        def consume(job: tuple[str, list[str], tuple[float, float], str], fut: Future[Any]) -> None:
            nonlocal done
            ns, batch, window, what = job
            label = f"{what} {ns} pods {batch[0]}… {window[0]:.0f}-{window[1]:.0f}"
            series: list[dict[str, Any]] = []
            try:
                _, series, warns = fut.result()
            except PrometheusError as exc:
                if not allow_partial:
                    raise
                result.partial = True
                result.failed_chunks.append(label)
                result.first_error = result.first_error or str(exc)
                stats.warnings.append(f"chunk {label} failed and was skipped: {exc}")
            else:
                _note_warnings(warns, label, result, allow_partial)
            key = (ns, tuple(batch), window)
            if what == "cpu":
                ingest_cpu(acc, series, owners, stats)
            elif what == "memory":
                memory_of[key] = series  # ingested with the same chunk's OOM kills, which come next
            else:
                events = oom_events(series, oom_state, plan.step)
                ingest_memory(acc, memory_of.pop(key, []), events, owners, stats)
            done += 1
            if progress:
                progress(done, total)

        # At most 2 × concurrency chunks are fetched ahead of the one being ingested: bounded memory too.
        with ThreadPoolExecutor(max_workers=max(1, plan.concurrency)) as pool:
            ahead: deque[tuple[tuple[str, list[str], tuple[float, float], str], Future[Any]]] = deque()
            try:
                for job in jobs:
                    ahead.append((job, pool.submit(run, job)))
                    if len(ahead) >= 2 * plan.concurrency:
                        consume(*ahead.popleft())
                while ahead:
                    consume(*ahead.popleft())
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            for ns, batch in batches:
                _current(
                    client,
                    acc,
                    now,
                    f'{CONTAINER_FILTER},namespace="{_quote(ns)}",pod=~"{_label_regex(batch)}"',
                    owners,
                    result,
                    allow_partial,
                )
                done += 2
                if progress:
                    progress(done, total)
    finally:
        result.queries = client.queries
        client.close()
    if local and not client.remote_read_ok:
        stats.warnings.append(f"remote read not used ({client.remote_read_why}): raw samples came as JSON (slower)")
    stats.finish(url)
    if result.failed_chunks and not acc.has_data():
        raise PrometheusError(f"every chunk failed; the first error: {result.first_error}")
    if not acc.has_data():
        raise ValidationError(url, "no valid samples in the history (all series empty, NaN or negative)")
    return result


def _note_warnings(warns: list[str], label: str, result: Outcome, allow_partial: bool) -> None:
    if not warns:
        return
    msg = f"Prometheus warned on {label}: {'; '.join(warns)}"
    if not allow_partial:
        raise PrometheusError(msg + " (the data may be partial; rerun with --allow-partial to accept it)")
    result.partial = True
    result.stats.warnings.append(msg)


def _owners(
    client: PrometheusClient,
    now: float,
    history: float,
    namespaces: Iterable[str],
    result: Outcome,
    allow_partial: bool,
) -> dict[tuple[str, str], str]:
    """(namespace, pod) → ``Kind/name`` of the workload, through ReplicaSets to Deployments."""
    ns_list = list(namespaces)
    pod_sel = f'namespace=~"{_label_regex(ns_list)}"' if ns_list else ""
    pods, w1 = client.series(f"kube_pod_owner{{{pod_sel}}}", now - history, now)
    _note_warnings(w1, "kube_pod_owner", result, allow_partial)
    rs_owner: dict[tuple[str, str], str] = {}
    if any(p.get("owner_kind") == "ReplicaSet" for p in pods):
        rs, w2 = client.series(f"kube_replicaset_owner{{{pod_sel}}}", now - history, now)
        _note_warnings(w2, "kube_replicaset_owner", result, allow_partial)
        for m in rs:
            if m.get("owner_kind") and m.get("owner_name") and m.get("owner_kind") != "<none>":
                rs_owner[(m.get("namespace", ""), m.get("replicaset", ""))] = f"{m['owner_kind']}/{m['owner_name']}"
    out: dict[tuple[str, str], str] = {}
    for m in pods:
        kind, name = m.get("owner_kind", ""), m.get("owner_name", "")
        if not kind or kind == "<none>" or not name:
            continue
        key = (m.get("namespace", ""), m.get("pod", ""))
        out[key] = rs_owner.get((key[0], name), f"{kind}/{name}") if kind == "ReplicaSet" else f"{kind}/{name}"
    return out


def _local_range(
    client: PrometheusClient,
    selector: str,
    matchers: list[Matcher],
    is_rate: bool,
    t0: float,
    t1: float,
    now: float,
    raw_range: int,
    step: float,
    rate_ms: int,
) -> tuple[list[dict[str, Any]], list[str]]:
    """What ``query_range`` of ``selector`` (or of its ``rate()``) answers on [t0, t1], from one raw read.

    Series come back as ``{"metric", "_t", "_x"}`` (seconds, values; steps without a value left out, as
    Prometheus leaves them out), which :func:`~zerowatt.rightsize.promingest.series_values` reads without parsing.
    """
    series, warnings = read_raw(client, selector, matchers, now, raw_range)
    t0_ms, t1_ms, step_ms = round(t0 * 1000), round(t1 * 1000), round(step * 1000)
    steps = np.arange(t0_ms, t1_ms + 1, step_ms, dtype=np.int64)
    out: list[dict[str, Any]] = []
    for labels, ts, v in series:
        x = rate(ts, v, steps, rate_ms) if is_rate else instant_values(ts, v, steps)
        have = ~np.isnan(x) if is_rate else present(ts, v, steps)
        if have.any():
            labels.pop("__name__", None)
            out.append({"metric": labels, "_t": steps[have] / 1000, "_x": x[have]})
    return out, warnings


def _current(
    client: PrometheusClient,
    acc: UsageAccumulator,
    now: float,
    matcher: str,
    owners: dict[tuple[str, str], str],
    result: FetchResult,
    allow_partial: bool,
) -> None:
    for kind in ("requests", "limits"):
        q = (
            "max by (namespace, pod, container, resource) "
            f"(last_over_time(kube_pod_container_resource_{kind}{{{matcher}}}[1h]))"
        )
        try:
            series, warns = client.instant(q, now)
        except PrometheusError as exc:
            if not allow_partial:
                raise
            result.partial = True
            result.stats.warnings.append(f"current {kind} failed and were skipped: {exc}")
            continue
        _note_warnings(warns, f"current {kind}", result, allow_partial)
        for s in series:
            m = s.get("metric", {})
            ns, pod, container, res = m.get("namespace"), m.get("pod"), m.get("container"), m.get("resource")
            if not (ns and pod and container) or res not in ("cpu", "memory"):
                continue
            value = float(s["value"][1])
            sid = acc.series_id(ns, pod, container, owners.get((ns, pod)))
            col = f"{res}_{'request' if kind == 'requests' else 'limit'}"
            acc.set_current([sid], **{col: [value]})
