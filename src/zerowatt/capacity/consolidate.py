"""Three scale-downs of one state: zerowatt on today's requests, zerowatt on right-sized requests, and
cluster-autoscaler's rule on today's requests; what each drained node saves, and where the two tools differ.

A drained node saves its modelled power at its typical load minus what its moved pods add to the nodes
they land on (their typical CPU use × each target's marginal watts per core): with identical nodes that is
the node's idle power. IT energy over a year (8760 h), facility energy (× PUE), carbon (on facility energy)
and water (on IT energy) come from :class:`~zerowatt.energy.facility.Facility`; money is the given price per
node-hour × 8760.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from zerowatt.capacity.breakdown import Breakdown
from zerowatt.capacity.model import MOVABLE, Cluster, IntArray
from zerowatt.capacity.pack import CLUSTER_AUTOSCALER, ZEROWATT, PackResult, Policy, pack
from zerowatt.capacity.power import NodeModels
from zerowatt.energy.capacity import SECONDS_PER_YEAR
from zerowatt.energy.facility import Facility
from zerowatt.units import JOULES_PER_KWH

HOURS_PER_YEAR = SECONDS_PER_YEAR / 3600.0


@dataclass(frozen=True)
class Saving:
    """What switching one node off saves per year."""

    node: int
    pods_moved: int
    it_watts: float
    kwh_it: float
    kwh_facility: float
    co2e_kg: float
    water_litres: float
    money: float | None


@dataclass
class Scenario:
    name: str
    policy: Policy
    result: PackResult
    savings: list[Saving]
    nodes_before: int
    lower_bound: int
    requested: IntArray  # (R,) every pod's requests summed

    @property
    def nodes_after(self) -> int:
        return self.nodes_before - len(self.result.removed)

    def total(self, attr: str) -> float:
        return float(sum(getattr(s, attr) or 0.0 for s in self.savings))


@dataclass
class Comparison:
    """Nodes one tool switches off and the other keeps, with the other's reason."""

    only_zerowatt: list[tuple[int, str]] = field(default_factory=list)
    only_autoscaler: list[tuple[int, str]] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)


@dataclass
class Consolidation:
    requests: Scenario
    rightsized: Scenario
    autoscaler: Scenario
    comparison: Comparison


def lower_bound(cluster: Cluster, req: IntArray) -> int:
    """Nodes needed at the very least: the total of each resource over the largest node's, rounded up
    (pods that may move only: DaemonSet and mirror pods go away with their node)."""
    if cluster.n_nodes == 0:
        return 0
    total = req[cluster.pod_kind == MOVABLE].sum(axis=0)
    biggest = cluster.alloc.max(axis=0)
    need = [int(np.ceil(total[j] / biggest[j])) for j in range(len(total)) if biggest[j] > 0]
    return max([0, *need])


def savings(
    cluster: Cluster,
    result: PackResult,
    pod_typical: np.ndarray,
    models: NodeModels,
    facility: Facility,
    price_per_node_hour: float | None,
) -> list[Saving]:
    """Per drained node, in drain order: its power at its load then, less what its pods add elsewhere."""
    load = np.bincount(cluster.pod_node, weights=pod_typical, minlength=cluster.n_nodes)
    cpus = np.maximum(cluster.node_cpus, 1).astype(np.float64)
    per_core = (models.max - models.idle) / (cpus * 1000.0)  # W per millicore of typical use
    out = []
    for n in result.removed:
        moved = result.moves.get(n, [])
        node_w = float(models.idle[n] + (models.max[n] - models.idle[n]) * min(1.0, load[n] / (cpus[n] * 1000.0)))
        added = 0.0
        for p, t in moved:
            added += pod_typical[p] * per_core[t]
            load[t] += pod_typical[p]
        load[n] = 0.0
        w = float(node_w - added)
        rep = facility.report(w * SECONDS_PER_YEAR)
        out.append(
            Saving(
                node=n,
                pods_moved=len(moved),
                it_watts=w,
                kwh_it=rep.it_joules / JOULES_PER_KWH,
                kwh_facility=rep.facility_joules / JOULES_PER_KWH,
                co2e_kg=rep.co2e_grams / 1000.0,
                water_litres=rep.water_litres,
                money=None if price_per_node_hour is None else price_per_node_hour * HOURS_PER_YEAR,
            )
        )
    return out


