"""A cluster snapshot (``kubectl get nodes,pods,pdb,deploy,sts,ds -A -o json``, a ``List``) → :class:`Cluster`.

Pure: the adapter decodes the file (or lists the API) and passes the document in. Every object is checked
for the fields the report needs; a missing or mistyped one is a :class:`ValidationError` naming the object
and the field (``Pod shop/web-1: spec.containers[0].resources.requests.cpu: ...``, exit 2). What can be
counted instead is counted and reported as a warning with counts: pods not on a node (pending) or on a node
the snapshot lacks, finished pods, nodes with neither ``status.allocatable`` nor ``status.capacity`` (left
out with their pods), containers without requests (0, as the scheduler counts them), resources other than
CPU and memory (``nvidia.com/gpu``: carried as a packing constraint).

Pods of one controller share their template, so the placement (node selector, required node affinity,
tolerations), the labels the selectors see and the pod (anti-)affinity terms are read from the first pod
of each controller and shared; per pod only the node, the requests, volumes and annotations are read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

import numpy as np

from zerowatt.capacity.model import (
    BASE_RESOURCES,
    MOVABLE,
    NODE_BOUND,
    PODS,
    AntiAffinity,
    Cluster,
    LabelSelector,
    Pdb,
    Placement,
    Requirement,
    Spread,
    Taint,
    Toleration,
    Workload,
)
from zerowatt.capacity.selectors import selector_matches
from zerowatt.errors import ValidationError
from zerowatt.kube.savings import parse_quantity

SAFE_TO_EVICT = "cluster-autoscaler.kubernetes.io/safe-to-evict"
MIRROR = "kubernetes.io/config.mirror"
#: Labels that differ between pods of one template; selectors are matched on the template's other labels.
PER_POD_LABELS = frozenset(
    {
        "pod-template-hash",
        "controller-revision-hash",
        "statefulset.kubernetes.io/pod-name",
        "apps.kubernetes.io/pod-index",
    }
)
#: Node resources that are not packing constraints unless a pod requests them.
KNOWN_KINDS = frozenset({"Node", "Pod", "PodDisruptionBudget", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"})


@dataclass
class Snapshot:
    """The parsed cluster and what the parser had to count, skip or assume (one line each)."""

    cluster: Cluster
    warnings: list[str] = field(default_factory=list)


def _where(kind: str, meta: Mapping[str, Any], index: int) -> str:
    name = meta.get("name") if isinstance(meta, Mapping) else None
    ns = meta.get("namespace") if isinstance(meta, Mapping) else None
    if not isinstance(name, str) or not name:
        return f"items[{index}] ({kind})"
    return f"{kind} {ns}/{name}" if isinstance(ns, str) and ns else f"{kind} {name}"


_EMPTY: Mapping[str, Any] = {}


def _map(obj: Any, where: str, path: str, required: bool = False) -> Mapping[str, Any]:
    if type(obj) is dict:  # what json.loads gives: skip the ABC check (hot: several calls per pod)
        return obj
    if obj is None and not required:
        return _EMPTY
    if not isinstance(obj, Mapping):
        raise ValidationError(where, f"{path}: {'missing' if obj is None else 'expected an object'}")
    return obj


def _list(obj: Any, where: str, path: str) -> list[Any]:
    if type(obj) is list:
        return obj
    if obj is None:
        return []
    if not isinstance(obj, list):
        raise ValidationError(where, f"{path}: expected a list")
    return obj


def _str(obj: Any, where: str, path: str) -> str:
    if not isinstance(obj, str) or not obj:
        raise ValidationError(where, f"{path}: {'missing' if obj is None else 'expected a non-empty string'}")
    return obj


def _str_map(obj: Any, where: str, path: str) -> dict[str, str]:
    m = _map(obj, where, path)
    for k, v in m.items():
        if type(v) is not str:
            raise ValidationError(where, f"{path}.{k}: expected a string")
    return dict(m)


@lru_cache(maxsize=8192)
def _decimal(text: str) -> Decimal:
    return Decimal(repr(parse_quantity(text)))


_AMOUNTS: dict[tuple[bool, str], int] = {}


def amount(value: Any, resource: str, where: str, path: str) -> int:
    """A quantity in the model's integer unit: CPU in millicores (rounded up, as Kubernetes does), others
    in whole units (bytes), rounded up."""
    if type(value) is str:  # cached: a cluster repeats a few quantity strings across 100,000 pods
        hit = _AMOUNTS.get((resource == "cpu", value))
        if hit is not None:
            return hit
    result = _amount(value, resource, where, path)
    if type(value) is str and len(_AMOUNTS) < 65536:
        _AMOUNTS[(resource == "cpu", value)] = result
    return result


def _amount(value: Any, resource: str, where: str, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValidationError(where, f"{path}: expected a Kubernetes quantity, got {value!r}")
    try:
        d = _decimal(str(value))
    except ValueError as exc:
        raise ValidationError(where, f"{path}: {exc}") from None
    if d < 0 or not d.is_finite():
        raise ValidationError(where, f"{path}: expected a quantity ≥ 0, got {value!r}")
    if resource == "cpu":
        d *= 1000
    if d > 2**62:
        raise ValidationError(where, f"{path}: {value!r} is out of range")
    return math.ceil(d)


def _requirements(items: Any, where: str, path: str) -> tuple[Requirement, ...]:
    out = []
    for j, e in enumerate(_list(items, where, path)):
        e = _map(e, where, f"{path}[{j}]", required=True)
        op = _str(e.get("operator"), where, f"{path}[{j}].operator")
        if op not in ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"):
            raise ValidationError(where, f"{path}[{j}].operator: unknown operator {op!r}")
        vals = _list(e.get("values"), where, f"{path}[{j}].values")
        out.append(Requirement(_str(e.get("key"), where, f"{path}[{j}].key"), op, tuple(str(v) for v in vals)))
    return tuple(out)


def label_selector(obj: Any, where: str, path: str) -> LabelSelector:
    m = _map(obj, where, path)
    labels = _str_map(m.get("matchLabels"), where, f"{path}.matchLabels")
    return LabelSelector(tuple(sorted(labels.items())), _requirements(m.get("matchExpressions"), where, path))


def _placement(spec: Mapping[str, Any], where: str) -> Placement:
    sel = _str_map(spec.get("nodeSelector"), where, "spec.nodeSelector")
    aff = _map(spec.get("affinity"), where, "spec.affinity")
    na = _map(aff.get("nodeAffinity"), where, "spec.affinity.nodeAffinity")
    path = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
    req = _map(na.get("requiredDuringSchedulingIgnoredDuringExecution"), where, path)
    terms, fterms = [], []
    for i, t in enumerate(_list(req.get("nodeSelectorTerms"), where, f"{path}.nodeSelectorTerms")):
        t = _map(t, where, f"{path}.nodeSelectorTerms[{i}]", required=True)
        terms.append(_requirements(t.get("matchExpressions"), where, f"{path}.nodeSelectorTerms[{i}].matchExpressions"))
        fterms.append(_requirements(t.get("matchFields"), where, f"{path}.nodeSelectorTerms[{i}].matchFields"))
    tols = []
    for i, t in enumerate(_list(spec.get("tolerations"), where, "spec.tolerations")):
        t = _map(t, where, f"spec.tolerations[{i}]", required=True)
        tols.append(
            Toleration(
                str(t.get("key") or ""),
                str(t.get("operator") or "Equal"),
                str(t.get("value") or ""),
                str(t.get("effect") or ""),
            )
        )
    has_fields = any(fterms)
    return Placement(
        tuple(sorted(sel.items())),
        tuple(terms),
        tuple(fterms) if has_fields else (),
        tuple(sorted(set(tols), key=repr)),
    )


@dataclass
class _Group:
    """Pods of one controller (or one bare pod): shared template facts."""

    namespace: str
    workload: int
    placement: int
    labels: dict[str, str]
    anti: list[tuple[tuple[str, ...], LabelSelector, str]]
    spread: list[tuple[int, str, LabelSelector]]
    pod_affinity: bool


class _Parser:
    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.node_index: dict[str, int] = {}
        self.node_names: list[str] = []
        self.node_labels: list[dict[str, str]] = []
        self.node_taints: list[tuple[Taint, ...]] = []
        self.node_alloc: list[dict[str, int]] = []
        self.unschedulable: list[bool] = []
        self.node_cpus: list[int] = []
        self.no_capacity: list[str] = []
        self.deployments: set[tuple[str, str]] = set()
        self.workloads: list[Workload] = []
        self.workload_index: dict[Workload, int] = {}
        self.placements: list[Placement] = []
        self.placement_index: dict[Placement, int] = {}
        self.groups: list[_Group] = []
        self.group_index: dict[tuple[str, str, str], int] = {}
        self.owner_groups: dict[tuple[str, Any, Any], int] = {}  # (namespace, owner kind, owner name) → group
        # pods
        self.pod_ns: list[str] = []
        self.pod_names: list[str] = []
        self.pod_node: list[int] = []
        self.pod_kind: list[int] = []
        self.pod_group: list[int] = []
        self.init_max: list[tuple[int, int]] = []
        self.overhead: list[tuple[int, int]] = []
        self.extended: list[tuple[int, str, int, str]] = []  # pod, resource, amount, what (request/init/overhead)
        self.unmovable: dict[int, str] = {}
        self.row_pod: list[int] = []
        self.row_name: list[str] = []
        self.row_cpu: list[int] = []
        self.row_mem: list[int] = []
        self.counts: dict[str, int] = {}
        self.bare_ns_skipped = 0

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n

    # -- nodes -----------------------------------------------------------------------------------------------

    def node(self, item: Mapping[str, Any], index: int) -> None:
        meta = _map(item.get("metadata"), f"items[{index}] (Node)", "metadata", required=True)
        where = _where("Node", meta, index)
        name = _str(meta.get("name"), where, "metadata.name")
        if name in self.node_index:
            raise ValidationError(where, "metadata.name: listed twice")
        spec = _map(item.get("spec"), where, "spec")
        status = _map(item.get("status"), where, "status")
        alloc_raw = status.get("allocatable") or status.get("capacity")
        if not alloc_raw:
            self.no_capacity.append(name)
            return
        path = "status.allocatable" if status.get("allocatable") else "status.capacity"
        if not status.get("allocatable"):
            self.count("nodes with status.capacity only (used as allocatable)")
        alloc_map = _map(alloc_raw, where, path)
        alloc = {str(k): amount(v, str(k), where, f"{path}.{k}") for k, v in alloc_map.items()}
        if "cpu" not in alloc or "memory" not in alloc:
            missing = "cpu" if "cpu" not in alloc else "memory"
            raise ValidationError(where, f"{path}.{missing}: missing")
        if "pods" not in alloc:
            alloc["pods"] = 110  # the kubelet's default --max-pods
            self.count("nodes without a pods capacity (the kubelet's default 110 assumed)")
        cap = _map(status.get("capacity"), where, "status.capacity")
        cpus = amount(cap["cpu"], "cpu", where, "status.capacity.cpu") if "cpu" in cap else alloc["cpu"]
        taints = []
        for i, t in enumerate(_list(spec.get("taints"), where, "spec.taints")):
            t = _map(t, where, f"spec.taints[{i}]", required=True)
            taints.append(
                Taint(
                    _str(t.get("key"), where, f"spec.taints[{i}].key"),
                    str(t.get("value") or ""),
                    _str(t.get("effect"), where, f"spec.taints[{i}].effect"),
                )
            )
        self.node_index[name] = len(self.node_names)
        self.node_names.append(name)
        self.node_labels.append(_str_map(meta.get("labels"), where, "metadata.labels"))
        self.node_taints.append(tuple(taints))
        self.node_alloc.append(alloc)
        self.unschedulable.append(bool(spec.get("unschedulable")))
        self.node_cpus.append(max(1, math.ceil(cpus / 1000)))

    # -- pods ------------------------------------------------------------------------------------------------

    def _workload(self, ns: str, meta: Mapping[str, Any], labels: Mapping[str, str], where: str) -> Workload:
        owner = None
        for i, ref in enumerate(_list(meta.get("ownerReferences"), where, "metadata.ownerReferences")):
            ref = _map(ref, where, f"metadata.ownerReferences[{i}]", required=True)
            if ref.get("controller"):
                owner = ref
                break
        if owner is None:
            return Workload(ns, "Pod", _str(meta.get("name"), where, "metadata.name"))
        kind = _str(owner.get("kind"), where, "metadata.ownerReferences[].kind")
        name = _str(owner.get("name"), where, "metadata.ownerReferences[].name")
        if kind == "ReplicaSet":
            h = labels.get("pod-template-hash")
            if h and name.endswith("-" + h) and (ns, name[: -len(h) - 1]) in self.deployments:
                return Workload(ns, "Deployment", name[: -len(h) - 1])
        return Workload(ns, kind, name)

    def _group(self, ns: str, meta: Mapping[str, Any], spec: Mapping[str, Any], where: str) -> int:
        refs = meta.get("ownerReferences")
        owner_key = None
        if type(refs) is list and len(refs) == 1 and type(refs[0]) is dict and refs[0].get("controller") is True:
            owner_key = (ns, refs[0].get("kind"), refs[0].get("name"))
            g = self.owner_groups.get(owner_key)
            if g is not None:  # a later pod of a controller already seen: nothing of its template to read again
                return g
        g = self._new_group(ns, meta, spec, where)
        if owner_key is not None and self.workloads[self.groups[g].workload].kind != "Pod":
            self.owner_groups[owner_key] = g
        return g

    def _new_group(self, ns: str, meta: Mapping[str, Any], spec: Mapping[str, Any], where: str) -> int:
        labels = _str_map(meta.get("labels"), where, "metadata.labels")
        wl = self._workload(ns, meta, labels, where)
        key = (ns, wl.kind, wl.name)
        g = self.group_index.get(key) if wl.kind != "Pod" else None
        if g is not None:
            return g
        w = self.workload_index.get(wl)
        if w is None:
            w = self.workload_index[wl] = len(self.workloads)
            self.workloads.append(wl)
        pl = _placement(spec, where)
        p = self.placement_index.get(pl)
        if p is None:
            p = self.placement_index[pl] = len(self.placements)
            self.placements.append(pl)
        aff = _map(spec.get("affinity"), where, "spec.affinity")
        anti = []
        paa = _map(aff.get("podAntiAffinity"), where, "spec.affinity.podAntiAffinity")
        path = "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution"
        for i, t in enumerate(_list(paa.get("requiredDuringSchedulingIgnoredDuringExecution"), where, path)):
            t = _map(t, where, f"{path}[{i}]", required=True)
            namespaces = tuple(str(x) for x in _list(t.get("namespaces"), where, f"{path}[{i}].namespaces")) or (ns,)
            sel = label_selector(t.get("labelSelector"), where, f"{path}[{i}].labelSelector")
            anti.append((namespaces, sel, _str(t.get("topologyKey"), where, f"{path}[{i}].topologyKey")))
        spread = []
        for i, c in enumerate(_list(spec.get("topologySpreadConstraints"), where, "spec.topologySpreadConstraints")):
            c = _map(c, where, f"spec.topologySpreadConstraints[{i}]", required=True)
            if c.get("whenUnsatisfiable", "DoNotSchedule") != "DoNotSchedule":
                continue
            skew = c.get("maxSkew")
            if not isinstance(skew, int) or isinstance(skew, bool) or skew < 1:
                raise ValidationError(where, f"spec.topologySpreadConstraints[{i}].maxSkew: expected an integer ≥ 1")
            tkey = _str(c.get("topologyKey"), where, f"spec.topologySpreadConstraints[{i}].topologyKey")
            spread.append(
                (skew, tkey, label_selector(c.get("labelSelector"), where, f"spec.topologySpreadConstraints[{i}]"))
            )
        pa = _map(aff.get("podAffinity"), where, "spec.affinity.podAffinity")
        has_pa = bool(pa.get("requiredDuringSchedulingIgnoredDuringExecution"))
        group_labels = {k: v for k, v in labels.items() if k not in PER_POD_LABELS}
        g = len(self.groups)
        self.groups.append(_Group(ns, w, p, group_labels, anti, spread, has_pa))
        if wl.kind != "Pod":
            self.group_index[key] = g
        return g

    def _requests(self, c: Mapping[str, Any], pod: int, where: str, path: str, what: str) -> tuple[int, int, bool]:
        res = _map(c.get("resources"), where, f"{path}.resources")
        req = _map(res.get("requests"), where, f"{path}.resources.requests")
        lim = _map(res.get("limits"), where, f"{path}.resources.limits")
        merged = {**{k: v for k, v in lim.items()}, **req}  # the API server defaults a missing request to the limit
        cpu = mem = 0
        for k, v in merged.items():
            src = "requests" if k in req else "limits"
            a = amount(v, str(k), where, f"{path}.resources.{src}.{k}")
            if k == "cpu":
                cpu = a
            elif k == "memory":
                mem = a
            elif a:
                self.extended.append((pod, str(k), a, what))
        return cpu, mem, "cpu" in merged or "memory" in merged

    def pod(self, item: Mapping[str, Any], index: int) -> None:
        meta = _map(item.get("metadata"), f"items[{index}] (Pod)", "metadata", required=True)
        name = _str(meta.get("name"), f"items[{index}] (Pod)", "metadata.name")
        ns = _str(meta.get("namespace"), f"Pod {name}", "metadata.namespace")
        where = f"Pod {ns}/{name}"
        spec = _map(item.get("spec"), where, "spec", required=True)
        status = _map(item.get("status"), where, "status")
        if status.get("phase") in ("Succeeded", "Failed"):
            self.count("finished pods (Succeeded/Failed, holding nothing)")
            return
        node_name = spec.get("nodeName")
        if not node_name:
            self.count("pods not on a node (pending; not placed, not counted)")
            return
        n = self.node_index.get(str(node_name))
        if n is None:
            self.count("pods on a node the snapshot lacks or left out (not counted)")
            return
        containers = _list(spec.get("containers"), where, "spec.containers")
        if not containers:
            raise ValidationError(where, "spec.containers: missing or empty")
        p = len(self.pod_names)
        g = self._group(ns, meta, spec, where)
        annotations = _str_map(meta.get("annotations"), where, "metadata.annotations")
        wl = self.workloads[self.groups[g].workload]
        kind = NODE_BOUND if wl.kind in ("DaemonSet", "Node") or MIRROR in annotations else MOVABLE
        no_request = 0
        for i, c in enumerate(containers):
            c = _map(c, where, f"spec.containers[{i}]", required=True)
            cname = _str(c.get("name"), where, f"spec.containers[{i}].name")
            cpu, mem, has = self._requests(c, p, where, f"spec.containers[{i}]", "request")
            no_request += not has
            self.row_pod.append(p)
            self.row_name.append(cname)
            self.row_cpu.append(cpu)
            self.row_mem.append(mem)
        init_cpu = init_mem = 0
        for i, c in enumerate(_list(spec.get("initContainers"), where, "spec.initContainers")):
            c = _map(c, where, f"spec.initContainers[{i}]", required=True)
            cname = _str(c.get("name"), where, f"spec.initContainers[{i}].name")
            if c.get("restartPolicy") == "Always":  # a sidecar: runs beside the app containers
                cpu, mem, _ = self._requests(c, p, where, f"spec.initContainers[{i}]", "request")
                self.row_pod.append(p)
                self.row_name.append(cname)
                self.row_cpu.append(cpu)
                self.row_mem.append(mem)
            else:
                cpu, mem, _ = self._requests(c, p, where, f"spec.initContainers[{i}]", "init")
                init_cpu, init_mem = max(init_cpu, cpu), max(init_mem, mem)
        oh = _map(spec.get("overhead"), where, "spec.overhead")
        oh_cpu = oh_mem = 0
        for k, v in oh.items():
            a = amount(v, str(k), where, f"spec.overhead.{k}")
            if k == "cpu":
                oh_cpu = a
            elif k == "memory":
                oh_mem = a
            elif a:
                self.extended.append((p, str(k), a, "overhead"))
        if no_request:
            self.count("containers without requests (counted as 0, as the scheduler does)", no_request)
        self.pod_ns.append(ns)
        self.pod_names.append(name)
        self.pod_node.append(n)
        self.pod_kind.append(kind)
        self.pod_group.append(g)
        self.init_max.append((init_cpu, init_mem))
        self.overhead.append((oh_cpu, oh_mem))
        if kind == MOVABLE:
            why = self._unmovable(wl, annotations, spec, where)
            if why:
                self.unmovable[p] = why
            elif self.groups[g].pod_affinity:
                self.unmovable[p] = "required pod affinity (not modelled: kept where it is)"

    @staticmethod
    def _unmovable(wl: Workload, annotations: Mapping[str, str], spec: Mapping[str, Any], where: str) -> str:
        """Why cluster-autoscaler (and zerowatt) would not evict this pod, or ``""``."""
        safe = annotations.get(SAFE_TO_EVICT)
        if safe == "false":
            return f'annotation {SAFE_TO_EVICT}: "false"'
        if safe == "true":
            return ""
        if wl.kind == "Pod":
            return "no controller (a bare pod would not come back)"
        for i, v in enumerate(_list(spec.get("volumes"), where, "spec.volumes")):
            v = _map(v, where, f"spec.volumes[{i}]", required=True)
            if "hostPath" in v:
                return f"local storage: hostPath volume {v.get('name')!r}"
            if "emptyDir" in v:
                return f"local storage: emptyDir volume {v.get('name')!r}"
        return ""

    # -- assembly --------------------------------------------------------------------------------------------

    def finish(self, pdb_items: list[tuple[Mapping[str, Any], int]]) -> Cluster:
        ext = sorted({r for _, r, _, _ in self.extended})
        resources = [*BASE_RESOURCES, *ext]
        col = {r: i for i, r in enumerate(resources)}
        n_nodes, n_pods, nr = len(self.node_names), len(self.pod_names), len(resources)
        alloc = np.zeros((n_nodes, nr), dtype=np.int64)
        for i, a in enumerate(self.node_alloc):
            for r, j in col.items():
                alloc[i, j] = a.get(r, 0)
        extra = np.zeros((n_pods, nr), dtype=np.int64)
        extra[:, PODS] = 1
        init_max = np.zeros((n_pods, nr), dtype=np.int64)
        overhead = np.zeros((n_pods, nr), dtype=np.int64)
        if n_pods:
            init_max[:, :2] = np.asarray(self.init_max, dtype=np.int64)
            overhead[:, :2] = np.asarray(self.overhead, dtype=np.int64)
        for p, r, amt, what in self.extended:
            target = {"request": extra, "init": init_max, "overhead": overhead}[what]
            if what == "init":
                target[p, col[r]] = max(target[p, col[r]], amt)
            else:
                target[p, col[r]] += amt
        for r in ext:
            users = int((extra[:, col[r]] > 0).sum())
            self.warnings.append(f"resource {r}: carried through as a packing constraint ({users} pod(s) request it)")
        groups = np.asarray(self.pod_group, dtype=np.int64)
        cluster = Cluster(
            resources=resources,
            node_names=self.node_names,
            alloc=alloc,
            node_labels=self.node_labels,
            node_taints=self.node_taints,
            unschedulable=np.asarray(self.unschedulable, dtype=np.bool_),
            node_cpus=np.asarray(self.node_cpus, dtype=np.int64),
            pod_ns=self.pod_ns,
            pod_names=self.pod_names,
            pod_node=np.asarray(self.pod_node, dtype=np.int32),
            pod_kind=np.asarray(self.pod_kind, dtype=np.int8),
            pod_workload=np.asarray([self.groups[g].workload for g in range(len(self.groups))], dtype=np.int32)[groups]
            if n_pods
            else np.zeros(0, dtype=np.int32),
            pod_placement=np.asarray([self.groups[g].placement for g in range(len(self.groups))], dtype=np.int32)[
                groups
            ]
            if n_pods
            else np.zeros(0, dtype=np.int32),
            init_max=init_max,
            overhead=overhead,
            extra=extra,
            workloads=self.workloads,
            placements=self.placements,
            row_pod=np.asarray(self.row_pod, dtype=np.int32),
            row_name=self.row_name,
            row_request=np.stack(
                [np.asarray(self.row_cpu, dtype=np.int64), np.asarray(self.row_mem, dtype=np.int64)], axis=1
            )
            if self.row_name
            else np.zeros((0, 2), dtype=np.int64),
            unmovable=self.unmovable,
        )
        self._constraints(cluster, groups, pdb_items)
        self._warn(cluster)
        return cluster

    def _groups_matching(self, namespaces: tuple[str, ...], sel: LabelSelector) -> list[int]:
        """Groups in ``namespaces`` whose labels ``sel`` selects: candidates from the inverted index of
        ``matchLabels`` pairs (or every group of the namespaces), then each expression checked."""
        out: list[int] = []
        for ns in namespaces:
            if sel.match_labels:
                sets = [self.label_index.get((ns, k, v), set()) for k, v in sel.match_labels]
                candidates = sorted(set.intersection(*sets)) if all(sets) else []
            else:
                candidates = self.ns_groups.get(ns, [])
            out.extend(g for g in candidates if selector_matches(sel, self.groups[g].labels))
        return out

    def _constraints(
        self, cluster: Cluster, groups: np.ndarray, pdb_items: list[tuple[Mapping[str, Any], int]]
    ) -> None:
        cache: dict[tuple[tuple[str, ...], LabelSelector], np.ndarray] = {}
        self.label_index: dict[tuple[str, str, str], set[int]] = {}
        self.ns_groups: dict[str, list[int]] = {}
        for g, grp in enumerate(self.groups):
            self.ns_groups.setdefault(grp.namespace, []).append(g)
            for k, v in grp.labels.items():
                self.label_index.setdefault((grp.namespace, k, v), set()).add(g)
        order = np.argsort(groups, kind="stable")
        bounds = np.searchsorted(groups[order], np.arange(len(self.groups) + 1))
        empty = np.zeros(0, dtype=np.int64)

        def members(g: int) -> np.ndarray:
            return np.asarray(order[bounds[g] : bounds[g + 1]], dtype=np.int64)

        def pods_of(namespaces: tuple[str, ...], sel: LabelSelector) -> np.ndarray:
            key = (namespaces, sel)
            if key not in cache:
                parts = [members(g) for g in self._groups_matching(namespaces, sel)]
                cache[key] = np.sort(np.concatenate(parts)) if parts else empty
            return cache[key]

        for g, grp in enumerate(self.groups):
            if not grp.anti and not grp.spread:
                continue
            owners = members(g)
            if owners.size == 0:
                continue
            for namespaces, sel, key in grp.anti:
                cluster.anti.append(
                    AntiAffinity(key, owners, pods_of(namespaces, sel), self.workloads[grp.workload].key)
                )
            for skew, key, sel in grp.spread:
                desc = f"{self.workloads[grp.workload].key} maxSkew {skew} on {key}"
                cluster.spreads.append(Spread(key, skew, owners, pods_of((grp.namespace,), sel), desc))
        covered = np.zeros(cluster.n_pods, dtype=np.bool_)
        for item, index in pdb_items:
            meta = _map(item.get("metadata"), f"items[{index}] (PodDisruptionBudget)", "metadata", required=True)
            where = _where("PodDisruptionBudget", meta, index)
            name = _str(meta.get("name"), where, "metadata.name")
            ns = _str(meta.get("namespace"), where, "metadata.namespace")
            spec = _map(item.get("spec"), where, "spec", required=True)
            status = _map(item.get("status"), where, "status")
            sel = label_selector(spec.get("selector"), where, "spec.selector")
            pods = pods_of((ns,), sel)
            covered[pods] = True
            expected = int(pods.size)
            if "minAvailable" in spec:
                min_avail = _int_or_percent(spec["minAvailable"], expected, where, "spec.minAvailable")
            elif "maxUnavailable" in spec:
                min_avail = expected - _int_or_percent(spec["maxUnavailable"], expected, where, "spec.maxUnavailable")
            else:
                raise ValidationError(where, "spec.minAvailable or spec.maxUnavailable: missing")
            allowed = status.get("disruptionsAllowed")
            if not isinstance(allowed, int) or isinstance(allowed, bool):
                allowed = max(0, expected - min_avail)
            cluster.pdbs.append(Pdb(ns, name, pods, max(0, min_avail), max(0, allowed)))
        for g in self.ns_groups.get("kube-system", []):
            for p in members(g).tolist():
                if cluster.pod_kind[p] == MOVABLE and not covered[p]:
                    cluster.ca_unmovable[p] = "kube-system pod without a PDB (--skip-nodes-with-system-pods)"

    def _warn(self, cluster: Cluster) -> None:
        if self.no_capacity:
            shown = ", ".join(self.no_capacity[:5]) + (" ..." if len(self.no_capacity) > 5 else "")
            self.warnings.append(
                f"{len(self.no_capacity)} node(s) without status.allocatable or status.capacity ({shown}): "
                "left out with their pods"
            )
        for what, n in self.counts.items():
            self.warnings.append(f"{n} {what}")
        req = cluster.pod_requests()
        used = np.zeros_like(cluster.alloc)
        np.add.at(used, cluster.pod_node, req)
        over = np.flatnonzero((used > cluster.alloc).any(axis=1))
        if over.size:
            names = ", ".join(cluster.node_names[i] for i in over[:5])
            self.warnings.append(
                f"{over.size} node(s) hold more requests than they can allocate ({names}): their idle is negative"
            )


def _int_or_percent(value: Any, total: int, where: str, path: str) -> int:
    """An IntOrString: an integer, or ``"N%"`` of ``total`` rounded up (as the disruption controller does)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.endswith("%"):
        try:
            pct = float(value[:-1])
        except ValueError:
            pct = -1.0
        if 0.0 <= pct <= 100.0:
            return math.ceil(total * pct / 100.0)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise ValidationError(where, f"{path}: expected an integer ≥ 0 or a percentage, got {value!r}")


