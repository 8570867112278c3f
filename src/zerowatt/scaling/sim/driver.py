"""Replay a trace through any policy: the batch driver behind ``zerowatt simulate`` and the benchmarks.

:func:`~zerowatt.scaling.sim.periods.prepare` computes what every policy shares (busy periods, idle gaps);
:func:`run_policy` looks the policy up in the registry (:mod:`zerowatt.scaling.policies`) and runs its
batch simulation with its parameters from :class:`SimulationConfig`, returning a :class:`PolicyResult`.
The model and its assumptions are in :mod:`.periods` and ``docs/scaling.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from zerowatt.errors import UsageError
from zerowatt.scaling.policies import POLICY_NAMES, policy
from zerowatt.scaling.policies.energy import EnergyAware
from zerowatt.scaling.policies.hybrid import HybridParams
from zerowatt.scaling.policies.keepalive import FixedKeepAlive
from zerowatt.scaling.policies.kpa import KpaParams
from zerowatt.scaling.power import EnergyParams
from zerowatt.scaling.sim.periods import PolicyResult, Prepared, Progress, prepare
from zerowatt.units import Seconds

__all__ = [
    "POLICY_NAMES",
    "PolicyResult",
    "Prepared",
    "SimulationConfig",
    "parse_policies",
    "prepare",
    "run_policies",
    "run_policy",
]


def parse_policies(spec: str) -> list[str]:
    """``--policy kpa,hybrid``: known names, in order, without repeats."""
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise UsageError("--policy: give at least one of " + ", ".join(POLICY_NAMES))
    for n in names:
        policy(n)
    return list(dict.fromkeys(names))


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    """Everything a run depends on besides the invocations: the start latency, the power model that prices
    instances, and each policy's parameters in a field named after the policy."""

    cold_start: Seconds = 0.0003
    power: EnergyParams = field(default_factory=EnergyParams)
    kpa: KpaParams = field(default_factory=KpaParams)
    keepalive: FixedKeepAlive = field(default_factory=FixedKeepAlive)
    hybrid: HybridParams = field(default_factory=HybridParams)
    energy: EnergyAware = field(default_factory=EnergyAware)

    def params(self, name: str) -> object:
        """The parameters of policy ``name``."""
        return getattr(self, policy(name).name)


def run_policy(name: str, prep: Prepared, config: SimulationConfig, progress: Progress | None = None) -> PolicyResult:
    """Policy ``name``'s batch simulation over ``prep``."""
    return policy(name).simulate_batch(config.params(name), prep, config.cold_start, config.power, progress)


def run_policies(
    names: Sequence[str], prep: Prepared, config: SimulationConfig, progress: Progress | None = None
) -> dict[str, PolicyResult]:
    return {n: run_policy(n, prep, config, progress) for n in names}
