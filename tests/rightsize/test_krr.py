"""KRR's ``simple`` / ``simple_limit``: known answers, KRR's own queries on a real Prometheus, and the rules."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.conftest import run_cli
from tests.rightsize.conftest import DAYS, NOW, WORKLOADS, samples
from zerowatt.rightsize import krr
from zerowatt.rightsize.model import ContainerId

MIB = 1024.0 * 1024.0
HIST = f"{DAYS}d"


# -- pure rules ------------------------------------------------------------------------------------------


def test_quantile_is_prometheus_linear_interpolation() -> None:
    assert krr.prometheus_quantile(np.array([4.0, 1.0, 3.0, 2.0]), 0.95) == pytest.approx(3.85)  # rank 2.85
    assert krr.prometheus_quantile(np.array([7.0]), 0.95) == 7.0
    assert math.isnan(krr.prometheus_quantile(np.zeros(0), 0.5))
    rng = np.random.default_rng(3)
    for q in (0.0, 0.5, 0.66, 0.95, 1.0):
        x = rng.exponential(0.3, 1001)
        assert krr.prometheus_quantile(x, q) == pytest.approx(float(np.percentile(x, q * 100)), rel=1e-12)


def test_rounding_and_floors_are_krrs() -> None:
    cfg = krr.KrrConfig()
    assert krr.round_cpu(0.0121, cfg) == 0.013  # up to the next millicore
    assert krr.round_cpu(0.004, cfg) == 0.01  # floor: 10 millicores
    assert krr.round_memory(150e6, cfg) == math.ceil(150e6 / MIB) * MIB
    assert krr.round_memory(1e6, cfg) == 100 * MIB  # floor: 100 × 1024² bytes
    low = krr.KrrConfig(cpu_min_millicores=1, memory_min_mib=1)
    assert krr.round_cpu(0.0021, low) == 0.003 and krr.round_memory(3e6, low) == 3 * MIB
    assert krr.round_cpu(None, cfg) is None


def test_literals_and_queries() -> None:
    assert krr.step_literal(75.0) == "75s"
    assert krr.duration_literal(14 * 86400) == "14d"
    assert krr.duration_literal(36 * 3600) == "1d"  # KRR truncates to whole days
    assert krr.duration_literal(86400) == "1440m"
    assert krr.KrrConfig(cpu_percentile=99.5).cpu_quantiles == (0.99,)  # KRR rounds to two decimals
    q = krr.cpu_quantile(0.95, 'namespace="a"', "14d", "75s")
    assert q == (
        'quantile_over_time(0.95, max(rate(container_cpu_usage_seconds_total{namespace="a"}[75s])) '
        "by (namespace, container, pod, job)[14d:75s])"
    )


def test_kubelet_job_wins_else_the_first_alphabetically() -> None:
    k = {"namespace": "n", "pod": "p", "container": "c"}
    got = krr.pick_jobs([({**k, "job": "zeta"}, 1.0), ({**k, "job": "kubelet"}, 2.0), ({**k, "job": "a"}, 3.0)])
    assert got == {("n", "p", "c"): 2.0}
    got = krr.pick_jobs([({**k, "job": "zeta"}, 1.0), ({**k, "job": "beta"}, 3.0)])
    assert got == {("n", "p", "c"): 3.0}


def test_max_over_pods_not_enough_data_and_no_data() -> None:
    a, b, lone = ("n", "w-1", "app"), ("n", "w-2", "app"), ("n", "solo", "side")
    data = krr.PodData(
        cpu={a: 0.2, b: 0.5},
        cpu_points={},
        cpu_count={a: 60.0, b: 60.0, lone: 99.0},
        memory={a: 200e6, b: 100e6},
        memory_count={a: 50.0, b: 49.0},
    )
    owners = {("n", "w-1"): "Deployment/w", ("n", "w-2"): "Deployment/w"}
    recs = krr.recommend(data, owners, krr.KrrConfig(), known=[lone])
    w = next(r for r in recs if r.id == ContainerId("n", "Deployment/w", "app", "workload"))
    assert w.request.cpu == 0.5 and w.limit.cpu is None  # the max over pods, no CPU limit
    assert w.request.memory is None and w.reason == "memory: Not enough data"  # 99 < 100 points
    solo = next(r for r in recs if r.id.owner == "solo")
    assert solo.request.cpu is None and solo.reason == "cpu: No data; memory: No data"


def test_simple_limit_pools_pods() -> None:
    a, b = ("n", "p-1", "c"), ("n", "p-2", "c")
    pa, pb = np.linspace(0, 1, 101), np.linspace(2, 3, 101)
    data = krr.PodData({}, {a: pa, b: pb}, {a: 101.0, b: 101.0}, {a: 1e9, b: 2e9}, {a: 101.0, b: 101.0})
    owners = {("n", "p-1"): "StatefulSet/p", ("n", "p-2"): "StatefulSet/p"}
    (rec,) = krr.recommend(data, owners, krr.KrrConfig(strategy="simple_limit"))
    pooled = np.concatenate([pa, pb])
    assert rec.request.cpu == math.ceil(np.percentile(pooled, 66) * 1000) / 1000
    assert rec.limit.cpu == math.ceil(np.percentile(pooled, 96) * 1000) / 1000
    assert rec.request.memory == rec.limit.memory == math.ceil(2e9 * 1.15 / MIB) * MIB


# -- against a real Prometheus: KRR's own per-container queries are the truth ------------------------------


def _krr_instant(url: str, query: str) -> dict[str, float]:
    body = httpx.post(f"{url}/api/v1/query", data={"query": query, "time": str(NOW)}, timeout=30).json()
    assert body["status"] == "success", body
    return {s["metric"]["pod"]: float(s["value"][1]) for s in body["data"]["result"]}


def _krr_truth(url: str, strategy: str) -> dict[tuple[str, str, str], tuple[float, float | None, float]]:
    """What KRR computes per container: its queries, one container at a time, and its formulas."""
    out = {}
    for w in WORKLOADS:
        sel = f'namespace="{w.namespace}",pod=~"{"|".join(w.pods)}",container="{w.container}"'
        by = "by (container, pod, job)"
        peak = _krr_instant(url, f"max_over_time(max(container_memory_working_set_bytes{{{sel}}}) {by}[{HIST}:75s])")
        mem = max(peak.values()) * (1 + 15 / 100)
        if strategy == "simple":
            q = f"quantile_over_time(0.95, max(rate(container_cpu_usage_seconds_total{{{sel}}}[75s])) {by}[{HIST}:75s])"
            req, lim = max(_krr_instant(url, q).values()), None
        else:
            end = math.floor(NOW / 60) * 60
            body = httpx.post(
                f"{url}/api/v1/query_range",
                data={"query": f"max(rate(container_cpu_usage_seconds_total{{{sel}}}[75s])) {by}",
                      "start": str(end - DAYS * 86400), "end": str(end), "step": "75s"},
                timeout=30,
            ).json()  # fmt: skip
            pooled = np.concatenate([[float(v[1]) for v in s["values"]] for s in body["data"]["result"]])
            req, lim = float(np.percentile(pooled, 66)), float(np.percentile(pooled, 96))
        cfg = krr.KrrConfig()
        out[(w.namespace, w.workload, w.container)] = (
            krr.round_cpu(req, cfg) or 0.0,
            krr.round_cpu(lim, cfg),
            krr.round_memory(mem, cfg) or 0.0,
        )
    return out


@pytest.mark.parametrize("compute", ["local", "server"])
@pytest.mark.parametrize("strategy", ["simple", "simple_limit"])
def test_same_numbers_as_krrs_queries(prometheus_url: str, strategy: str, compute: str) -> None:
    r = run_cli(["rightsize", "-p", prometheus_url, "--end", str(NOW), "--history_duration", str(DAYS * 24),
                 "--strategy", strategy, "--pods-per-query", "1", "-f", "json", "--compute", compute])  # fmt: skip
    assert r.returncode == 0, r.stderr
    got = {
        (c["namespace"], c["workload"], c["container"]): (
            c["recommended"]["requests"]["cpu"],
            c["recommended"]["limits"]["cpu"],
            c["recommended"]["requests"]["memory"],
        )
        for c in json.loads(r.stdout)["containers"]
    }
    assert got == _krr_truth(prometheus_url, strategy)
    if strategy == "simple":
        # Known answer: 1 minute in 10 at 0.6 + 0.001·(i mod 7) + 0.0004 cores; P95 lies in that band.
        assert 0.601 <= got[("shop", "Deployment/web", "app")][0] <= 0.607


def test_file_path_known_answer(samples_csv: Path) -> None:
    r = run_cli(["rightsize", "--samples", str(samples_csv), "--history", HIST, "--strategy", "simple", "--json"])
    assert r.returncode == 0, r.stderr
    doc = {c["workload"]: c for c in json.loads(r.stdout)["containers"]}
    for w in WORKLOADS:
        p95 = max(float(np.percentile(samples(w, k)[1], 95)) for k in range(len(w.pods)))
        peak = max(float(samples(w, k)[2].max()) for k in range(len(w.pods)))
        c = doc[w.workload]
        assert c["recommended"]["requests"]["cpu"] == max(math.ceil(p95 * 1000) / 1000, 0.01)
        assert c["recommended"]["requests"]["memory"] == math.ceil(peak * 1.15 / MIB) * MIB
        assert c["samples"] == len(w.pods) * DAYS * 1440


def test_krr_flags(samples_csv: Path) -> None:
    r = run_cli(["rightsize", "--samples", str(samples_csv), "--history", HIST, "--strategy", "simple",
                 "--cpu-min", "700", "--mem-min", "2000", "-f", "csv_raw"])  # fmt: skip
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    web = next(row for row in rows if row["Name"] == "web")
    assert (web["Type"], web["Pods"], web["Container"]) == ("Deployment", "2", "app")
    assert web["CPU Requests Recommended"] == "0.7" and web["CPU Limits Recommended"] == "unset"
    assert web["Memory Requests Recommended"] == str(2000 * 1024 * 1024)
    assert web["CPU Requests Current"] == "1"
    r = run_cli(["rightsize", "--samples", str(samples_csv), "--strategy", "simple_limit", "--cpu_request", "50",
                 "--cpu_limit", "100", "--memory_buffer_percentage", "0", "-f", "pprint"])  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("{") and "'strategy': 'simple_limit'" in r.stdout
    bad = run_cli(["rightsize", "--samples", str(samples_csv), "--strategy", "simple", "--cpu-margin", "0.1"])
    assert bad.returncode == 2 and "no CPU margin" in bad.stderr


def test_step_is_krrs_by_default_and_timeframe_alias(prometheus_url: str) -> None:
    common = ["rightsize", "-p", prometheus_url, "--end", str(NOW), "--history", HIST, "--strategy", "simple", "--json"]
    a = run_cli([*common, "--timeframe_duration", "1.25"])
    b = run_cli(common)
    c = run_cli([*common, "--step", "5m"])
    assert a.returncode == b.returncode == c.returncode == 0, a.stderr + c.stderr
    assert json.loads(a.stdout)["containers"] == json.loads(b.stdout)["containers"]
    assert json.loads(a.stdout)["containers"] != json.loads(c.stdout)["containers"]


@pytest.mark.parametrize("compute", ["local", "server"])
def test_short_history_counts_points_as_krr(prometheus_url: str, compute: str) -> None:
    # One hour: 60 raw samples per pod but only 48 steps of 75 s, so web's two pods have 96 < 100 points (KRR
    # counts steps); a raw sample count (120) would wrongly call it enough.
    sel = 'namespace="shop",pod=~"web-7d9f-a|web-7d9f-b",container="app"'
    steps = _krr_instant(prometheus_url, f"count_over_time(max(container_memory_working_set_bytes{{{sel}}}) "
                         "by (container, pod, job)[60m:75s])")  # fmt: skip
    assert sum(steps.values()) < 100
    base = ["rightsize", "-p", prometheus_url, "--end", str(NOW), "--history_duration", "1", "--strategy", "simple",
            "--compute", compute]  # fmt: skip
    r = run_cli([*base, "--json"])
    assert r.returncode == 0, r.stderr
    web = next(c for c in json.loads(r.stdout)["containers"] if c["workload"] == "Deployment/web")
    assert web["reason"] == "cpu: Not enough data; memory: Not enough data"
    assert web["recommended"]["requests"] == {"cpu": None, "memory": None}
    r = run_cli([*base, "--points_required", str(int(sum(steps.values()))), "--json"])
    web = next(c for c in json.loads(r.stdout)["containers"] if c["workload"] == "Deployment/web")
    assert web["reason"] is None and web["recommended"]["requests"]["memory"] > 0


def test_local_evaluation_matches_prometheus_unrounded(prometheus_url: str) -> None:
    from zerowatt.rightsize.prometheus import ChunkPlan, PrometheusClient, parse_matrix
    from zerowatt.rightsize.prometheus_krr import evaluate_locally

    client = PrometheusClient(prometheus_url, ChunkPlan())
    at = NOW - 17.5  # off the step grid on purpose
    m = 'namespace="shop"'
    body = client.instant_raw(
        f'{{__name__=~"container_cpu_usage_seconds_total|container_memory_working_set_bytes",{m}}}[{2 * 86400 + 400}s]',
        at,
    )
    series, warnings = parse_matrix(body)
    assert not warnings and len(series) == 6  # 3 pods × 2 metrics
    cfg = krr.KrrConfig()
    answers = evaluate_locally(series, cfg, round(at * 1000), 2 * 86400 * 1000, np.zeros(0, np.int64))
    local = {(s["metric"]["pod"], s["metric"]["zw_kind"]): float(s["value"][1]) for s in answers}
    for kind, query in (
        ("cpu", krr.cpu_quantile(0.95, m, "2d", "75s")),
        ("cpu_count", krr.cpu_count(m, "2d", "75s")),
        ("memory", krr.memory_max(m, "2d", "75s")),
        ("memory_count", krr.memory_count(m, "2d", "75s")),
    ):
        got, _ = client.instant(query, at)
        assert len(got) == 3
        for s in got:
            assert local[(s["metric"]["pod"], kind)] == pytest.approx(float(s["value"][1]), rel=1e-12), (kind, s)
    # and the rate series itself, step by step, against a range query on a grid that is not the epoch's
    start, end = at - 3600 - 13, at
    got, _ = client.range(krr.cpu_rate('namespace="shop",pod="db-0"', "75s"), start, end, 75)
    steps = np.array([round(float(v[0]) * 1000) for v in got[0]["values"]], dtype=np.int64)
    want = np.array([float(v[1]) for v in got[0]["values"]])
    from zerowatt.rightsize.promql_local import rate

    ((_, ts, v),) = [s for s in series if s[0]["pod"] == "db-0" and s[0]["__name__"].startswith("container_cpu")]
    mine = rate(ts, v, steps, 75_000)
    assert np.array_equal(mine, want)
    client.close()


def test_vpa_recommender_flags(samples_csv: Path) -> None:
    base = ["rightsize", "--samples", str(samples_csv), "--history", HIST, "--json"]

    def targets(*extra: str) -> dict[str, dict[str, float]]:
        r = run_cli([*base, *extra])
        assert r.returncode == 0, r.stderr
        return {c["workload"]: c["target"] for c in json.loads(r.stdout)["containers"]}

    default = targets()
    floors = targets("--pod-recommendation-min-cpu-millicores", "4000", "--pod-recommendation-min-memory-mb", "8192")
    for t in floors.values():  # one container per pod: the whole pod floor
        assert t["cpu"] >= 4.0 and t["memory"] >= 8192 * MIB
    no_margin = targets("--recommendation-margin-fraction", "0")
    assert all(no_margin[w]["cpu"] < default[w]["cpu"] for w in default)
    # Two busy days then a quiet one: a 1 h half-life forgets the busy days, a 240 h one does not.
    trend = samples_csv.parent / "trend.csv"
    with trend.open("w") as fh:
        fh.write("timestamp,namespace,pod,container,cpu,memory\n")
        for i in range(3 * 1440):
            fh.write(f"{NOW - (3 * 1440 - 1 - i) * 60},ns,p,c,{1.0 if i < 2 * 1440 else 0.1},300000000\n")
    quick, slow = (
        run_cli(["rightsize", "--samples", str(trend), "--json", "--cpu-histogram-decay-half-life", h])
        for h in ("1h", "240h")
    )
    assert quick.returncode == slow.returncode == 0, quick.stderr + slow.stderr
    q_cpu = json.loads(quick.stdout)["containers"][0]["target"]["cpu"]
    s_cpu = json.loads(slow.stdout)["containers"][0]["target"]["cpu"]
    assert q_cpu < 0.2 < 1.0 < s_cpu
    bumped = targets("--oom-bump-up-ratio", "3", "--oom-min-bump-up-bytes", "0")
    assert bumped["Deployment/worker"]["memory"] > default["Deployment/worker"]["memory"]  # the OOM-killed one
    assert bumped["Deployment/web"] == default["Deployment/web"]
    bad = run_cli([*base, "--oom-bump-up-ratio", "0.5"])
    assert bad.returncode == 2 and "--oom-bump-up-ratio" in bad.stderr
    both = run_cli([*base, "--recommendation-margin-fraction", "0.1", "--cpu-margin", "0.2"])
    assert both.returncode == 2


def test_remote_read_gives_the_query_apis_samples(prometheus_url: str) -> None:
    from zerowatt.rightsize import remoteread
    from zerowatt.rightsize.prometheus import ChunkPlan, PrometheusClient, parse_matrix, read_raw

    client = PrometheusClient(prometheus_url, ChunkPlan())
    names = "container_cpu_usage_seconds_total|container_memory_working_set_bytes"
    text = f'{{__name__=~"{names}",namespace="shop"}}'
    structured = [(remoteread.RE, "__name__", names), (remoteread.EQ, "namespace", "shop")]
    via_chunks, _ = read_raw(client, text, structured, NOW - 30.5, 86400 + 300)
    assert client.remote_read_ok, client.remote_read_why  # the streamed chunks were used
    via_json, _ = parse_matrix(client.instant_raw(f"{text}[{86400 + 300}s]", NOW - 30.5))
    a = {tuple(sorted(lab.items())): (t, v) for lab, t, v in via_chunks}
    b = {tuple(sorted(lab.items())): (t, v) for lab, t, v in via_json}
    assert a.keys() == b.keys() and len(a) == 6
    for k, (t, v) in a.items():
        assert np.array_equal(t, b[k][0]) and np.array_equal(v, b[k][1]), k
    client.close()


def test_staleness_markers_end_a_series_and_are_not_rate_samples() -> None:
    from zerowatt.rightsize.promql_local import STALE_NAN_BITS, instant_values, rate

    marker = np.array([STALE_NAN_BITS], dtype=np.uint64).view(np.float64)[0]
    ts = np.array([0, 60_000, 120_000, 180_000], dtype=np.int64)
    v = np.array([1.0, 2.0, marker, 4.0])
    steps = np.array([60_000, 150_000, 200_000], dtype=np.int64)
    got = instant_values(ts, v, steps)
    assert got[0] == 2.0 and np.isnan(got[1]) and got[2] == 4.0  # at 150 s the latest sample is the marker
    r = rate(ts, v, np.array([180_000], dtype=np.int64), 180_000)
    assert r[0] == pytest.approx((4.0 - 1.0) / 180)  # three real samples, evenly spaced, window fully covered


@pytest.mark.parametrize("strategy", ["simple", "vpa"])
def test_without_the_decoder_the_query_api_gives_the_same(prometheus_url: str, tmp_path: Path, strategy: str) -> None:
    import subprocess
    import sys

    from tests.conftest import cli_env

    args = [sys.executable, "-m", "zerowatt", "rightsize", "-p", prometheus_url, "--end", str(NOW), "--history",
            HIST, "--strategy", strategy, "--json"]  # fmt: skip
    env = {**cli_env(), "CC": str(tmp_path / "no-such-cc"), "ZEROWATT_CACHE_DIR": str(tmp_path / "cache")}
    fallback = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    usual = run_cli(args[3:])
    assert fallback.returncode == usual.returncode == 0, fallback.stderr + usual.stderr
    assert "remote read not used" in fallback.stderr and "no-such-cc" in fallback.stderr
    assert "remote read not used" not in usual.stderr
    assert json.loads(fallback.stdout)["containers"] == json.loads(usual.stdout)["containers"]
