"""Write ``cluster.json``: a small cluster in the shape ``kubectl get nodes,pods,pdb,deploy,sts,ds -A -o json`` writes.

Why: the README's ``zerowatt capacity`` line needs a snapshot a fresh clone has. Its pods are the ones
``examples/usage/usage.csv`` has samples for (namespace ``shop``: a 3-replica web tier, a 2-replica worker, a
database), plus what real clusters carry: a node-exporter DaemonSet, CoreDNS under a PodDisruptionBudget.
Five 4-core nodes in two zones hold requests sized by guesswork, so the report has servers to switch off.
The file is committed beside this script and a test regenerates it byte for byte (stdlib only, no randomness).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

NODES = [(f"node-{i}", "eu-west-1a" if i % 2 else "eu-west-1b") for i in range(1, 6)]


def node(name: str, zone: str) -> dict[str, Any]:
    allocatable = {"cpu": "3920m", "memory": "15358Mi", "pods": "58", "ephemeral-storage": "95Gi"}
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": "m5.xlarge",
        "topology.kubernetes.io/zone": zone,
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": {},
        "status": {"capacity": {**allocatable, "cpu": "4", "memory": "16106Mi"}, "allocatable": allocatable},
    }


def pod(
    namespace: str,
    name: str,
    node_name: str,
    container: str,
    requests: dict[str, str],
    owner: tuple[str, str],
    labels: dict[str, str],
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": dict(labels),
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1], "controller": True}],
    }
    if owner[0] == "ReplicaSet":
        meta["labels"]["pod-template-hash"] = owner[1].rsplit("-", 1)[-1]
    spec = {
        "nodeName": node_name,
        "containers": [
            {"name": container, "image": f"registry.example/{container}:1", "resources": {"requests": requests}}
        ],
    }
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": {"phase": "Running"}}


def workload(kind: str, namespace: str, name: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}},
    }


def items() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [node(name, zone) for name, zone in NODES]
    web = {"cpu": "1", "memory": "1Gi"}
    for i in range(3):
        out.append(
            pod("shop", f"web-7d9f8-{i}", NODES[i][0], "nginx", web, ("ReplicaSet", "web-7d9f8"), {"app": "web"})
        )
    worker = {"cpu": "2", "memory": "2Gi"}
    for i in range(2):
        owner = ("ReplicaSet", "worker-7d9f8")
        out.append(pod("shop", f"worker-7d9f8-{i}", NODES[i + 3][0], "worker", worker, owner, {"app": "worker"}))
    out.append(
        pod(
            "shop", "db-0", NODES[2][0], "postgres", {"cpu": "4", "memory": "8Gi"}, ("StatefulSet", "db"), {"app": "db"}
        )
    )
    out[-1]["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "1500m"  # fits beside a web pod
    for i in range(2):
        owner = ("ReplicaSet", "coredns-5d78c")
        dns = {"cpu": "100m", "memory": "70Mi"}
        out.append(
            pod("kube-system", f"coredns-5d78c-{i}", NODES[i][0], "coredns", dns, owner, {"k8s-app": "kube-dns"})
        )
    for name, _ in NODES:
        exporter = {"cpu": "100m", "memory": "128Mi"}
        owner = ("DaemonSet", "node-exporter")
        out.append(
            pod("monitoring", f"node-exporter-{name}", name, "node-exporter", exporter, owner, {"app": "node-exporter"})
        )
    out += [
        workload("Deployment", "shop", "web", 3),
        workload("Deployment", "shop", "worker", 2),
        workload("StatefulSet", "shop", "db", 1),
        workload("Deployment", "kube-system", "coredns", 2),
        workload("DaemonSet", "monitoring", "node-exporter", 0),
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "coredns", "namespace": "kube-system"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"k8s-app": "kube-dns"}}},
        },
    ]
    return out


def write(path: Path) -> None:
    """Write the List as kubectl does (indented JSON, LF line ends)."""
    document = {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items()}
    path.write_text(json.dumps(document, indent=4) + "\n")


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("cluster.json"))
