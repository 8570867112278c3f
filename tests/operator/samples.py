"""Sample SpinApps, WasmApps and executors for the operator's tests (plain dicts, as the API serves them)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
LATER = datetime(2026, 12, 2, 13, 0, tzinfo=UTC)


def spinapp(name: str = "web", namespace: str = "apps", uid: str = "uid-web", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"image": "ghcr.io/example/web:v1", "executor": "containerd-shim-spin", "replicas": 2}
    body.update(spec)
    body = {k: v for k, v in body.items() if v is not None}
    meta = {"name": name, "namespace": namespace, "uid": uid, "generation": 1}
    return {"apiVersion": "core.spinkube.dev/v1alpha1", "kind": "SpinApp", "metadata": meta, "spec": body}


def wasmapp(name: str = "web", namespace: str = "apps", uid: str = "uid-wa", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"component": "ghcr.io/example/web:v1", "replicas": 1}
    body.update(spec)
    meta = {"name": name, "namespace": namespace, "uid": uid, "generation": 1}
    return {"apiVersion": "zerowatt.dev/v1alpha1", "kind": "WasmApp", "metadata": meta, "spec": body}


def executor(name: str = "containerd-shim-spin", namespace: str = "apps", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "createDeployment": True,
        "deploymentConfig": {"runtimeClassName": "wasmtime-spin-v2", "installDefaultCACerts": True},
    }
    body.update(spec)
    meta = {"name": name, "namespace": namespace, "uid": f"uid-{name}"}
    return {"apiVersion": "core.spinkube.dev/v1alpha1", "kind": "SpinAppExecutor", "metadata": meta, "spec": body}


def with_meta(obj: dict[str, Any], **meta: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["metadata"].update(meta)
    return out
