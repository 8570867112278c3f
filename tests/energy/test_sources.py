"""RAPL and hwmon on synthetic sysfs trees; the fallback chain; the model source."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import pytest

from tests.energy.conftest import RaplTree
from zerowatt.energy.catalog import ModelOverrides
from zerowatt.energy.detect import FallbackSource, Roots, detect_source
from zerowatt.energy.model import ModelChoice, NodePowerModel
from zerowatt.energy.sources import rapl as rapl_module
from zerowatt.energy.sources.base import SensorError, Trust
from zerowatt.energy.sources.hwmon import HwmonSource
from zerowatt.energy.sources.model import ModelSource
from zerowatt.energy.sources.rapl import RaplSource


def _two_socket(tree: RaplTree) -> None:
    tree.add("intel-rapl:0", "package-0", 1_000_000)
    tree.add("intel-rapl:0:0", "core", 500_000)
    tree.add("intel-rapl:0:1", "dram", 200_000)
    tree.add("intel-rapl:1", "package-1", 3_000_000)
    tree.add("intel-rapl:1:0", "core", 100_000)


def test_rapl_total_is_packages_plus_dram_never_cores(rapl: RaplTree) -> None:
    _two_socket(rapl)
    src = RaplSource(str(rapl.root))
    assert src.sample(0.0, 0.0).total == 0.0
    rapl.set("intel-rapl:0", 51_000_000)  # +50 J
    rapl.set("intel-rapl:0:0", 30_500_000)  # +30 J inside the package
    rapl.set("intel-rapl:0:1", 10_200_000)  # +10 J DRAM, outside the package
    rapl.set("intel-rapl:1", 43_000_000)  # +40 J
    rapl.set("intel-rapl:1:0", 20_100_000)
    s = src.sample(1.0, 0.0)
    assert math.isclose(s.total, 100.0)
    by_kind: dict[str, float] = {}
    for (kind, _), j in s.zones.items():
        by_kind[kind] = by_kind.get(kind, 0.0) + j
    assert math.isclose(by_kind["core"], 50.0) and math.isclose(by_kind["package"], 90.0)
    assert src.info.trust is Trust.MEASURED and "DRAM" in src.info.measures


def test_rapl_psys_alone_is_the_total(rapl: RaplTree) -> None:
    rapl.add("intel-rapl:0", "package-0", 0)
    rapl.add("intel-rapl:1", "psys", 0)
    src = RaplSource(str(rapl.root))
    src.sample(0.0, 0.0)
    rapl.set("intel-rapl:0", 20_000_000)
    rapl.set("intel-rapl:1", 35_000_000)
    assert math.isclose(src.sample(1.0, 0.0).total, 35.0)


def test_rapl_counter_wrap_uses_max_energy_range(rapl: RaplTree) -> None:
    rapl.add("intel-rapl:0", "package-0", 999_000_000, max_range_uj=1_000_000_000)
    src = RaplSource(str(rapl.root))
    src.sample(0.0, 0.0)
    rapl.set("intel-rapl:0", 4_000_000)  # wrapped: 1 J to the top, then 4 J
    assert math.isclose(src.sample(1.0, 0.0).total, 5.0)


def test_rapl_garbage_reading_drops_the_interval_and_logs_once(
    rapl: RaplTree, caplog: pytest.LogCaptureFixture
) -> None:
    rapl.add("intel-rapl:0", "package-0", 0, max_range_uj=10**15)
    src = RaplSource(str(rapl.root))
    src.sample(0.0, 0.0)
    rapl.set("intel-rapl:0", 10**14)  # 100 MJ in a second: not a real reading
    with caplog.at_level(logging.WARNING, "zerowatt.energy"):
        assert src.sample(1.0, 0.0).total == 0.0
        rapl.set("intel-rapl:0", 2 * 10**14)
        src.sample(2.0, 0.0)
    assert sum("implausible" in r.message for r in caplog.records) == 1


def test_rapl_unreadable_counters_refuse_to_start(rapl: RaplTree, monkeypatch: pytest.MonkeyPatch) -> None:
    rapl.add("intel-rapl:0", "package-0", 0)
    energy = rapl.root / "intel-rapl:0" / "energy_uj"
    energy.chmod(0o400)
    if os.geteuid() == 0:  # root reads anything: make the read fail the way the kernel does for others

        def denied(path: str) -> int:
            if path.endswith("energy_uj"):
                raise PermissionError(13, "Permission denied", path)
            return int(Path(path).read_text())

        monkeypatch.setattr(rapl_module, "_read_int", denied)
    with pytest.raises(SensorError, match="CVE-2020-8694"):
        RaplSource(str(rapl.root))


def test_missing_trees_fall_back_to_the_model(tmp_path: Path, proc_tree: Path) -> None:
    (proc_tree / "stat").write_text("cpu  1 0 1 10 0 0 0 0 0 0\ncpu0 1 0 1 10 0 0 0 0 0 0\n")
    src = detect_source(Roots(str(tmp_path / "none"), str(tmp_path / "none2"), str(proc_tree)))
    assert src.info.name == "model" and len(src.notes) == 2
    assert src.info.trust is Trust.ESTIMATED and "SPECpower" in src.info.detail


def test_configured_watts_select_the_model_even_with_rapl(rapl: RaplTree, proc_tree: Path) -> None:
    rapl.add("intel-rapl:0", "package-0", 0)
    (proc_tree / "stat").write_text("cpu  1 0 1 10 0 0 0 0 0 0\ncpu0 1 0 1 10 0 0 0 0 0 0\n")
    roots = Roots(str(rapl.root), "/nonexistent", str(proc_tree))
    assert detect_source(roots).info.name == "rapl"
    src = detect_source(roots, ModelOverrides(idle_watts=50, max_watts=150))
    assert src.info.name == "model" and src.info.trust is Trust.CONFIGURED


def test_vanishing_rapl_zone_switches_to_the_model_mid_run(rapl: RaplTree, caplog: pytest.LogCaptureFixture) -> None:
    rapl.add("intel-rapl:0", "package-0", 0)
    model = ModelSource(ModelChoice(NodePowerModel(10.0, 30.0, 2), "configured", "test"))
    chain = FallbackSource([RaplSource(str(rapl.root)), model])
    chain.sample(0.0, 0.5)
    rapl.set("intel-rapl:0", 12_000_000)
    assert math.isclose(chain.sample(1.0, 0.5).total, 12.0)
    (rapl.root / "intel-rapl:0" / "energy_uj").unlink()
    with caplog.at_level(logging.WARNING, "zerowatt.energy"):
        s = chain.sample(2.0, 0.5)
    assert chain.info.name == "model" and math.isclose(s.total, 20.0)  # P(0.5) = 20 W over 1 s
    assert any("falling back to model" in r.message for r in caplog.records)


def _hwmon(root: Path, name: str, files: dict[str, str]) -> Path:
    chip = root / f"hwmon{len(list(root.glob('hwmon*'))) if root.exists() else 0}"
    chip.mkdir(parents=True)
    (chip / "name").write_text(name + "\n")
    for k, v in files.items():
        (chip / k).write_text(v + "\n")
    return chip


def test_hwmon_prefers_socket_energy_over_core_counters(tmp_path: Path) -> None:
    root = tmp_path / "hwmon"
    chip = _hwmon(
        root,
        "amd_energy",
        {
            "energy1_input": "0",
            "energy1_label": "Ecore000",
            "energy2_input": "0",
            "energy2_label": "Ecore001",
            "energy3_input": "0",
            "energy3_label": "Esocket0",
        },
    )
    src = HwmonSource(str(root))
    src.sample(0.0, 0.0)
    (chip / "energy1_input").write_text("4000000\n")
    (chip / "energy3_input").write_text("9000000\n")
    s = src.sample(1.0, 0.0)
    assert math.isclose(s.total, 9.0) and list(s.zones) == [("amd_energy:Esocket0", str(chip / "energy3_input"))]


def test_hwmon_power_meter_wins_and_power_is_integrated(tmp_path: Path) -> None:
    root = tmp_path / "hwmon"
    _hwmon(root, "amdgpu", {"power1_input": "50000000"})
    meter = _hwmon(root, "power_meter", {"power1_input": "100000000"})
    src = HwmonSource(str(root))
    assert "platform power meter" in src.info.measures
    src.sample(0.0, 0.0)
    (meter / "power1_input").write_text("200000000\n")
    assert math.isclose(src.sample(2.0, 0.0).total, 300.0)  # trapezoid (100 W + 200 W) / 2 × 2 s


def test_hwmon_without_sensors_refuses(tmp_path: Path) -> None:
    _hwmon(tmp_path / "hwmon", "k10temp", {"temp1_input": "40000"})
    with pytest.raises(SensorError, match="no readable hwmon"):
        HwmonSource(str(tmp_path / "hwmon"))


def test_hwmon_garbage_value_is_skipped_at_start(tmp_path: Path) -> None:
    root = tmp_path / "hwmon"
    _hwmon(root, "x", {"power1_input": "garbage", "power2_input": "1000000"})
    src = HwmonSource(str(root))
    assert len(src.sensors) == 1


def test_rapl_counters_that_never_move_give_way_to_the_model(rapl: RaplTree) -> None:
    rapl.add("intel-rapl:0", "package-0", 123)  # a VM exposing powercap with a frozen counter
    model = ModelSource(ModelChoice(NodePowerModel(10.0, 30.0, 2), "configured", "test"))
    chain = FallbackSource([RaplSource(str(rapl.root)), model])
    for t in range(6):
        s = chain.sample(float(t), 0.0)
    assert chain.info.name == "model" and math.isclose(s.total, 10.0)
