"""The downscaler's power coefficients from the energy subsystem (:mod:`zerowatt.energy`) when present.

A released core is worth the node model's *marginal* watts per busy logical CPU
(:meth:`~zerowatt.energy.NodePowerModel.watts_per_core_active`: (P_max − P_idle) / logical CPUs): a
downscaled pod stops burning CPU, the node's idle power stays until the cluster autoscaler removes the node,
so idle watts are not claimed. The model is the one the energy subsystem picks for a CPU — SPECpower, then
CCF per-micro-architecture coefficients, then CCF's average — either this node's (``/proc/cpuinfo``; the
controller usually runs on a node like the ones it scales) or a CPU named with ``--cpu``. Memory keeps CCF's
0.392 W/GB: the energy model has no memory term. PUE and grid carbon come from
:func:`zerowatt.energy.facility_from` (``--pue``, ``--carbon`` / ``--region``, with its defaults and presets).
"""

from __future__ import annotations

from zerowatt.energy import Facility, ModelChoice
from zerowatt.kube.savings import PowerCoefficients


def coefficients_from(choice: ModelChoice, facility: Facility) -> PowerCoefficients:
    """Pure: the coefficients for a chosen node model and a facility."""
    return PowerCoefficients(
        watts_per_core=choice.model.watts_per_core_active(),
        watts_per_gib=PowerCoefficients.watts_per_gib,
        pue=facility.pue,
        grams_co2e_per_kwh=facility.carbon_g_per_kwh,
        basis=f"energy:{choice.basis}",
    )


def energy_coefficients(
    cpu: str | None = None,
    pue: str | None = None,
    carbon: float | None = None,
    region: str | None = None,
) -> tuple[PowerCoefficients, str]:
    """Adapter: the coefficients for ``cpu`` (a model name) or this node, and a sentence saying why."""
    from zerowatt.energy import facility_from, node_model
    from zerowatt.energy.catalog import choose_model
    from zerowatt.energy.cpu import CpuIdentity

    facility = facility_from(pue=pue, carbon=carbon, region=region)
    # One logical CPU: watts_per_core_active() is per thread whatever the node's size.
    # An unreadable /proc/cpuinfo is the energy subsystem's business: it falls back to CCF's average.
    choice = choose_model(CpuIdentity(cpu), logical_cpus=1) if cpu else node_model()
    coefficients = coefficients_from(choice, facility)
    why = (
        f"{choice.detail}; {coefficients.watts_per_core:.3f} W per released core, "
        f"PUE {facility.pue}, {facility.carbon_g_per_kwh:g} g CO2e/kWh ({facility.carbon_basis})"
    )
    return coefficients, why


def ccf_coefficients(
    pue: str | None = None, carbon: float | None = None, region: str | None = None
) -> PowerCoefficients:
    """The CCF-derived defaults, with PUE and carbon overridden only where the user said so."""
    from zerowatt.energy import facility_from

    base = PowerCoefficients()
    if pue is None and carbon is None and region is None:
        return base
    facility = facility_from(pue=pue, carbon=carbon, region=region)
    return PowerCoefficients(
        watts_per_core=base.watts_per_core,
        watts_per_gib=base.watts_per_gib,
        pue=facility.pue if pue is not None else base.pue,
        grams_co2e_per_kwh=facility.carbon_g_per_kwh
        if (carbon is not None or region is not None)
        else base.grams_co2e_per_kwh,
        basis="ccf-default",
    )
