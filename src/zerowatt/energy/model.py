"""The linear node power model P(u) = P_idle + (P_max − P_idle)·u, and where its two numbers came from.

A linear model in CPU utilisation is what SPECpower's load ladder, Cloud Carbon Footprint and Kepler's
estimator all fall back to when no meter can be read; it is wrong at the ends of the curve by a few per cent
on servers, but it is simple enough for other subsystems (the autoscaling simulator, the downscaler, the
right-sizer) to reason with. This module is part of zerowatt's stable API: keep its names.
"""

from __future__ import annotations

from dataclasses import dataclass

from zerowatt.errors import ValidationError
from zerowatt.units import Joules, Seconds, Watts


@dataclass(frozen=True)
class NodePowerModel:
    """Wall power of one node as a linear function of its CPU utilisation (0 = idle, 1 = every CPU busy).

    ``logical_cpus`` is how many logical CPUs (hardware threads / vCPUs) the node has; it turns the node's
    dynamic range into the marginal watts of one busy CPU (:meth:`watts_per_core_active`).
    """

    idle_watts: Watts
    max_watts: Watts
    logical_cpus: int = 1

    def __post_init__(self) -> None:
        if not (self.idle_watts >= 0):
            raise ValidationError("idle_watts", f"must be a number ≥ 0, got {self.idle_watts!r}")
        if not (self.max_watts >= self.idle_watts):
            raise ValidationError("max_watts", f"must be ≥ idle_watts ({self.idle_watts} W), got {self.max_watts!r}")
        if self.logical_cpus < 1:
            raise ValidationError("logical_cpus", f"must be ≥ 1, got {self.logical_cpus!r}")

    @classmethod
    def per_cpu(cls, idle_watts_per_cpu: Watts, max_watts_per_cpu: Watts, logical_cpus: int) -> NodePowerModel:
        """A node whose power is ``logical_cpus`` times the per-CPU figures (CCF's per-vCPU coefficients)."""
        return cls(idle_watts_per_cpu * logical_cpus, max_watts_per_cpu * logical_cpus, logical_cpus)

    def watts(self, utilisation: float) -> Watts:
        """Node power at ``utilisation`` (clamped to [0, 1]: a ratio from /proc/stat can overshoot by a tick)."""
        u = min(1.0, max(0.0, utilisation))
        return self.idle_watts + (self.max_watts - self.idle_watts) * u

    def energy(self, utilisation: float, seconds: Seconds) -> Joules:
        """Energy over ``seconds`` at a constant ``utilisation``."""
        return self.watts(utilisation) * max(0.0, seconds)

    def watts_per_core_active(self) -> Watts:
        """Marginal watts of one logical CPU going from idle to busy: (P_max − P_idle) / logical CPUs.

        This is what switching off one busy core saves, the number the downscaler and the right-sizer
        multiply freed cores by.
        """
        return (self.max_watts - self.idle_watts) / self.logical_cpus

    def scaled(self, logical_cpus: int) -> NodePowerModel:
        """The same hardware apportioned to ``logical_cpus`` threads (per-thread scaling, as CCF does per vCPU)."""
        factor = logical_cpus / self.logical_cpus
        return NodePowerModel(self.idle_watts * factor, self.max_watts * factor, logical_cpus)


@dataclass(frozen=True)
class ModelChoice:
    """A :class:`NodePowerModel` plus how it was chosen, so every report can say what it is based on.

    ``basis`` is one of ``configured``, ``specpower``, ``specpower-family``, ``ccf-coefficients``,
    ``generic-default``; ``detail`` is one human sentence naming the matched system or coefficients.
    """

    model: NodePowerModel
    basis: str
    detail: str
