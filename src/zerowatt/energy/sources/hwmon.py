"""hwmon power and energy sensors (``/sys/class/hwmon/hwmon*/{power,energy}*_input``).

Units (kernel Documentation/hwmon/sysfs-interface): ``powerN_input`` microwatts, ``energyN_input``
microjoules (cumulative). Which sensors make the node total, so nothing is counted twice:

- an ACPI ``power_meter`` chip measures the whole platform: when present it alone is the total;
- within a chip, energy counters are preferred over power readings (they integrate between samples);
- within a chip, sensors labelled as a socket/package/total (``Esocket0``, ``Package``) are used and the
  per-core sensors beside them (``Ecore003``, contained in the socket) are not;
- otherwise the chips' chosen sensors are summed.

Power readings become energy with the trapezoid rule between two samples.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from zerowatt.energy.sources.base import EnergySample, LogOnce, SensorError, SourceInfo, Trust, ZoneKey
from zerowatt.units import Joules, Seconds

_AGGREGATE_LABELS = ("socket", "package", "pkg", "total", "platform", "system")
MAX_PLAUSIBLE_WATTS = 100_000.0


@dataclass
class _Sensor:
    chip: str
    kind: str  # "energy" or "power"
    path: str  # the *_input file
    label: str
    last: float | None = None


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def _scan_chip(chip_dir: str) -> tuple[str, list[_Sensor]]:
    try:
        chip = _read(os.path.join(chip_dir, "name"))
    except OSError:
        chip = os.path.basename(chip_dir)
    found: dict[str, list[_Sensor]] = {"energy": [], "power": []}
    for entry in sorted(os.listdir(chip_dir)):
        for kind in ("energy", "power"):
            if entry.startswith(kind) and entry.endswith("_input"):
                stem = entry[: -len("_input")]
                try:
                    label = _read(os.path.join(chip_dir, f"{stem}_label"))
                except OSError:
                    label = stem
                found[kind].append(_Sensor(chip, kind, os.path.join(chip_dir, entry), label))
    chosen = found["energy"] or found["power"]
    aggregate = [s for s in chosen if any(a in s.label.lower() for a in _AGGREGATE_LABELS)]
    return chip, aggregate or chosen


class HwmonSource:
    """Energy from hwmon sensors under ``root``."""

    def __init__(self, root: str = "/sys/class/hwmon") -> None:
        self.root = root
        self.problems = LogOnce()
        self._last_now: Seconds | None = None
        try:
            chips = sorted(os.listdir(root))
        except OSError as exc:
            raise SensorError(f"{root}: no hwmon tree ({exc.strerror})") from None
        by_chip: dict[str, list[_Sensor]] = {}
        for entry in chips:
            chip_dir = os.path.join(root, entry)
            try:
                chip, sensors = _scan_chip(chip_dir)
            except OSError:
                continue
            readable = []
            for s in sensors:
                try:
                    float(_read(s.path))
                    readable.append(s)
                except (OSError, ValueError) as exc:
                    self.problems.warning(f"hwmon sensor {s.path} skipped: {exc}")
            if readable:
                by_chip.setdefault(chip, []).extend(readable)
        if not by_chip:
            raise SensorError(f"no readable hwmon power or energy sensor under {root}")
        if "power_meter" in by_chip:
            by_chip = {"power_meter": by_chip["power_meter"]}
        self.sensors = [s for chip in sorted(by_chip) for s in by_chip[chip]]

    @property
    def info(self) -> SourceInfo:
        names = ", ".join(sorted({f"{s.chip}/{s.label}" for s in self.sensors}))
        platform = any(s.chip == "power_meter" for s in self.sensors)
        what = "platform power meter" if platform else "hwmon sensors"
        return SourceInfo("hwmon", f"{what}: {names}", Trust.MEASURED, self.root)

    def sample(self, now: Seconds, usage: float) -> EnergySample:
        del usage
        seconds = 0.0 if self._last_now is None else max(0.0, now - self._last_now)
        first = self._last_now is None
        self._last_now = now
        zones: dict[ZoneKey, Joules] = {}
        for s in self.sensors:
            try:
                value = float(_read(s.path))
            except (OSError, ValueError) as exc:
                raise SensorError(f"hwmon sensor {s.path} unreadable: {exc}") from None
            last, s.last = s.last, value
            if first or last is None:
                joules = 0.0
            elif s.kind == "energy":
                joules = (value - last) / 1e6
            else:
                joules = (value + last) / 2 / 1e6 * seconds
            if joules < 0 or (seconds > 0 and joules / seconds > MAX_PLAUSIBLE_WATTS):
                self.problems.warning(
                    f"hwmon sensor {s.path}: implausible reading {value} after {last}; interval dropped"
                )
                continue
            zones[(f"{s.chip}:{s.label}", s.path)] = joules
        return EnergySample(seconds, zones, sum(zones.values()))