def parse_snapshot(doc: Any, source: str = "snapshot") -> Snapshot:
    """The decoded ``kubectl get ... -o json`` document (a ``List``, or one ``...List``) → :class:`Snapshot`."""
    if not isinstance(doc, Mapping):
        raise ValidationError(source, "expected a JSON object (kubectl get ... -o json writes a List)")
    items = doc.get("items")
    if not isinstance(items, list):
        raise ValidationError(source, "items: missing or not a list (expected kubectl get ... -o json output)")
    list_kind = str(doc.get("kind") or "")
    implied = list_kind[:-4] if list_kind.endswith("List") and list_kind != "List" else ""
    parser = _Parser()
    buckets: dict[str, list[tuple[Mapping[str, Any], int]]] = {k: [] for k in KNOWN_KINDS}
    other: dict[str, int] = {}
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ValidationError(source, f"items[{i}]: expected an object")
        kind = item.get("kind") or implied
        if not isinstance(kind, str) or not kind:
            raise ValidationError(source, f"items[{i}]: kind: missing")
        if kind in buckets:
            buckets[kind].append((item, i))
        else:
            other[kind] = other.get(kind, 0) + 1
    for item, i in buckets["Deployment"]:
        meta = _map(item.get("metadata"), f"items[{i}] (Deployment)", "metadata", required=True)
        where = _where("Deployment", meta, i)
        parser.deployments.add(
            (_str(meta.get("namespace"), where, "metadata.namespace"), _str(meta.get("name"), where, "metadata.name"))
        )
    for item, i in buckets["Node"]:
        parser.node(item, i)
    if not parser.node_names:
        raise ValidationError(source, "no node with a capacity in the snapshot (kubectl get nodes,pods,... -o json)")
    for item, i in buckets["Pod"]:
        parser.pod(item, i)
    cluster = parser.finish(buckets["PodDisruptionBudget"])
    warnings = list(parser.warnings)
    if other:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(other.items()))
        warnings.append(f"ignored objects of other kinds: {kinds}")
    return Snapshot(cluster, [f"{source}: {w}" for w in warnings])
