"""What every power source reports: energy per zone over an interval, its node total, and its trust."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from zerowatt.errors import ZerowattError
from zerowatt.units import Joules, Seconds

log = logging.getLogger("zerowatt.energy")

#: (zone, path): the zone kind (package, core, uncore, dram, psys, platform, ...) and where it was read.
ZoneKey = tuple[str, str]


class Trust(StrEnum):
    """How far a figure can be trusted, from best to worst."""

    MEASURED = "measured"  # a hardware energy counter or power sensor
    CONFIGURED = "configured"  # a model whose watts the operator supplied
    ESTIMATED = "estimated"  # a model from published benchmarks or coefficients


@dataclass(frozen=True)
class SourceInfo:
    """Which source, what it covers, and how far to trust it."""

    name: str
    measures: str
    trust: Trust
    detail: str = ""


@dataclass(frozen=True)
class EnergySample:
    """Energy over one interval: per zone, and the node total that never double counts nested zones."""

    seconds: Seconds
    zones: dict[ZoneKey, Joules]
    total: Joules


class SensorError(ZerowattError):
    """A sensor could not be read or gave nonsense; the meter falls back to the next source."""


class PowerSource(Protocol):
    """A node power source. ``sample`` returns the energy since its previous call (zero on the first)."""

    @property
    def info(self) -> SourceInfo: ...

    def sample(self, now: Seconds, usage: float) -> EnergySample: ...


class LogOnce:
    """Log each distinct problem once: a broken sensor read every second must not flood the log."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def warning(self, message: str, key: str | None = None) -> None:
        """Log ``message`` unless one with the same ``key`` (default: the message) was logged before."""
        k = message if key is None else key
        if k not in self.seen:
            self.seen.add(k)
            log.warning("%s", message)
