"""The savings estimate from the energy subsystem: node model, facility PUE and carbon, metrics and CLI."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from tests.flags import cli_message
from tests.kube.conftest import NOW
from zerowatt.energy import Facility, ModelChoice, NodePowerModel, facility_from
from zerowatt.energy.capacity import CCF_FACILITY, ccf_facility, ccf_pricing, choose_pricing, pricing_from
from zerowatt.energy.catalog import specpower_table
from zerowatt.errors import ValidationError
from zerowatt.kube.controller import PassReport
from zerowatt.kube.metrics import DownscalerMetrics

XEON_8180 = "Intel(R) Xeon(R) Platinum 8180 CPU @ 2.50GHz"


def test_pricing_from_a_model_and_a_facility() -> None:
    choice = ModelChoice(NodePowerModel(40.0, 200.0, 32), "configured", "test")
    c = pricing_from(choice, Facility(pue=1.2, carbon_g_per_kwh=300.0))
    assert c.watts_per_core == pytest.approx(5.0)  # (200 - 40) / 32: marginal, idle watts not claimed
    assert (c.facility.pue, c.facility.carbon_g_per_kwh, c.basis) == (1.2, 300.0, "energy:configured")
    assert c.watts_per_gib == ccf_pricing().watts_per_gib  # the energy model has no memory term
    assert c.facility_watts(2.0, 2**30) == pytest.approx((2 * 5.0 + 0.4209) * 1.2)


def test_named_cpu_uses_its_specpower_row_and_a_region() -> None:
    c = choose_pricing(cpu=XEON_8180, pue="hyperscale", region="aws:eu-west-1")
    why = c.describe()
    row = next(r for r in specpower_table() if r.cpu.lower().endswith("platinum 8180"))
    assert c.basis == "energy:specpower"
    assert c.watts_per_core == pytest.approx((row.max_watts - row.idle_watts) / row.threads)
    assert c.facility.pue == 1.10
    assert c.facility.carbon_g_per_kwh == facility_from(region="aws:eu-west-1").carbon_g_per_kwh
    assert "SPECpower" in why and "eu-west-1" in why


def test_this_nodes_model_and_the_energy_defaults() -> None:
    c = choose_pricing()
    assert c.basis.startswith("energy:") and c.watts_per_core > 0
    assert c.facility == Facility()


def test_ccf_default_kept_and_overridable() -> None:
    assert choose_pricing("ccf") == ccf_pricing(ccf_facility()) == ccf_pricing()
    c = choose_pricing("ccf", pue="1.3", carbon=100.0)
    assert (c.watts_per_core, c.facility.pue, c.facility.carbon_g_per_kwh) == (2.4120, 1.3, 100.0)
    assert choose_pricing("ccf", pue="1.3").facility.carbon_g_per_kwh == CCF_FACILITY.carbon_g_per_kwh


def test_bad_facility_options_name_the_flag() -> None:
    assert "--region: unknown cloud region" in cli_message(lambda: choose_pricing(region="mars:olympus-1"), "region")
    with pytest.raises(ValidationError, match="pue"):
        choose_pricing(pue="leaky")
    with pytest.raises(ValidationError, match="not both"):
        choose_pricing(carbon=10.0, region="aws:eu-west-1")


def test_metrics_expose_the_coefficients_and_integrate_kwh_and_co2e() -> None:
    registry = CollectorRegistry()
    choice = ModelChoice(NodePowerModel(0.0, 100.0, 10), "specpower", "test")
    c = pricing_from(choice, Facility(pue=1.5, carbon_g_per_kwh=400.0))
    metrics = DownscalerMetrics(registry, c)
    report = PassReport()
    report.released.add(10, (1.0, 0.0))  # 10 cores released
    metrics.observe(report, NOW)
    metrics.observe(report, NOW + timedelta(hours=1))
    text = generate_latest(registry).decode()
    assert "zerowatt_downscaler_saved_watts 150.0" in text  # 10 cores × 10 W × PUE 1.5
    assert "zerowatt_downscaler_saved_energy_kwh_total 0.15" in text
    assert "zerowatt_downscaler_saved_co2e_grams_total 60.0" in text
    assert "zerowatt_downscaler_watts_per_released_core 10.0" in text
    assert 'zerowatt_downscaler_power_model_info{basis="energy:specpower"} 1.0' in text
    assert "zerowatt_downscaler_pue 1.5" in text and "zerowatt_downscaler_grid_g_co2e_per_kwh 400.0" in text


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--power-model", "guess"], "--power-model"),
        (["--region", "nowhere-9"], "nowhere-9"),
        (["--power-model", "ccf", "--cpu", "EPYC 7763"], "--cpu"),
    ],
)
def test_cli_rejects_bad_power_options(args: list[str], needle: str) -> None:
    from tests.conftest import run_cli

    result = run_cli(["downscaler", "--once", *args], timeout=60)
    assert result.returncode == 2 and needle in result.stderr


def test_without_the_energy_subsystem_the_ccf_default_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from zerowatt.cli.downscaler import _pricing

    monkeypatch.setitem(sys.modules, "zerowatt.energy.catalog", None)  # as if the model catalog were absent
    fallback = _pricing("energy", None, None, None, None)
    assert (fallback.watts_per_core, fallback.facility, fallback.basis) == (2.412, CCF_FACILITY, "ccf-default")
    assert "not available" in fallback.detail
    monkeypatch.undo()
    assert _pricing("energy", XEON_8180, None, None, None).basis == "energy:specpower"
    assert _pricing("ccf", None, "hyperscale", None, None).facility.pue == 1.10


def test_downscaler_savings_match_the_shared_pricing_by_hand() -> None:
    """The default (CCF) savings are the numbers they were before the pricing moved to zerowatt.energy.capacity,
    and the same pricing the right-sizer's totals use."""
    registry = CollectorRegistry()
    pricing = choose_pricing("ccf")
    metrics = DownscalerMetrics(registry)  # no pricing given: CCF's
    report = PassReport()
    report.released.add(4, (0.5, 2**30))  # 4 replicas × (0.5 core, 1 GiB): 2 cores, 4 GiB
    metrics.observe(report, NOW)
    metrics.observe(report, NOW + timedelta(hours=1))
    sample = registry.get_sample_value
    # (2 × 2.412 W + 4.294967296 GB × 0.392 W/GB) × PUE 1.135 = 6.50762718 W × 1.135
    assert sample("zerowatt_downscaler_saved_watts") == pytest.approx(7.386156851)
    assert sample("zerowatt_downscaler_saved_energy_kwh_total") == pytest.approx(0.007386156851)
    assert sample("zerowatt_downscaler_saved_co2e_grams_total") == pytest.approx(0.007386156851 * 428.07)
    assert pricing.cost(2.0, 4 * 2**30).facility_watts == pytest.approx(sample("zerowatt_downscaler_saved_watts"))
    assert metrics.pricing == pricing
