"""EndpointSlices: reading ready pods (labels checked here, conditions honoured), writing NAME-zerowatt."""

from __future__ import annotations

from typing import Any

from zerowatt.activator.slices import Endpoint, ready_endpoints, slice_manifest, slice_targets, written_endpoints


def pods_slice(service: str, *endpoints: dict[str, Any], http: int = 8080) -> dict[str, Any]:
    return {
        "metadata": {"name": f"{service}-x", "labels": {"kubernetes.io/service-name": service}},
        "endpoints": list(endpoints),
        "ports": [{"name": "http", "port": http}, {"name": "admin", "port": 9090}],
    }


def ep(address: str, **conditions: bool) -> dict[str, Any]:
    return {"addresses": [address], "conditions": conditions, "targetRef": {"name": f"pod-{address}"}}


def test_ready_endpoints_honour_conditions_and_labels() -> None:
    slices = [
        pods_slice("web-pods", ep("10.0.0.2", ready=True), ep("10.0.0.1"), ep("10.0.0.3", ready=False)),
        pods_slice("web-pods", ep("10.0.0.4", ready=True, terminating=True), ep("10.0.0.1", ready=True)),
        pods_slice("other-pods", ep("10.0.0.9", ready=True)),  # an API server that ignored the selector
        {"metadata": {"labels": {"kubernetes.io/service-name": "web-pods"}}, "endpoints": [ep("10.0.0.8")]},
        {"metadata": {}, "endpoints": "garbage"},
    ]
    got = ready_endpoints(slices, "web-pods")
    assert [(e.address, e.http, e.admin, e.pod) for e in got] == [
        ("10.0.0.1", 8080, 9090, "pod-10.0.0.1"),
        ("10.0.0.2", 8080, 9090, "pod-10.0.0.2"),
    ]


def test_written_slice_points_at_pods_sharing_a_port_else_at_the_activator() -> None:
    act = Endpoint("10.1.0.1", 8080)
    assert written_endpoints([], act) == [act]
    pods = [Endpoint("10.0.0.1", 8080), Endpoint("10.0.0.2", 8081), Endpoint("10.0.0.3", 8080)]
    assert [e.address for e in written_endpoints(pods, act)] == ["10.0.0.1", "10.0.0.3"]
    m = slice_manifest("apps", "web", written_endpoints(pods, act))
    assert m["metadata"]["name"] == "web-zerowatt"
    assert m["metadata"]["labels"] == {
        "kubernetes.io/service-name": "web",
        "endpointslice.kubernetes.io/managed-by": "activator.zerowatt.dev",
    }
    assert m["addressType"] == "IPv4" and m["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert slice_targets(m) == [("10.0.0.1", 8080), ("10.0.0.3", 8080)]
    assert slice_manifest("apps", "web", [Endpoint("fd00::1", 80)])["addressType"] == "IPv6"
    assert Endpoint("fd00::1", 80, 90).admin_url == "http://[fd00::1]:90"
