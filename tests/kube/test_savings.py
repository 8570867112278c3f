"""Released requests, the power coefficients (re-derived from CCF's data) and the Prometheus metrics."""

from __future__ import annotations

import csv
import statistics
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from tests.conftest import SHIPPED_ENERGY_DATA
from tests.kube.conftest import NOW, workload
from zerowatt.energy import Facility
from zerowatt.energy.capacity import CapacityPricing, ccf_pricing
from zerowatt.kube.controller import Change, PassReport
from zerowatt.kube.kinds import KINDS
from zerowatt.kube.metrics import DownscalerMetrics
from zerowatt.kube.savings import Released, parse_quantity, released_replicas, requests_per_pod


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", 0.5),
        ("2", 2.0),
        ("1.5", 1.5),
        ("128Mi", 128 * 2**20),
        ("1Gi", 2**30),
        ("1G", 1e9),
        ("1e3", 1000.0),
        ("100k", 1e5),
        (".5", 0.5),
    ],
)
def test_parse_quantity(text: str, value: float) -> None:
    assert parse_quantity(text) == pytest.approx(value)


@pytest.mark.parametrize("bad", ["", "abc", "1Xi", "--1"])
def test_parse_quantity_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="quantity"):
        parse_quantity(bad)


def test_requests_per_pod_sums_containers_and_skips_garbage() -> None:
    containers = [
        {"resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}},
        {"resources": {"requests": {"cpu": "1"}}},
        {"resources": {"requests": {"cpu": "lots"}}},
        {},
    ]
    obj = workload(spec={"replicas": 2, "template": {"spec": {"containers": containers}}})
    cores, mem = requests_per_pod(obj, KINDS["deployments"])
    assert cores == pytest.approx(1.25) and mem == 256 * 2**20
    wasm = workload("WasmApp", spec={"replicas": 1, "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}})
    assert requests_per_pod(wasm, KINDS["wasmapps"]) == (pytest.approx(0.1), 64 * 2**20)
    assert released_replicas(KINDS["deployments"], 1, 4) == 3
    assert released_replicas(KINDS["horizontalpodautoscalers"], 1, 4) == 0  # bounds, not pods
    assert released_replicas(KINDS["deployments"], 0, None) == 0


def test_default_coefficients_match_ccf_data() -> None:
    # The shipped tables (tests/energy/test_model.py checks they are what the CCF data derives).
    def aws(name: str) -> list[dict[str, str]]:
        with (SHIPPED_ENERGY_DATA / name).open(newline="") as fh:
            return [r for r in csv.DictReader(fh) if r["provider"] == "aws"]

    rows = aws("ccf_coefficients.csv")
    lo = statistics.mean(float(r["min_watts_per_vcpu"]) for r in rows)
    hi = statistics.mean(float(r["max_watts_per_vcpu"]) for r in rows)
    grams = statistics.mean(float(r["g_co2e_per_kwh"]) for r in aws("grid_carbon.csv"))
    c = ccf_pricing()
    assert c.watts_per_core == pytest.approx(lo + 0.5 * (hi - lo), abs=1e-4)
    assert c.facility.carbon_g_per_kwh == pytest.approx(grams, abs=0.01)
    assert c.watts_per_gib == pytest.approx(0.392 * 2**30 / 1e9, abs=1e-4)


def test_metrics_gauges_and_integrated_energy() -> None:
    registry = CollectorRegistry()
    coeff = CapacityPricing(
        watts_per_core=10.0, watts_per_gb=1e9 / 2**30, facility=Facility(pue=1.0, carbon_g_per_kwh=500.0), basis="t"
    )
    metrics = DownscalerMetrics(registry, coeff)
    report = PassReport(objects=3, released=Released(objects=1, replicas=4, cores=2.0, memory=4 * 2**30))
    report.down[("deployments", "dev")] = 1
    report.changes.append(Change("deployments", "dev", "web", "down", "downtime", 4, 0, True))
    metrics.observe(report, NOW)
    metrics.observe(report, NOW + timedelta(hours=1))
    sample = registry.get_sample_value
    assert sample("zerowatt_downscaler_saved_watts") == pytest.approx(24.0)
    assert sample("zerowatt_downscaler_saved_energy_kwh_total") == pytest.approx(0.024)
    assert sample("zerowatt_downscaler_saved_co2e_grams_total") == pytest.approx(12.0)
    assert sample("zerowatt_downscaler_released_cpu_cores") == 2.0
    assert sample("zerowatt_downscaler_objects_down", {"kind": "deployments", "namespace": "dev"}) == 1
    assert sample("zerowatt_downscaler_changes_total", {"kind": "deployments", "action": "down"}) == 2
    metrics.observe(PassReport(), NOW + timedelta(hours=2))  # all back up: the per-namespace series go away
    assert sample("zerowatt_downscaler_objects_down", {"kind": "deployments", "namespace": "dev"}) is None
    assert sample("zerowatt_downscaler_saved_energy_kwh_total") == pytest.approx(0.048)
    assert b"zerowatt_downscaler_saved_watts 0.0" in generate_latest(registry)
