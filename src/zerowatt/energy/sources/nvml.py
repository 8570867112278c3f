"""NVIDIA GPUs through NVML (the ``nvidia-ml-py`` package, optional extra ``zerowatt[gpu]``).

Per device and interval: energy from the total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``,
millijoules since driver load) when supported, else the trapezoid of ``nvmlDeviceGetPowerUsage``
(milliwatts); device utilisation (``nvmlDeviceGetUtilizationRates``); and each process's SM utilisation
from ``nvmlDeviceGetProcessUtilization`` samples newer than the last seen timestamp (averaged per pid).

The NVML module is a parameter, so tests replay a real recording through a fake with the same calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zerowatt.energy.attribution import Attribution, attribute
from zerowatt.energy.sources.base import LogOnce, SensorError, SourceInfo, Trust
from zerowatt.units import Joules, Seconds


@dataclass(frozen=True)
class GpuDeviceSample:
    """One GPU over one interval."""

    index: int
    name: str
    seconds: Seconds
    joules: Joules
    util_gpu: float  # percent, 0-100
    sm_util_by_pid: dict[int, float] = field(default_factory=dict)  # percent of the interval's sampling periods
    uuid: str = ""

    def attribution(self, spread_idle: bool = False) -> Attribution[int]:
        """Kepler's ratio model on the GPU: active = energy × utilisation, shared by SM utilisation."""
        return attribute(
            self.joules, self.util_gpu / 100.0, self.sm_util_by_pid, self.util_gpu, spread_idle=spread_idle
        )


@dataclass
class _Device:
    index: int
    handle: Any
    name: str
    uuid: str = ""
    has_counter: bool = True
    last_mj: float | None = None
    last_mw: float | None = None
    last_ts_us: int = 0


def _load_pynvml() -> Any:
    try:
        import pynvml
    except ImportError:
        raise SensorError("NVML unavailable: install the gpu extra (pip install 'zerowatt[gpu]')") from None
    return pynvml


class NvmlSource:
    """Energy and per-process SM utilisation of every NVIDIA GPU NVML sees."""

    def __init__(self, nvml: Any = None) -> None:
        self.nvml = nvml if nvml is not None else _load_pynvml()
        self.problems = LogOnce()
        self._last_now: Seconds | None = None
        try:
            self.nvml.nvmlInit()
            count = int(self.nvml.nvmlDeviceGetCount())
            self.devices = []
            for i in range(count):
                handle = self.nvml.nvmlDeviceGetHandleByIndex(i)
                name = self.nvml.nvmlDeviceGetName(handle)
                try:
                    uuid = self.nvml.nvmlDeviceGetUUID(handle)
                except Exception:  # an old driver or binding: Kepler's gpu_uuid label stays empty
                    uuid = ""
                self.devices.append(
                    _Device(
                        i,
                        handle,
                        name.decode() if isinstance(name, bytes) else str(name),
                        uuid.decode() if isinstance(uuid, bytes) else str(uuid),
                    )
                )
        except Exception as exc:  # NVMLError subclasses, or a missing libnvidia-ml: both mean "no GPU source"
            raise SensorError(f"NVML unavailable: {exc}") from None
        if not self.devices:
            raise SensorError("NVML found no GPU")

    @property
    def info(self) -> SourceInfo:
        names = ", ".join(f"{d.index}: {d.name}" for d in self.devices)
        return SourceInfo("nvml", f"GPU board power via NVML ({names})", Trust.MEASURED)

    def _joules(self, dev: _Device, seconds: Seconds) -> Joules:
        nvml = self.nvml
        if dev.has_counter:
            try:
                mj = float(nvml.nvmlDeviceGetTotalEnergyConsumption(dev.handle))
                last, dev.last_mj = dev.last_mj, mj
                return 0.0 if last is None or mj < last else (mj - last) / 1e3
            except nvml.NVMLError as exc:
                dev.has_counter = False
                self.problems.warning(f"GPU {dev.index}: no energy counter ({exc}); integrating power readings")
        mw = float(nvml.nvmlDeviceGetPowerUsage(dev.handle))
        last, dev.last_mw = dev.last_mw, mw
        return 0.0 if last is None else (mw + last) / 2 / 1e3 * seconds

    def _processes(self, dev: _Device) -> dict[int, float]:
        nvml = self.nvml
        try:
            samples = nvml.nvmlDeviceGetProcessUtilization(dev.handle, dev.last_ts_us)
        except nvml.NVMLError:
            return {}  # NVML_ERROR_NOT_FOUND: no process ran a kernel since the last timestamp
        # Each sample covers one NVML sampling period; when processes time-slice the GPU, a period often
        # reports only the process that ran in it. So a pid's utilisation over the interval is the sum of
        # its samples over the number of distinct periods (absent = 0), not the mean of its own samples.
        sums: dict[int, float] = {}
        periods: set[int] = set()
        for s in samples:
            ts = int(s.timeStamp)
            if ts <= dev.last_ts_us:
                continue
            periods.add(ts)
            sums[int(s.pid)] = sums.get(int(s.pid), 0.0) + float(s.smUtil)
        if samples:
            dev.last_ts_us = max(dev.last_ts_us, max(int(s.timeStamp) for s in samples))
        return {pid: total / len(periods) for pid, total in sums.items()} if periods else {}

    def sample(self, now: Seconds) -> list[GpuDeviceSample]:
        """Every device's energy and utilisation since the previous call (zero energy on the first)."""
        seconds = 0.0 if self._last_now is None else max(0.0, now - self._last_now)
        self._last_now = now
        out = []
        for dev in self.devices:
            try:
                joules = self._joules(dev, seconds)
                util = float(self.nvml.nvmlDeviceGetUtilizationRates(dev.handle).gpu)
                procs = self._processes(dev)
            except self.nvml.NVMLError as exc:
                raise SensorError(f"GPU {dev.index} unreadable: {exc}") from None
            out.append(GpuDeviceSample(dev.index, dev.name, seconds, joules, util, procs, dev.uuid))
        return out

    def close(self) -> None:
        try:
            self.nvml.nvmlShutdown()
        except Exception as exc:  # shutting down a vanished driver must not crash the caller
            self.problems.warning(f"nvmlShutdown failed: {exc}")
