"""Hand-built cluster objects in the shape ``kubectl get nodes,pods,pdb,deploy,sts,ds -A -o json`` writes."""

from __future__ import annotations

from typing import Any

GI = 2**30


def node(
    name: str,
    cpu: str = "4",
    memory: str = "16Gi",
    pods: str = "110",
    labels: dict[str, str] | None = None,
    taints: list[dict[str, str]] | None = None,
    extra: dict[str, str] | None = None,
    unschedulable: bool = False,
) -> dict[str, Any]:
    alloc = {"cpu": cpu, "memory": memory, "pods": pods, **(extra or {})}
    spec: dict[str, Any] = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": spec,
        "status": {"capacity": dict(alloc), "allocatable": alloc},
    }


def pod(
    name: str,
    node_name: str | None,
    cpu: str | None = "500m",
    memory: str | None = "1Gi",
    namespace: str = "default",
    owner: tuple[str, str] | None = ("ReplicaSet", "web-5d8f7c"),
    labels: dict[str, str] | None = None,
    spec: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    container: str = "app",
    extra: dict[str, str] | None = None,
) -> dict[str, Any]:
    requests: dict[str, str] = {}
    if cpu is not None:
        requests["cpu"] = cpu
    if memory is not None:
        requests["memory"] = memory
    requests.update(extra or {})
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels or {"app": "web"})}
    if owner is not None:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1], "controller": True}]
        if owner[0] == "ReplicaSet":
            meta["labels"]["pod-template-hash"] = owner[1].rsplit("-", 1)[-1]
    if annotations:
        meta["annotations"] = annotations
    body: dict[str, Any] = {"containers": [{"name": container, "image": "x", "resources": {"requests": requests}}]}
    if node_name:
        body["nodeName"] = node_name
    body.update(spec or {})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": body, "status": {"phase": "Running"}}


def deployment(name: str, namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {},
    }


def pdb(name: str, match: dict[str, str], namespace: str = "default", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"matchLabels": match}, **spec},
    }


def listing(*items: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": list(items)}


def anti_affinity(labels: dict[str, str], key: str = "kubernetes.io/hostname") -> dict[str, Any]:
    return {
        "affinity": {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": labels}, "topologyKey": key}
                ]
            }
        }
    }


def spread(labels: dict[str, str], key: str, skew: int = 1) -> dict[str, Any]:
    return {
        "topologySpreadConstraints": [
            {
                "maxSkew": skew,
                "topologyKey": key,
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": labels},
            }
        ]
    }
