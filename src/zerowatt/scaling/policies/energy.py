"""zerowatt's energy-aware policy: keep an instance warm exactly as long as that costs less than a cold start.

The rule (derived in ``docs/scaling.md``): keep an instance warm while the expected cost of the cold start
it would save exceeds the energy of staying warm. Without a forecast of the next arrival this is the
ski-rental break-even ``k = E_cold / P_idle`` (2-competitive), with ``E_cold`` the measured start latency
times the power of a starting instance (plus an optional price on the latency itself) and ``P_idle`` the
idle-warm power. A 0.3 ms WebAssembly start gives ``k`` of about a millisecond: nothing stays warm; a 1 s
container start keeps it warm for seconds.

This module is the policy's parameters (also the ``--policy-option`` schema), the break-even in plain
Python and the online autoscaler; the batch simulation is :mod:`.energy_batch`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from zerowatt.errors import ValidationError
from zerowatt.scaling.online import DEFAULT_MEMORY_GB, OnlineContext, WindowAutoscaler
from zerowatt.scaling.options import option
from zerowatt.scaling.power import EnergyParams
from zerowatt.units import Joules, Seconds, Watts

if TYPE_CHECKING:
    from zerowatt.scaling.sim.periods import FloatArray


@dataclass(frozen=True, slots=True)
class EnergyAware:
    """Keep warm exactly as long as the break-even ``E_cold / P_idle`` (see the module docstring).

    ``start_latency`` is the measured cold start (``None``: the executor's, online; the simulated cold
    start, in the simulator); ``start_joules`` the measured energy of one start when the caller has it (else
    derived from :class:`EnergyParams`); ``latency_watts`` prices a second of added user latency in watts
    (0: energy only, the default; raise it to trade joules for latency explicitly). ``memory_gb`` and
    ``capacity`` are online only (the simulator takes each function's memory from the trace).
    """

    start_latency: Seconds | None = field(
        default=None,
        metadata=option(
            "start latency the break-even uses, seconds (default: the executor's measured order)", key="cold_start"
        ),
    )
    energy: EnergyParams = field(default_factory=EnergyParams)
    start_joules: Joules | None = field(
        default=None, metadata=option("measured energy of one start, joules (default: from the power model)")
    )
    latency_watts: Watts = field(default=0.0, metadata=option("price of a second of added latency, watts (0)"))
    memory_gb: float | None = field(
        default=None, metadata=option(f"resident memory of an instance, GB (default {DEFAULT_MEMORY_GB})")
    )
    capacity: int | None = field(
        default=None,
        metadata=option("concurrent requests per instance while busy (default: unlimited)", at_least=1),
    )

    def __post_init__(self) -> None:
        if self.start_latency is not None and self.start_latency < 0:
            raise ValidationError("energy.start_latency", f"must be >= 0 s, got {self.start_latency}")
        if self.latency_watts < 0:
            raise ValidationError("energy.latency_watts", "must be >= 0")
        if self.start_joules is not None and self.start_joules < 0:
            raise ValidationError("energy.start_joules", "must be >= 0")

    @property
    def latency(self) -> Seconds:
        if self.start_latency is None:
            raise ValidationError("energy.start_latency", "not set (the host or the simulator fills it in)")
        return self.start_latency

    def cold_cost(self, memory_gb: float) -> Joules:
        """Expected cost of one cold start of an instance of ``memory_gb``: start energy plus priced latency."""
        if self.start_joules is not None:
            start = self.start_joules
        else:
            e = self.energy
            start = self.latency * (
                memory_gb * e.memory_watts_per_gb
                + e.vcpus_per_instance * e.cpu_min_watts_per_vcpu
                + e.active_extra_watts
            )
        return start + self.latency_watts * self.latency

    def idle_power(self, memory_gb: float) -> Watts:
        """Power of the instance while it stays warm and idle."""
        e = self.energy
        return memory_gb * e.memory_watts_per_gb + e.vcpus_per_instance * e.cpu_min_watts_per_vcpu

    def keep_alive(self, memory_gb: float) -> Seconds:
        """The break-even keep-alive of an instance of ``memory_gb`` (infinite when idling costs nothing)."""
        idle = self.idle_power(memory_gb)
        return self.cold_cost(memory_gb) / idle if idle > 0 else math.inf

    # Batch forms over one value per function (NumPy imported here only: the online path never calls them).

    def cold_cost_joules(self, memory_gb: FloatArray) -> FloatArray:
        return _each(self.cold_cost, memory_gb)

    def idle_watts(self, memory_gb: FloatArray) -> FloatArray:
        return _each(self.idle_power, memory_gb)

    def windows(self, memory_gb: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(pre-warm, keep-alive) per function: no pre-warm, keep-alive at the break-even."""
        import numpy as np

        return np.zeros_like(memory_gb, dtype=np.float64), _each(self.keep_alive, memory_gb)


def _each(f: Callable[[float], float], values: FloatArray) -> FloatArray:
    """``f`` of every value (computed once per distinct value: one formula for online and batch)."""
    import numpy as np

    arr = np.asarray(values, dtype=np.float64)
    uniq, where = np.unique(arr, return_inverse=True)
    out: FloatArray = np.array([f(float(v)) for v in uniq], dtype=np.float64)[where].reshape(arr.shape)
    return out


def online(params: EnergyAware, context: OnlineContext) -> WindowAutoscaler:
    """The online energy-aware policy of one component: the break-even of its start and memory.

    The break-even comes from the physical start latency: a time compression does not change it.
    """
    start = context.cold_start if params.start_latency is None else params.start_latency
    memory = params.memory_gb if params.memory_gb is not None else context.memory_gb
    keep = replace(params, start_latency=start).keep_alive(DEFAULT_MEMORY_GB if memory is None else memory)
    return WindowAutoscaler("energy", (0.0, keep), capacity=params.capacity)
