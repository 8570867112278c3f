"""The activator on kmock with a loopback backend: holding, releasing, limits, streaming, hostile input.

The "pod" here is a plain HTTP server whose address the test publishes in ``NAME-pods`` itself (the
end-to-end test with real ``zerowatt up`` pods is ``test_e2e.py``).
"""

from __future__ import annotations

import concurrent.futures
import socket
from collections import Counter

import httpx

from tests.activator.conftest import Cluster, start_cluster
from tests.kube.emulator import EmulatorThread
from tests.waiting import wait_until
from zerowatt.activator.holding import HoldLimits

AUTOSCALED = {"zerowatt.dev/autoscaling": "true", "zerowatt.dev/policy": "keepalive"}


def metric(c: Cluster, name: str, **labels: str) -> float:
    """A sample of the activator's /metrics (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    total = 0.0
    for line in httpx.get(c.admin_url + "/metrics").text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            head, _, value = line.rpartition(" ")
            if all(f'{k}="{v}"' in head for k, v in labels.items()) or not want:
                total += float(value)
    return total


def served(c: Cluster) -> list[tuple[str, str]]:
    """(method, path) of every request the API server answered so far."""
    emulator = c.emulator.emulator
    assert emulator is not None
    return list(c.emulator.call(lambda: list(emulator.served)))


def get(c: Cluster, host: str, path: str = "/x", **kwargs: object) -> httpx.Response:
    return httpx.get(c.url + path, headers={"host": host}, timeout=60, **kwargs)  # type: ignore[arg-type]


def test_held_requests_scale_up_wait_and_all_reach_the_pod(cluster: Cluster, backend: int) -> None:
    """With the default EndpointSlice watch while requests wait."""
    check_scale_from_zero(cluster, backend)
    assert any("watch=true" in path for _, path in served(cluster))


def test_scale_from_zero_by_polling_when_not_watching(backend: int) -> None:
    with EmulatorThread() as et:
        c = start_cluster(et, watch=False)
        try:
            check_scale_from_zero(c, backend)
            assert not any("watch=true" in path for _, path in served(c))
        finally:
            c.server.stop()


def check_scale_from_zero(cluster: Cluster, backend: int) -> None:
    cluster.add_app("web", annotations={**AUTOSCALED, "zerowatt.dev/policy-params": '{"keep_alive": 600}'})
    wait_until(cluster.synced, "first sync")
    wait_until(lambda: cluster.public_slice("web") is not None, "public slice written")
    assert cluster.public_slice("web")["endpoints"][0]["addresses"] == ["127.0.0.1"]  # type: ignore[index]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(get, cluster, "web.apps", f"/r{i}") for i in range(8)]
        wait_until(lambda: metric(cluster, "zerowatt_activator_held_requests", app="apps/web") == 8, "8 held")
        assert cluster.replicas("web") == 1  # the scale subresource was written while they wait
        assert not any(f.done() for f in futures)
        cluster.publish_pods("web", [("127.0.0.1", True)], backend)
        answers = [f.result() for f in futures]
    assert [a.status_code for a in answers] == [200] * 8
    assert sorted(a.text.split()[1] for a in answers) == sorted(f"/r{i}" for i in range(8))
    assert metric(cluster, "zerowatt_activator_cold_starts_total", app="apps/web") == 8
    assert metric(cluster, "zerowatt_activator_scale_from_zero_seconds_count", phase="total") == 1
    wait_until(
        lambda: (cluster.public_slice("web") or {}).get("ports", [{}])[0].get("port") == backend,
        "public slice switched to the pods",
    )


def test_scale_to_zero_points_the_slice_back_before_writing_zero(cluster: Cluster, backend: int) -> None:
    cluster.add_app("web", annotations={**AUTOSCALED, "zerowatt.dev/policy-params": '{"keep_alive": 0.3}'})
    wait_until(cluster.synced, "first sync")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        answer = pool.submit(get, cluster, "web")
        wait_until(lambda: cluster.replicas("web") == 1, "scaled up for the held request")
        cluster.publish_pods("web", [("127.0.0.1", True)], backend)
        assert answer.result().status_code == 200
    wait_until(lambda: cluster.replicas("web") == 0, "scaled back to zero")
    writes = [p for m, p in served(cluster) if m in ("PATCH", "POST")]
    scale_writes = [i for i, p in enumerate(writes) if "/scale" in p]
    slice_writes = [i for i, p in enumerate(writes) if "web-zerowatt" in p or p.endswith("endpointslices")]
    assert len(scale_writes) == 2, writes  # 0 → 1, then 1 → 0
    # between the two scale writes the slice went to the pods and back to the activator, before the 0
    assert [i for i in slice_writes if scale_writes[0] < i < scale_writes[1]]
    assert cluster.public_slice("web")["ports"][0]["port"] == cluster.server.address[1]  # type: ignore[index]


def test_holding_limits_hold_under_contention(backend: int) -> None:
    limits = HoldLimits(per_app=3, total=4, deadline=1.0)
    with EmulatorThread() as et:
        c = start_cluster(et, limits)
        try:
            c.add_app("a")  # not autoscaled, 0 replicas: nothing will ever be ready
            c.add_app("b")
            wait_until(c.synced, "first sync")
            wait_until(lambda: c.server.call(lambda: len(c.server.activator.apps)) == 2, "apps seen")
            hosts = ["a"] * 6 + ["b"] * 3
            with concurrent.futures.ThreadPoolExecutor(len(hosts)) as pool:
                codes = Counter(r.status_code for r in pool.map(lambda h: get(c, h), hosts))
            assert codes == Counter({504: 4, 503: 5})  # 4 held to the deadline, the rest refused at once
            assert metric(c, "zerowatt_activator_refused_total", reason="limit") == 5
            assert metric(c, "zerowatt_activator_refused_total", reason="deadline") == 4
            assert metric(c, "zerowatt_activator_held_requests") == 0
            body = get(c, "a").text
            assert "no ready endpoint within the holding deadline" in body
        finally:
            c.server.stop()


def test_bodies_stream_and_headers_are_forwarded(cluster: Cluster, backend: int) -> None:
    cluster.add_app("web", replicas=1)
    cluster.publish_pods("web", [("127.0.0.1", True)], backend)
    wait_until(cluster.synced, "first sync")
    payload = bytes(range(256)) * 4096  # 1 MiB, read by the activator in pieces as the pod takes it
    r = httpx.post(
        cluster.url + "/upload?q=1",
        headers={"host": "web.apps.svc.cluster.local:80", "x-forwarded-for": "10.9.9.9"},
        content=payload,
        timeout=60,
    )
    assert r.status_code == 200 and r.headers["x-backend"] == "echo"
    head, _, body = r.content.partition(b"\n")
    assert head.decode() == "POST /upload?q=1 host=web.apps.svc.cluster.local:80 xff=10.9.9.9, 127.0.0.1"
    assert body == payload


def test_a_refused_connection_is_held_again_not_lost(cluster: Cluster, backend: int) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = int(s.getsockname()[1])  # nothing listens there once closed
    cluster.add_app("web", replicas=1)
    cluster.publish_pods("web", [("127.0.0.1", True)], dead)
    wait_until(cluster.synced, "first sync")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        answer = pool.submit(get, cluster, "web")
        wait_until(lambda: metric(cluster, "zerowatt_activator_backend_refused_total") >= 1, "a refused connect")
        cluster.publish_pods("web", [("127.0.0.1", True)], backend)
        assert answer.result().status_code == 200


def test_routing_misses_and_bad_annotations(cluster: Cluster, backend: int) -> None:
    cluster.add_app("web", "one", replicas=1)
    cluster.add_app("web", "two", replicas=1)
    cluster.add_app("odd", annotations={**AUTOSCALED, "zerowatt.dev/policy-params": "{oops"}, replicas=1)
    cluster.publish_pods("odd", [("127.0.0.1", True)], backend)
    wait_until(lambda: cluster.server.call(lambda: len(cluster.server.activator.apps)) == 3, "apps seen")
    ambiguous = get(cluster, "web")
    assert ambiguous.status_code == 421 and "several namespaces (one, two)" in ambiguous.text
    assert get(cluster, "ghost").status_code == 404
    assert get(cluster, "odd").status_code == 200  # served on the policy's defaults
    assert metric(cluster, "zerowatt_activator_config_errors", app="apps/odd") == 1


def test_hostile_requests_never_take_the_activator_down(cluster: Cluster, backend: int) -> None:
    cluster.add_app("web", replicas=1)
    cluster.publish_pods("web", [("127.0.0.1", True)], backend)
    wait_until(cluster.synced, "first sync")
    host, port = cluster.server.address
    hostile = [
        b"GET / HTTP/1.0\r\n\r\n",  # no Host
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,  # a TLS hello
        b"GET / HTTP/1.1\r\nHost: web\r\nX: " + b"a" * 100_000 + b"\r\n\r\n",  # huge header
        b"GET / HTTP/1.1\r\nHost: web\r\nContent-Length: -5\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET /\x00 HTTP/1.1\r\nHost: \xff\xfe\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: web\r\nContent-Length: 100\r\n\r\nshort",  # body cut by a close
    ]
    for data in hostile:
        with socket.create_connection((host, port), timeout=30) as s:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            while s.recv(65536):
                pass
    assert get(cluster, "web").status_code == 200
    assert httpx.get(cluster.admin_url + "/healthz").status_code == 200
    assert get(cluster, "").status_code == 400


def test_a_client_that_leaves_frees_its_holding_place_at_once(backend: int) -> None:
    limits = HoldLimits(per_app=1, total=1, deadline=600)  # a long deadline: only the disconnect can free it
    with EmulatorThread() as et:
        c = start_cluster(et, limits)
        try:
            c.add_app("web")  # not autoscaled, 0 replicas: held until the deadline unless the client leaves
            wait_until(lambda: c.server.call(lambda: len(c.server.activator.apps)) == 1, "app seen")
            host, port = c.server.address
            s = socket.create_connection((host, port))
            s.sendall(b"GET / HTTP/1.1\r\nHost: web\r\n\r\n")
            wait_until(lambda: metric(c, "zerowatt_activator_held_requests", app="apps/web") == 1, "held")
            assert get(c, "web").status_code == 503  # the one place is taken
            s.close()
            wait_until(lambda: metric(c, "zerowatt_activator_held_requests", app="apps/web") == 0, "freed")
            c.publish_pods("web", [("127.0.0.1", True)], backend)
            assert get(c, "web").status_code == 200
            assert metric(c, "zerowatt_activator_requests_total", code="499") == 1
        finally:
            c.server.stop()


def test_kpa_scales_on_the_concurrency_pods_report(cluster: Cluster, backend: int) -> None:
    """The pod's /metrics says 30 requests in flight on average; target 10 × 0.7 → 5 pods, max-scale 3."""
    params = '{"target": 10, "stable_window": 6, "tick": 0.1}'
    cluster.add_app(
        "web",
        replicas=1,
        annotations={
            "zerowatt.dev/autoscaling": "true",
            "zerowatt.dev/policy": "kpa",
            "zerowatt.dev/policy-params": params,
            "zerowatt.dev/max-scale": "3",
        },
    )
    cluster.publish_pods("web", [("127.0.0.1", True)], backend, admin=backend)
    wait_until(lambda: cluster.replicas("web") == 3, "scaled to max-scale on the reported concurrency")
    assert metric(cluster, "zerowatt_activator_desired_replicas", app="apps/web") == 3


