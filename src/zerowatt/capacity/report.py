"""The capacity report as one JSON-ready document (schema ``zerowatt.capacity/v1``, see ``docs/capacity.md``).

:func:`analyse` runs the whole core on a parsed cluster and its usage (breakdown, watts, the three
scale-downs); :func:`document` turns the result into plain dicts and lists that every renderer reads.
Every category is ``{"cpu": cores, "memory": bytes, "watts": W}``.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zerowatt.capacity.breakdown import CATEGORIES, Breakdown, compute, reclassify_spare, spare_nodes, sums_by
from zerowatt.capacity.consolidate import Consolidation, Scenario, consolidate, rightsized_rows
from zerowatt.capacity.model import Cluster
from zerowatt.capacity.power import CategoryWatts, NodeModels, attribute
from zerowatt.capacity.selectors import placement_matrix
from zerowatt.capacity.usage import Usage
from zerowatt.energy.facility import Facility

SCHEMA = "zerowatt.capacity/v1"
ZONE_LABEL = "topology.kubernetes.io/zone"


@dataclass
class Analysis:
    cluster: Cluster
    usage: Usage
    breakdown: Breakdown
    watts: CategoryWatts
    models: NodeModels
    consolidation: Consolidation
    facility: Facility
    price_per_node_hour: float | None
    source: str = ""
    usage_source: str = ""
    warnings: list[str] = field(default_factory=list)


def analyse(
    cluster: Cluster,
    usage: Usage,
    models: NodeModels,
    facility: Facility,
    price_per_node_hour: float | None = None,
) -> Analysis:
    """Breakdown, watts and the three scale-downs of one cluster state."""
    bd = compute(cluster, usage)
    node_of_row = cluster.pod_node[bd.row_pod]
    watts = attribute(bd, node_of_row, cluster.alloc[:, 0].astype(np.float64), models, cluster.node_cpus)
    pmask = placement_matrix(cluster.placements, cluster.node_names, cluster.node_labels, cluster.node_taints)
    target = rightsized_rows(cluster.row_request, usage.target)
    cons = consolidate(cluster, bd, target, pmask, models, facility, price_per_node_hour)
    reclassify_spare(bd, watts.node, spare_nodes(cons.requests.result.kept))
    return Analysis(cluster, usage, bd, watts, models, cons, facility, price_per_node_hour)


def _cat(cpu_milli: float, memory: float, watts: float) -> dict[str, float | int]:
    return {"cpu": round(float(cpu_milli) / 1000.0, 3), "memory": int(memory), "watts": round(float(watts), 3)}


def _categories(amounts: np.ndarray, watts: np.ndarray, with_idle: bool = True) -> dict[str, Any]:
    """``amounts`` (k, 2) ints and ``watts`` (k,) for the first k categories → the JSON object."""
    names = CATEGORIES if with_idle else CATEGORIES[:5]
    out: dict[str, Any] = {}
    total = amounts.sum(axis=0)
    out["capacity" if with_idle else "requests"] = _cat(total[0], total[1], watts.sum())
    for i, name in enumerate(names):
        out[name] = _cat(amounts[i, 0], amounts[i, 1], watts[i])
    return out


def _scenario(a: Analysis, s: Scenario) -> dict[str, Any]:
    c = a.cluster
    names = c.node_names
    off = set(s.result.removed)
    kept = [n for n in range(c.n_nodes) if n not in off]
    drain = []
    for sv in s.savings:
        drain.append(
            {
                "node": names[sv.node],
                "pods_moved": sv.pods_moved,
                "it_watts": round(sv.it_watts, 3),
                "kwh_it_per_year": round(sv.kwh_it, 3),
                "kwh_per_year": round(sv.kwh_facility, 3),
                "co2e_kg_per_year": round(sv.co2e_kg, 3),
                "water_litres_per_year": round(sv.water_litres, 3),
                "money_per_year": None if sv.money is None else round(sv.money, 2),
            }
        )
    money = None if a.price_per_node_hour is None else round(s.total("money"), 2)
    out: dict[str, Any] = {
        "policy": s.policy.name,
        "nodes_before": s.nodes_before,
        "nodes_after": s.nodes_after,
        "lower_bound_nodes": s.lower_bound,
        "requested": {"cpu": round(float(s.requested[0]) / 1000.0, 3), "memory": int(s.requested[1])},
        "nodes_off": [names[n] for n in s.result.removed],
        "nodes_kept": [names[n] for n in kept],
        "kept_because": {names[n]: s.result.kept.get(n, "") for n in kept},
        "drain": drain,
        "it_watts": round(s.total("it_watts"), 3),
        "kwh_it_per_year": round(s.total("kwh_it"), 3),
        "kwh_per_year": round(s.total("kwh_facility"), 3),
        "co2e_kg_per_year": round(s.total("co2e_kg"), 3),
        "water_litres_per_year": round(s.total("water_litres"), 3),
        "money_per_year": money,
    }
    if s.policy.name == "zerowatt":
        out["commands"] = commands([names[n] for n in s.result.removed])
        out["karpenter"] = karpenter(a, s)
    return out


def commands(nodes: list[str]) -> list[str]:
    """What a person runs, node by node in drain order: cordon, then drain (DaemonSet pods stay)."""
    out = []
    for n in nodes:
        q = shlex.quote(n)
        out.append(f"kubectl cordon {q}")
        out.append(f"kubectl drain {q} --ignore-daemonsets --timeout=15m")
    return out


def karpenter(a: Analysis, s: Scenario) -> list[str]:
    """Karpenter's consolidation log lines: ``delete``, the node, its instance type and zone, its pods."""
    c = a.cluster
    lines = []
    for sv in s.savings:
        lab = c.node_labels[sv.node]
        itype = lab.get("node.kubernetes.io/instance-type", "unknown")
        zone = lab.get(ZONE_LABEL, "unknown")
        lines.append(
            f"disrupting via consolidation delete, terminating 1 nodes ({sv.pods_moved} pods) "
            f"{c.node_names[sv.node]}/{itype}/{zone}, saving {sv.it_watts:.1f} W"
        )
    return lines


