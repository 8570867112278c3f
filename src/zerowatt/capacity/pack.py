"""The drain simulation: take nodes away one at a time and re-schedule their pods under every constraint.

A node can be off when all its evictable pods fit elsewhere at once. Nodes are tried emptiest first (by
their dominant requested share); a node's pods are placed first-fit decreasing on their dominant share of
the cluster's average node, onto the other nodes in a fixed order, fullest first (so the nodes that stay
fill up and the emptier ones stay free to drain). A node that fails is kept with the first reason found.
Then a local search pass retries every kept node, this time placing each pod best-fit (on the node it
leaves the least room on), which frees nodes the first-fit order had blocked. Nothing is ever added, so
the plan never uses more nodes than today.

Constraints per placement, as the scheduler checks them: every resource column (CPU, memory, pods and
extended resources such as ``nvidia.com/gpu``) fits the target's free allocatable; the target is neither
the drained node nor cordoned nor already off; the pod's node selector, required node affinity and
tolerations allow it; required pod anti-affinity (both directions: the pod's own terms and other pods'
terms that select it) in the term's topology domain; topology spread (DoNotSchedule):
``matching pods in the domain + 1 − the least in any eligible domain ≤ maxSkew``; after the drain no
constraint's skew may be larger than ``max(maxSkew, its skew before)``, and a drain may not take away the
last node of a domain (a zone) that a spread constraint spreads over (that would satisfy the constraint by
giving up the zone it asks for). Per node: a pod that cannot be
evicted (see :mod:`zerowatt.capacity.snapshot`) keeps the node; DaemonSet and mirror pods stay with it and go
away with it. PDBs: zerowatt drains like ``kubectl drain`` (evictions one by one, each waiting for the
previous pod's replacement), so a PDB blocks only when it allows no disruption at all; cluster-autoscaler's
rule (``strict_pdb``) needs the PDB to allow every eviction from the node at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from zerowatt.capacity.model import CPU, MEMORY, NODE_BOUND, BoolArray, Cluster, IntArray
from zerowatt.capacity.selectors import topology_domains

#: Per-node topology: a drain removes its domain by design (only zones and the like must not vanish).
HOSTNAME = "kubernetes.io/hostname"


@dataclass(frozen=True)
class Policy:
    """Which nodes may be drained and which pods and budgets stop a drain."""

    name: str
    #: Only nodes whose requested utilisation is below this are candidates (cluster-autoscaler: 0.5).
    utilisation_below: float | None = None
    #: A PDB must allow every eviction from the node at once (cluster-autoscaler), not one at a time.
    strict_pdb: bool = False
    #: cluster-autoscaler's --skip-nodes-with-system-pods: kube-system pods without a PDB keep their node.
    system_pods: bool = False
    #: Retry kept nodes with best-fit placement (zerowatt's local search).
    local_search: bool = True


ZEROWATT = Policy("zerowatt")
CLUSTER_AUTOSCALER = Policy("cluster-autoscaler", utilisation_below=0.5, strict_pdb=True, system_pods=True, local_search=False)


@dataclass
class PackResult:
    """Drained nodes in order, each one's pod moves, and why every other node stays."""

    removed: list[int]
    moves: dict[int, list[tuple[int, int]]]  # drained node → [(pod, target node)]
    kept: dict[int, str]
    pod_node: np.ndarray
    utilisation: np.ndarray = field(default_factory=lambda: np.zeros(0))  # requested, at the start


def requested_utilisation(cluster: Cluster, req: IntArray, alloc: IntArray, pod_node: np.ndarray) -> np.ndarray:
    """cluster-autoscaler's node utilisation: max(CPU, memory) requested / allocatable; on nodes with GPUs,
    the GPU ratio alone (its ``utilization.Calculate``)."""
    used = np.zeros_like(alloc)
    np.add.at(used, pod_node, req)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(alloc > 0, used / np.where(alloc > 0, alloc, 1), 0.0)
    util = np.maximum(ratio[:, CPU], ratio[:, MEMORY])
    if "nvidia.com/gpu" in cluster.resources:
        g = cluster.resources.index("nvidia.com/gpu")
        util = np.where(alloc[:, g] > 0, ratio[:, g], util)
    return np.asarray(util, dtype=np.float64)


