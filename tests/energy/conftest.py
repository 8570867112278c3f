"""Fixtures for the energy tests: synthetic powercap/hwmon trees and a fake NVML replaying a recording."""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.conftest import SHARED_DATA, requires_shared, shared_path

NVML_RELATIVE = "gpu-nvml-h200"
NVML_WHAT = "the NVML recording of an H200 (nvml_samples.csv, nvml_process_util.csv, phases.json)"
NVML_DIR = SHARED_DATA / NVML_RELATIVE
#: Mark of the tests that replay the recording.
requires_nvml_recording = requires_shared(NVML_RELATIVE, NVML_WHAT)


class RaplTree:
    """A powercap tree: ``add`` creates a zone directory, ``set`` writes its counter."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def add(self, entry: str, name: str, energy_uj: int, max_range_uj: int = 262143328850) -> Path:
        zone = self.root / entry
        zone.mkdir()
        (zone / "name").write_text(name + "\n")
        (zone / "max_energy_range_uj").write_text(f"{max_range_uj}\n")
        (zone / "energy_uj").write_text(f"{energy_uj}\n")
        return zone

    def set(self, entry: str, energy_uj: int | str) -> None:
        """Write the counter atomically: a sysfs attribute is never seen half-written, but a file being
        rewritten in place is, by a process that samples it meanwhile (``energy serve`` in the CLI test)."""
        counter = self.root / entry / "energy_uj"
        partial = counter.with_name("energy_uj.partial")
        partial.write_text(f"{energy_uj}\n")
        partial.replace(counter)


@pytest.fixture
def rapl(tmp_path: Path) -> RaplTree:
    return RaplTree(tmp_path / "powercap")


@pytest.fixture
def proc_tree(tmp_path: Path) -> Path:
    """A tiny /proc: two CPUs, an EPYC 7763, two processes (one in a docker container)."""
    root = tmp_path / "proc"
    root.mkdir()
    (root / "cpuinfo").write_text(
        "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\n"
        "model name\t: AMD EPYC 7763 64-Core Processor\n\n"
        "processor\t: 1\nmodel name\t: AMD EPYC 7763 64-Core Processor\n"
    )
    return root


class FakeNvml:
    """Replays ``gpu-nvml-h200`` through the subset of the pynvml API zerowatt uses; ``t`` is replay time."""

    NVML_ERROR_NOT_FOUND = 6

    class NVMLError(Exception):
        pass

    def __init__(self, with_counter: bool = True) -> None:
        shared_path(NVML_RELATIVE, NVML_WHAT)  # skips the test when the recording is absent
        with (NVML_DIR / "nvml_samples.csv").open() as f:
            self.samples = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
        with (NVML_DIR / "nvml_process_util.csv").open() as f:
            self.procs = list(csv.DictReader(f))
        self.with_counter = with_counter
        self.t = 0.0
        self.shutdown = False

    def row(self) -> dict[str, float]:
        current = self.samples[0]
        for r in self.samples:
            if r["t"] > self.t:
                break
            current = r
        return current

    def nvmlInit(self) -> None:
        pass

    def nvmlShutdown(self) -> None:
        self.shutdown = True

    def nvmlDeviceGetCount(self) -> int:
        return 1

    def nvmlDeviceGetHandleByIndex(self, i: int) -> str:
        return f"gpu{i}"

    def nvmlDeviceGetName(self, handle: str) -> bytes:
        return b"NVIDIA H200"

    def nvmlDeviceGetPowerUsage(self, handle: str) -> int:
        return round(self.row()["power_w"] * 1000)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: str) -> int:
        if not self.with_counter:
            raise self.NVMLError("Not Supported")
        return round(self.row()["energy_j"] * 1000)

    def nvmlDeviceGetUtilizationRates(self, handle: str) -> Any:
        r = self.row()
        return SimpleNamespace(gpu=int(r["util_gpu"]), memory=int(r["util_mem"]))

    def nvmlDeviceGetProcessUtilization(self, handle: str, last_seen: int) -> list[Any]:
        out = [
            SimpleNamespace(
                pid=int(p["pid"]),
                timeStamp=int(p["sample_ts_us"]),
                smUtil=int(p["sm_util"]),
                memUtil=int(p["mem_util"]),
                encUtil=0,
                decUtil=0,
            )
            for p in self.procs
            if float(p["t"]) <= self.t and int(p["sample_ts_us"]) > last_seen
        ]
        if not out:
            raise self.NVMLError(self.NVML_ERROR_NOT_FOUND)
        return out


@pytest.fixture
def fake_nvml() -> FakeNvml:
    return FakeNvml()
