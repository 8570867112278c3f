"""The savings estimate from the energy subsystem: node model, facility PUE and carbon, metrics and CLI."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from tests.kube.conftest import NOW
from zerowatt.energy import Facility, ModelChoice, NodePowerModel, facility_from
from zerowatt.energy.catalog import specpower_table
from zerowatt.errors import ValidationError
from zerowatt.kube.controller import PassReport
from zerowatt.kube.metrics import DownscalerMetrics
from zerowatt.kube.power import ccf_coefficients, coefficients_from, energy_coefficients
from zerowatt.kube.savings import PowerCoefficients

XEON_8180 = "Intel(R) Xeon(R) Platinum 8180 CPU @ 2.50GHz"


def test_coefficients_from_a_model_and_a_facility() -> None:
    choice = ModelChoice(NodePowerModel(40.0, 200.0, 32), "configured", "test")
    c = coefficients_from(choice, Facility(pue=1.2, carbon_g_per_kwh=300.0))
    assert c.watts_per_core == pytest.approx(5.0)  # (200 - 40) / 32: marginal, idle watts not claimed
    assert (c.pue, c.grams_co2e_per_kwh, c.basis) == (1.2, 300.0, "energy:configured")
    assert c.watts_per_gib == PowerCoefficients().watts_per_gib  # the energy model has no memory term
    assert c.watts(2.0, 2**30) == pytest.approx((2 * 5.0 + 0.4209) * 1.2)


def test_named_cpu_uses_its_specpower_row_and_a_region() -> None:
    c, why = energy_coefficients(cpu=XEON_8180, pue="hyperscale", region="aws:eu-west-1")
    row = next(r for r in specpower_table() if r.cpu.lower().endswith("platinum 8180"))
    assert c.basis == "energy:specpower"
    assert c.watts_per_core == pytest.approx((row.max_watts - row.idle_watts) / row.threads)
    assert c.pue == 1.10 and c.grams_co2e_per_kwh == facility_from(region="aws:eu-west-1").carbon_g_per_kwh
    assert "SPECpower" in why and "eu-west-1" in why


def test_this_nodes_model_and_the_energy_defaults() -> None:
    c, _ = energy_coefficients()
    assert c.basis.startswith("energy:") and c.watts_per_core > 0
    assert (c.pue, c.grams_co2e_per_kwh) == (Facility().pue, Facility().carbon_g_per_kwh)


def test_ccf_default_kept_and_overridable() -> None:
    assert ccf_coefficients() == PowerCoefficients()
    c = ccf_coefficients(pue="1.3", carbon=100.0)
    assert (c.watts_per_core, c.pue, c.grams_co2e_per_kwh) == (2.4120, 1.3, 100.0)
    assert ccf_coefficients(pue="1.3").grams_co2e_per_kwh == PowerCoefficients().grams_co2e_per_kwh


def test_bad_facility_options_name_the_flag() -> None:
    with pytest.raises(ValidationError, match="--region"):
        energy_coefficients(region="mars:olympus-1")
    with pytest.raises(ValidationError, match="pue"):
        energy_coefficients(pue="leaky")
    with pytest.raises(ValidationError, match="not both"):
        energy_coefficients(carbon=10.0, region="aws:eu-west-1")


def test_metrics_expose_the_coefficients_and_integrate_kwh_and_co2e() -> None:
    registry = CollectorRegistry()
    choice = ModelChoice(NodePowerModel(0.0, 100.0, 10), "specpower", "test")
    c = coefficients_from(choice, Facility(pue=1.5, carbon_g_per_kwh=400.0))
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

    from zerowatt.cli.downscaler import _coefficients

    monkeypatch.setitem(sys.modules, "zerowatt.kube.power", None)  # as if zerowatt.energy were not installed
    assert _coefficients("energy", None, None, None, None) == PowerCoefficients()
    monkeypatch.undo()
    assert _coefficients("energy", XEON_8180, None, None, None).basis == "energy:specpower"
    assert _coefficients("ccf", None, "hyperscale", None, None).pue == 1.10
