"""Energy per node, process, container and request, with PUE, water and carbon (see docs/energy.md).

Stable API for other subsystems:

- :class:`NodePowerModel` (``watts(u)``, ``watts_per_core_active()``) and :func:`node_model` (this node's);
- :class:`Facility` (``report(it_joules)`` → :class:`EnergyReport`);
- per-request pricing: :class:`ActiveRate`, :func:`joules_for_cpu` (the live rate, :class:`LiveRate` and
  :func:`start_live_rate`, and the host's metrics live in :mod:`zerowatt.energy.request` and
  :mod:`zerowatt.host.metrics`).

Only pure names are re-exported: importing ``zerowatt.energy`` loads no Prometheus client, no sensor
adapter and no numerical library (``tests/test_imports.py``).
"""

from __future__ import annotations

from zerowatt.energy.facility import EnergyReport, Facility, facility_from
from zerowatt.energy.model import ModelChoice, NodePowerModel
from zerowatt.energy.request import ActiveRate, joules_for_cpu


def node_model() -> ModelChoice:
    """The power model zerowatt would use for this node (SPECpower, CCF or default; no overrides)."""
    from zerowatt.energy.detect import Roots, model_choice

    return model_choice(Roots())


__all__ = [
    "ActiveRate",
    "EnergyReport",
    "Facility",
    "ModelChoice",
    "NodePowerModel",
    "facility_from",
    "joules_for_cpu",
    "node_model",
]