class _Terms:
    """Counts per topology domain for anti-affinity terms and spread constraints, with per-pod roles."""

    def __init__(self, cluster: Cluster, pod_node: np.ndarray) -> None:
        self.dom: list[np.ndarray] = []
        self.owner_cnt: list[np.ndarray] = []
        self.matched_cnt: list[np.ndarray] = []
        self.skew: list[int] = []  # −1 for anti-affinity
        self.key: list[str] = []
        self.placement: list[int] = []
        self.desc: list[str] = []
        self.roles: dict[int, list[tuple[int, bool, bool]]] = {}
        domains: dict[str, tuple[np.ndarray, int]] = {}
        items: list[tuple[str, int, np.ndarray, np.ndarray, str]] = [
            (a.topology_key, -1, a.owners, a.matched, f"anti-affinity of {a.description} on {a.topology_key}")
            for a in cluster.anti
        ]
        items += [(s.topology_key, s.max_skew, s.owners, s.matched, f"topology spread of {s.description}") for s in cluster.spreads]
        for t, (key, skew, owners, matched, desc) in enumerate(items):
            if key not in domains:
                domains[key] = topology_domains(cluster.node_labels, key)
            dom, n_dom = domains[key]
            self.dom.append(dom)
            self.skew.append(skew)
            self.key.append(key)
            self.desc.append(desc)
            self.placement.append(int(cluster.pod_placement[owners[0]]) if owners.size else 0)
            for arr, store in ((owners, self.owner_cnt), (matched, self.matched_cnt)):
                d = dom[pod_node[arr]]
                store.append(np.bincount(d[d >= 0], minlength=n_dom).astype(np.int64))
            o_set = set(owners.tolist())
            m_set = set(matched.tolist())
            for p in o_set | m_set:
                self.roles.setdefault(p, []).append((t, p in o_set, p in m_set))

    def move(self, p: int, node: int, sign: int) -> None:
        for t, owner, matched in self.roles.get(p, ()):
            d = self.dom[t][node]
            if d < 0:
                continue
            if owner:
                self.owner_cnt[t][d] += sign
            if matched:
                self.matched_cnt[t][d] += sign

    def skew_of(self, t: int, eligible: BoolArray) -> tuple[int, int]:
        """(skew, number of domains) of spread constraint ``t`` over the domains of ``eligible`` nodes."""
        dom = self.dom[t]
        doms = np.unique(dom[eligible & (dom >= 0)])
        if doms.size == 0:
            return 0, 0
        c = self.matched_cnt[t][doms]
        return int(c.max() - c.min()), int(doms.size)

    def allowed(self, p: int, eligible: BoolArray, pmask: np.ndarray) -> tuple[BoolArray, str]:
        """Nodes ``p`` may go to under its terms, and the first term that left none (``""`` if some)."""
        ok = np.ones(eligible.size, dtype=np.bool_)
        for t, owner, matched in self.roles.get(p, ()):
            dom = self.dom[t]
            has = dom >= 0
            safe_dom = np.where(has, dom, 0)
            if self.skew[t] < 0:
                if owner:
                    ok &= ~(has & (self.matched_cnt[t][safe_dom] > 0))
                if matched:
                    ok &= ~(has & (self.owner_cnt[t][safe_dom] > 0))
            elif owner:
                live = eligible & pmask[self.placement[t]] & has
                doms = np.unique(dom[live])
                least = int(self.matched_cnt[t][doms].min()) if doms.size else 0
                ok &= has & (self.matched_cnt[t][safe_dom] + int(matched) - least <= self.skew[t])
            if not (ok & eligible).any():
                return ok, self.desc[t]
        return ok, ""


