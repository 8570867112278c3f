"""Hand-built clusters whose right answers can be worked out on paper (each docstring shows the working)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.capacity.builders import anti_affinity, deployment, listing, node, pdb, pod, spread


@dataclass(frozen=True)
class Fixture:
    name: str
    doc: dict[str, Any]
    #: How many nodes zerowatt switches off on today's requests, and cluster-autoscaler's rule.
    off: int
    ca_off: int
    #: Nodes that must stay, and a word their reason must contain.
    kept: dict[str, str] = field(default_factory=dict)


def half_empty() -> Fixture:
    """4 nodes × 4 CPU, one 1-CPU pod each: all 4 pods fit on one node (4 CPU), so 3 go (lower bound 1).
    cluster-autoscaler also gets 3: after the first drain the target holds 2 CPU (0.5, no longer a candidate)
    and takes the other two nodes' pods."""
    items = [deployment("web")] + [node(f"n{i}") for i in range(4)]
    items += [pod(f"web-5d8f7c-{i}", f"n{i}", cpu="1", memory="2Gi") for i in range(4)]
    return Fixture("half_empty", listing(*items), off=3, ca_off=3)


def anti() -> Fixture:
    """Same, but the pods repel each other per hostname: no node can take a second one, nothing goes."""
    sp = anti_affinity({"app": "web"})
    items = [deployment("web")] + [node(f"n{i}") for i in range(4)]
    items += [pod(f"web-5d8f7c-{i}", f"n{i}", cpu="1", memory="2Gi", spec=sp) for i in range(4)]
    return Fixture("anti", listing(*items), off=0, ca_off=0, kept={"n0": "anti-affinity"})


def sixty_percent() -> Fixture:
    """3 nodes × 10 CPU, each with three 2-CPU pods (60 % requested): 18 CPU fit on 2 nodes (20 CPU), so
    zerowatt drains one (its 3 pods go 2 + 1 onto the others' 4 free CPU). cluster-autoscaler never looks at
    a node at 0.6 ≥ 0.5: none."""
    items = [deployment("api")] + [node(f"n{i}", cpu="10", memory="64Gi") for i in range(3)]
    items += [
        pod(f"api-7c9d-{i}{j}", f"n{i}", cpu="2", memory="1Gi", owner=("ReplicaSet", "api-7c9d"), labels={"app": "api"})
        for i in range(3)
        for j in range(3)
    ]
    return Fixture("sixty_percent", listing(*items), off=1, ca_off=0)


def unmovable() -> Fixture:
    """4 nearly empty nodes; n0 runs a bare pod, n1 a pod with an emptyDir, n2 one marked safe-to-evict
    "false": only n3 can be drained (its pod fits anywhere)."""
    items = [deployment("web")] + [node(f"n{i}") for i in range(4)]
    items += [
        pod("bare", "n0", cpu="100m", owner=None, labels={"app": "bare"}),
        pod("web-5d8f7c-a", "n1", cpu="100m", spec={"volumes": [{"name": "scratch", "emptyDir": {}}]}),
        pod("web-5d8f7c-b", "n2", cpu="100m", annotations={"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"}),
        pod("web-5d8f7c-c", "n3", cpu="100m"),
    ]
    return Fixture(
        "unmovable",
        listing(*items),
        off=1,
        ca_off=1,
        kept={"n0": "no controller", "n1": "emptyDir", "n2": "safe-to-evict"},
    )


def pdbs() -> Fixture:
    """3 nodes × 4 CPU. n0: two pods of `db`, n1: one `db` pod (PDB maxUnavailable 1), n2: two `locked` pods
    (PDB minAvailable 2 of 2: no disruption ever). Emptiest first: n1's pod goes to n0 (fullest first) → 1
    off; then n0 (3 CPU) cannot fit into n2's 2 free CPU, and n2 is locked by its PDB."""
    items = [deployment("db"), deployment("locked")] + [node(f"n{i}") for i in range(3)]
    db = {"app": "db"}
    items += [
        pod("db-6f7d-a", "n0", cpu="1", owner=("ReplicaSet", "db-6f7d"), labels=db),
        pod("db-6f7d-b", "n0", cpu="1", owner=("ReplicaSet", "db-6f7d"), labels=db),
        pod("db-6f7d-c", "n1", cpu="1", owner=("ReplicaSet", "db-6f7d"), labels=db),
        pod("locked-1a2b-a", "n2", cpu="1", owner=("ReplicaSet", "locked-1a2b"), labels={"app": "locked"}),
        pod("locked-1a2b-b", "n2", cpu="1", owner=("ReplicaSet", "locked-1a2b"), labels={"app": "locked"}),
        pdb("db", db, maxUnavailable=1),
        pdb("locked", {"app": "locked"}, minAvailable=2),
    ]
    return Fixture("pdbs", listing(*items), off=1, ca_off=1, kept={"n2": "allows no disruption"})


