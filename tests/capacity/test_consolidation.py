"""Consolidation on hand-built clusters whose answers are worked out in ``fixtures.py``, and the comparison
with cluster-autoscaler's scale-down rule on the same state."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.capacity.fixtures import ALL, Fixture, sixty_percent
from zerowatt.capacity.model import MOVABLE
from zerowatt.capacity.power import node_models
from zerowatt.capacity.report import analyse, document
from zerowatt.capacity.snapshot import parse_snapshot
from zerowatt.capacity.usage import Usage
from zerowatt.energy.facility import Facility


def run(fx: Fixture, usage: Usage | None = None, price: float | None = None) -> dict[str, Any]:
    c = parse_snapshot(fx.doc).cluster
    a = analyse(
        c, usage or Usage.unknown(c.n_rows), node_models(c.node_labels, c.node_cpus, (100.0, 300.0)), Facility(), price
    )
    return document(a)


@pytest.mark.parametrize("make", ALL, ids=lambda f: f.__name__)
def test_fixture_answers(make: Any) -> None:
    fx = make()
    doc = run(fx)
    req, ca = doc["consolidation"]["requests"], doc["consolidation"]["cluster_autoscaler"]
    assert len(req["nodes_off"]) == fx.off, req["kept_because"]
    assert len(ca["nodes_off"]) == fx.ca_off, ca["kept_because"]
    for name, word in fx.kept.items():
        assert name in req["nodes_kept"]
        assert word in req["kept_because"][name]
    assert req["nodes_after"] == req["nodes_before"] - fx.off <= req["nodes_before"]
    assert req["nodes_after"] >= req["lower_bound_nodes"]
    assert set(req["nodes_off"]).isdisjoint(req["nodes_kept"])
    assert len(req["nodes_off"]) + len(req["nodes_kept"]) == doc["cluster"]["nodes"]
    # Every kept node says why; the commands cordon and drain exactly the nodes off, in order.
    assert all(req["kept_because"][n] for n in req["nodes_kept"])
    drained = [line.split()[2] for line in req["commands"] if line.startswith("kubectl drain")]
    assert drained == req["nodes_off"]


def test_savings_are_the_idle_watts_of_identical_nodes_and_priced_per_year() -> None:
    doc = run(sixty_percent(), price=0.5)
    req = doc["consolidation"]["requests"]
    (d,) = req["drain"]
    # Identical nodes (100 W idle, 300 W at 100 %): the moved pods' dynamic power moves, the idle 100 W goes.
    assert d["it_watts"] == pytest.approx(100.0)
    assert d["kwh_it_per_year"] == pytest.approx(100.0 * 8760 / 1000)
    assert d["kwh_per_year"] == pytest.approx(876.0 * 1.58)
    assert d["co2e_kg_per_year"] == pytest.approx(876.0 * 1.58 * 475 / 1000)
    assert d["water_litres_per_year"] == pytest.approx(876.0 * 1.8)
    assert d["money_per_year"] == pytest.approx(0.5 * 8760)
    assert req["kwh_per_year"] == pytest.approx(d["kwh_per_year"])


def test_rightsized_requests_free_more_nodes() -> None:
    """sixty_percent: 9 pods × 2 CPU on 3 × 10 CPU. Right-sized to 500m each (4.5 CPU): one node holds all."""
    fx = sixty_percent()
    c = parse_snapshot(fx.doc).cluster
    u = Usage.unknown(c.n_rows)
    for arr, value in ((u.base, 100.0), (u.peak, 400.0), (u.upper, 450.0), (u.typical, 300.0), (u.target, 500.0)):
        arr[:, 0] = value
    doc = run(fx, u)
    assert len(doc["consolidation"]["requests"]["nodes_off"]) == 1
    assert len(doc["consolidation"]["rightsized"]["nodes_off"]) == 2
    assert doc["consolidation"]["rightsized"]["requested"]["cpu"] == pytest.approx(4.5)


@pytest.mark.parametrize(
    ("make", "word"),
    [("sixty_percent", "utilisation"), ("pdb_strict", "PDB"), ("system_pods", "kube-system")],
)
def test_comparison_names_the_autoscaler_rule_that_differs(make: str, word: str) -> None:
    fx = next(f for f in ALL if f.__name__ == make)()
    cmp = doc_cmp = run(fx)["consolidation"]["comparison"]
    assert cmp["only_zerowatt"], doc_cmp
    assert any(word in e["autoscaler_keeps_because"] for e in cmp["only_zerowatt"])
    assert any(word in s or word.lower() in s for s in cmp["summary"][1:])


def test_drained_nodes_pods_land_on_kept_nodes_within_capacity() -> None:
    from zerowatt.capacity.pack import ZEROWATT, pack
    from zerowatt.capacity.selectors import placement_matrix

    for make in ALL:
        c = parse_snapshot(make().doc).cluster
        req = c.pod_requests()
        pm = placement_matrix(c.placements, c.node_names, c.node_labels, c.node_taints)
        res = pack(c, req, ZEROWATT, pm)
        gone = set(res.removed)
        for p in range(c.n_pods):
            if c.pod_kind[p] == MOVABLE:
                t = int(res.pod_node[p])
                assert t not in gone and pm[c.pod_placement[p], t]
                if t != c.pod_node[p]:
                    assert p not in c.unmovable and int(c.pod_node[p]) in gone
        used = np.zeros_like(c.alloc)
        alive = np.asarray([p for p in range(c.n_pods) if res.pod_node[p] not in gone], dtype=np.int64)
        np.add.at(used, res.pod_node[alive], req[alive])
        assert (used <= c.alloc).all()


def test_nodes_kept_only_to_spread_replicas_count_their_idle_as_required_redundancy() -> None:
    """anti: 4 nodes × 4 CPU each kept for one 1-CPU replica by hostname anti-affinity: their 3 idle cores
    each are redundancy, all of it required. zone_spread: the two nodes left are each their zone's last."""
    from tests.capacity.fixtures import anti, zone_spread

    doc = run(anti())
    cl = doc["cluster"]
    assert all(n["spare"] for n in doc["nodes"])
    assert cl["idle"]["cpu"] == 0.0 and cl["idle"]["watts"] == 0.0
    assert cl["redundancy"]["cpu"] == pytest.approx(12.0) == cl["redundancy_required"]["cpu"]
    assert cl["redundancy"]["watts"] == pytest.approx(4 * 100.0 * 3 / 4)  # idle 100 W per node, by cores
    doc = run(zone_spread())
    kept = doc["consolidation"]["requests"]["nodes_kept"]
    assert sorted(n["name"] for n in doc["nodes"] if n["spare"]) == sorted(kept) == ["n2", "n3"]
    assert all("last node of its domain" in doc["consolidation"]["requests"]["kept_because"][n] for n in kept)
    # nodes that go off are not spare: their idle stays idle
    assert all(n["idle"]["cpu"] > 0 for n in doc["nodes"] if not n["spare"])


def test_a_cluster_of_idle_nodes_can_all_be_off_and_daemonsets_go_with_their_node() -> None:
    from tests.capacity.builders import listing, node, pod

    ds = {"owner": ("DaemonSet", "agent"), "labels": {"app": "agent"}}
    fx = Fixture("idle", listing(node("a"), node("b"), pod("agent-a", "a", **ds), pod("agent-b", "b", **ds)), 2, 2)
    doc = run(fx)
    req = doc["consolidation"]["requests"]
    assert sorted(req["nodes_off"]) == ["a", "b"] and req["nodes_after"] == 0 == req["lower_bound_nodes"]
    assert all(d["pods_moved"] == 0 for d in req["drain"])
    assert sum(d["it_watts"] for d in req["drain"]) == pytest.approx(doc["cluster"]["capacity"]["watts"])
