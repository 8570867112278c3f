"""Intel/AMD RAPL through the powercap sysfs tree (``/sys/class/powercap``).

Only ``intel-rapl:*`` entries are read: ``intel-rapl-mmio:*`` is a second interface to the same package
domain on some Intel parts and would count it twice. Top-level ``intel-rapl:N`` zones are ``package-N``
(one per socket) or ``psys`` (the platform/SoC, a superset of the packages); sub-zones ``intel-rapl:N:M``
are ``core`` (PP0) and ``uncore`` (PP1), both inside their package, and ``dram``, which the package does
*not* include (Intel SDM vol. 3B, 15.10). So the node total is psys when present, else Σ packages + Σ dram;
core and uncore are reported but never added.

Counters are ``energy_uj`` microjoules wrapping at ``max_energy_range_uj``: a reading below the previous
one means one wrap (sampling every second keeps that unambiguous: a wrap takes minutes at any real power).
Since the RAPL side channel (CVE-2020-8694) ``energy_uj`` is readable by root only on most kernels: such
zones are skipped, and with no readable zone the source refuses to start (the meter falls back). Counters
that never move (some VMs expose a frozen powercap tree) make the source give way after a few seconds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from zerowatt.energy.sources.base import EnergySample, LogOnce, SensorError, SourceInfo, Trust, ZoneKey
from zerowatt.units import Joules, Seconds

#: Counters that have not moved for this long are not counting (some VMs expose powercap full of zeros).
STUCK_AFTER_SECONDS = 5.0
#: Above this a counter delta is garbage (a reset or a corrupt read), not energy: 100 kW for one node.
MAX_PLAUSIBLE_WATTS = 100_000.0


@dataclass
class _Zone:
    kind: str
    path: str
    max_range_uj: int
    last_uj: int | None = None


def _read_int(path: str) -> int:
    with open(path) as f:
        return int(f.read().strip())


def _kind(name: str) -> str:
    return name.split("-", 1)[0] if name.startswith("package") else name


class RaplSource:
    """Energy per RAPL zone from a powercap tree rooted at ``root``."""

    def __init__(self, root: str = "/sys/class/powercap") -> None:
        self.root = root
        self.problems = LogOnce()
        self.zones: list[_Zone] = []
        self._last_now: Seconds | None = None
        self._still_seconds = 0.0
        try:
            entries = sorted(os.listdir(root))
        except OSError as exc:
            raise SensorError(f"{root}: no powercap tree ({exc.strerror})") from None
        denied: list[str] = []
        for entry in entries:
            if not entry.startswith("intel-rapl:"):
                continue
            path = os.path.join(root, entry)
            try:
                with open(os.path.join(path, "name")) as f:
                    name = f.read().strip()
                max_range = _read_int(os.path.join(path, "max_energy_range_uj"))
                _read_int(os.path.join(path, "energy_uj"))
            except PermissionError:
                denied.append(path)
                continue
            except (OSError, ValueError) as exc:
                self.problems.warning(f"RAPL zone {path} skipped: {exc}")
                continue
            if max_range <= 0:
                self.problems.warning(f"RAPL zone {path} skipped: max_energy_range_uj {max_range} ≤ 0")
                continue
            self.zones.append(_Zone(_kind(name), path, max_range))
        if not self.zones:
            why = (
                f"energy_uj not readable in {', '.join(denied)} (root only since CVE-2020-8694)"
                if denied
                else f"no RAPL zones under {root}"
            )
            raise SensorError(f"RAPL unavailable: {why}")
        self.kinds = sorted({z.kind for z in self.zones})
        if denied:
            self.problems.warning(f"RAPL zones not readable (root only since CVE-2020-8694): {', '.join(denied)}")

    @property
    def info(self) -> SourceInfo:
        covers = (
            "psys (platform)" if "psys" in self.kinds else "CPU packages" + (" + DRAM" if "dram" in self.kinds else "")
        )
        return SourceInfo("rapl", f"RAPL {covers}; zones {', '.join(self.kinds)}", Trust.MEASURED, self.root)

    def _delta(self, zone: _Zone, seconds: Seconds) -> Joules | None:
        try:
            now_uj = _read_int(os.path.join(zone.path, "energy_uj"))
        except (OSError, ValueError) as exc:
            raise SensorError(f"RAPL zone {zone.path} unreadable: {exc}") from None
        last, zone.last_uj = zone.last_uj, now_uj
        if last is None:
            return 0.0
        delta = now_uj - last
        if delta < 0:
            delta += zone.max_range_uj
        if delta < 0 or (seconds > 0 and delta / 1e6 / seconds > MAX_PLAUSIBLE_WATTS):
            self.problems.warning(
                f"RAPL zone {zone.path}: implausible reading {now_uj} after {last}; interval dropped",
                key=f"implausible {zone.path}",
            )
            return None
        return delta / 1e6

    def sample(self, now: Seconds, usage: float) -> EnergySample:
        del usage  # measured, not modelled
        seconds = 0.0 if self._last_now is None else max(0.0, now - self._last_now)
        self._last_now = now
        zones: dict[ZoneKey, Joules] = {}
        for zone in self.zones:
            joules = self._delta(zone, seconds)
            if joules is not None:
                key = (zone.kind, zone.path)
                zones[key] = zones.get(key, 0.0) + joules
        if zones and not any(zones.values()) and seconds > 0:
            self._still_seconds += seconds
            if self._still_seconds >= STUCK_AFTER_SECONDS:
                raise SensorError(f"RAPL counters under {self.root} have not moved for {self._still_seconds:.0f} s")
        else:
            self._still_seconds = 0.0
        if "psys" in self.kinds:
            total = sum(j for (kind, _), j in zones.items() if kind == "psys")
        else:
            total = sum(j for (kind, _), j in zones.items() if kind in ("package", "dram"))
        return EnergySample(seconds, zones, total)
