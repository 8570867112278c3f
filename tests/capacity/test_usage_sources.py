"""Usage through the right-sizer's two loaders — a samples file and a real Prometheus (promtool backfill) — for
the right-sizer tests' synthetic workloads, placed on nodes by a hand-written snapshot."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.capacity.builders import deployment, listing, node, pod
from tests.conftest import invoke_cli
from tests.rightsize.conftest import DAYS, NOW, WORKLOADS, write_csv


@pytest.fixture(scope="module")
def samples_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_csv(tmp_path_factory.mktemp("capacity") / "samples.csv")


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from tests.rightsize.promfixture import start_prometheus

    yield from start_prometheus(tmp_path_factory.mktemp("prometheus"))


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    items: list[dict[str, Any]] = [node("n0", cpu="8", memory="32Gi"), node("n1", cpu="8", memory="32Gi")]
    for i, w in enumerate(WORKLOADS):
        kind, name = w.workload.split("/")
        if kind == "Deployment":
            items.append(deployment(name, w.namespace))
        for k, pod_name in enumerate(w.pods):
            owner = ("ReplicaSet", pod_name.rsplit("-", 1)[0]) if kind == "Deployment" else (kind, name)
            items.append(
                pod(
                    pod_name,
                    f"n{(i + k) % 2}",
                    cpu=f"{int(w.cpu_request * 1000)}m",
                    memory=str(int(w.memory_request)),
                    namespace=w.namespace,
                    owner=owner,
                    labels={"app": name},
                    container=w.container,
                )
            )
    f = tmp_path_factory.mktemp("snap") / "cluster.json"
    f.write_text(json.dumps(listing(*items)))
    return f


def report(snapshot: Path, *usage: str) -> dict[str, Any]:
    r = invoke_cli(["capacity", "--snapshot", str(snapshot), *usage, "--history", f"{DAYS}d", "--format", "json"])
    assert r.returncode == 0, r.stderr
    doc: dict[str, Any] = json.loads(r.stdout)
    return doc


def test_samples_file_and_prometheus_give_the_same_breakdown(
    snapshot: Path, samples_file: Path, prometheus: str
) -> None:
    from_file = report(snapshot, "--samples", str(samples_file))
    # rate() over 90 s keeps the one-minute peaks (the right-sizer's own test of the two loaders does the same)
    from_prom = report(snapshot, "--prometheus", prometheus, "--end", str(NOW), "--rate-window", "90s")
    for doc in (from_file, from_prom):
        assert doc["power"]["containers_with_usage"] == doc["power"]["containers"] == 4
    a, b = from_file["cluster"], from_prom["cluster"]
    assert a["capacity"] == b["capacity"]
    for cat in ("base", "variable", "safety", "growth", "redundancy", "idle"):
        assert b[cat]["cpu"] == pytest.approx(a[cat]["cpu"], abs=0.05), cat
        assert b[cat]["memory"] == pytest.approx(a[cat]["memory"], rel=0.05, abs=64 * 2**20), cat
    # web peaks at 0.6 of its 1-CPU request (one minute in ten): its two pods are both needed.
    web = next(w for w in from_file["workloads"] if w["name"] == "web")
    assert web["replicas"] == 2 and web["replicas_needed"] == 2
    # worker uses ~0.02–0.05 of its 0.5 CPU: most of its request is growth; its memory is near its limit.
    worker = next(c for c in from_file["containers"] if c["container"] == "main")
    assert worker["growth"]["cpu"] > 0.3
