"""End to end: kmock, the test kubelet's real ``zerowatt up`` pods, the activator, and a replayed slice of
the Azure Functions trace, compressed 60× (one trace minute = one second, the policy's keep-alive alike).

The load generator plays kube-proxy: it sends each request to an endpoint of the public Service's
EndpointSlice (``web-zerowatt``, re-read every 20 ms), i.e. to the activator while the app is at zero and
straight to the pod while it is up. Checked: no request is lost (every one answers 200), the app goes
0 → 1 → 0 once per busy period, cold starts are counted, and the pods' instance-seconds match the
simulator's (:func:`zerowatt.scaling.sim.driver.run_policy`, what ``zerowatt simulate`` runs) for the
same arrivals within 10%.

The simulator is given the replayed arrivals and, as each request's duration, its measured response time
(so a request held while its pod started is busy for that long, as it is in the cluster) with
``cold_start`` 0: the start is inside those durations, not counted twice.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import numpy as np
import pytest

from tests.activator.conftest import Cluster, start_cluster
from tests.activator.kubelet import Kubelet, kube_api
from tests.conftest import requires_shared, shared_path
from tests.kube.emulator import EmulatorThread
from tests.waiting import wait_until
from zerowatt.activator.holding import HoldLimits
from zerowatt.kube.api import ApiError
from zerowatt.scaling.policies.keepalive import FixedKeepAlive
from zerowatt.scaling.sim.driver import SimulationConfig, prepare, run_policy
from zerowatt.scaling.sim.trace import MINUTE, Invocations, Trace, expand, read_trace

TRACE = "azure-functions-2019"
pytestmark = [requires_shared(TRACE, "the Azure Functions 2019 trace sample"), pytest.mark.slow]

#: Function 9 of the 10-function sample, minutes 64..104: a burst of 61 invocations in minutes 66-67,
#: then one at 86 and one at 101 (gaps of 18 and 15 minutes, three times the keep-alive).
FUNCTION, FIRST, LAST = 9, 64, 104
COMPRESSION = 60.0
KEEP_ALIVE = 300.0  # trace seconds: 5 s replayed


def trace_slice() -> Trace:
    trace = read_trace(shared_path(TRACE, "the Azure Functions 2019 trace sample"), 10)
    f = slice(FUNCTION, FUNCTION + 1)
    return Trace(
        trace.function_ids[f],
        trace.app_ids[f],
        trace.counts[f, FIRST:LAST],
        trace.duration_percentiles[f],
        trace.memory_gb[f],
        f"{trace.source} function {FUNCTION} minutes {FIRST}-{LAST}",
    )


class ServiceRouter:
    """kube-proxy for the test: the endpoints of ``NAME-zerowatt``, re-read every 20 ms in a thread."""

    def __init__(self, cluster: Cluster, service: str) -> None:
        self.service = service
        self.api = kube_api(cluster.emulator.url)  # its own connection: a KubeApi is not thread-safe
        self.targets: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._i = 0

    def _run(self) -> None:
        while not self._stop.is_set():
            path = f"/apis/discovery.k8s.io/v1/namespaces/apps/endpointslices/{self.service}-zerowatt"
            try:
                s = self.api.get(path)
            except ApiError:
                s = None
            if s:
                port = s["ports"][0]["port"]
                self.targets = [f"http://{a}:{port}" for e in s["endpoints"] for a in e["addresses"]]
            self._stop.wait(0.02)

    def pick(self) -> str:
        targets = self.targets
        self._i += 1
        return targets[self._i % len(targets)]

    def __enter__(self) -> ServiceRouter:
        self._thread.start()
        wait_until(lambda: self.targets, "the public slice")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.api.close()


@dataclass
class Sent:
    at: float  # replay seconds since the start
    latency: float
    status: int
    error: str = ""


@pytest.fixture
def stack() -> Iterator[tuple[Cluster, Kubelet]]:
    with EmulatorThread() as et:
        cluster = start_cluster(et, HoldLimits(per_app=1000, total=1000, deadline=60), sync=0.05, drain=0.2)
        try:
            # pods keep serving 0.5 s after they are marked terminating (a preStop pause): the load
            # generator, like kube-proxy, may still send to a pod for a moment after the slice moved
            with Kubelet(et.url, grace=0.5) as kubelet:
                yield cluster, kubelet
        finally:
            cluster.server.stop()
            cluster.api.close()


def replay(router: ServiceRouter, arrivals: np.ndarray) -> list[Sent]:
    client = httpx.Client(timeout=60, trust_env=False)
    start = time.monotonic()

    def one(at: float) -> Sent:
        delay = start + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # the replay's schedule, not a wait for a condition
        t0 = time.monotonic()
        try:
            r = client.get(router.pick() + "/hello", headers={"host": "web.apps"})
            return Sent(at, time.monotonic() - t0, r.status_code, "" if r.status_code == 200 else r.text)
        except httpx.HTTPError as exc:
            return Sent(at, time.monotonic() - t0, 0, f"{type(exc).__name__}: {exc}")

    try:
        with concurrent.futures.ThreadPoolExecutor(64) as pool:
            return list(pool.map(one, arrivals))
    finally:
        client.close()


def test_trace_slice_scales_zero_one_zero_loses_nothing_and_matches_the_simulator(
    stack: tuple[Cluster, Kubelet],
) -> None:
    cluster, kubelet = stack
    inv = expand(trace_slice(), seed=1)
    assert inv.size == 63, "the trace sample changed: pick another slice (see FUNCTION, FIRST, LAST)"
    params = f'{{"keep_alive": {KEEP_ALIVE:g}, "compression": {COMPRESSION:g}}}'
    cluster.add_app(
        "web",
        annotations={
            "zerowatt.dev/autoscaling": "true",
            "zerowatt.dev/policy": "keepalive",
            "zerowatt.dev/policy-params": params,
        },
    )
    wait_until(cluster.synced, "the activator's first sync")
    with ServiceRouter(cluster, "web") as router:
        sent = replay(router, inv.arrival / COMPRESSION)
        wait_until(lambda: cluster.replicas("web") == 0 and kubelet.live("apps", "web") == 0, "back to zero", 60)
        wait_until(lambda: all(p.stopped_at for p in kubelet.all_pods()), "pods stopped", 60)
    lost = [s for s in sent if s.status != 200]
    assert not lost, f"{len(lost)} of {len(sent)} requests lost: {lost[:3]}"
    assert not kubelet.errors

    pods = kubelet.all_pods()
    measured = sum((p.terminating_at or p.stopped_at or 0.0) - p.spawned for p in pods)
    real = Invocations(
        np.zeros(len(sent), dtype=np.int64),
        np.array([s.at * COMPRESSION for s in sent]),
        np.array([s.latency * COMPRESSION for s in sent]),
        1,
        (LAST - FIRST + 30) * MINUTE,  # past the last keep-alive: nothing is cut at the horizon
        inv.memory_gb,
    )
    sim = run_policy("keepalive", prepare(real), SimulationConfig(cold_start=0.0, keepalive=FixedKeepAlive(KEEP_ALIVE)))
    simulated = sim.instance_seconds / COMPRESSION
    cold_starts = sum(
        float(line.rpartition(" ")[2])
        for line in httpx.get(cluster.admin_url + "/metrics").text.splitlines()
        if line.startswith("zerowatt_activator_cold_starts_total{")
    )
    # 0 -> 1 -> 0 once per busy period: three of them in this slice, as the simulator finds
    assert len(pods) == sim.cold_starts == 3
    assert cold_starts >= len(pods)  # every request held while a pod started is a cold start
    assert measured == pytest.approx(simulated, rel=0.10), (measured, simulated, [p.start_seconds for p in pods])
