"""The drain simulation: take nodes away one at a time and re-schedule their pods under every constraint.

A node can be off when all its evictable pods fit elsewhere at once. Nodes are tried emptiest first (by
their dominant requested share); a node's pods are placed first-fit decreasing on their dominant share of
the cluster's average node, onto the other nodes in a fixed order, fullest first (so the nodes that stay
fill up and the emptier ones stay free to drain). A node that fails is kept with the first reason found.
Then a local search pass retries every node kept because a pod found no room after others of its pods
were placed, this time placing each pod best-fit (on the node it leaves the least room on), which frees
nodes the first-fit order had blocked. Nothing is ever added, so
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
CLUSTER_AUTOSCALER = Policy(
    "cluster-autoscaler", utilisation_below=0.5, strict_pdb=True, system_pods=True, local_search=False
)


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

    def __init__(self, cluster: Cluster, pod_node: np.ndarray, node_labels: list[dict[str, str]]) -> None:
        self.dom: list[np.ndarray] = []
        self.owner_cnt: list[np.ndarray] = []
        self.matched_cnt: list[np.ndarray] = []
        self.skew: list[int] = []  # −1 for anti-affinity
        self.key: list[str] = []
        self.placement: list[int] = []
        self.desc: list[str] = []
        self.roles: dict[int, list[tuple[int, bool, bool]]] = {}
        self.has: list[BoolArray] = []
        self.safe_dom: list[np.ndarray] = []
        #: Domains with eligible nodes, per (topology key, placement or −1): valid while ``version`` holds
        #: (the packer bumps it whenever a node is switched off, or stops or starts being a target).
        self.version = 0
        self._present_cache: dict[tuple[str, int], BoolArray] = {}
        self._cache_version = -1
        domains: dict[str, tuple[np.ndarray, int]] = {}
        items: list[tuple[str, int, np.ndarray, np.ndarray, str]] = [
            (a.topology_key, -1, a.owners, a.matched, f"anti-affinity of {a.description} on {a.topology_key}")
            for a in cluster.anti
        ]
        items += [
            (s.topology_key, s.max_skew, s.owners, s.matched, f"topology spread of {s.description}")
            for s in cluster.spreads
        ]
        for t, (key, skew, owners, matched, desc) in enumerate(items):
            if key not in domains:
                domains[key] = topology_domains(node_labels, key)
            dom, n_dom = domains[key]
            self.dom.append(dom)
            self.has.append(dom >= 0)
            self.safe_dom.append(np.where(dom >= 0, dom, 0))
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

    def skew_of(self, t: int, alive: BoolArray) -> tuple[int, int]:
        """(skew, number of domains) of spread constraint ``t`` over the domains of the ``alive`` nodes."""
        present = self._present(t, alive, -1)
        if not present.any():
            return 0, 0
        c = self.matched_cnt[t][present]
        return int(c.max() - c.min()), int(present.sum())

    def _present(self, t: int, nodes: BoolArray, placement: int) -> BoolArray:
        """Which of term ``t``'s domains have at least one of ``nodes`` (cached per key, placement, version)."""
        if self._cache_version != self.version:
            self._present_cache.clear()
            self._cache_version = self.version
        ck = (self.key[t], placement)
        hit = self._present_cache.get(ck)
        if hit is None:
            dom = self.dom[t]
            hit = np.bincount(dom[nodes & self.has[t]], minlength=self.matched_cnt[t].size) > 0
            self._present_cache[ck] = hit
        return hit

    def allowed(self, p: int, eligible: BoolArray, pmask: np.ndarray) -> tuple[BoolArray, str]:
        """Nodes ``p`` may go to under its terms, and the first term that left none (``""`` if some)."""
        ok = np.ones(eligible.size, dtype=np.bool_)
        for t, owner, matched in self.roles.get(p, ()):
            has, safe_dom = self.has[t], self.safe_dom[t]
            if self.skew[t] < 0:
                if owner:
                    ok &= ~(has & (self.matched_cnt[t][safe_dom] > 0))
                if matched:
                    ok &= ~(has & (self.owner_cnt[t][safe_dom] > 0))
            elif owner:
                present = self._present(t, eligible & pmask[self.placement[t]], self.placement[t])
                least = int(self.matched_cnt[t][present].min()) if present.any() else 0
                ok &= has & (self.matched_cnt[t][safe_dom] + int(matched) - least <= self.skew[t])
            if not (ok & eligible).any():
                return ok, self.desc[t]
        return ok, ""