class Packer:
    """One scenario's state (free capacity, where pods are, domain counts) and the drain operation."""

    def __init__(self, cluster: Cluster, req: IntArray, policy: Policy, pmask: np.ndarray) -> None:
        self.c = cluster
        self.req = req
        self.policy = policy
        self.pmask = pmask
        self.pod_node = cluster.pod_node.astype(np.int64).copy()
        used = np.zeros_like(cluster.alloc)
        np.add.at(used, self.pod_node, req)
        self.free = np.ascontiguousarray((cluster.alloc - used).T)  # (R, N)
        self.alive = np.ones(cluster.n_nodes, dtype=np.bool_)
        self.target_ok = ~cluster.unschedulable.copy()
        order = np.argsort(self.pod_node, kind="stable")
        bounds = np.searchsorted(self.pod_node[order], np.arange(cluster.n_nodes + 1))
        self.node_pods: list[list[int]] = [order[bounds[n] : bounds[n + 1]].tolist() for n in range(cluster.n_nodes)]
        self.terms = _Terms(cluster, self.pod_node)
        self.pod_pdbs: dict[int, list[int]] = {}
        for i, pdb in enumerate(cluster.pdbs):
            for p in pdb.pods.tolist():
                self.pod_pdbs.setdefault(p, []).append(i)
        mean_alloc = cluster.alloc.mean(axis=0) if cluster.n_nodes else np.ones(len(cluster.resources))
        scale = np.where(mean_alloc > 0, mean_alloc, 1.0)
        self.dominant = (req / scale).max(axis=1) if req.size else np.zeros(0)
        self.utilisation = requested_utilisation(cluster, req, cluster.alloc, self.pod_node)
        # Fill order for first fit: fullest first; ``rank[n]`` is node n's position.
        fill = np.argsort(-self.utilisation, kind="stable")
        self.rank = np.empty(cluster.n_nodes, dtype=np.int64)
        self.rank[fill] = np.arange(cluster.n_nodes)
        self.alloc_t = np.ascontiguousarray(cluster.alloc.T).astype(np.float64)

    # -- one pod -------------------------------------------------------------------------------------------

    def _candidates(self, p: int) -> tuple[BoolArray, str]:
        eligible = self.target_ok & self.alive
        if not eligible.any():
            return eligible, "no other node is left on"
        ok = eligible & self.pmask[self.c.pod_placement[p]]
        if not ok.any():
            return ok, "no other node matches its node selector, affinity and tolerations"
        r = self.req[p]
        for j in np.flatnonzero(r):
            ok &= self.free[j] >= r[j]
        if not ok.any():
            return ok, "no node it may run on has room for " + self._amounts(r)
        if p in self.terms.roles:
            allowed, why = self.terms.allowed(p, eligible, self.pmask)
            ok &= allowed
            if not ok.any():
                return ok, why or "pod (anti-)affinity or topology spread"
        return ok, ""

    def _amounts(self, r: np.ndarray) -> str:
        parts = []
        for j, name in enumerate(self.c.resources):
            if r[j] and name != "pods":
                v = r[j]
                parts.append(
                    f"cpu {v / 1000:g}" if j == CPU else f"memory {v / 2**30:.2f}Gi" if j == MEMORY else f"{name} {v}"
                )
        return ", ".join(parts) or "one more pod"

    def _place(self, p: int, best_fit: bool) -> tuple[int, str]:
        ok, why = self._candidates(p)
        idx = np.flatnonzero(ok)
        if idx.size == 0:
            return -1, why
        if best_fit:
            left = ((self.free[:, idx] - self.req[p][:, None]) / np.maximum(self.alloc_t[:, idx], 1.0)).max(axis=0)
            t = int(idx[np.argmin(left)])
        else:
            t = int(idx[np.argmin(self.rank[idx])])
        self.free[:, t] -= self.req[p]
        self.terms.move(p, t, +1)
        self.pod_node[p] = t
        return t, ""

    # -- one node ------------------------------------------------------------------------------------------

    def blocker(self, n: int) -> str:
        """Why node ``n`` cannot be drained whatever the room elsewhere (``""``: it may be)."""
        c, pol = self.c, self.policy
        per_pdb: dict[int, int] = {}
        for p in self.node_pods[n]:
            if c.pod_kind[p] == NODE_BOUND:
                continue
            why = c.unmovable.get(p) or (c.ca_unmovable.get(p, "") if pol.system_pods else "")
            if why:
                return f"pod {c.pod_label(p)} cannot be evicted: {why}"
            for i in self.pod_pdbs.get(p, ()):
                per_pdb[i] = per_pdb.get(i, 0) + 1
        for i, count in per_pdb.items():
            pdb = c.pdbs[i]
            allowed = pdb.disruptions_allowed
            if allowed == 0:
                return f"PDB {pdb.namespace}/{pdb.name} allows no disruption (minAvailable {pdb.min_available})"
            if pol.strict_pdb and count > allowed:
                return f"PDB {pdb.namespace}/{pdb.name} allows {allowed} disruption(s), the node has {count} of its pods"
        return ""

    def drain(self, n: int, best_fit: bool = False) -> tuple[list[tuple[int, int]] | None, str]:
        """Move node ``n``'s evictable pods elsewhere and take it away; on failure undo everything."""
        why = self.blocker(n)
        if why:
            return None, why
        c = self.c
        movable = [p for p in self.node_pods[n] if c.pod_kind[p] != NODE_BOUND]
        bound = [p for p in self.node_pods[n] if c.pod_kind[p] == NODE_BOUND]
        movable.sort(key=lambda p: -self.dominant[p])
        touched = {t for p in movable + bound for t, _, _ in self.terms.roles.get(p, ())}
        spreads = [t for t in touched if self.terms.skew[t] >= 0]
        before = {t: self.terms.skew_of(t, self.alive) for t in spreads}
        was_target = bool(self.target_ok[n])
        self.target_ok[n] = False
        for p in movable + bound:
            self.terms.move(p, n, -1)
        placed: list[tuple[int, int]] = []
        failure = ""
        for p in movable:
            t, why = self._place(p, best_fit)
            if t < 0:
                failure = f"pod {c.pod_label(p)} fits nowhere else: {why}"
                break
            placed.append((p, t))
        if not failure and spreads:
            self.alive[n] = False
            for t in spreads:
                after, domains = self.terms.skew_of(t, self.alive)
                if domains < before[t][1] and self.terms.key[t] != HOSTNAME:
                    failure = f"it is the last node of its domain in the {self.terms.desc[t]}"
                    break
                if after > max(self.terms.skew[t], before[t][0]):
                    failure = f"removing it would break the {self.terms.desc[t]} (skew {after})"
                    break
            self.alive[n] = True
        if failure:
            for p, t in reversed(placed):
                self.free[:, t] += self.req[p]
                self.terms.move(p, t, -1)
                self.pod_node[p] = n
            for p in movable + bound:
                self.terms.move(p, n, +1)
            self.target_ok[n] = was_target
            return None, failure
        self.alive[n] = False
        for p, t in placed:
            self.node_pods[t].append(p)
        self.node_pods[n] = []
        return placed, ""

    def current_utilisation(self, n: int) -> float:
        used = self.c.alloc[n] - self.free[:, n]
        return float(requested_utilisation(self.c, used[None, :], self.c.alloc[n : n + 1], np.zeros(1, dtype=np.int64))[0])

    def run(self) -> PackResult:
        """Drain every node that can go, emptiest first; then the local search pass over the kept ones."""
        self.removed: list[int] = []
        self.moves: dict[int, list[tuple[int, int]]] = {}
        self.kept: dict[int, str] = {}
        order = np.lexsort((np.arange(self.c.n_nodes), self.utilisation)).tolist()
        self._sweep(order, best_fit=False)
        if self.policy.local_search:
            retry = [n for n in order if self.alive[n] and self.kept.get(n, "").startswith("pod ") and "fits" in self.kept[n]]
            self._sweep(retry, best_fit=True)
        return PackResult(self.removed, self.moves, self.kept, self.pod_node, self.utilisation)

    def _sweep(self, nodes: list[int], best_fit: bool) -> None:
        limit = self.policy.utilisation_below
        for n in nodes:
            if not self.alive[n]:
                continue
            if limit is not None:
                u = self.current_utilisation(n)
                if u >= limit:
                    self.kept[n] = f"requested utilisation {u:.2f} ≥ {limit:g}: not a scale-down candidate"
                    continue
            placed, why = self.drain(n, best_fit)
            if placed is None:
                self.kept[n] = why
                continue
            self.kept.pop(n, None)
            self.removed.append(n)
            self.moves[n] = placed


def pack(cluster: Cluster, req: IntArray, policy: Policy, pmask: np.ndarray) -> PackResult:
    """Run the drain simulation for one scenario (``req``: every pod's requests) under ``policy``."""
    return Packer(cluster, req, policy, pmask).run()