def pdb_strict() -> Fixture:
    """3 nodes × 8 CPU. n1: one web pod (1 CPU), n0: two `db` pods (PDB maxUnavailable 1), n2: the third db
    pod and 4 CPU of web (5 CPU). zerowatt: n1 → n2 (6 CPU), then n0's two db pods one at a time → n2 (8):
    2 off. cluster-autoscaler needs the PDB to allow both evictions at once (2 > 1): only n1 goes."""
    db = {"app": "db"}
    items = [deployment("db"), deployment("web")] + [node(f"n{i}", cpu="8", memory="32Gi") for i in range(3)]
    items += [
        pod("web-5d8f7c-a", "n1", cpu="1"),
        pod("db-6f7d-a", "n0", cpu="1", owner=("ReplicaSet", "db-6f7d"), labels=db),
        pod("db-6f7d-b", "n0", cpu="1", owner=("ReplicaSet", "db-6f7d"), labels=db),
        pod("db-6f7d-c", "n2", cpu="1", owner=("ReplicaSet", "db-6f7d"), labels=db),
        pod("web-5d8f7c-b", "n2", cpu="4"),
        pdb("db", db, maxUnavailable=1),
    ]
    return Fixture("pdb_strict", listing(*items), off=2, ca_off=1)


def system_pods() -> Fixture:
    """2 nodes × 4 CPU; n0 runs a kube-system Deployment pod without a PDB (coredns), n1 a web pod. Both fit
    on one node: zerowatt drains n0 (the emptier); cluster-autoscaler's --skip-nodes-with-system-pods keeps
    n0 and drains n1 instead: 1 off each, different nodes."""
    items = [deployment("web"), deployment("coredns", "kube-system")] + [node(f"n{i}") for i in range(2)]
    items += [
        pod("coredns-55cc-a", "n0", cpu="100m", namespace="kube-system", owner=("ReplicaSet", "coredns-55cc"),
            labels={"k8s-app": "kube-dns"}),
        pod("web-5d8f7c-a", "n1", cpu="1"),
    ]  # fmt: skip
    return Fixture("system_pods", listing(*items), off=1, ca_off=1)


def gpu() -> Fixture:
    """2 CPU nodes and 2 GPU nodes (4 GPUs each, tainted gpu=true:NoSchedule). One 1-GPU pod per GPU node, one
    small pod per CPU node. The GPU pods tolerate the taint and need `nvidia.com/gpu`: they can only share a
    GPU node, so one GPU node goes; the CPU pods cannot go to GPU nodes (taint) but fit each other's node:
    one CPU node goes. 2 off."""
    taint = [{"key": "gpu", "value": "true", "effect": "NoSchedule"}]
    tol = {"tolerations": [{"key": "gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}]}
    items = [deployment("train"), deployment("web")]
    items += [node(f"cpu{i}") for i in range(2)]
    items += [node(f"gpu{i}", cpu="16", memory="64Gi", taints=taint, extra={"nvidia.com/gpu": "4"}) for i in range(2)]
    items += [
        pod(f"train-9a8b-{i}", f"gpu{i}", cpu="2", memory="8Gi", owner=("ReplicaSet", "train-9a8b"),
            labels={"app": "train"}, spec=tol, extra={"nvidia.com/gpu": "1"})
        for i in range(2)
    ]  # fmt: skip
    items += [pod(f"web-5d8f7c-{i}", f"cpu{i}", cpu="500m") for i in range(2)]
    return Fixture("gpu", listing(*items), off=2, ca_off=2)


def zone_spread() -> Fixture:
    """4 nodes in 2 zones (2 each), 4 replicas spread over the zones with maxSkew 1, one per node. Draining a
    node moves its pod to the other node of its zone (the other zone would make the skew 2). Then each zone
    has one node: draining it would take the zone away from the spread, which zerowatt refuses. 2 off."""
    sp = spread({"app": "web"}, "topology.kubernetes.io/zone")
    items = [deployment("web")]
    items += [node(f"n{i}", labels={"topology.kubernetes.io/zone": f"z{i % 2}"}) for i in range(4)]
    items += [pod(f"web-5d8f7c-{i}", f"n{i}", cpu="1", memory="1Gi", spec=sp) for i in range(4)]
    return Fixture("zone_spread", listing(*items), off=2, ca_off=2, kept={})


ALL: list[Callable[[], Fixture]] = [
    half_empty, anti, sixty_percent, unmovable, pdbs, pdb_strict, system_pods, gpu, zone_spread,
]  # fmt: skip
