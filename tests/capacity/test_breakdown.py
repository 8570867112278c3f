"""The six categories: the formulas on hand-picked numbers, the exact sum on every fixture, and the watts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.capacity.builders import deployment, listing, node, pdb, pod
from tests.capacity.fixtures import ALL
from zerowatt.capacity.breakdown import CATEGORIES, compute
from zerowatt.capacity.model import Cluster
from zerowatt.capacity.power import attribute, node_models
from zerowatt.capacity.report import analyse, document
from zerowatt.capacity.snapshot import parse_snapshot
from zerowatt.capacity.usage import Usage
from zerowatt.energy.facility import Facility


def cluster_of(*items: dict[str, Any]) -> Cluster:
    return parse_snapshot(listing(*items)).cluster


def usage(c: Cluster, cpu: tuple[float, float, float, float, float], mem: tuple[float, ...] | None = None) -> Usage:
    """Every row: base, peak, upper, typical, target millicores (and bytes; memory unknown without ``mem``)."""
    u = Usage.unknown(c.n_rows)
    for arr, v in zip((u.base, u.peak, u.upper, u.typical, u.target), cpu, strict=True):
        arr[:, 0] = v
    for arr, v in zip((u.base, u.peak, u.upper, u.typical, u.target), mem or (), strict=False):
        arr[:, 1] = v
    return u


def test_one_container_splits_into_base_variable_safety_growth() -> None:
    c = cluster_of(deployment("web"), node("n0"), pod("web-5d8f7c-a", "n0", cpu="1"))
    bd = compute(c, usage(c, (100, 500, 700, 300, 600)))
    assert bd.row_cat[0, :, 0].tolist() == [100, 400, 200, 300, 0]
    assert bd.node_cat[0, 5, 0] == 4000 - 1000  # idle
    # memory unknown: the whole request is base
    assert bd.row_cat[0, :, 1].tolist() == [2**30, 0, 0, 0, 0]


def test_usage_above_the_request_is_clipped_and_still_adds_up() -> None:
    c = cluster_of(deployment("web"), node("n0"), pod("web-5d8f7c-a", "n0", cpu="500m"))
    bd = compute(c, usage(c, (300, 900, 1200, 700, 1000)))
    assert bd.row_cat[0, :, 0].tolist() == [300, 200, 0, 0, 0]
    bd.check(c.alloc)


def test_redundancy_comes_from_growth_then_safety_and_the_pdb_part_is_required() -> None:
    """4 replicas peaking at half their CPU request (and 400 of 1024 MiB) need 2: each row gives R·2/4 = 500m,
    taken from growth (300m) then safety (200m of 200m). A PDB minAvailable 3 requires one of the two spare
    replicas. (A workload whose memory use is unknown is never called redundant.)"""
    items = [deployment("web"), pdb("web", {"app": "web"}, minAvailable=3)]
    items += [node(f"n{i}") for i in range(4)]
    items += [pod(f"web-5d8f7c-{i}", f"n{i}", cpu="1") for i in range(4)]
    c = cluster_of(*items)
    mib = 2**20
    bd = compute(c, usage(c, (100, 500, 700, 300, 600), (100 * mib, 400 * mib, 600 * mib, 200 * mib, 500 * mib)))
    assert bd.workload_needed.tolist() == [2] and bd.workload_required.tolist() == [3]
    for i in range(4):
        assert bd.row_cat[i, :, 0].tolist() == [100, 400, 0, 0, 500]
        assert bd.row_required[i, 0] == 250
    bd.check(c.alloc)


def test_a_bare_pod_and_a_daemonset_are_never_redundant() -> None:
    items = [node("n0"), node("n1")]
    items += [
        pod(f"agent-{i}", f"n{i}", cpu="1", owner=("DaemonSet", "agent"), labels={"app": "agent"}) for i in range(2)
    ]
    items += [pod("solo", "n0", cpu="1", owner=None, labels={"app": "solo"})]
    c = cluster_of(*items)
    bd = compute(c, usage(c, (10, 20, 30, 15, 25)))
    assert (bd.row_cat[:, 4] == 0).all()
    bd.check(c.alloc)


def test_overhead_is_base_and_init_excess_is_safety() -> None:
    spec = {
        "overhead": {"cpu": "250m", "memory": "64Mi"},
        "initContainers": [{"name": "migrate", "resources": {"requests": {"cpu": "2", "memory": "1Gi"}}}],
    }
    c = cluster_of(deployment("web"), node("n0"), pod("web-5d8f7c-a", "n0", cpu="500m", memory="256Mi", spec=spec))
    assert c.pod_requests()[0, :2].tolist() == [2250, 2**30 + 64 * 2**20]
    bd = compute(c, Usage.unknown(c.n_rows))
    names = bd.row_name
    oh, init = names.index("(pod overhead)"), names.index("(init containers)")
    assert bd.row_cat[oh, 0].tolist() == [250, 64 * 2**20]
    assert bd.row_cat[init, 2].tolist() == [1500, 2**30 - 256 * 2**20]
    assert bd.node_cat[0, :5].sum(axis=0).tolist() == c.pod_requests()[0, :2].tolist()
    bd.check(c.alloc)


@pytest.mark.parametrize("make", ALL, ids=lambda f: f.__name__)
def test_six_categories_add_up_to_capacity_on_every_fixture(make: Any) -> None:
    c = parse_snapshot(make().doc).cluster
    rng = np.random.default_rng(7)
    for trial in range(5):
        u = Usage.unknown(c.n_rows)
        if trial:
            base = rng.uniform(0, 2000, (c.n_rows, 2)) * [1, 2**20]
            u = Usage(base, base * 1.5, base * 2.2, base * 1.2, base * 1.6)
        doc = document(analyse(c, u, node_models(c.node_labels, c.node_cpus), Facility()))
        bd = compute(c, u)
        total = bd.node_cat.sum(axis=(0, 1))
        assert total.tolist() == c.alloc[:, :2].sum(axis=0).tolist()  # exact, in millicores and bytes
        cl = doc["cluster"]
        assert sum(cl[k]["memory"] for k in CATEGORIES) == cl["capacity"]["memory"]
        assert sum(round(cl[k]["cpu"] * 1000) for k in CATEGORIES) == round(cl["capacity"]["cpu"] * 1000)
        assert sum(cl[k]["watts"] for k in CATEGORIES) == pytest.approx(cl["capacity"]["watts"], abs=1e-2)
        for n in doc["nodes"]:
            assert sum(n[k]["memory"] for k in CATEGORIES) == n["capacity"]["memory"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3000),  # request millicores
            st.floats(0, 4000),  # base
            st.floats(0, 3),  # peak / base
            st.floats(0, 3),  # upper / peak
        ),
        min_size=1,
        max_size=8,
    ),
    st.integers(1, 4),
)
def test_the_sum_is_exact_for_any_usage(rows: list[tuple[int, float, float, float]], replicas: int) -> None:
    items: list[dict[str, Any]] = [deployment("web"), node("n0", cpu="64", memory="512Gi")]
    for i, (req, *_rest) in enumerate(rows):
        items.append(pod(f"web-5d8f7c-{i}", "n0", cpu=f"{req}m" if req else None))
    c = cluster_of(*items)
    u = Usage.unknown(c.n_rows)
    for i, (_, b, pr, ur) in enumerate(rows):
        u.base[i, 0], u.peak[i, 0], u.upper[i, 0], u.typical[i, 0] = b, b * pr, b * pr * ur, b
    bd = compute(c, u)
    bd.check(c.alloc)
    assert (bd.row_cat >= 0).all()
    assert (bd.row_cat.sum(axis=1) == c.row_request).all()


def test_watts_add_up_to_each_nodes_modelled_power_and_idle_is_shared_by_cores() -> None:
    c = cluster_of(deployment("web"), node("n0"), pod("web-5d8f7c-a", "n0", cpu="1"))
    u = usage(c, (100, 500, 700, 2000, 600))
    bd = compute(c, u)
    models = node_models(c.node_labels, c.node_cpus, (40.0, 200.0))
    w = attribute(bd, c.pod_node[bd.row_pod], c.alloc[:, 0].astype(float), models, c.node_cpus)
    # typical 2 of 4 CPUs busy: 40 + 160 × 0.5 = 120 W
    assert w.node_total[0] == pytest.approx(120.0)
    assert w.node[0].sum() == pytest.approx(120.0)
    # idle 40 W over 4000 m: 10 mW per millicore; active 80 W to base:variable = 100:400
    assert w.node[0, 5] == pytest.approx(40.0 * 3000 / 4000)
    assert w.node[0, 0] == pytest.approx(80.0 * 100 / 500 + 40.0 * 100 / 4000)
    assert w.node[0, 1] == pytest.approx(80.0 * 400 / 500 + 40.0 * 400 / 4000)
    assert w.node[0, 3] == pytest.approx(40.0 * 300 / 4000)
