"""Property: on any cluster, re-packing never violates a constraint and never uses more nodes than today.

Clusters are drawn at random (node sizes, pools, zones, taints, GPUs; workloads with selectors, tolerations,
anti-affinity, zone spread, PDBs, pods that cannot be evicted) and placed validly by a simple scheduler
here; after the drain simulation the checks below re-derive every constraint from the drawn description,
not from the code under test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.capacity.builders import anti_affinity, deployment, listing, node, pdb, pod, spread
from zerowatt.capacity.breakdown import compute
from zerowatt.capacity.model import MOVABLE
from zerowatt.capacity.pack import CLUSTER_AUTOSCALER, ZEROWATT, pack
from zerowatt.capacity.selectors import placement_matrix
from zerowatt.capacity.snapshot import parse_snapshot
from zerowatt.capacity.usage import Usage

MI = 2**20


@dataclass
class N:
    name: str
    cpu: int  # millicores
    mem: int  # MiB
    gpu: int
    pool: str
    zone: str
    tainted: bool


@dataclass
class W:
    name: str
    replicas: int
    cpu: int
    mem: int
    gpu: int
    pool: str | None
    tolerates: bool
    anti: bool
    spread: bool
    pdb: int | None  # maxUnavailable
    unsafe: bool


nodes_st = st.lists(
    st.builds(
        N,
        name=st.just(""),
        cpu=st.sampled_from([2000, 4000, 8000]),
        mem=st.sampled_from([4096, 8192, 16384]),
        gpu=st.sampled_from([0, 0, 2]),
        pool=st.sampled_from(["a", "b"]),
        zone=st.sampled_from(["z0", "z1", "z2"]),
        tainted=st.booleans(),
    ),
    min_size=2,
    max_size=7,
)
workloads_st = st.lists(
    st.builds(
        W,
        name=st.just(""),
        replicas=st.integers(1, 4),
        cpu=st.integers(1, 15).map(lambda x: x * 100),
        mem=st.sampled_from([128, 256, 512, 1024, 2048]),
        gpu=st.sampled_from([0, 0, 0, 1]),
        pool=st.sampled_from([None, None, "a", "b"]),
        tolerates=st.booleans(),
        anti=st.booleans(),
        spread=st.booleans(),
        pdb=st.sampled_from([None, None, 0, 1]),
        unsafe=st.sampled_from([False, False, False, True]),
    ),
    min_size=1,
    max_size=5,
)


def allowed(w: W, n: N) -> bool:
    return (w.pool is None or w.pool == n.pool) and (w.tolerates or not n.tainted)


def build(nodes: list[N], wls: list[W], order: list[int]) -> tuple[dict[str, Any], dict[str, tuple[W, str]]]:
    """The snapshot, and pod name → (workload, node) as this simple scheduler placed it."""
    for i, n in enumerate(nodes):
        n.name = f"n{i}"
    free = {n.name: [n.cpu, n.mem, n.gpu, 110] for n in nodes}
    items: list[dict[str, Any]] = []
    placed: dict[str, tuple[W, str]] = {}
    for n in nodes:
        items.append(
            node(
                n.name,
                cpu=f"{n.cpu}m",
                memory=f"{n.mem}Mi",
                labels={"pool": n.pool, "topology.kubernetes.io/zone": n.zone},
                taints=[{"key": "dedicated", "value": "x", "effect": "NoSchedule"}] if n.tainted else None,
                extra={"nvidia.com/gpu": str(n.gpu)} if n.gpu else None,
            )
        )
    for j, w in enumerate(wls):
        w.name = f"w{j}"
        labels = {"app": w.name}
        items.append(deployment(w.name))
        if w.pdb is not None:
            items.append(pdb(w.name, labels, maxUnavailable=w.pdb))
        spec: dict[str, Any] = {}
        if w.pool:
            spec["nodeSelector"] = {"pool": w.pool}
        if w.tolerates:
            spec["tolerations"] = [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}]
        if w.anti:
            spec.update(anti_affinity(labels))
        if w.spread:
            spec.update(spread(labels, "topology.kubernetes.io/zone"))
        for r in range(w.replicas):
            name = f"{w.name}-abc12-{r}"
            where = None
            for k in order:
                n = nodes[k % len(nodes)]
                f = free[n.name]
                if not allowed(w, n) or f[0] < w.cpu or f[1] < w.mem or f[2] < w.gpu or f[3] < 1:
                    continue
                if w.anti and any(pw is w and pn == n.name for pw, pn in placed.values()):
                    continue
                where = n.name
                break
            if where is not None:
                f = free[where]
                f[0], f[1], f[2], f[3] = f[0] - w.cpu, f[1] - w.mem, f[2] - w.gpu, f[3] - 1
                placed[name] = (w, where)
            items.append(
                pod(
                    name,
                    where,
                    cpu=f"{w.cpu}m",
                    memory=f"{w.mem}Mi",
                    owner=("ReplicaSet", f"{w.name}-abc12"),
                    labels=labels,
                    spec=spec,
                    annotations={"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"} if w.unsafe else None,
                    extra={"nvidia.com/gpu": str(w.gpu)} if w.gpu else None,
                )
            )
    return listing(*items), placed


def zone_skew(counts: dict[str, int], zones: set[str]) -> int:
    values = [counts.get(z, 0) for z in zones]
    return max(values) - min(values) if values else 0


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes_st, workloads_st, st.permutations(list(range(7))), st.floats(0.2, 1.0), st.booleans())
def test_repacking_keeps_every_constraint(
    nodes: list[N], wls: list[W], order: list[int], shrink: float, autoscaler: bool
) -> None:
    doc, placed = build(nodes, wls, order)
    c = parse_snapshot(doc).cluster
    by_name = {n.name: n for n in nodes}
    pm = placement_matrix(c.placements, c.node_names, c.node_labels, c.node_taints)
    rows = np.floor(c.row_request * np.array([shrink, 1.0])).astype(np.int64) if shrink < 1 else c.row_request
    req = c.pod_requests(rows)
    res = pack(c, req, CLUSTER_AUTOSCALER if autoscaler else ZEROWATT, pm)
    gone = {c.node_names[n] for n in res.removed}
    assert len(res.removed) == len(gone) <= c.n_nodes - 1 + (c.n_pods == 0)
    final = {c.pod_names[p]: c.node_names[int(res.pod_node[p])] for p in range(c.n_pods)}
    # Capacity on every node left on.
    used: dict[str, list[int]] = {n.name: [0, 0, 0, 0] for n in nodes}
    for name, (w, _) in placed.items():
        u = used[final[name]]
        cpu = int(np.floor(w.cpu * shrink)) if shrink < 1 else w.cpu
        u[0], u[1], u[2], u[3] = u[0] + cpu, u[1] + w.mem, u[2] + w.gpu, u[3] + 1
    for n in nodes:
        if n.name not in gone:
            u = used[n.name]
            assert u[0] <= n.cpu and u[1] <= n.mem and u[2] <= n.gpu and u[3] <= 110
    for name, (w, start) in placed.items():
        end = final[name]
        assert end not in gone
        assert allowed(w, by_name[end])
        if end != start:
            assert start in gone and not w.unsafe
        if start in gone and (w.unsafe or w.pdb == 0):
            raise AssertionError(f"{start} drained with an unevictable pod {name}")
    for w in wls:
        mine = [final[p] for p, (pw, _) in placed.items() if pw is w]
        if w.anti:
            assert len(mine) == len(set(mine)), f"anti-affinity of {w.name} broken: {mine}"
        if w.spread and mine:
            zones_before = {n.zone for n in nodes}
            zones_after = {n.zone for n in nodes if n.name not in gone}
            before: dict[str, int] = {}
            after: dict[str, int] = {}
            for p, (pw, start) in placed.items():
                if pw is w:
                    before[by_name[start].zone] = before.get(by_name[start].zone, 0) + 1
                    after[by_name[final[p]].zone] = after.get(by_name[final[p]].zone, 0) + 1
            assert zone_skew(after, zones_after) <= max(1, zone_skew(before, zones_before))
            assert set(before) <= zones_after, "a zone the spread uses lost its last node"
    # The breakdown adds up on the same cluster, whatever the usage.
    u = Usage.unknown(c.n_rows)
    u.base[:, 0], u.peak[:, 0], u.upper[:, 0] = 50.0, 400.0 * shrink, 600.0
    compute(c, u).check(c.alloc)
    assert all(c.pod_kind[p] == MOVABLE for p in range(c.n_pods))
