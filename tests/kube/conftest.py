"""Fixtures of the downscaler tests: sample objects, a merge-patch applier, kmock on loopback."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from zerowatt.kube.decide import Matcher
from zerowatt.kube.matcher import schedule_matcher

#: A Monday, noon UTC.
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
OLD = "2020-01-01T00:00:00Z"


def real_matcher() -> Matcher:
    return schedule_matcher(default_timezone="UTC")


@pytest.fixture
def matches() -> Matcher:
    return real_matcher()


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as the API server applies it."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def workload(
    kind: str = "Deployment",
    name: str = "web",
    namespace: str = "dev",
    spec: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    created: str | None = OLD,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "resourceVersion": "1"}
    if created:
        meta["creationTimestamp"] = created
    if annotations:
        meta["annotations"] = dict(annotations)
    if labels:
        meta["labels"] = dict(labels)
    return {"kind": kind, "metadata": meta, "spec": spec if spec is not None else {"replicas": 3}}


@pytest.fixture
def kube() -> Iterator[Any]:
    """kmock's emulator on 127.0.0.1 with the CRDs zerowatt handles declared."""
    from tests.kube.emulator import EmulatorThread

    crds = [
        {"resource": "argoproj.io/v1alpha1/rollouts", "kind": "Rollout", "namespaced": True},
        {"resource": "argoproj.io/v1alpha1/applications", "kind": "Application", "namespaced": True},
        {"resource": "argoproj.io/v1alpha1/applicationsets", "kind": "ApplicationSet", "namespaced": True},
        {"resource": "core.spinkube.dev/v1alpha1/spinapps", "kind": "SpinApp", "namespaced": True},
        {"resource": "zerowatt.dev/v1alpha1/wasmapps", "kind": "WasmApp", "namespaced": True},
        {"resource": "keda.sh/v1alpha1/scaledobjects", "kind": "ScaledObject", "namespaced": True},
        {"resource": "kubevirt.io/v1/virtualmachines", "kind": "VirtualMachine", "namespaced": True},
    ]
    with EmulatorThread(custom_resources=crds) as et:
        yield et
