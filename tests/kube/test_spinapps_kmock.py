"""SpinKube SpinApps on kmock, shaped as spinkube/spin-operator's config/samples (resources.yaml, hpa.yaml)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.kube.conftest import NOW, OLD
from tests.kube.emulator import EmulatorThread
from tests.kube.test_controller_kmock import controller, create, emu, get
from zerowatt.kube import annotations as ann


def spinapp(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "core.spinkube.dev/v1alpha1",
        "kind": "SpinApp",
        "metadata": {"name": name, "namespace": "apps", "creationTimestamp": OLD, "resourceVersion": "1"},
        "spec": spec,
    }


def test_spinapps_down_and_up_and_autoscaled_ones_through_their_hpa(kube: EmulatorThread) -> None:
    emu(kube).add_namespace("apps", {ann.UPTIME: "never"})
    resources = {"limits": {"cpu": "500m", "memory": "500Mi"}, "requests": {"cpu": "100m", "memory": "400Mi"}}
    image = "ghcr.io/spinkube/containerd-shim-spin/examples/spin-rust-hello:v0.13.0"
    create(
        kube,
        "spinapps",
        spinapp(
            "simple-spinapp",
            {"image": image, "executor": "containerd-shim-spin", "replicas": 3, "resources": resources},
        ),
    )
    auto = {"image": image, "executor": "containerd-shim-spin", "enableAutoscaling": True, "resources": resources}
    create(kube, "spinapps", spinapp("hpa-spinapp", auto))
    # What the operator creates for it (no replicas: the API server's default, 1) and the user's HPA (hpa.yaml).
    meta = {"namespace": "apps", "creationTimestamp": OLD, "resourceVersion": "1"}
    create(
        kube,
        "deployments",
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "hpa-spinapp", **meta},
            "spec": {"replicas": 1},
        },
    )
    hpa_spec = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "hpa-spinapp"},
        "minReplicas": 1,
        "maxReplicas": 10,
    }
    create(
        kube,
        "horizontalpodautoscalers",
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "spinapp-autoscaler", **meta},
            "spec": hpa_spec,
        },
    )

    include = "spinapps,deployments,horizontalpodautoscalers"
    report = controller(kube, include=include).run_pass(NOW)
    assert report.errors == []
    assert sorted((c.kind, c.name) for c in report.changes) == [
        ("deployments", "hpa-spinapp"),
        ("spinapps", "simple-spinapp"),
    ]
    simple = get(kube, "spinapps", "apps", "simple-spinapp")
    assert simple["spec"]["replicas"] == 0 and simple["metadata"]["annotations"][ann.ORIGINAL_REPLICAS] == "3"
    assert get(kube, "spinapps", "apps", "hpa-spinapp")["spec"] == auto  # its replicas are not the SpinApp's
    assert "replicas" not in get(kube, "spinapps", "apps", "hpa-spinapp")["spec"]
    assert get(kube, "deployments", "apps", "hpa-spinapp")["spec"]["replicas"] == 0
    # 3 SpinApp pods (100m, 400Mi each) and the autoscaled app's one pod (the Deployment has no requests here)
    assert report.released.replicas == 4 and report.released.cores == pytest.approx(0.3)
    assert report.released.memory == pytest.approx(3 * 400 * 2**20)

    emu(kube).namespaces["apps"]["metadata"]["annotations"][ann.UPTIME] = "always"
    report = controller(kube, include=include).run_pass(NOW)
    assert get(kube, "spinapps", "apps", "simple-spinapp")["spec"]["replicas"] == 3
    assert get(kube, "deployments", "apps", "hpa-spinapp")["spec"]["replicas"] == 1