def compare(z: PackResult, ca: PackResult, names: list[str]) -> Comparison:
    """Where zerowatt and cluster-autoscaler disagree, each with the other's reason, and a summary."""
    zs, cs = set(z.removed), set(ca.removed)
    cmp = Comparison()
    cmp.only_zerowatt = [(n, ca.kept.get(n, "")) for n in z.removed if n not in cs]
    cmp.only_autoscaler = [(n, z.kept.get(n, "")) for n in ca.removed if n not in zs]
    cmp.summary.append(f"zerowatt switches off {len(zs)} node(s), cluster-autoscaler's rule {len(cs)}")
    buckets: dict[str, int] = {}
    for _, why in cmp.only_zerowatt:
        if "utilisation" in why:
            key = "their requested utilisation is at or above 0.5, so it never considers them"
        elif "--skip-nodes-with-system-pods" in why:
            key = "they run kube-system pods without a PDB (--skip-nodes-with-system-pods)"
        elif "disruption(s)" in why:
            key = "a PDB allows fewer disruptions than the node has pods of it (it evicts them all at once)"
        else:
            key = "its packing order found no room (zerowatt packs first-fit decreasing, then retries best-fit)"
        buckets[key] = buckets.get(key, 0) + 1
    for key, count in buckets.items():
        cmp.summary.append(f"{count} node(s) zerowatt switches off are kept by cluster-autoscaler: {key}")
    if cmp.only_autoscaler:
        cmp.summary.append(
            f"{len(cmp.only_autoscaler)} node(s) cluster-autoscaler switches off are kept by zerowatt: the two drain "
            "in a different order, and the pods of the nodes drained first took the room"
        )
    if not cmp.only_zerowatt and not cmp.only_autoscaler:
        cmp.summary.append("both switch off the same nodes")
    return cmp


def consolidate(
    cluster: Cluster,
    bd: Breakdown,
    row_target: IntArray,
    pmask: np.ndarray,
    models: NodeModels,
    facility: Facility,
    price_per_node_hour: float | None = None,
) -> Consolidation:
    """The three scenarios on one cluster state (``row_target``: the right-sized request of every row)."""
    pod_typical = np.bincount(bd.row_pod, weights=bd.row_typical, minlength=cluster.n_pods)
    req = cluster.pod_requests()
    req_rs = cluster.pod_requests(row_target)

    def scenario(name: str, r: IntArray, policy: Policy) -> Scenario:
        res = pack(cluster, r, policy, pmask)
        return Scenario(
            name,
            policy,
            res,
            savings(cluster, res, pod_typical, models, facility, price_per_node_hour),
            cluster.n_nodes,
            lower_bound(cluster, r),
            r.sum(axis=0),
        )

    today = scenario("requests", req, ZEROWATT)
    rightsized = scenario("rightsized", req_rs, ZEROWATT)
    autoscaler = scenario("cluster-autoscaler", req, CLUSTER_AUTOSCALER)
    return Consolidation(today, rightsized, autoscaler, compare(today.result, autoscaler.result, cluster.node_names))


def rightsized_rows(request: IntArray, target: np.ndarray) -> IntArray:
    """Each row's right-sized request: the right-sizer's target where known, today's request elsewhere."""
    t = np.floor(np.nan_to_num(target, nan=-1.0))
    return np.asarray(np.where(t >= 0, np.clip(t, 0, 2**62), request), dtype=np.int64)