class Packer:
    """One scenario's state (free capacity, where pods are, domain counts) and the drain operation.

    Internally nodes are numbered by their position in the fill order (fullest first), so that first fit
    is "the lowest feasible index" and can scan a short window from where the last pod of the same shape
    landed (:meth:`_first_fit`); results are translated back to the cluster's node numbers.
    """

    def __init__(self, cluster: Cluster, req: IntArray, policy: Policy, pmask: np.ndarray) -> None:
        self.c = cluster
        self.req = req
        self.policy = policy
        self.utilisation = requested_utilisation(cluster, req, cluster.alloc, cluster.pod_node)
        self.fill = np.argsort(-self.utilisation, kind="stable")
        self.pos_of = np.empty(cluster.n_nodes, dtype=np.int64)
        self.pos_of[self.fill] = np.arange(cluster.n_nodes)
        self.n = cluster.n_nodes
        self.alloc = cluster.alloc[self.fill]
        self.pmask = np.ascontiguousarray(pmask[:, self.fill])
        self.pod_node = self.pos_of[cluster.pod_node]
        used = np.zeros_like(self.alloc)
        np.add.at(used, self.pod_node, req)
        self.free = np.ascontiguousarray((self.alloc - used).T)  # (R, N)
        self.alive = np.ones(self.n, dtype=np.bool_)
        self.target_ok = ~cluster.unschedulable[self.fill]
        order = np.argsort(self.pod_node, kind="stable")
        bounds = np.searchsorted(self.pod_node[order], np.arange(self.n + 1))
        self.node_pods: list[list[int]] = [order[bounds[n] : bounds[n + 1]].tolist() for n in range(self.n)]
        self.terms = _Terms(cluster, self.pod_node, [cluster.node_labels[i] for i in self.fill.tolist()])
        self.pod_pdbs: dict[int, list[int]] = {}
        for i, pdb in enumerate(cluster.pdbs):
            for p in pdb.pods.tolist():
                self.pod_pdbs.setdefault(p, []).append(i)
        mean_alloc = cluster.alloc.mean(axis=0) if cluster.n_nodes else np.ones(len(cluster.resources))
        scale = np.where(mean_alloc > 0, mean_alloc, 1.0)
        self.dominant: list[float] = ((req / scale).max(axis=1) if req.size else np.zeros(0)).tolist()
        self.alloc_t = np.ascontiguousarray(self.alloc.T).astype(np.float64)
        #: (placement, requests) → the lowest position where a pod of that shape may still fit: every lower
        #: one was full for it, and free room only shrinks while nodes are drained (undone on a rollback).
        self.ff_start: dict[tuple[int, tuple[int, ...]], int] = {}
        self.ff_undo: list[tuple[tuple[int, tuple[int, ...]], int]] = []  # this drain's changes, for a rollback
        self.req_list: list[list[int]] = req.tolist()
        # First-fit starts are cached per (placement, requests rounded down to a quarter-octave grid): the
        # rounded shape fits wherever the pod does, so where it fits nowhere, neither does the pod.
        with np.errstate(divide="ignore"):
            grid = np.exp2(np.floor(np.log2(np.maximum(req, 1)) * 4.0) / 4.0)
        self.req_q: list[list[int]] = np.minimum(np.where(req > 0, np.floor(grid), 0), req).astype(np.int64).tolist()

    def _set(self, n: int, alive: bool | None = None, target: bool | None = None) -> None:
        """Switch node ``n`` on/off or make it a target or not, keeping the caches in step."""
        if alive is not None:
            self.alive[n] = alive
        if target is not None:
            self.target_ok[n] = target
        self.terms.version += 1

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

    def _fits(self, lo: int, pl: int, r: list[int], nz: list[int], allowed: BoolArray | None) -> int:
        """The lowest position ≥ ``lo`` that is open, allowed and has room for ``r`` (−1: none); windows ×4."""
        free, n = self.free, self.n
        if (
            lo < n
            and allowed is None
            and self.alive[lo]
            and self.target_ok[lo]
            and self.pmask[pl, lo]
            and all(free[j, lo] >= r[j] for j in nz)
        ):
            return lo
        width = 32
        while lo < n:
            hi = min(n, lo + width)
            ok = self.alive[lo:hi] & self.target_ok[lo:hi]
            ok &= self.pmask[pl, lo:hi]
            for j in nz:
                ok &= free[j, lo:hi] >= r[j]
            if allowed is not None:
                ok &= allowed[lo:hi]
            if ok.any():
                return lo + int(ok.argmax())
            lo, width = hi, width * 4
        return -1

    def _first_fit(self, p: int) -> int:
        """The lowest position that takes pod ``p`` (−1: none), from the cached start of its rounded shape."""
        pl = int(self.c.pod_placement[p])
        r = self.req_list[p]
        nz = [j for j, v in enumerate(r) if v]
        if p in self.terms.roles:
            allowed = self.terms.allowed(p, self.target_ok & self.alive, self.pmask)[0]
            return self._fits(0, pl, r, nz, allowed)
        rq = self.req_q[p]
        key = (pl, tuple(rq))
        before = self.ff_start.get(key, 0)
        free = self.free
        if (  # the common case: the pod fits where its rounded shape last did
            before < self.n
            and self.alive[before]
            and self.target_ok[before]
            and self.pmask[pl, before]
            and all(free[j, before] >= r[j] for j in nz)
        ):
            return before
        start = self._fits(before, pl, rq, nz, None)
        if start < 0:
            start = self.n
        if start != before:
            self.ff_undo.append((key, before))
            self.ff_start[key] = start
        return self._fits(start, pl, r, nz, None) if start < self.n else -1

    def _place(self, p: int, best_fit: bool) -> tuple[int, str]:
        if best_fit:
            ok, why = self._candidates(p)
            idx = np.flatnonzero(ok)
            if idx.size == 0:
                return -1, why
            left = ((self.free[:, idx] - self.req[p][:, None]) / np.maximum(self.alloc_t[:, idx], 1.0)).max(axis=0)
            t = int(idx[np.argmin(left)])
        else:
            t = self._first_fit(p)
            if t < 0:
                return -1, self._candidates(p)[1] or "no room"
        free, r = self.free, self.req_list[p]
        for j, v in enumerate(r):
            if v:
                free[j, t] -= v
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
                return (
                    f"PDB {pdb.namespace}/{pdb.name} allows {allowed} disruption(s), the node has {count} of its pods"
                )
        return ""

    def drain(self, n: int, best_fit: bool = False) -> tuple[list[tuple[int, int]] | None, str]:
        """Move node ``n``'s evictable pods elsewhere and take it away; on failure undo everything."""
        why = self.blocker(n)
        if why:
            return None, why
        c = self.c
        movable = [p for p in self.node_pods[n] if c.pod_kind[p] != NODE_BOUND]
        bound = [p for p in self.node_pods[n] if c.pod_kind[p] == NODE_BOUND]
        dominant = self.dominant
        movable.sort(key=lambda p: -dominant[p])
        touched = {t for p in movable + bound for t, _, _ in self.terms.roles.get(p, ())}
        spreads = [t for t in touched if self.terms.skew[t] >= 0]
        before = {t: self.terms.skew_of(t, self.alive) for t in spreads}
        was_target = bool(self.target_ok[n])
        self.ff_undo.clear()
        self._set(n, target=False)
        for p in movable + bound:
            self.terms.move(p, n, -1)
        placed: list[tuple[int, int]] = []
        failure = ""
        for p in movable:
            t, why = self._place(p, best_fit)
            if t < 0:
                failure = f"pod {c.pod_label(p)} fits nowhere else: {why}"
                if placed:  # another placement of the pods before it might leave it room: worth a retry
                    self.retry.add(n)
                break
            placed.append((p, t))
        if not failure and spreads:
            self._set(n, alive=False)
            for t in spreads:
                after, domains = self.terms.skew_of(t, self.alive)
                if domains < before[t][1] and self.terms.key[t] != HOSTNAME:
                    failure = f"it is the last node of its domain in the {self.terms.desc[t]}"
                    break
                if after > max(self.terms.skew[t], before[t][0]):
                    failure = f"removing it would break the {self.terms.desc[t]} (skew {after})"
                    break
            self._set(n, alive=True)
        if failure:
            for p, t in reversed(placed):
                self.free[:, t] += self.req[p]
                self.terms.move(p, t, -1)
                self.pod_node[p] = n
            for p in movable + bound:
                self.terms.move(p, n, +1)
            self._set(n, target=was_target)
            for key, value in reversed(self.ff_undo):
                self.ff_start[key] = value
            return None, failure
        self._set(n, alive=False)
        for p, t in placed:
            self.node_pods[t].append(p)
        self.node_pods[n] = []
        return placed, ""

    def current_utilisation(self, n: int) -> float:
        used = self.alloc[n] - self.free[:, n]
        return float(
            requested_utilisation(self.c, used[None, :], self.alloc[n : n + 1], np.zeros(1, dtype=np.int64))[0]
        )

    def run(self) -> PackResult:
        """Drain every node that can go, emptiest first; then the local search pass over the kept ones."""
        self.removed: list[int] = []
        self.moves: dict[int, list[tuple[int, int]]] = {}
        self.kept: dict[int, str] = {}
        self.retry: set[int] = set()
        order = self.pos_of[np.lexsort((np.arange(self.n), self.utilisation))].tolist()
        self._sweep(order, best_fit=False)
        if self.policy.local_search:
            retry = [n for n in order if self.alive[n] and n in self.retry]
            self._sweep(retry, best_fit=True)
        f = self.fill
        return PackResult(
            [int(f[n]) for n in self.removed],
            {int(f[n]): [(p, int(f[t])) for p, t in m] for n, m in self.moves.items()},
            {int(f[n]): why for n, why in self.kept.items()},
            f[self.pod_node],
            self.utilisation,
        )

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
