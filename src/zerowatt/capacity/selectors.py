"""Label selectors, node affinity and taints as the scheduler reads them, evaluated on distinct shapes.

A 5,000-node cluster has a handful of node *signatures* (the label values the pods' selectors mention,
plus the taints) and its pods a few thousand *placements* (one per template): :func:`placement_matrix`
evaluates each placement once per signature and expands the result to a (placements × nodes) mask.
Semantics after Kubernetes' ``k8s.io/component-helpers/scheduling/corev1`` (node affinity, tolerations)
and ``apimachinery/pkg/labels`` (selectors); written from the API documentation, no code copied.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from zerowatt.capacity.model import BoolArray, LabelSelector, Placement, Requirement, Taint, Toleration

#: Taint effects that keep a pod off a node (PreferNoSchedule is a preference, not a constraint).
BLOCKING_EFFECTS = frozenset({"NoSchedule", "NoExecute"})


def requirement_holds(req: Requirement, labels: Mapping[str, str]) -> bool:
    """One expression on one label set (``Gt``/``Lt`` compare integers; a non-integer never matches)."""
    op, value = req.operator, labels.get(req.key)
    if op == "In":
        return value is not None and value in req.values
    if op == "NotIn":
        return value is None or value not in req.values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt") and value is not None and len(req.values) == 1:
        try:
            have, want = int(value), int(req.values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def selector_matches(sel: LabelSelector, labels: Mapping[str, str]) -> bool:
    """A label selector on one label set (an empty selector matches everything, as in a PDB)."""
    return all(labels.get(k) == v for k, v in sel.match_labels) and all(
        requirement_holds(r, labels) for r in sel.expressions
    )


def tolerates(tolerations: Sequence[Toleration], taint: Taint) -> bool:
    """Whether one of ``tolerations`` tolerates ``taint`` (``Exists`` with an empty key tolerates all)."""
    for t in tolerations:
        if t.effect and t.effect != taint.effect:
            continue
        if t.operator == "Exists":
            if not t.key or t.key == taint.key:
                return True
        elif t.key == taint.key and t.value == taint.value:
            return True
    return False


def placement_allows(pl: Placement, name: str, labels: Mapping[str, str], taints: Iterable[Taint]) -> bool:
    """Whether a pod with placement ``pl`` may run on a node with these name, labels and taints."""
    if any(labels.get(k) != v for k, v in pl.node_selector):
        return False
    if pl.terms or pl.field_terms:
        fields = {"metadata.name": name}
        ok = False
        for i in range(max(len(pl.terms), len(pl.field_terms))):
            exprs = pl.terms[i] if i < len(pl.terms) else ()
            fexprs = pl.field_terms[i] if i < len(pl.field_terms) else ()
            if not exprs and not fexprs:
                continue  # an empty term matches no node
            if all(requirement_holds(r, labels) for r in exprs) and all(requirement_holds(r, fields) for r in fexprs):
                ok = True
                break
        if not ok:
            return False
    return all(tolerates(pl.tolerations, t) for t in taints if t.effect in BLOCKING_EFFECTS)


def placement_matrix(
    placements: Sequence[Placement],
    node_names: Sequence[str],
    node_labels: Sequence[Mapping[str, str]],
    node_taints: Sequence[tuple[Taint, ...]],
) -> BoolArray:
    """(placements × nodes) mask of where each placement may run, evaluated once per node signature."""
    keys: set[str] = set()
    by_name = False
    for pl in placements:
        keys.update(k for k, _ in pl.node_selector)
        for term in pl.terms:
            keys.update(r.key for r in term)
        by_name = by_name or bool(pl.field_terms)
    ordered = sorted(keys)
    sig_index: dict[tuple[object, ...], int] = {}
    node_sig = np.empty(len(node_names), dtype=np.int64)
    representative: list[int] = []
    for n, labels in enumerate(node_labels):
        sig = (
            tuple(labels.get(k) for k in ordered),
            node_taints[n],
            node_names[n] if by_name else None,
        )
        s = sig_index.get(sig)
        if s is None:
            s = sig_index[sig] = len(representative)
            representative.append(n)
        node_sig[n] = s
    table = np.zeros((len(placements), len(representative)), dtype=np.bool_)
    for i, pl in enumerate(placements):
        for s, n in enumerate(representative):
            table[i, s] = placement_allows(pl, node_names[n], node_labels[n], node_taints[n])
    return np.asarray(table[:, node_sig], dtype=np.bool_)


def topology_domains(node_labels: Sequence[Mapping[str, str]], key: str) -> tuple[np.ndarray, int]:
    """Each node's domain index for topology key ``key`` (−1: the node lacks the label), and the count."""
    index: dict[str, int] = {}
    dom = np.full(len(node_labels), -1, dtype=np.int64)
    for n, labels in enumerate(node_labels):
        v = labels.get(key)
        if v is not None:
            dom[n] = index.setdefault(v, len(index))
    return dom, len(index)
