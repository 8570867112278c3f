"""Autoscaling with scale-to-zero: pure policies, a vectorised trace simulator and the live autoscaler.

* :mod:`.kpa` — Knative's pod autoscaler decision and bucketed windows (vectorised over functions);
* :mod:`.policies` — fixed keep-alive, Shahrad et al.'s hybrid histogram, zerowatt's energy-aware rule;
* :mod:`.trace` — Azure Functions 2019 trace reader and seeded expansion into invocations;
* :mod:`.simulate` — replay through any policy: cold starts, added latency, instance time, energy;
* :mod:`.live` — the same policies as per-component state machines for the app host;
* :mod:`.energy` — the injectable energy parameters (CCF coefficients, PUE).

Nothing is re-exported: importing one pure module (``scaling.live`` for the host) must not import the
trace reader's pyarrow or the simulator, so callers import the module they need.
"""
