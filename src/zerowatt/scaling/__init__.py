"""Autoscaling with scale-to-zero: policies with an online and a batch side, and the trace simulator.

* :mod:`.policies` — the registry and one module per policy (``kpa``, ``keepalive``, ``hybrid``,
  ``energy``): its parameters dataclass and online autoscaler, plus its ``*_batch`` simulation;
* :mod:`.online` — what the host observes and a policy answers, and the keep-alive window machine;
* :mod:`.options` — ``--policy-option`` parsing, derived from a parameters dataclass;
* :mod:`.power` — the injectable power model of an instance (CCF coefficients, PUE);
* :mod:`.sim` — the batch simulator: trace, busy periods, driver, Pareto sweep and plots (NumPy).

Only plain-Python names are re-exported here: importing :mod:`zerowatt.scaling` (as every ``zerowatt up``
worker does) never loads NumPy; import :mod:`zerowatt.scaling.sim` for the simulator.
"""

from zerowatt.scaling.online import Autoscaler, Decision, Observation, OnlineContext
from zerowatt.scaling.policies import POLICIES, POLICY_NAMES, Policy, PolicyConfig, make_autoscaler, parse_policy
from zerowatt.scaling.policies.energy import EnergyAware
from zerowatt.scaling.policies.hybrid import HybridParams
from zerowatt.scaling.policies.keepalive import FixedKeepAlive
from zerowatt.scaling.policies.kpa import KpaParams
from zerowatt.scaling.power import EnergyParams

__all__ = [
    "POLICIES",
    "POLICY_NAMES",
    "Autoscaler",
    "Decision",
    "EnergyAware",
    "EnergyParams",
    "FixedKeepAlive",
    "HybridParams",
    "KpaParams",
    "Observation",
    "OnlineContext",
    "Policy",
    "PolicyConfig",
    "make_autoscaler",
    "parse_policy",
]
