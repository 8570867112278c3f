"""Power of one function instance for the scaling policies and the simulator: warm, busy or starting, in watts.

The model is Cloud Carbon Footprint's (CCF) linear one, applied per instance rather than per server:

* an instance that exists (starting, busy or idle-warm) holds its resident memory and one vCPU slot on a
  powered server: ``memory_gb * memory_watts_per_gb + vcpus * cpu_min_watts_per_vcpu``;
* a request that runs (or an instance that starts) drives its vCPU from idle to full:
  ``vcpus * (cpu_max_watts_per_vcpu - cpu_min_watts_per_vcpu)`` on top;
* the facility multiplies IT energy by the PUE.

So an idle warm instance costs memory-proportional power (plus its idle vCPU share) and a busy one adds CPU
power: exactly the trade a keep-alive policy makes. The defaults are documented constants, not measurements
of this machine; :meth:`EnergyParams.from_models` derives them from ``zerowatt.energy``'s
``NodePowerModel``/``Facility``, and nothing reads them from a global: callers inject them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from zerowatt.errors import ValidationError
from zerowatt.units import Joules, Seconds, Watts

if TYPE_CHECKING:  # the energy subsystem is only needed by from_models: the online policies stay lean
    from zerowatt.energy.facility import Facility
    from zerowatt.energy.model import NodePowerModel

#: CCF's memory coefficient: 0.392 W per GB of resident memory (Cloud Carbon Footprint methodology,
#: "Memory" section; it is the figure ccf-coefficients uses for all three clouds).
CCF_MEMORY_WATTS_PER_GB: Watts = 0.392

#: CCF per-vCPU minimum/maximum watts for "EPYC 3rd Gen" in ``ccf-coefficients-azure-use.csv``
#: (data/power/, Apache-2.0): the trace is Azure's and this machine class is EPYC.
CCF_AZURE_EPYC3_MIN_WATTS: Watts = 0.44538981119791665
CCF_AZURE_EPYC3_MAX_WATTS: Watts = 2.0193277994791665

#: Industry-average power usage effectiveness reported by the Uptime Institute Global Data Center
#: Survey 2023 (1.58).
UPTIME_2023_AVERAGE_PUE: float = 1.58


@dataclass(frozen=True, slots=True)
class EnergyParams:
    """Watts of one function instance; see the module docstring for the model."""

    memory_watts_per_gb: Watts = CCF_MEMORY_WATTS_PER_GB
    cpu_min_watts_per_vcpu: Watts = CCF_AZURE_EPYC3_MIN_WATTS
    cpu_max_watts_per_vcpu: Watts = CCF_AZURE_EPYC3_MAX_WATTS
    vcpus_per_instance: float = 1.0
    pue: float = UPTIME_2023_AVERAGE_PUE

    def __post_init__(self) -> None:
        for name in ("memory_watts_per_gb", "cpu_min_watts_per_vcpu", "cpu_max_watts_per_vcpu", "vcpus_per_instance"):
            if getattr(self, name) < 0:
                raise ValidationError(f"EnergyParams.{name}", f"must be >= 0, got {getattr(self, name)}")
        if self.cpu_max_watts_per_vcpu < self.cpu_min_watts_per_vcpu:
            raise ValidationError("EnergyParams.cpu_max_watts_per_vcpu", "must be >= cpu_min_watts_per_vcpu")
        if self.pue < 1.0:
            raise ValidationError("EnergyParams.pue", f"must be >= 1.0, got {self.pue}")

    @classmethod
    def from_models(
        cls,
        node: NodePowerModel,
        facility: Facility,
        memory_watts_per_gb: Watts = CCF_MEMORY_WATTS_PER_GB,
        vcpus_per_instance: float = 1.0,
    ) -> EnergyParams:
        """Per-vCPU watts from the energy subsystem's node model (its idle/max split per logical CPU) and
        the PUE from its facility: how ``zerowatt up`` can price instances with the machine it measured."""
        return cls(
            memory_watts_per_gb=memory_watts_per_gb,
            cpu_min_watts_per_vcpu=node.idle_watts / node.logical_cpus,
            cpu_max_watts_per_vcpu=node.max_watts / node.logical_cpus,
            vcpus_per_instance=vcpus_per_instance,
            pue=facility.pue,
        )

    def present_watts(self, memory_gb: float) -> Watts:
        """Power of an instance that exists but runs nothing (idle-warm): memory plus its idle vCPU share."""
        return memory_gb * self.memory_watts_per_gb + self.vcpus_per_instance * self.cpu_min_watts_per_vcpu

    @property
    def active_extra_watts(self) -> Watts:
        """Extra power while the instance's vCPU is busy (running a request or starting)."""
        return self.vcpus_per_instance * (self.cpu_max_watts_per_vcpu - self.cpu_min_watts_per_vcpu)

    def start_joules(self, memory_gb: float, start_latency: Seconds) -> Joules:
        """Energy of one instance start: the instance exists and its vCPU is busy for ``start_latency``."""
        return start_latency * (self.present_watts(memory_gb) + self.active_extra_watts)
