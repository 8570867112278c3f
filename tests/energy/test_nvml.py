"""The NVML source replaying a real H200 recording: energy and per-process attribution per known phase."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from prometheus_client import generate_latest

from tests.energy.conftest import NVML_DIR, FakeNvml, requires_nvml_recording
from zerowatt.energy.exporter import Exporter
from zerowatt.energy.facility import Facility
from zerowatt.energy.meter import Meter
from zerowatt.energy.model import ModelChoice, NodePowerModel
from zerowatt.energy.procfs import ProcReader
from zerowatt.energy.sources.model import ModelSource
from zerowatt.energy.sources.nvml import NvmlSource

pytestmark = requires_nvml_recording


def _replay(nvml: FakeNvml, step: float = 0.5) -> tuple[float, dict[int, dict[str, float]]]:
    roles = {}
    with (NVML_DIR / "nvml_process_util.csv").open() as f:
        for row in csv.DictReader(f):
            if row["role"] in ("A", "B"):
                roles[int(row["pid"])] = row["role"]
    src = NvmlSource(nvml)
    total = 0.0
    per_phase: dict[int, dict[str, float]] = {}
    t = 0.0
    src.sample(t)
    while t < nvml.samples[-1]["t"]:
        t += step
        nvml.t = t
        (dev,) = src.sample(t)
        split = dev.attribution()
        assert math.isclose(split.accounted(), dev.joules, rel_tol=1e-9, abs_tol=1e-9)
        total += dev.joules
        phase = per_phase.setdefault(int(nvml.row()["phase"]), {"A": 0.0, "B": 0.0, "active": 0.0, "total": 0.0})
        phase["active"] += split.active
        phase["total"] += dev.joules
        for pid, joules in split.workloads.items():
            phase[roles.get(pid, "?")] = phase.get(roles.get(pid, "?"), 0.0) + joules
    src.close()
    assert nvml.shutdown
    return total, per_phase


def test_energy_counter_replay_matches_the_recording(fake_nvml: FakeNvml) -> None:
    total, _ = _replay(fake_nvml)
    first, last = fake_nvml.samples[0]["energy_j"], fake_nvml.samples[-1]["energy_j"]
    assert math.isclose(total, last - first, rel_tol=1e-6)


def test_power_integration_without_counter_agrees_within_one_percent() -> None:
    counter_total, _ = _replay(FakeNvml())
    power_total, _ = _replay(FakeNvml(with_counter=False), step=0.1)
    assert math.isclose(power_total, counter_total, rel_tol=0.01)


def test_per_process_attribution_follows_the_known_phases(fake_nvml: FakeNvml) -> None:
    phases = {p["name"]: p["index"] for p in json.loads((NVML_DIR / "phases.json").read_text())}
    _, per = _replay(fake_nvml)
    for name in ("idle", "idle-end"):
        p = per[phases[name]]
        assert p["active"] < 0.02 * p["total"], name  # 0% utilisation: energy stays idle, at device level
    for name in ("A25", "A50", "A100"):
        p = per[phases[name]]
        assert p["B"] == 0.0 and p["A"] > 0.9 * p["active"], name  # one process: it gets the active energy
    both = per[phases["A100+B100"]]
    share = both["A"] / (both["A"] + both["B"])
    # Power is flat in this phase, so the energy share must follow NVML's own SM samples (B was sampled
    # more often than A while the two time-sliced the GPU: the recording, not zerowatt, says ~40/60).
    assert abs(share - _recorded_share_of_a(phases["A100+B100"])) < 0.05, share
    assert 0.25 < share < 0.75
    mixed = per[phases["A60+B20"]]
    # In the recording A's work fills the high-power first half of the phase and B the low-power second
    # half, so by energy A's part is well above its share of SM samples.
    assert mixed["A"] > 2 * mixed["B"] > 0


def _recorded_share_of_a(phase: int) -> float:
    """A's share of the summed SM utilisation samples NVML recorded in ``phase``."""
    sums = {"A": 0.0, "B": 0.0}
    with (NVML_DIR / "nvml_process_util.csv").open() as f:
        for row in csv.DictReader(f):
            if int(row["phase"]) == phase and row["role"] in sums:
                sums[row["role"]] += float(row["sm_util"])
    return sums["A"] / (sums["A"] + sums["B"])


def test_exporter_publishes_gpu_energy_from_the_replay(fake_nvml: FakeNvml, tmp_path: Path) -> None:
    (tmp_path / "stat").write_text("cpu  1 0 1 10 0 0 0 0 0 0\ncpu0 1 0 1 10 0 0 0 0 0 0\n")
    model = ModelSource(ModelChoice(NodePowerModel(1.0, 2.0, 1), "configured", "t"))
    exporter = Exporter(
        Meter(model, ProcReader(str(tmp_path)), per_process=False),
        Facility(),
        node_name="n1",
        gpu=NvmlSource(fake_nvml),
    )
    for t in (0.0, 42.0, 50.0):  # into the A100 phase
        fake_nvml.t = t
        exporter.step(t)
    text = generate_latest(exporter.registry).decode()
    gpu = float(text.split('zerowatt_gpu_joules_total{gpu="0",name="NVIDIA H200",node_name="n1"} ')[1].split()[0])
    assert math.isclose(gpu, fake_nvml.row()["energy_j"] - fake_nvml.samples[0]["energy_j"], rel_tol=1e-6)
    assert 'zerowatt_gpu_process_joules_total{gpu="0",node_name="n1",pid="492"}' in text
    exporter.stop()
    assert fake_nvml.shutdown
