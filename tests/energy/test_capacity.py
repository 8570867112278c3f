"""Pricing reserved capacity (cores, GB → watts, facility watts, kWh, CO2e, water): hand-computed numbers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.flags import cli_message
from zerowatt.energy import Facility, ModelChoice, NodePowerModel
from zerowatt.energy.capacity import (
    CCF_FACILITY,
    SECONDS_PER_YEAR,
    ccf_facility,
    ccf_pricing,
    choose_pricing,
    pricing_from,
    with_overrides,
)
from zerowatt.energy.catalog import specpower_table
from zerowatt.errors import ValidationError

XEON_8180 = "Intel(R) Xeon(R) Platinum 8180 CPU @ 2.50GHz"


def test_node_model_pricing_by_hand() -> None:
    choice = ModelChoice(NodePowerModel(40.0, 200.0, 32), "configured", "test node")
    p = pricing_from(choice, Facility(pue=1.2, wue=0.5, carbon_g_per_kwh=300.0))
    assert (p.watts_per_core, p.watts_per_gb, p.basis, p.power_model) == (5.0, 0.392, "energy:configured", "node")
    # 2 cores × (200 − 40) / 32 W + 4 GB × 0.392 W = 10 + 1.568 = 11.568 W IT; × PUE 1.2 = 13.8816 W.
    c = p.cost(2.0, 4e9, seconds=3600.0)
    assert c.it_watts == pytest.approx(11.568)
    assert c.facility_watts == pytest.approx(13.8816)
    assert c.kwh == pytest.approx(0.0138816)  # facility kWh in one hour
    assert c.co2e_grams == pytest.approx(4.16448)  # 0.0138816 kWh × 300 g/kWh
    assert c.water_litres == pytest.approx(0.005784)  # IT 0.011568 kWh × WUE 0.5 L/kWh
    assert p.facility_watts(2.0, 4e9) == pytest.approx(13.8816)


def test_ccf_pricing_per_year_by_hand() -> None:
    p = ccf_pricing()
    assert (p.watts_per_core, p.basis, p.power_model) == (2.412, "ccf-default", "ccf")
    assert (p.facility.pue, p.facility.carbon_g_per_kwh) == (1.135, 428.07)
    assert SECONDS_PER_YEAR == 8760 * 3600
    c = p.cost(1.0, 0.0)
    assert c.facility_watts == pytest.approx(2.73762)  # 2.412 W × 1.135
    assert c.kwh == pytest.approx(23.9815512)  # 2.73762 W × 8760 h
    assert c.co2e_grams == pytest.approx(10265.7826222, rel=1e-9)  # 23.9815512 kWh × 428.07 g/kWh
    assert p.watts_per_gib == pytest.approx(0.392 * 2**30 / 1e9)
    added = p.cost(-1.0, -1e9)  # a recommendation that adds requests costs power: negative "freed"
    assert added.it_watts == pytest.approx(-2.804) and added.kwh < 0


def test_ccf_facility_overrides_only_what_is_given() -> None:
    assert ccf_facility() == CCF_FACILITY
    f = ccf_facility(pue="hyperscale")
    assert (f.pue, f.carbon_g_per_kwh) == (1.10, CCF_FACILITY.carbon_g_per_kwh)
    f = ccf_facility(carbon=50.0, wue="dry")
    assert (f.pue, f.wue, f.carbon_g_per_kwh, f.carbon_basis) == (1.135, 0.0, 50.0, "configured")
    assert "eu-west-1" in ccf_facility(region="aws:eu-west-1").carbon_basis


def test_choose_pricing_named_cpu_and_this_machine(tmp_path: Path) -> None:
    row = next(r for r in specpower_table() if r.cpu.lower().endswith("platinum 8180"))
    named = choose_pricing(cpu=XEON_8180)
    assert named.basis == "energy:specpower" and named.facility == Facility()
    assert named.watts_per_core == pytest.approx((row.max_watts - row.idle_watts) / row.threads)
    (tmp_path / "cpuinfo").write_text(
        "".join(f"processor : {i}\nvendor_id : GenuineIntel\nmodel name : {XEON_8180}\n\n" for i in range(4))
    )
    node = choose_pricing(proc_root=str(tmp_path))  # this machine = the /proc it is pointed at
    assert node.basis == "energy:specpower"
    assert node.watts_per_core == pytest.approx(named.watts_per_core)  # per thread, whatever the node's size


def test_choose_pricing_rejects_bad_values() -> None:
    assert cli_message(lambda: choose_pricing("guess"), "power_model").startswith("--power-model: expected one of")
    assert cli_message(lambda: choose_pricing("ccf", cpu=XEON_8180), "cpu").startswith("--cpu: names the CPU")
    with pytest.raises(ValidationError, match="pue"):
        choose_pricing("ccf", pue="0.9")
    with pytest.raises(ValidationError, match="carbon"):
        choose_pricing(carbon=-1.0)
    with pytest.raises(ValidationError, match="not both"):
        choose_pricing("ccf", carbon=1.0, region="aws:eu-west-1")


def test_without_the_model_catalog_node_falls_back_to_ccf(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zerowatt.energy.catalog", None)
    p = choose_pricing("node", pue="1.3")
    assert (p.watts_per_core, p.power_model, p.facility.pue) == (2.412, "ccf", 1.3)
    assert "not available" in p.detail


def test_overrides_and_json() -> None:
    p = with_overrides(ccf_pricing(), watts_per_core=3.0)
    assert (p.watts_per_core, p.watts_per_gb) == (3.0, 0.392) and "configured 3 W/core" in p.detail
    assert with_overrides(p) is p
    doc = p.to_json()
    assert doc["model"] == "ccf" and doc["basis"] == "ccf-default" and doc["watts_per_vcpu"] == 3.0
    assert (doc["pue"], doc["carbon_g_per_kwh"], doc["hours_per_year"]) == (1.135, 428.07, 8760.0)
    assert "3.000 W per core" in p.describe()
