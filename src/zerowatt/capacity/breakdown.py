"""What the capacity is for: base, variable, safety, growth, redundancy and idle, in exact integers.

Per container row with request R and usage summary (base B ≤ peak P ≤ upper bound U, all clipped to R):

    base = min(B, R)                        variable = min(P, R) − base
    safety = min(U, R) − min(P, R)          growth = R − min(U, R)

so base + variable + safety + growth = R. A container whose usage is unknown counts its whole request as
base (nothing is called waste that the data cannot show). Redundancy is then carved out of a replicated
workload's headroom: a workload with k pods whose busiest container peaks at ρ = max(min(P, R) / R) of
its request needs n = max(1, ⌈k·ρ⌉) pods; the other k − n are redundant, and each row gives
⌊R·(k − n)/k⌋ (never more than its safety + growth), taken from growth first, then safety. The part a PDB
requires (minAvailable above n) is ``redundancy_required``. A pod's overhead counts as base and the part of
its largest init container above its containers' sum as safety (the scheduler holds both for the pod's
life). Per node, idle = allocatable − the requests on it, so the six add up to the node's allocatable
exactly; workloads, namespaces and the cluster are sums. A node that the scale-down on today's requests
keeps only for required anti-affinity or a topology spread (a spare node for N+1 or zones) has its idle
counted as redundancy, required (:func:`reclassify_spare`). See ``docs/capacity.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from zerowatt.capacity.model import REPLICATED_KINDS, Cluster, FloatArray, Int32Array, IntArray
from zerowatt.capacity.usage import Usage

CATEGORIES = ("base", "variable", "safety", "growth", "redundancy", "idle")
BASE, VARIABLE, SAFETY, GROWTH, REDUNDANCY, IDLE = range(6)
OVERHEAD_ROW = "(pod overhead)"
INIT_ROW = "(init containers)"


@dataclass
class Breakdown:
    """Accounting rows (containers plus pseudo rows for overhead and init excess) and their sums."""

    row_pod: Int32Array  # (A,)
    row_name: list[str]
    row_request: IntArray  # (A, 2)
    row_cat: IntArray  # (A, 5, 2): base, variable, safety, growth, redundancy
    row_required: IntArray  # (A, 2): the part of redundancy a PDB requires
    row_typical: FloatArray  # (A,) typical CPU use in millicores (the request where unknown)
    row_known: np.ndarray  # (A,) bool: usage known for CPU or memory
    node_cat: IntArray  # (N, 6, 2)
    node_required: IntArray  # (N, 2)
    workload_replicas: IntArray  # (W,)
    workload_needed: IntArray  # (W,) replicas the peak needs (= replicas where not replicated)
    workload_required: IntArray  # (W,) replicas the peak and the PDBs need
    #: Nodes kept only to spread replicas, whose idle is counted as (required) redundancy.
    spare_nodes: list[int] = field(default_factory=list)

    def check(self, alloc: IntArray) -> None:
        """Raise ``AssertionError`` unless every node's six categories add up to its allocatable."""
        total = self.node_cat.sum(axis=1)
        if not np.array_equal(total, alloc[:, :2]):
            raise AssertionError("capacity breakdown does not add up")


def _clip_usage(r: IntArray, usage: Usage) -> tuple[IntArray, IntArray, IntArray]:
    """(b, min(P,R), min(U,R)) per row and resource: integers, monotone, unknown → R."""
    known = ~np.isnan(usage.peak)
    base = np.floor(np.nan_to_num(usage.base, nan=0.0))
    peak = np.maximum(base, np.floor(np.nan_to_num(usage.peak, nan=0.0)))
    upper = np.maximum(peak, np.floor(np.nan_to_num(usage.upper, nan=0.0)))
    big = float(2**62)
    b = np.where(known, np.minimum(np.clip(base, 0, big).astype(np.int64), r), r)
    p = np.where(known, np.minimum(np.clip(peak, 0, big).astype(np.int64), r), r)
    u = np.where(known, np.minimum(np.clip(upper, 0, big).astype(np.int64), r), r)
    return b, p, u


def pdb_min_per_workload(cluster: Cluster) -> IntArray:
    """The largest ``minAvailable`` of any PDB selecting a workload's pods (0 without one)."""
    out = np.zeros(len(cluster.workloads), dtype=np.int64)
    for pdb in cluster.pdbs:
        if pdb.pods.size:
            ws = np.unique(cluster.pod_workload[pdb.pods])
            out[ws] = np.maximum(out[ws], pdb.min_available)
    return out


