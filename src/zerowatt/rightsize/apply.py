"""Turn recommendations into Kubernetes objects: VPAs in recommendation mode, or manifest patches.

``vpa``: one ``VerticalPodAutoscaler`` per workload with ``updateMode: "Off"`` — the VPA computes and
publishes recommendations but never evicts a pod — and the recommended range as ``minAllowed``/``maxAllowed``
guard rails (lower and upper bound). ``patch``: one strategic-merge patch per workload setting the
containers' requests and limits (``kubectl patch --type strategic --patch-file``). Pure: returns
``(relative path, YAML text)`` pairs; the CLI writes them (or prints them with ``--dry-run``).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from typing import Any, Literal

import yaml

from zerowatt.rightsize.model import Recommendation, Resources
from zerowatt.units import MIB

ApplyKind = Literal["vpa", "patch"]
KNOWN_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob")


def cpu_quantity(cores: float) -> str:
    """Whole millicores, rounded up (a request may not fall under the recommendation)."""
    return f"{max(1, math.ceil(round(cores * 1000, 6)))}m"


def memory_quantity(bytes_: float) -> str:
    """Whole MiB, rounded up."""
    return f"{max(1, math.ceil(bytes_ / MIB))}Mi"


#: The VPA's "no history" upper bound is MaxResourceAmount (1e14 millicores / bytes): not a usable cap.
_UNBOUNDED_CPU, _UNBOUNDED_MEMORY = 1e10, 1e13


def _quantities(r: Resources) -> dict[str, str]:
    out: dict[str, str] = {}
    if r.cpu is not None and math.isfinite(r.cpu) and r.cpu < _UNBOUNDED_CPU:
        out["cpu"] = cpu_quantity(r.cpu)
    if r.memory is not None and math.isfinite(r.memory) and r.memory < _UNBOUNDED_MEMORY:
        out["memory"] = memory_quantity(r.memory)
    return out


def split_workload(owner: str) -> tuple[str, str]:
    """``"StatefulSet/db"`` → (StatefulSet, db); a bare name is a Deployment."""
    if "/" in owner:
        kind, name = owner.split("/", 1)
        for k in KNOWN_KINDS:
            if k.lower() == kind.lower():
                return k, name
        return kind, name
    return "Deployment", owner


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def render_objects(recs: list[Recommendation], kind: ApplyKind) -> tuple[list[tuple[str, str]], list[str]]:
    """Files to write and warnings (pods without a workload cannot carry a VPA or a template patch)."""
    by_owner: dict[tuple[str, str], list[Recommendation]] = defaultdict(list)
    warnings: list[str] = []
    for r in recs:
        if r.request.cpu is None and r.request.memory is None:
            warnings.append(f"{r.id.namespace}/{r.id.owner}/{r.id.container}: no recommendation ({r.reason})")
            continue
        if r.id.owner_kind != "workload":
            warnings.append(f"{r.id.namespace}/{r.id.owner}/{r.id.container}: no workload known, nothing written")
            continue
        by_owner[(r.id.namespace, r.id.owner)].append(r)
    files: list[tuple[str, str]] = []
    for (ns, owner), group in sorted(by_owner.items()):
        wkind, name = split_workload(owner)
        api = "batch/v1" if wkind in ("Job", "CronJob") else "apps/v1"
        doc: dict[str, Any]
        if kind == "vpa":
            doc = {
                "apiVersion": "autoscaling.k8s.io/v1",
                "kind": "VerticalPodAutoscaler",
                "metadata": {
                    "name": f"{name}-zerowatt",
                    "namespace": ns,
                    "labels": {"app.kubernetes.io/managed-by": "zerowatt"},
                },
                "spec": {
                    "targetRef": {"apiVersion": api, "kind": wkind, "name": name},
                    "updatePolicy": {"updateMode": "Off"},
                    "resourcePolicy": {
                        "containerPolicies": [
                            {
                                "containerName": r.id.container,
                                "minAllowed": _quantities(r.lower_bound),
                                "maxAllowed": _quantities(r.upper_bound),
                            }
                            for r in group
                        ]
                    },
                },
            }
            suffix = "vpa"
        else:
            containers = []
            for r in group:
                res: dict[str, Any] = {"requests": _quantities(r.request)}
                lim = _quantities(r.limit)
                if lim:
                    res["limits"] = lim
                containers.append({"name": r.id.container, "resources": res})
            pod_spec: dict[str, Any] = {"template": {"spec": {"containers": containers}}}
            spec = {"jobTemplate": {"spec": pod_spec}} if wkind == "CronJob" else pod_spec
            doc = {"apiVersion": api, "kind": wkind, "metadata": {"name": name, "namespace": ns}, "spec": spec}
            suffix = "patch"
        path = f"{_safe(ns)}/{_safe(wkind.lower())}-{_safe(name)}.{suffix}.yaml"
        files.append((path, yaml.safe_dump(doc, sort_keys=False)))
    return files, warnings
