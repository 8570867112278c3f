"""How many replicas an app should have, and in which order to get there (core).

:class:`AppScaler` runs one app's policy (the same online autoscalers as ``zerowatt up --policy``,
:mod:`zerowatt.scaling.policies`) on what the activator observes: the mean concurrency its pods report
(:mod:`.podmetrics`), the requests the activator proxies itself, the requests it holds, the ready
endpoints. It never reads a clock: the adapter passes ``now`` (monotonic seconds) and the samples.

:func:`next_step` orders the change so that no request is lost (Knative's activator does the same):
scaling up, the public slice points at the activator until a pod is ready, then at the pods; scaling to
zero, the slice points back at the activator *first*, and only after ``drain`` seconds (time for every
proxy in the cluster to see the new endpoints) is ``spec.replicas`` set to 0. A request that arrives
during the drain reaches the activator, counts as load, and cancels the scale-down.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from zerowatt.activator.appconfig import AppConfig
from zerowatt.activator.podmetrics import PodSample, load_between
from zerowatt.scaling.online import Autoscaler, Observation

#: Start latency of a pod the energy policy assumes (pull + ``zerowatt up`` start, docs/operator-activator.md).
POD_COLD_START = 1.0


@dataclass(frozen=True, slots=True)
class ScaleDecision:
    desired: int  # replicas wanted, within [min_scale, max_scale] (at least 1 while requests are held)
    wake_at: float | None  # ask again by then at the latest (policy windows, KPA ticks)
    reason: str
    concurrency: float  # the load the policy saw (pods' mean concurrency + proxied + held)


class AppScaler:
    """One app's policy state and the pods' last samples (rebuilt when its annotations change)."""

    def __init__(self, config: AppConfig) -> None:
        self.config = config
        self.autoscaler: Autoscaler = config.policy.autoscaler(cold_start=POD_COLD_START)
        self._samples: dict[str, PodSample] = {}

    def adopt(self, now: float) -> None:
        """The app already runs (``spec.replicas`` > 0) when this scaler is built: an activator (re)start or
        an annotation change. Count that as load at ``now`` so the policy's windows start from here; a
        fresh policy that never saw load would otherwise scale a running app to zero at once."""
        if self.config.replicas > 0:
            self.autoscaler.decide(Observation(now=now, in_flight=1, ready=self.config.replicas))

    def observe_pods(self, samples: Mapping[str, PodSample]) -> tuple[float, float]:
        """Take new scrapes (pod → sample); returns (mean concurrency, requests completed) since the last ones.
        Pods that are gone are forgotten."""
        concurrency = completed = 0.0
        for pod, sample in samples.items():
            load = load_between(self._samples.get(pod), sample)
            concurrency += load.concurrency
            completed += load.completed
        self._samples = {pod: s for pod, s in samples.items()}
        return concurrency, completed

    def decide(
        self, now: float, *, pod_concurrency: float, pod_completed: float, proxying: int, held: int, ready: int
    ) -> ScaleDecision:
        """The desired replicas at ``now``. Any request completed by a pod since the last call counts as at
        least one in flight (a short request between two scrapes is still load for the keep-alive family)."""
        pods = math.ceil(pod_concurrency - 1e-9) if pod_concurrency > 0 else 0
        if pod_completed > 0:
            pods = max(pods, 1)
        obs = Observation(now=now, in_flight=pods + max(0, proxying), pending=max(0, held), ready=max(0, ready))
        decision = self.autoscaler.decide(obs)
        desired = self.config.clamp(decision.desired)
        if held > 0 and desired < 1 and self.config.max_scale >= 1:
            desired = 1  # the policies already guarantee this; a held request must never wait for nothing
        load = pod_concurrency + proxying + held
        return ScaleDecision(desired, decision.wake_at, decision.reason, load)


Target = Literal["pods", "activator"]


@dataclass(frozen=True, slots=True)
class Step:
    """What the adapter does next: where the public slice points, and ``spec.replicas`` to write (or None)."""

    target: Target
    replicas: int | None
    drain_until: float | None  # scale-to-zero waits until then (None: not draining)


def next_step(*, desired: int, replicas: int, ready: int, now: float, drain: float, drain_until: float | None) -> Step:
    """The next step from ``replicas`` (spec) and ``ready`` endpoints towards ``desired`` (see the module doc)."""
    if desired > 0:
        target: Target = "pods" if ready > 0 else "activator"
        return Step(target, desired if desired != replicas else None, None)
    if replicas == 0:
        return Step("activator", None, None)
    until = drain_until if drain_until is not None else now + drain
    if now >= until:
        return Step("activator", 0, None)
    return Step("activator", None, until)
