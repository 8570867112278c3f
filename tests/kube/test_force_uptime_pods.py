"""Running pods annotated ``downscaler/force-uptime`` keep the whole cluster up (py-kube-downscaler's rule)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.kube.conftest import NOW, workload
from tests.kube.emulator import EmulatorThread, Fault
from tests.kube.test_controller_kmock import cluster, controller, emu, get
from zerowatt.kube import annotations as ann
from zerowatt.kube.decide import NamespaceView, decide
from zerowatt.kube.kinds import KINDS
from zerowatt.kube.settings import make_settings

__all__ = ["cluster"]


def pod(kube: EmulatorThread, ns: str, name: str, phase: str, force: str | None) -> None:
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if force is not None:
        meta["annotations"] = {ann.FORCE_UPTIME: force}
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {}, "status": {"phase": phase}}
    r = httpx.post(f"{kube.url}/api/v1/namespaces/{ns}/pods", json=body)
    assert r.status_code < 300, r.text


def test_decision_with_a_forcing_pod() -> None:
    settings = make_settings(default_uptime="never")
    obj = workload(spec={"replicas": 3})
    down = decide(obj, KINDS["deployments"], NamespaceView("dev"), settings, NOW, lambda s, n: s == "always")
    forced = decide(
        obj, KINDS["deployments"], NamespaceView("dev", forced_by_pod="prod/debug"), settings, NOW, lambda s, n: False
    )
    assert down.action == "down" and forced.action == "none" and "pod prod/debug" in forced.reason
    # The namespace's own force-uptime overrides the pod's (upstream: the pod is only its default).
    own = NamespaceView("dev", {ann.FORCE_UPTIME: "false"}, forced_by_pod="prod/debug")
    assert decide(obj, KINDS["deployments"], own, settings, NOW, lambda s, n: False).action == "down"


def test_forcing_pod_keeps_and_brings_the_whole_cluster_up(cluster: EmulatorThread) -> None:
    pod(cluster, "prod", "done", "Succeeded", "true")  # finished: does not count
    pod(cluster, "prod", "plain", "Running", None)
    pod(cluster, "dev", "other", "Running", "false")

    first = controller(cluster, include="deployments", default_uptime="never").run_pass(NOW)
    assert {(c.namespace, c.name) for c in first.changes} == {("dev", "web"), ("prod", "api")}
    pods_lists = [p for m, p in emu(cluster).served if m == "GET" and "/pods" in p]
    assert len(pods_lists) == 1 and pods_lists[0].startswith("/api/v1/pods?")
    assert "fieldSelector=status.phase%21%3DSucceeded%2Cstatus.phase%21%3DFailed" in pods_lists[0]

    pod(cluster, "dev", "debug", "Running", "True")
    second = controller(cluster, include="deployments", default_uptime="never").run_pass(NOW)
    # One pod in dev brings every namespace up, prod included (py-kube-downscaler's pods_force_uptime).
    assert sorted((c.namespace, c.name, c.action) for c in second.changes) == [
        ("dev", "web", "up"),
        ("prod", "api", "up"),
    ]
    assert all("forced uptime by pod dev/debug" in c.reason for c in second.changes)
    assert get(cluster, "deployments", "dev", "web")["spec"]["replicas"] == 3
    assert get(cluster, "deployments", "prod", "api")["spec"]["replicas"] != 0

    emu(cluster).served.clear()
    off = controller(cluster, include="deployments", default_uptime="never", pod_force_uptime=False).run_pass(NOW)
    assert sorted((c.namespace, c.name, c.action) for c in off.changes) == [
        ("dev", "web", "down"),
        ("prod", "api", "down"),
    ]
    assert not any("/pods" in p for _, p in emu(cluster).served)


def test_namespace_flag_lists_pods_of_those_namespaces(cluster: EmulatorThread) -> None:
    pod(cluster, "dev", "debug", "Running", "true")
    report = controller(cluster, include="deployments", namespaces=("dev",), default_uptime="never").run_pass(NOW)
    assert report.changes == []
    listed = [p.split("?")[0] for m, p in emu(cluster).served if m == "GET" and "/pods" in p]
    assert listed == ["/api/v1/namespaces/dev/pods"]


def test_pods_list_refused_does_not_stop_the_pass(cluster: EmulatorThread) -> None:
    pod(cluster, "dev", "debug", "Running", "true")
    emu(cluster).faults.append(Fault("GET", r"/api/v1/pods", 403))
    report = controller(cluster, include="deployments", default_uptime="never").run_pass(NOW)
    assert report.errors == [] and {c.name for c in report.changes} == {"web", "api"}