def document(a: Analysis) -> dict[str, Any]:
    """The whole report as plain data (the JSON and YAML outputs; the table and HTML read it too)."""
    c, bd, w = a.cluster, a.breakdown, a.watts
    cluster_amounts = bd.node_cat.sum(axis=0)
    cluster_watts = w.node.sum(axis=0)
    cluster_obj = {
        "nodes": c.n_nodes,
        "pods": c.n_pods,
        **_categories(cluster_amounts, cluster_watts),
        "redundancy_required": {
            "cpu": round(float(bd.node_required[:, 0].sum()) / 1000.0, 3),
            "memory": int(bd.node_required[:, 1].sum()),
        },
    }
    nodes = []
    util = a.consolidation.requests.result.utilisation
    spare = set(bd.spare_nodes)
    for n in range(c.n_nodes):
        lab = c.node_labels[n]
        nodes.append(
            {
                "name": c.node_names[n],
                "instance_type": lab.get("node.kubernetes.io/instance-type"),
                "zone": lab.get(ZONE_LABEL),
                "power_model": a.models.basis[n],
                "idle_watts": round(float(a.models.idle[n]), 3),
                "max_watts": round(float(a.models.max[n]), 3),
                "requested_utilisation": round(float(util[n]), 4),
                "spare": n in spare,
                **_categories(bd.node_cat[n], w.node[n]),
            }
        )
    # Namespaces and workloads: sums of accounting rows.
    row_w = c.pod_workload[bd.row_pod].astype(np.int64)
    n_w = len(c.workloads)
    w_amt = sums_by(row_w, n_w, bd.row_cat)
    w_watts = sums_by(row_w, n_w, w.row)
    ns_names = sorted({wl.namespace for wl in c.workloads})
    ns_index = {n: i for i, n in enumerate(ns_names)}
    w_ns = np.asarray([ns_index[wl.namespace] for wl in c.workloads], dtype=np.int64)
    ns_amt = sums_by(w_ns, len(ns_names), w_amt) if n_w else np.zeros((0, 5, 2), dtype=np.int64)
    ns_watts = sums_by(w_ns, len(ns_names), w_watts) if n_w else np.zeros((0, 5))
    namespaces = [{"name": ns, **_categories(ns_amt[i], ns_watts[i], with_idle=False)} for i, ns in enumerate(ns_names)]
    workloads = []
    for i, wl in enumerate(c.workloads):
        workloads.append(
            {
                "namespace": wl.namespace,
                "kind": wl.kind,
                "name": wl.name,
                "replicas": int(bd.workload_replicas[i]),
                "replicas_needed": int(bd.workload_needed[i]),
                "replicas_required": int(bd.workload_required[i]),
                **_categories(w_amt[i], w_watts[i], with_idle=False),
            }
        )
    # Containers: one entry per workload and container name (the VPA's aggregation).
    name_index: dict[str, int] = {}
    row_name_id = np.asarray([name_index.setdefault(x, len(name_index)) for x in bd.row_name], dtype=np.int64)
    key = row_w * max(1, len(name_index)) + row_name_id
    uniq, inv = np.unique(key, return_inverse=True)
    c_amt = sums_by(inv, uniq.size, bd.row_cat)
    c_watts = sums_by(inv, uniq.size, w.row)
    names_by_id = list(name_index)
    containers = []
    for i, k in enumerate(uniq.tolist()):
        wl = c.workloads[k // max(1, len(name_index))]
        containers.append(
            {
                "namespace": wl.namespace,
                "workload": f"{wl.kind}/{wl.name}",
                "container": names_by_id[k % max(1, len(name_index))],
                **_categories(c_amt[i], c_watts[i], with_idle=False),
            }
        )
    cons = a.consolidation
    cmp = cons.comparison
    f = a.facility
    return {
        "schema": SCHEMA,
        "source": a.source,
        "usage_source": a.usage_source,
        "warnings": list(a.warnings),
        "power": {
            "pue": f.pue,
            "wue_l_per_kwh": f.wue,
            "carbon_g_per_kwh": f.carbon_g_per_kwh,
            "carbon_basis": f.carbon_basis,
            "price_per_node_hour": a.price_per_node_hour,
            "hours_per_year": 8760,
            "node_models": {b: a.models.basis.count(b) for b in sorted(set(a.models.basis))},
            "containers_with_usage": int(bd.row_known.sum()),
            "containers": int(bd.row_known.size),
        },
        "cluster": cluster_obj,
        "nodes": nodes,
        "namespaces": namespaces,
        "workloads": workloads,
        "containers": containers,
        "consolidation": {
            "requests": _scenario(a, cons.requests),
            "rightsized": _scenario(a, cons.rightsized),
            "cluster_autoscaler": _scenario(a, cons.autoscaler),
            "comparison": {
                "only_zerowatt": [
                    {"node": c.node_names[n], "autoscaler_keeps_because": why} for n, why in cmp.only_zerowatt
                ],
                "only_autoscaler": [
                    {"node": c.node_names[n], "zerowatt_keeps_because": why} for n, why in cmp.only_autoscaler
                ],
                "summary": cmp.summary,
            },
        },
    }
