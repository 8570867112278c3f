"""Replicas from observed load with the live policies, and the order of the steps (table tests)."""

from __future__ import annotations

import json

import pytest

from tests.activator.kubelet import deployment
from zerowatt.activator.appconfig import app_config
from zerowatt.activator.decide import AppScaler, Step, next_step
from zerowatt.activator.podmetrics import PodSample


def scaler(policy: str, params: dict[str, float] | None = None, replicas: int = 0, **scale: str) -> AppScaler:
    annotations = {"zerowatt.dev/autoscaling": "true", "zerowatt.dev/policy": policy}
    if params:
        annotations["zerowatt.dev/policy-params"] = json.dumps(params)
    annotations.update({f"zerowatt.dev/{k.replace('_', '-')}": v for k, v in scale.items()})
    return AppScaler(app_config(deployment("web", replicas=replicas, annotations=annotations)))


def test_keepalive_scales_from_zero_on_a_held_request_and_back_after_the_window() -> None:
    s = scaler("keepalive", {"keep_alive": 10})
    assert s.decide(0.0, pod_concurrency=0, pod_completed=0, proxying=0, held=0, ready=0).desired == 0
    assert s.decide(1.0, pod_concurrency=0, pod_completed=0, proxying=0, held=1, ready=0).desired == 1
    # the request went to the pod and completed between two scrapes: still load
    assert s.decide(2.0, pod_concurrency=0.01, pod_completed=1, proxying=0, held=0, ready=1).desired == 1
    idle = s.decide(3.0, pod_concurrency=0, pod_completed=0, proxying=0, held=0, ready=1)
    assert (idle.desired, idle.wake_at) == (1, 13.0)
    assert s.decide(13.0, pod_concurrency=0, pod_completed=0, proxying=0, held=0, ready=1).desired == 0


def test_compression_divides_the_window() -> None:
    s = scaler("keepalive", {"keep_alive": 600, "compression": 60})
    s.decide(0.0, pod_concurrency=0, pod_completed=0, proxying=0, held=1, ready=0)
    idle = s.decide(1.0, pod_concurrency=0, pod_completed=0, proxying=0, held=0, ready=1)
    assert idle.wake_at == 11.0


def test_kpa_follows_pod_concurrency_within_max_scale() -> None:
    s = scaler("kpa", {"target": 10}, max_scale="3")
    s.decide(0.0, pod_concurrency=0, pod_completed=0, proxying=0, held=1, ready=0)
    d = 1.0
    for t in range(1, 8):
        d = s.decide(float(t), pod_concurrency=25, pod_completed=50, proxying=0, held=0, ready=1).desired
    assert d == 3  # ceil(25 / (10 * 0.7)) = 4, clamped by max-scale


def test_min_scale_keeps_pods_without_load() -> None:
    s = scaler("keepalive", {"keep_alive": 0}, min_scale="2")
    assert s.decide(0.0, pod_concurrency=0, pod_completed=0, proxying=0, held=0, ready=0).desired == 2


@pytest.mark.parametrize("policy", ["kpa", "keepalive", "hybrid", "energy"])
def test_every_policy_scales_up_for_a_held_request(policy: str) -> None:
    s = scaler(policy)
    assert s.decide(5.0, pod_concurrency=0, pod_completed=0, proxying=0, held=3, ready=0).desired >= 1


def test_observe_pods_turns_scrapes_into_concurrency_and_forgets_gone_pods() -> None:
    s = scaler("kpa")
    assert s.observe_pods({"p1": PodSample(0, 0, 0), "p2": PodSample(0, 0, 0)}) == (0.0, 0.0)
    assert s.observe_pods({"p1": PodSample(2, 4, 2), "p2": PodSample(2, 2, 4)}) == (3.0, 6.0)
    assert s.observe_pods({"p2": PodSample(3, 2, 4)}) == (0.0, 0.0)
    assert s.observe_pods({"p1": PodSample(4, 9, 9), "p2": PodSample(4, 3, 5)}) == (1.0, 1.0)


@pytest.mark.parametrize(
    ("desired", "replicas", "ready", "now", "drain_until", "expected"),
    [
        (1, 0, 0, 0.0, None, Step("activator", 1, None)),  # scale up: traffic stays at the activator
        (1, 1, 0, 0.0, None, Step("activator", None, None)),  # pod not ready yet
        (1, 1, 1, 0.0, None, Step("pods", None, None)),  # ready: traffic goes direct
        (3, 1, 1, 0.0, None, Step("pods", 3, None)),
        (0, 1, 1, 5.0, None, Step("activator", None, 7.0)),  # to zero: activator first, then drain
        (0, 1, 1, 6.0, 7.0, Step("activator", None, 7.0)),
        (0, 1, 1, 7.0, 7.0, Step("activator", 0, None)),  # drained: now 0 replicas
        (0, 0, 0, 9.0, None, Step("activator", None, None)),
        (1, 1, 1, 6.5, 7.0, Step("pods", None, None)),  # load came back during the drain: cancelled
    ],
)
def test_next_step_orders_endpoint_switches_and_scale_writes(
    desired: int, replicas: int, ready: int, now: float, drain_until: float | None, expected: Step
) -> None:
    assert (
        next_step(desired=desired, replicas=replicas, ready=ready, now=now, drain=2.0, drain_until=drain_until)
        == expected
    )


def test_a_running_app_adopted_after_a_restart_keeps_its_window() -> None:
    running = scaler("keepalive", {"keep_alive": 10}, replicas=1)
    # a fresh policy that never saw load would ask for 0 at once: an idle running app scaled down on restart
    assert running.decide(0.0, pod_concurrency=0, pod_completed=0, proxying=0, held=0, ready=1).desired == 0
    adopted = scaler("keepalive", {"keep_alive": 10}, replicas=1)
    adopted.adopt(100.0)
    idle = adopted.decide(101.0, pod_concurrency=0, pod_completed=0, proxying=0, held=0, ready=1)
    assert (idle.desired, idle.wake_at) == (1, 111.0)
    assert adopted.decide(111.0, pod_concurrency=0, pod_completed=0, proxying=0, held=0, ready=1).desired == 0
    at_zero = scaler("keepalive", {"keep_alive": 10}, replicas=0)
    at_zero.adopt(100.0)  # nothing runs: nothing to adopt
    assert at_zero.decide(101.0, pod_concurrency=0, pod_completed=0, proxying=0, held=0, ready=0).desired == 0
