"""The model source: no sensor, so energy = P(u) × Δt from the chosen :class:`NodePowerModel`."""

from __future__ import annotations

from zerowatt.energy.model import ModelChoice
from zerowatt.energy.sources.base import EnergySample, SourceInfo, Trust
from zerowatt.units import Seconds

#: The zone a modelled figure reports: the whole node at the wall (SPECpower measures at the wall), which is
#: Kepler's ``psys`` ("the entire platform"); the ``path`` label (``model:<basis>``) says it is modelled.
MODEL_ZONE = "psys"


class ModelSource:
    """Estimates node energy from CPU utilisation with a linear power model."""

    def __init__(self, choice: ModelChoice) -> None:
        self.choice = choice
        self._last_now: Seconds | None = None

    @property
    def info(self) -> SourceInfo:
        trust = Trust.CONFIGURED if self.choice.basis == "configured" else Trust.ESTIMATED
        m = self.choice.model
        return SourceInfo(
            "model",
            f"modelled node wall power ({self.choice.basis}): {m.idle_watts:.3g} W idle, {m.max_watts:.3g} W at 100%",
            trust,
            self.choice.detail,
        )

    def sample(self, now: Seconds, usage: float) -> EnergySample:
        seconds = 0.0 if self._last_now is None else max(0.0, now - self._last_now)
        self._last_now = now
        joules = self.choice.model.energy(usage, seconds)
        return EnergySample(seconds, {(MODEL_ZONE, f"model:{self.choice.basis}"): joules}, joules)
