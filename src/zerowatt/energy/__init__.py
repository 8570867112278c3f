"""Energy per node, process, container and request, with PUE, water and carbon (see docs/energy.md).

Stable API for other subsystems:

- :class:`NodePowerModel` (``watts(u)``, ``watts_per_core_active()``) and :func:`node_model` (this node's);
- :class:`Facility` (``report(it_joules)`` → :class:`EnergyReport`);
- per-request energy: :class:`ActiveRate`, :func:`joules_for_cpu`, :class:`LiveRate`,
  :func:`start_live_rate`, :func:`observe_request` (Prometheus ``zerowatt_app_joules_total{app,component}``
  and the ``zerowatt_request_joules`` histogram).
"""

from __future__ import annotations

from zerowatt.energy.facility import EnergyReport, Facility, facility_from
from zerowatt.energy.model import ModelChoice, NodePowerModel
from zerowatt.energy.request import (
    ActiveRate,
    LiveRate,
    joules_for_cpu,
    observe_request,
    set_rate_provider,
    start_live_rate,
)


def node_model() -> ModelChoice:
    """The power model zerowatt would use for this node (SPECpower, CCF or default; no overrides)."""
    from zerowatt.energy.detect import Roots, model_choice

    return model_choice(Roots())


__all__ = [
    "ActiveRate",
    "EnergyReport",
    "Facility",
    "LiveRate",
    "ModelChoice",
    "NodePowerModel",
    "facility_from",
    "joules_for_cpu",
    "node_model",
    "observe_request",
    "set_rate_provider",
    "start_live_rate",
]
