"""Pick the node's power source: RAPL, then hwmon, then the model; fall back at run time too.

Whatever is chosen, :class:`FallbackSource` keeps the chain: when a sensor that worked at start-up stops
working (a file vanishes, a read fails) it logs once, switches to the next source for good, and every
later report names the source actually used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zerowatt.energy.catalog import ModelOverrides, choose_model
from zerowatt.energy.cpu import parse_cpuinfo
from zerowatt.energy.model import ModelChoice
from zerowatt.energy.procfs import ProcReader
from zerowatt.energy.sources.base import EnergySample, LogOnce, PowerSource, SensorError, SourceInfo
from zerowatt.energy.sources.hwmon import HwmonSource
from zerowatt.energy.sources.model import ModelSource
from zerowatt.energy.sources.rapl import RaplSource
from zerowatt.errors import SettingError
from zerowatt.units import Seconds

SOURCE_NAMES = ("auto", "rapl", "hwmon", "model")


@dataclass(frozen=True)
class Roots:
    """Where the adapters read from; tests point these at synthetic trees."""

    powercap: str = "/sys/class/powercap"
    hwmon: str = "/sys/class/hwmon"
    proc: str = "/proc"


@dataclass
class FallbackSource:
    """The first working source of a chain; switches to the next one when it fails."""

    chain: list[PowerSource]
    notes: list[str] = field(default_factory=list)
    problems: LogOnce = field(default_factory=LogOnce)
    _index: int = 0
    _last_now: Seconds | None = None

    @property
    def current(self) -> PowerSource:
        return self.chain[self._index]

    @property
    def info(self) -> SourceInfo:
        return self.current.info

    def sample(self, now: Seconds, usage: float) -> EnergySample:
        while True:
            try:
                out = self.current.sample(now, usage)
                self._last_now = now
                return out
            except SensorError as exc:
                if self._index + 1 >= len(self.chain):
                    raise
                self._index += 1
                note = f"{exc}; falling back to {self.current.info.name}"
                self.notes.append(note)
                self.problems.warning(note)
                if self._last_now is not None:
                    self.current.sample(self._last_now, usage)  # prime: the next call covers this interval


def model_choice(roots: Roots, overrides: ModelOverrides | None = None) -> ModelChoice:
    """The model for this node, from its ``/proc/cpuinfo`` and logical CPU count."""
    procs = ProcReader(roots.proc)
    cpu = parse_cpuinfo(procs.cpuinfo())
    try:
        _, cpus = procs.node()
    except OSError:
        cpus = cpu.logical_cpus
    return choose_model(cpu, overrides, logical_cpus=cpus)


def detect_source(
    roots: Roots | None = None, overrides: ModelOverrides | None = None, prefer: str = "auto"
) -> FallbackSource:
    """Build the source chain. ``prefer`` is ``auto`` (RAPL, hwmon, model), or one source by name.

    Configured model watts (``overrides``) select the model under ``auto``: the operator said what the
    node draws. A named hardware source that cannot be read is an error, not a silent fallback at start.
    """
    if prefer not in SOURCE_NAMES:
        raise SettingError("source", f"expected one of {', '.join(SOURCE_NAMES)}, got {prefer!r}")
    r = roots or Roots()
    chain: list[PowerSource] = []
    notes: list[str] = []
    wanted = ["model"] if prefer == "model" or (prefer == "auto" and overrides and overrides.any()) else None
    candidates = wanted or (["rapl", "hwmon"] if prefer == "auto" else [prefer])
    for name in candidates:
        if name == "model":
            continue
        try:
            chain.append(RaplSource(r.powercap) if name == "rapl" else HwmonSource(r.hwmon))
        except SensorError as exc:
            if prefer != "auto":
                raise
            notes.append(str(exc))
    chain.append(ModelSource(model_choice(r, overrides)))
    return FallbackSource(chain, notes)
