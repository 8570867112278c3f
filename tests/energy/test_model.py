"""Model choice (SPECpower, family, CCF, default, configured), shipped tables, facility maths."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from zerowatt.energy.catalog import ModelOverrides, choose_model, coefficients_table, specpower_table
from zerowatt.energy.cpu import CpuIdentity, cpu_key, family_key, microarchitecture, parse_cpuinfo
from zerowatt.energy.derive import derive_all
from zerowatt.energy.facility import Facility, facility_from, region_carbon
from zerowatt.energy.model import NodePowerModel
from zerowatt.errors import ValidationError

DATA = Path(__file__).resolve().parents[2] / "src" / "zerowatt" / "energy" / "data"


def test_shipped_tables_are_exactly_what_the_generator_derives(shared_data: Path) -> None:
    for name, derived in derive_all(shared_data / "power").items():
        assert (DATA / name).read_text() == derived.text, f"{name} drifted: run scripts/derive_energy_data.py"
    assert (DATA / "NOTICE.md").is_file()


def test_cpu_keys_match_proc_and_specpower_spellings() -> None:
    assert cpu_key("Intel(R) Xeon(R) Platinum 8180 CPU @ 2.50GHz") == cpu_key("Intel Xeon Platinum 8180")
    assert cpu_key("AMD EPYC 7763 64-Core Processor") == "epyc 7763"
    assert cpu_key("Intel(R) Xeon(R) CPU E5-2660 v2 @ 2.20GHz") == "xeon e5-2660 v2"
    assert family_key("epyc 9654p") == "epyc 9654"


def test_model_reproduces_the_matched_specpower_system_on_its_own_thread_count() -> None:
    row = next(r for r in specpower_table() if r.key == "epyc 7763")
    choice = choose_model(CpuIdentity("AMD EPYC 7763 64-Core Processor"), logical_cpus=row.threads)
    assert choice.basis == "specpower"
    assert math.isclose(choice.model.watts(0.0), row.idle_watts, rel_tol=1e-12)
    assert math.isclose(choice.model.watts(1.0), row.max_watts, rel_tol=1e-12)
    half = choose_model(CpuIdentity("AMD EPYC 7763 64-Core Processor"), logical_cpus=row.threads // 2).model
    assert math.isclose(half.max_watts, row.max_watts / 2)  # per-thread scaling


def test_family_match_then_ccf_then_generic() -> None:
    fam = choose_model(CpuIdentity("AMD EPYC 7763X-ish", logical_cpus=4))
    assert fam.basis in ("specpower-family", "ccf-coefficients", "generic-default")
    this = parse_cpuinfo("vendor_id : AuthenticAMD\ncpu family : 25\nmodel : 1\nmodel name : AMD EPYC\nprocessor : 0\n")
    assert microarchitecture(this) == "EPYC 3rd Gen"
    ccf = choose_model(this, logical_cpus=2)
    row = next(c for c in coefficients_table() if c.provider == "aws" and c.architecture == "EPYC 3rd Gen")
    assert ccf.basis == "ccf-coefficients" and math.isclose(ccf.model.idle_watts, 2 * row.min_watts_per_vcpu)
    generic = choose_model(CpuIdentity("Mystery CPU 9000"), logical_cpus=3)
    assert generic.basis == "generic-default" and math.isclose(generic.model.max_watts, 3 * 3.5)
    intel = CpuIdentity("x", vendor_id="GenuineIntel", family=6, model=0x55, stepping=7)
    assert microarchitecture(intel) == "Cascade Lake"


def test_configured_values_win_and_partial_keeps_the_other_half() -> None:
    cpu = CpuIdentity("AMD EPYC 7763 64-Core Processor", logical_cpus=8)
    full = choose_model(cpu, ModelOverrides(idle_watts=40, max_watts=200))
    assert full.basis == "configured" and full.model == NodePowerModel(40, 200, 8)
    per_cpu = choose_model(cpu, ModelOverrides(idle_watts_per_cpu=1, max_watts_per_cpu=5))
    assert per_cpu.model == NodePowerModel(8, 40, 8)
    partial = choose_model(cpu, ModelOverrides(max_watts=500))
    assert partial.model.idle_watts == choose_model(cpu).model.idle_watts and partial.model.max_watts == 500
    with pytest.raises(ValidationError, match="max_watts"):
        choose_model(cpu, ModelOverrides(idle_watts=100, max_watts=10))


def test_node_power_model_api() -> None:
    m = NodePowerModel(100, 300, 50)
    assert m.watts(0.5) == 200 and m.watts(2.0) == 300 and m.watts(-1) == 100
    assert m.watts_per_core_active() == 4.0 and m.energy(1.0, 10) == 3000
    with pytest.raises(ValidationError):
        NodePowerModel(10, 5)


def test_facility_maths() -> None:
    r = Facility(pue=1.5, wue=2.0, carbon_g_per_kwh=400).report(3.6e6)  # 1 kWh of IT energy
    assert r.facility_joules == 5.4e6 and r.water_litres == 2.0 and math.isclose(r.co2e_grams, 600.0)
    default = facility_from()
    assert (default.pue, default.wue, default.carbon_g_per_kwh) == (1.58, 1.8, 475.0)
    assert facility_from(pue="hyperscale", wue="dry").report(1.0).water_litres == 0.0
    with pytest.raises(ValidationError, match="pue"):
        Facility(pue=0.9)
    with pytest.raises(ValidationError):
        facility_from(carbon=1.0, region="aws:eu-west-1")


def test_region_presets() -> None:
    assert region_carbon("aws:eu-west-1").g_co2e_per_kwh == 316.0
    assert region_carbon("gcp:europe-west1").g_co2e_per_kwh == 196.0
    assert region_carbon("azure:West Europe").g_co2e_per_kwh == 390.0
    assert region_carbon("eu-north-1").provider == "aws"
    with pytest.raises(ValidationError, match="did you mean"):
        region_carbon("aws:eu-west-9")
    with pytest.raises(ValidationError, match="unknown"):
        region_carbon("azure:finlandcentral")  # skipped at derivation: its published factor is malformed