def test_a_public_slice_changed_by_someone_else_is_restored(cluster: Cluster, backend: int) -> None:
    cluster.add_app("web", replicas=1)
    cluster.publish_pods("web", [("127.0.0.1", True)], backend)
    wait_until(lambda: (cluster.public_slice("web") or {}).get("ports", [{}])[0].get("port") == backend, "pods")
    path = "/apis/discovery.k8s.io/v1/namespaces/apps/endpointslices/web-zerowatt"
    cluster.api.patch(path, {"endpoints": [{"addresses": ["10.9.9.9"]}], "ports": [{"name": "http", "port": 1}]})
    wait_until(
        lambda: (cluster.public_slice("web") or {}).get("endpoints", [{}])[0].get("addresses") == ["127.0.0.1"],
        "the activator's endpoints written back",
    )
    assert cluster.public_slice("web")["ports"][0]["port"] == backend  # type: ignore[index]


def test_a_held_request_for_a_deleted_app_is_answered_404_not_left_to_its_deadline() -> None:
    with EmulatorThread() as et:
        c = start_cluster(et, HoldLimits(deadline=600))
        try:
            c.add_app("web")  # at zero, not autoscaled: held
            wait_until(lambda: c.server.call(lambda: len(c.server.activator.apps)) == 1, "app seen")
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                answer = pool.submit(get, c, "web")
                wait_until(lambda: metric(c, "zerowatt_activator_held_requests", app="apps/web") == 1, "held")
                c.api.request("DELETE", "/apis/apps/v1/namespaces/apps/deployments/web")
                r = answer.result()
            assert r.status_code == 404 and "removed while its request was held" in r.text
        finally:
            c.server.stop()
