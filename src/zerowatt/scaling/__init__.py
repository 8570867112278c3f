"""Autoscaling with scale-to-zero: pure policies, a vectorised trace simulator and the live autoscaler.

* :mod:`.kpa` — Knative's pod autoscaler decision and bucketed windows (vectorised over functions);
* :mod:`.policies` — fixed keep-alive, Shahrad et al.'s hybrid histogram, zerowatt's energy-aware rule;
* :mod:`.trace` — Azure Functions 2019 trace reader and seeded expansion into invocations;
* :mod:`.simulate` — replay through any policy: cold starts, added latency, instance time, energy;
* :mod:`.live` — the same policies as per-component state machines for the app host;
* :mod:`.energy` — the injectable energy parameters (CCF coefficients, PUE).
"""

from zerowatt.scaling.energy import EnergyParams
from zerowatt.scaling.kpa import KpaParams
from zerowatt.scaling.live import Autoscaler, Decision, Observation, make_autoscaler
from zerowatt.scaling.policies import EnergyAware, FixedKeepAlive, HybridHistogram, HybridParams
from zerowatt.scaling.simulate import POLICY_NAMES, PolicyResult, SimulationConfig, prepare, run_policies
from zerowatt.scaling.trace import Invocations, Trace, expand, read_trace

__all__ = [
    "POLICY_NAMES",
    "Autoscaler",
    "Decision",
    "EnergyAware",
    "EnergyParams",
    "FixedKeepAlive",
    "HybridHistogram",
    "HybridParams",
    "Invocations",
    "KpaParams",
    "Observation",
    "PolicyResult",
    "SimulationConfig",
    "Trace",
    "expand",
    "make_autoscaler",
    "prepare",
    "read_trace",
    "run_policies",
]