def compute(cluster: Cluster, usage: Usage) -> Breakdown:
    """The six categories per accounting row and node (see the module docstring for the formulas)."""
    r = cluster.row_request
    b, pk, u = _clip_usage(r, usage)
    cat = np.zeros((cluster.n_rows, 5, 2), dtype=np.int64)
    cat[:, 0], cat[:, 1], cat[:, 2], cat[:, 3] = b, pk - b, u - pk, r - u
    # Redundancy per replicated workload.
    n_w = len(cluster.workloads)
    row_w = cluster.pod_workload[cluster.row_pod].astype(np.int64)
    replicas = np.bincount(cluster.pod_workload, minlength=n_w).astype(np.int64)
    ratio = np.where(r > 0, pk / np.maximum(r, 1), 0.0).max(axis=1)
    rho = np.zeros(n_w)
    np.maximum.at(rho, row_w, ratio)
    needed = np.clip(np.ceil(replicas * rho - 1e-9), 1, np.maximum(replicas, 1)).astype(np.int64)
    replicated = np.array([w.kind in REPLICATED_KINDS for w in cluster.workloads], dtype=np.bool_)
    needed = np.where(replicated & (replicas >= 2), needed, replicas)
    required = np.minimum(replicas, np.maximum(needed, pdb_min_per_workload(cluster)))
    k = np.maximum(replicas[row_w], 1)[:, None]
    headroom = cat[:, 2] + cat[:, 3]
    red = np.minimum((r * (replicas - needed)[row_w][:, None]) // k, headroom)
    req_part = np.minimum((r * (required - needed)[row_w][:, None]) // k, red)
    from_growth = np.minimum(red, cat[:, 3])
    cat[:, 3] -= from_growth
    cat[:, 2] -= red - from_growth
    cat[:, 4] = red
    known = (~np.isnan(usage.peak)).any(axis=1)
    typical = np.where(np.isnan(usage.typical[:, 0]), r[:, 0], np.maximum(usage.typical[:, 0], 0.0))
    # Pseudo rows: a pod's overhead (base) and its init containers' excess over its containers (safety).
    app = cluster.app_sum(r)
    init_excess = np.maximum(cluster.init_max[:, :2] - app, 0)
    overhead = cluster.overhead[:, :2]
    oh_pods = np.flatnonzero(overhead.any(axis=1))
    in_pods = np.flatnonzero(init_excess.any(axis=1))
    n_extra = oh_pods.size + in_pods.size
    if n_extra:
        extra_cat = np.zeros((n_extra, 5, 2), dtype=np.int64)
        extra_cat[: oh_pods.size, 0] = overhead[oh_pods]
        extra_cat[oh_pods.size :, 2] = init_excess[in_pods]
        row_pod = np.concatenate([cluster.row_pod, oh_pods.astype(np.int32), in_pods.astype(np.int32)])
        names = [*cluster.row_name, *([OVERHEAD_ROW] * oh_pods.size), *([INIT_ROW] * in_pods.size)]
        cat = np.concatenate([cat, extra_cat])
        r = np.concatenate([r, overhead[oh_pods], init_excess[in_pods]])
        req_part = np.concatenate([req_part, np.zeros((n_extra, 2), dtype=np.int64)])
        typical = np.concatenate([typical, overhead[oh_pods, 0].astype(np.float64), np.zeros(in_pods.size)])
        known = np.concatenate([known, np.zeros(n_extra, dtype=np.bool_)])
    else:
        row_pod, names = cluster.row_pod, list(cluster.row_name)
    node_of_row = cluster.pod_node[row_pod]
    node_cat = np.zeros((cluster.n_nodes, 6, 2), dtype=np.int64)
    np.add.at(node_cat, node_of_row, np.concatenate([cat, np.zeros((cat.shape[0], 1, 2), dtype=np.int64)], axis=1))
    node_cat[:, 5] = cluster.alloc[:, :2] - node_cat[:, :5].sum(axis=1)
    node_required = np.zeros((cluster.n_nodes, 2), dtype=np.int64)
    np.add.at(node_required, node_of_row, req_part)
    return Breakdown(
        row_pod=np.asarray(row_pod, dtype=np.int32),
        row_name=names,
        row_request=np.asarray(r, dtype=np.int64),
        row_cat=cat,
        row_required=np.asarray(req_part, dtype=np.int64),
        row_typical=np.asarray(typical, dtype=np.float64),
        row_known=np.asarray(known, dtype=np.bool_),
        node_cat=node_cat,
        node_required=node_required,
        workload_replicas=replicas,
        workload_needed=needed,
        workload_required=required,
    )


#: Words of a kept node's reason that mean it stays only to spread replicas (N+1, zones, hosts).
SPREAD_REASONS = ("anti-affinity", "topology spread")


def spare_nodes(kept: dict[int, str]) -> list[int]:
    """Nodes a scale-down keeps only because required anti-affinity or a topology spread needs them there."""
    return sorted(n for n, why in kept.items() if any(w in why for w in SPREAD_REASONS))


def reclassify_spare(bd: Breakdown, node_watts: np.ndarray, spare: list[int]) -> None:
    """A spare node's idle capacity (and its watts) is redundancy, all of it required by the constraint.

    Moves amounts between two categories of the same node, so the six still add up to its allocatable.
    """
    for n in spare:
        moved = np.maximum(bd.node_cat[n, IDLE], 0)
        bd.node_cat[n, IDLE] -= moved
        bd.node_cat[n, REDUNDANCY] += moved
        bd.node_required[n] += moved
        if moved[0] > 0:
            node_watts[n, REDUNDANCY] += node_watts[n, IDLE]
            node_watts[n, IDLE] = 0.0
    bd.spare_nodes = list(spare)


def sums_by(index: np.ndarray, size: int, values: np.ndarray) -> np.ndarray:
    """``values`` summed per ``index`` (integers stay exact)."""
    out = np.zeros((size, *values.shape[1:]), dtype=values.dtype)
    np.add.at(out, index, values)
    return out
