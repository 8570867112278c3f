"""What reserved CPU cores and memory stand for in watts, kWh, CO2e and water: the one place that prices them.

The right-sizer (requests freed by a recommendation) and the downscaler (requests released by a downtime) both
turn cores and bytes into power with :class:`CapacityPricing`, built by one of two pure functions:

- :func:`pricing_from` (``--power-model node``, the default; the downscaler's ``energy``): a core is worth the
  energy subsystem's node model's *marginal* watts per busy logical CPU,
  :meth:`~zerowatt.energy.NodePowerModel.watts_per_core_active` = (P_max − P_idle) / logical CPUs. Freed or
  released requests stop CPU work; the node's idle power stays until a node is switched off, so idle watts are
  not claimed. The model is the one :mod:`zerowatt.energy.catalog` picks for a CPU (SPECpower, then CCF's
  per-micro-architecture coefficients, then CCF's average).
- :func:`ccf_pricing` (``--power-model ccf``): Cloud Carbon Footprint's fixed averages (cloudcarbonfootprint.org,
  "Methodology", Apache-2.0; data in the repository's ``data/power``): per-vCPU watts = min + 50 % × (max − min) (CCF's
  default average utilisation) averaged over the 20 AWS micro-architectures of ``ccf-coefficients-aws-use.csv``
  (min 1.0113 W, max 3.8128 W → 2.412 W); AWS PUE 1.135; 428.07 g CO2e/kWh, the mean of the 25 regions of
  ``grid-emissions-factors-aws.csv``. ``tests/kube/test_savings.py`` re-derives these from the CSV files.

Memory is 0.392 W per GB (10^9 bytes, CCF's memory coefficient) in both: the node model has no memory term.
Facility energy (IT × PUE), carbon (on facility energy) and water (on IT energy, The Green Grid's WUE) come from
:class:`~zerowatt.energy.Facility`. :func:`choose_pricing` is the adapter that reads ``/proc/cpuinfo`` (or takes a
CPU name) and the user's ``--pue``/``--wue``/``--carbon``/``--region``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from zerowatt.energy.facility import DEFAULT_WUE, Facility, facility_from
from zerowatt.energy.model import ModelChoice
from zerowatt.errors import SettingError
from zerowatt.units import GIB, JOULES_PER_KWH, Bytes, Cores, GramsCO2e, Litres, Seconds, Watts

#: CCF's per-vCPU watts at 50 % utilisation, mean over its AWS micro-architectures: (1.0113 + 3.8128) / 2.
CCF_WATTS_PER_VCPU: Watts = 2.412
#: CCF's memory coefficient, watts per GB (10^9 bytes).
CCF_WATTS_PER_GB: Watts = 0.392
#: The facility CCF assumes for AWS: PUE 1.135, grid intensity the mean of its 25 AWS regions.
CCF_FACILITY = Facility(
    pue=1.135, wue=DEFAULT_WUE, carbon_g_per_kwh=428.07, carbon_basis="CCF mean of 25 AWS regions' grid factors"
)
#: A year of 8760 hours: the "per year" of every report.
SECONDS_PER_YEAR: Seconds = 8760 * 3600.0

POWER_MODELS = ("node", "ccf")


@dataclass(frozen=True)
class CapacityCost:
    """What an amount of CPU and memory stands for: power now, and energy, carbon and water over ``seconds``.

    ``kwh`` is facility energy (IT × PUE, what the grid delivers); negative figures mean capacity added.
    """

    it_watts: Watts
    facility_watts: Watts
    seconds: Seconds
    kwh: float
    co2e_grams: GramsCO2e
    water_litres: Litres


@dataclass(frozen=True)
class CapacityPricing:
    """Watts per reserved core and per GB of memory, the facility around them, and where the numbers come from.

    ``basis`` is ``energy:<model basis>`` (``energy:specpower``, ``energy:ccf-coefficients``, ...) or
    ``ccf-default``; ``detail`` is one sentence naming the matched CPU or coefficients.
    """

    watts_per_core: Watts
    watts_per_gb: Watts
    facility: Facility
    basis: str
    detail: str = ""

    @property
    def power_model(self) -> str:
        """``node`` (the energy subsystem's model) or ``ccf`` (fixed averages)."""
        return "ccf" if self.basis.startswith("ccf") else "node"

    @property
    def watts_per_gib(self) -> Watts:
        return self.watts_per_gb * GIB / 1e9

    def it_watts(self, cores: Cores, memory: Bytes | float) -> Watts:
        """IT power of ``cores`` and ``memory`` bytes."""
        return cores * self.watts_per_core + memory / 1e9 * self.watts_per_gb

    def facility_watts(self, cores: Cores, memory: Bytes | float) -> Watts:
        """The same with the facility's overhead (× PUE)."""
        return self.it_watts(cores, memory) * self.facility.pue

    def over(self, it_watts: Watts, seconds: Seconds) -> CapacityCost:
        """``it_watts`` held for ``seconds``: facility power, kWh, CO2e and water (via :class:`Facility`)."""
        report = self.facility.report(it_watts * seconds)
        return CapacityCost(
            it_watts=it_watts,
            facility_watts=it_watts * self.facility.pue,
            seconds=seconds,
            kwh=report.facility_joules / JOULES_PER_KWH,
            co2e_grams=report.co2e_grams,
            water_litres=report.water_litres,
        )

    def cost(self, cores: Cores, memory: Bytes | float, seconds: Seconds = SECONDS_PER_YEAR) -> CapacityCost:
        """``cores`` and ``memory`` bytes held for ``seconds`` (default a year)."""
        return self.over(self.it_watts(cores, memory), seconds)

    def to_json(self) -> dict[str, Any]:
        f = self.facility
        return {
            "model": self.power_model,
            "basis": self.basis,
            "detail": self.detail,
            "watts_per_vcpu": round(self.watts_per_core, 6),
            "watts_per_gb": self.watts_per_gb,
            "pue": f.pue,
            "wue_l_per_kwh": f.wue,
            "carbon_g_per_kwh": f.carbon_g_per_kwh,
            "carbon_basis": f.carbon_basis,
            "hours_per_year": SECONDS_PER_YEAR / 3600,
        }

    def describe(self) -> str:
        """One line for logs and report headers."""
        f = self.facility
        return (
            f"{self.power_model} ({self.basis}): {self.watts_per_core:.3f} W per core, {self.watts_per_gb:g} W/GB, "
            f"PUE {f.pue:g}, {f.carbon_g_per_kwh:g} g CO2e/kWh ({f.carbon_basis})"
            + (f"; {self.detail}" if self.detail else "")
        )


def pricing_from(choice: ModelChoice, facility: Facility) -> CapacityPricing:
    """Pure: the pricing for a chosen node model (marginal watts per busy logical CPU) and a facility."""
    return CapacityPricing(
        watts_per_core=choice.model.watts_per_core_active(),
        watts_per_gb=CCF_WATTS_PER_GB,
        facility=facility,
        basis=f"energy:{choice.basis}",
        detail=choice.detail,
    )


def ccf_pricing(facility: Facility = CCF_FACILITY, detail: str = "") -> CapacityPricing:
    """Pure: CCF's fixed per-vCPU and per-GB averages, in ``facility`` (default: CCF's AWS facility)."""
    return CapacityPricing(
        CCF_WATTS_PER_VCPU, CCF_WATTS_PER_GB, facility, "ccf-default", detail or "CCF averages over AWS CPUs"
    )


def ccf_facility(
    pue: str | None = None, wue: str | None = None, carbon: float | None = None, region: str | None = None
) -> Facility:
    """CCF's facility with only what the user gave overridden (parsed and checked by :func:`facility_from`)."""
    given = facility_from(pue, wue, carbon, region)
    own_carbon = carbon is not None or region is not None
    return Facility(
        given.pue if pue is not None else CCF_FACILITY.pue,
        given.wue if wue is not None else CCF_FACILITY.wue,
        given.carbon_g_per_kwh if own_carbon else CCF_FACILITY.carbon_g_per_kwh,
        given.carbon_basis if own_carbon else CCF_FACILITY.carbon_basis,
    )


def choose_pricing(
    power_model: str = "node",
    *,
    cpu: str | None = None,
    pue: str | None = None,
    wue: str | None = None,
    carbon: float | None = None,
    region: str | None = None,
    proc_root: str = "/proc",
) -> CapacityPricing:
    """Adapter: the pricing for ``--power-model node|ccf``, ``--cpu NAME`` (default: this machine's CPU from
    ``<proc_root>/cpuinfo``) and the facility options. Bad values raise :class:`UsageError` /
    ``ValidationError`` (exit 2). Without the energy subsystem's model catalog, ``node`` falls back to CCF."""
    if power_model not in POWER_MODELS:
        raise SettingError("power_model", f"expected one of {', '.join(POWER_MODELS)}, got {power_model!r}")
    if power_model == "ccf":
        if cpu:
            raise SettingError("cpu", "names the CPU of the node power model; the ccf power model does not use one")
        return ccf_pricing(ccf_facility(pue, wue, carbon, region))
    facility = facility_from(pue, wue, carbon, region)
    try:
        from zerowatt.energy.catalog import choose_model
        from zerowatt.energy.cpu import CpuIdentity
        from zerowatt.energy.detect import Roots, model_choice
    except ImportError as exc:  # a build without the model catalog: CCF's averages, said in the detail
        return ccf_pricing(ccf_facility(pue, wue, carbon, region), f"energy model not available ({exc}); CCF")
    # One logical CPU for a named CPU: watts_per_core_active() is per thread whatever the node's size. An
    # unreadable /proc/cpuinfo is the catalog's business: it falls back to CCF's average coefficients.
    choice = choose_model(CpuIdentity(cpu), logical_cpus=1) if cpu else model_choice(Roots(proc=proc_root))
    return pricing_from(choice, facility)


def with_overrides(
    pricing: CapacityPricing, watts_per_core: Watts | None = None, watts_per_gb: Watts | None = None
) -> CapacityPricing:
    """``pricing`` with user-given per-core / per-GB watts (the basis says so)."""
    if watts_per_core is None and watts_per_gb is None:
        return pricing
    given = [f"{watts_per_core:g} W/core" if watts_per_core is not None else ""]
    given.append(f"{watts_per_gb:g} W/GB" if watts_per_gb is not None else "")
    return replace(
        pricing,
        watts_per_core=pricing.watts_per_core if watts_per_core is None else watts_per_core,
        watts_per_gb=pricing.watts_per_gb if watts_per_gb is None else watts_per_gb,
        detail=f"{pricing.detail}; configured {', '.join(g for g in given if g)}",
    )
