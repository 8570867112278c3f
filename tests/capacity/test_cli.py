"""``zerowatt capacity`` end to end: the JSON schema, usage from a rightsize samples CSV, table width, YAML."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tests.capacity.fixtures import sixty_percent
from tests.conftest import cli_env, invoke_cli
from zerowatt.capacity.breakdown import CATEGORIES

END = 1_764_288_000  # 2025-11-28T00:00:00Z


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    f = tmp_path / "cluster.json"
    f.write_text(json.dumps(sixty_percent().doc))
    return f


@pytest.fixture
def samples(tmp_path: Path) -> Path:
    """Two days of 5-minute samples for the nine api pods: CPU 0.2–0.6 cores, memory 100–150 MiB."""
    rng = np.random.default_rng(13)
    f = tmp_path / "usage.csv"
    with f.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "namespace", "pod", "container", "cpu", "memory"])
        for t in range(END - 2 * 86400 + 300, END + 1, 300):
            for i in range(3):
                for j in range(3):
                    cpu = 0.2 + 0.4 * rng.random()
                    w.writerow(
                        [t, "default", f"api-7c9d-{i}{j}", "app", f"{cpu:.4f}", int((100 + 50 * rng.random()) * 2**20)]
                    )
    return f


def cap(*args: str) -> dict[str, Any]:
    r = invoke_cli(["capacity", *args, "--format", "json"])
    assert r.returncode == 0, r.stderr
    doc: dict[str, Any] = json.loads(r.stdout)
    return doc


def test_json_has_the_documented_schema(snapshot: Path) -> None:
    doc = cap("--snapshot", str(snapshot), "--node-watts", "80,300", "--price-per-node-hour", "0.4")
    assert doc["schema"] == "zerowatt.capacity/v1"
    for key in ("capacity", *CATEGORIES):
        v = doc["cluster"][key]
        assert set(v) == {"cpu", "memory", "watts"}
        assert isinstance(v["cpu"], float) and isinstance(v["memory"], int) and isinstance(v["watts"], float)
    assert len(doc["nodes"]) == 3 and {"name", "capacity", *CATEGORIES} <= doc["nodes"][0].keys()
    for name in ("requests", "rightsized", "cluster_autoscaler"):
        s = doc["consolidation"][name]
        for key in ("nodes_off", "nodes_kept", "kwh_per_year", "co2e_kg_per_year", "water_litres_per_year"):
            assert key in s
    req = doc["consolidation"]["requests"]
    assert req["money_per_year"] == pytest.approx(0.4 * 8760)
    assert req["kwh_per_year"] == pytest.approx(80 * 8.76 * 1.58, rel=1e-3)
    assert doc["workloads"][0]["kind"] == "Deployment" and doc["workloads"][0]["name"] == "api"
    assert doc["containers"][0]["container"] == "app"


def test_usage_from_a_rightsize_samples_file_fills_the_categories(snapshot: Path, samples: Path) -> None:
    doc = cap("--snapshot", str(snapshot), "--samples", str(samples), "--node-watts", "80,300")
    assert doc["power"]["containers_with_usage"] == 9 == doc["power"]["containers"]
    cl = doc["cluster"]
    # 2-CPU requests against 0.2–0.6 cores of use: base ≈ 9 × 0.24, the peak below 9 × 0.6, much growth.
    assert 9 * 0.2 <= cl["base"]["cpu"] <= 9 * 0.3
    assert cl["base"]["cpu"] + cl["variable"]["cpu"] <= 9 * 0.61
    assert cl["growth"]["cpu"] + cl["redundancy"]["cpu"] > 9
    # 9 replicas needing ~0.6/2 of their request each: 3 are enough, 6 are redundant.
    (w,) = doc["workloads"]
    assert w["replicas"] == 9 and w["replicas_needed"] == 3
    assert cl["redundancy"]["cpu"] == pytest.approx(6 * 2.0, abs=0.01)
    # Right-sized requests (the VPA target, ~0.6 × 1.15 cores) put the nine pods on one node.
    assert len(doc["consolidation"]["rightsized"]["nodes_off"]) == 2
    assert doc["consolidation"]["rightsized"]["requested"]["cpu"] < 9 * 0.8


def test_table_fits_100_columns_whatever_the_terminal(snapshot: Path, samples: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "zerowatt", "capacity", "--snapshot", str(snapshot), "--samples", str(samples)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**cli_env(), "COLUMNS": "240"},
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) > 20
    assert max(len(line) for line in lines) <= 100
    assert "Servers that can be off" in r.stdout and "kubectl drain" in r.stdout


def test_yaml_is_the_same_document(snapshot: Path) -> None:
    as_json = cap("--snapshot", str(snapshot))
    r = invoke_cli(["capacity", "--snapshot", str(snapshot), "--format", "yaml"])
    assert r.returncode == 0, r.stderr
    assert yaml.safe_load(r.stdout) == as_json


def test_output_file(snapshot: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    r = invoke_cli(["capacity", "--snapshot", str(snapshot), "--json", "--output", str(out)])
    assert r.returncode == 0 and r.stdout == ""
    assert json.loads(out.read_text())["cluster"]["nodes"] == 3


def test_table_folds_long_names_within_100_columns(tmp_path: Path) -> None:
    from tests.capacity.builders import deployment, listing, node, pod

    long = "ip-10-20-30-40.eu-west-1.compute.internal.with-a-suffix-nobody-would-type-twice-" * 2
    items = [deployment("web")] + [node(f"{long}{i}") for i in range(3)]
    items += [pod(f"web-5d8f7c-{i}", f"{long}{i}", cpu="1") for i in range(3)]
    f = tmp_path / "long.json"
    f.write_text(json.dumps(listing(*items)))
    r = invoke_cli(["capacity", "--snapshot", str(f)])
    assert r.returncode == 0, r.stderr
    assert max(len(line) for line in r.stdout.splitlines()) <= 100
    assert "kubectl drain" in r.stdout
