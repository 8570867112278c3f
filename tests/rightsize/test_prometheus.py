"""End to end against a real Prometheus (backfilled with promtool), and a misbehaving fake one."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from tests.conftest import free_port, run_cli
from tests.rightsize.conftest import NOW, WORKLOADS
from zerowatt.errors import ValidationError
from zerowatt.rightsize.prometheus import ChunkPlan, PrometheusError, fetch

HISTORY = 3 * 86400.0
PROM_ARGS = ["--end", str(NOW), "--history", "3d", "--rate-window", "90s", "--json", "--compute", "server"]


@pytest.mark.parametrize("compute", ["server", "local"])
def test_prometheus_and_file_paths_agree(prometheus_url: str, samples_csv: Path, compute: str) -> None:
    # Small chunks on purpose: 1 pod per query and 1,000-point windows exercise the chunking.
    prom = run_cli(["rightsize", "--prometheus", prometheus_url, *PROM_ARGS, "--pods-per-query", "1", "--step", "1m",
                    "--compute", compute])  # fmt: skip
    assert prom.returncode == 0, prom.stderr
    files = run_cli(["rightsize", "--samples", str(samples_csv), "--history", "3d", "--json"])
    assert files.returncode == 0, files.stderr
    a, b = json.loads(prom.stdout), json.loads(files.stdout)
    assert a["containers"] == b["containers"]
    assert a["totals"] == b["totals"]
    assert {(c["namespace"], c["workload"], c["container"]) for c in a["containers"]} == {
        (w.namespace, w.workload, w.container) for w in WORKLOADS
    }
    web = next(c for c in a["containers"] if c["workload"] == "Deployment/web")
    assert web["replicas"] == 2 and web["samples"] == 2 * 3 * 1440
    assert web["current"]["requests"] == {"cpu": 1.0, "memory": 1024**3}
    # ~0.15 core with 1 minute in 10 at 0.6: P50 (lower bound) in the low band, P95 (upper) in the high one.
    assert 0.15 * 1.15 < web["lower_bound"]["cpu"] < 0.157 * 1.05 * 1.15 * 1.001
    assert 0.6 * 1.15 * (1 + 1 / 3) < web["upper_bound"]["cpu"] < 0.607 * 1.05 * 1.15 * (1 + 1 / 2.99)
    assert web["upper_bound"]["cpu"] > web["target"]["cpu"] >= web["lower_bound"]["cpu"]
    worker = next(c for c in a["containers"] if c["workload"] == "Deployment/worker")
    assert worker["oom_kills"] == 1


def test_fetch_bounds_points_per_query(prometheus_url: str) -> None:
    plan = ChunkPlan(step=60, max_points=500, pods_per_query=2, rate_window="90s")
    res = fetch(prometheus_url, NOW, HISTORY, plan=plan, namespaces=["shop"])
    windows = len(plan.windows(NOW - HISTORY, NOW))
    assert windows == 9  # 4,321 points in chunks of at most 500
    # discovery + owners (pods, replicasets) + (cpu, memory, oom) per window per pod batch + requests/limits.
    assert res.queries == 3 + 3 * windows * 2 + 2 * 2
    assert {c.owner for c in res.accumulator.aggregate_ids} == {"Deployment/web", "StatefulSet/db"}
    assert not res.partial


def test_empty_selection_is_an_error(prometheus_url: str) -> None:
    r = run_cli(["rightsize", "--prometheus", prometheus_url, *PROM_ARGS, "--namespace", "nothing-here"])
    assert r.returncode == 2
    assert "no container_memory_working_set_bytes series" in r.stderr


def test_prometheus_down() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    r = run_cli(["rightsize", "--prometheus", url, *PROM_ARGS, "--timeout", "2"])
    assert r.returncode == 1
    assert "cannot reach" in r.stderr and url in r.stderr
    bad = run_cli(["rightsize", "--prometheus", "localhost:9090", *PROM_ARGS])
    assert bad.returncode == 2 and "http(s)://" in bad.stderr


# -- a fake Prometheus that misbehaves on purpose ----------------------------------------------------------

Handler = Callable[[str, dict[str, str]], tuple[int, Any]]


def series(ns: str, pod: str, container: str, values: list[tuple[float, str]]) -> dict[str, Any]:
    return {"metric": {"namespace": ns, "pod": pod, "container": container}, "values": [[t, v] for t, v in values]}


def ok(result: list[dict[str, Any]], warnings: list[str] | None = None, kind: str = "matrix") -> tuple[int, Any]:
    body: dict[str, Any] = {"status": "success", "data": {"resultType": kind, "result": result}}
    if warnings:
        body["warnings"] = warnings
    return 200, body


def labels(data: list[dict[str, str]]) -> tuple[int, Any]:
    return 200, {"status": "success", "data": data}


def healthy(path: str, q: dict[str, str]) -> tuple[int, Any]:
    query = q.get("query", "")
    if path.endswith("/series"):
        if q.get("match[]", "").startswith("container_memory_working_set_bytes"):
            return labels([{"__name__": "container_memory_working_set_bytes", "namespace": "a", "pod": "p",
                            "container": "c"}])  # fmt: skip
        return labels([])
    if path.endswith("/query"):
        return ok([], kind="vector")
    ts = [NOW - 120 + 60 * i for i in range(3)]
    if "cpu" in query:
        return ok([series("a", "p", "c", [(ts[0], "0.5"), (ts[1], "NaN"), (ts[2], "-0.1")])])
    if "memory" in query:
        return ok([series("a", "p", "c", [(t, "300000000") for t in ts])])
    return ok([])


class FakePrometheus:
    def __init__(self, handler: Handler, delay: float = 0.0) -> None:
        self.handler = handler
        self.delay = delay
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode("utf-8", "replace")).items()}
                if outer.delay:
                    time.sleep(outer.delay)
                status, body = outer.handler(self.path, form)
                data = json.dumps(body).encode() if not isinstance(body, bytes) else body
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakePrometheus:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake() -> Iterator[Callable[..., FakePrometheus]]:
    made: list[FakePrometheus] = []

    def make(handler: Handler = healthy, delay: float = 0.0) -> FakePrometheus:
        f = FakePrometheus(handler, delay).__enter__()
        made.append(f)
        return f

    yield make
    for f in made:
        f.__exit__()


def test_nan_and_negative_values_are_counted(fake: Callable[..., FakePrometheus]) -> None:
    f = fake()
    res = fetch(f.url, NOW, HISTORY, plan=ChunkPlan(retries=0))
    assert (res.stats.nan_samples, res.stats.negative_samples) == (1, 1)
    (rec,) = res.accumulator.recommend()
    assert rec.samples == 1


def test_slow_prometheus_times_out(fake: Callable[..., FakePrometheus]) -> None:
    f = fake(delay=3.0)
    r = run_cli(["rightsize", "--prometheus", f.url, *PROM_ARGS, "--timeout", "0.5"])
    assert r.returncode == 1
    assert "timed out after 0.5 s" in r.stderr


def test_server_errors_are_reported(fake: Callable[..., FakePrometheus]) -> None:
    def broken(path: str, q: dict[str, str]) -> tuple[int, Any]:
        return 500, {"status": "error", "errorType": "internal", "error": "disk on fire"}

    f = fake(broken)
    with pytest.raises(PrometheusError, match="HTTP 500: internal: disk on fire"):
        fetch(f.url, NOW, HISTORY, plan=ChunkPlan(retries=1))

    def bad_query(path: str, q: dict[str, str]) -> tuple[int, Any]:
        return 400, {"status": "error", "errorType": "bad_data", "error": "parse error"}

    f2 = fake(bad_query)
    r = run_cli(["rightsize", "--prometheus", f2.url, *PROM_ARGS])
    assert r.returncode == 1 and "bad_data: parse error" in r.stderr


def failing_memory(path: str, q: dict[str, str]) -> tuple[int, Any]:
    if path.endswith("query_range") and "memory" in q.get("query", ""):
        return 503, {"status": "error", "errorType": "unavailable", "error": "overloaded"}
    return healthy(path, q)


def test_failed_chunk_fails_the_run_unless_allow_partial(fake: Callable[..., FakePrometheus], tmp_path: Path) -> None:
    f = fake(failing_memory)
    with pytest.raises(PrometheusError, match="overloaded"):
        fetch(f.url, NOW, HISTORY, plan=ChunkPlan(retries=0))
    res = fetch(f.url, NOW, HISTORY, plan=ChunkPlan(retries=0), allow_partial=True)
    assert res.partial and res.failed_chunks
    r = run_cli(["rightsize", "--prometheus", f.url, *PROM_ARGS, "--allow-partial", "--apply", str(tmp_path / "out")])
    assert r.returncode == 2
    assert "PARTIAL DATA" in r.stderr and "refusing --apply" in r.stderr
    assert not (tmp_path / "out").exists()
    assert json.loads(r.stdout)["warnings"][0].startswith("PARTIAL DATA")


def test_warnings_mean_partial_data(fake: Callable[..., FakePrometheus]) -> None:
    def warned(path: str, q: dict[str, str]) -> tuple[int, Any]:
        status, body = healthy(path, q)
        body["warnings"] = ["partial response: store gateway unreachable"]
        return status, body

    f = fake(warned)
    with pytest.raises(PrometheusError, match=r"store gateway unreachable.*--allow-partial"):
        fetch(f.url, NOW, HISTORY, plan=ChunkPlan(retries=0))
    assert fetch(f.url, NOW, HISTORY, plan=ChunkPlan(retries=0), allow_partial=True).partial


def test_no_samples_at_all(fake: Callable[..., FakePrometheus]) -> None:
    def empty(path: str, q: dict[str, str]) -> tuple[int, Any]:
        if path.endswith("/series"):
            return labels([])
        return ok([], kind="vector" if path.endswith("/query") else "matrix")

    with pytest.raises(ValidationError, match="no container_memory_working_set_bytes series"):
        fetch(fake(empty).url, NOW, HISTORY)

    def hollow(path: str, q: dict[str, str]) -> tuple[int, Any]:
        if path.endswith("query_range"):
            return ok([series("a", "p", "c", [])])
        return healthy(path, q)

    with pytest.raises(ValidationError, match="no valid samples"):
        fetch(fake(hollow).url, NOW, HISTORY)


def test_selector_filters_usage_but_keeps_kube_state_metrics(prometheus_url: str) -> None:
    plan = ChunkPlan(step=300, rate_window="90s")
    res = fetch(prometheus_url, NOW, HISTORY, plan=plan, selector={"container": "postgres"})
    (rec,) = res.accumulator.recommend()
    assert rec.id.owner == "StatefulSet/db" and rec.id.container == "postgres"
    assert rec.current_request.cpu == 2.0 and rec.current_limit.memory == 4 * 1024**3
    with pytest.raises(ValidationError, match="not a Prometheus label name"):
        fetch(prometheus_url, NOW, HISTORY, plan=plan, selector={"bad-label": "x"})


def test_small_chunks_give_the_same_result_and_count_each_kill_once(prometheus_url: str, samples_csv: Path) -> None:
    from zerowatt.rightsize.samples import SampleFilter, load_samples

    # 60-point windows: the OOM gauge stays 1 across ~40 chunk boundaries after the kill.
    plan = ChunkPlan(step=60, max_points=60, rate_window="90s", concurrency=2)
    res = fetch(prometheus_url, NOW, HISTORY, plan=plan, namespaces=["batch"])
    (rec,) = res.accumulator.recommend()
    assert rec.oom_kills == 1
    acc, _ = load_samples(samples_csv, HISTORY, flt=SampleFilter(namespaces=("batch",)))
    assert acc.recommend() == [rec]
    # Local evaluation from raw samples gives the same (one raw read per pod batch, no windows).
    loc = fetch(prometheus_url, NOW, HISTORY, plan=plan, namespaces=["batch"], compute="local")
    assert loc.accumulator.recommend() == [rec]
    assert loc.queries < res.queries
