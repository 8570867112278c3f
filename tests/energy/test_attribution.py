"""Kepler ratio model: conservation over every interval (property), and hand-checked splits."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from zerowatt.energy.attribution import CpuTimes, aggregate, attribute, usage_ratio

finite = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(
    node=finite,
    usage=st.floats(min_value=-0.5, max_value=1.5, allow_nan=False),
    deltas=st.dictionaries(st.integers(1, 5000), st.floats(min_value=-10, max_value=1e3, allow_nan=False), max_size=50),
    busy=st.floats(min_value=0, max_value=2e3, allow_nan=False),
    spread=st.booleans(),
)
def test_workloads_plus_idle_equal_node_energy(
    node: float, usage: float, deltas: dict[int, float], busy: float, spread: bool
) -> None:
    a = attribute(node, usage, deltas, busy, spread_idle=spread)
    assert math.isclose(a.accounted(), node, rel_tol=1e-9, abs_tol=1e-6)
    assert math.isclose(a.active + a.idle, node, rel_tol=1e-12, abs_tol=1e-9)
    assert all(j >= 0 for j in a.workloads.values())
    assert a.unattributed >= -1e-9 and a.idle_at_node >= -1e-9
    if not spread:
        assert math.isclose(a.idle_at_node, a.idle, rel_tol=1e-12, abs_tol=1e-9)
        assert sum(a.workloads.values()) <= a.active * (1 + 1e-9) + 1e-9


def test_split_by_cpu_time_with_idle_at_node() -> None:
    # 100 J at 40% busy: 40 J active, 60 J idle; node busy 2.0 CPU-s of which A 1.0, B 0.5.
    a = attribute(100.0, 0.4, {"A": 1.0, "B": 0.5}, 2.0)
    assert math.isclose(a.workloads["A"], 20.0) and math.isclose(a.workloads["B"], 10.0)
    assert math.isclose(a.unattributed, 10.0) and math.isclose(a.idle_at_node, 60.0)


def test_spread_idle_shares_idle_by_workload_cpu() -> None:
    a = attribute(100.0, 0.4, {"A": 1.0, "B": 0.5}, 2.0, spread_idle=True)
    assert math.isclose(a.workloads["A"], 20.0 + 40.0) and math.isclose(a.workloads["B"], 10.0 + 20.0)
    assert math.isclose(a.idle_at_node, 0.0, abs_tol=1e-9)


def test_workload_deltas_above_node_busy_are_normalised() -> None:
    a = attribute(10.0, 1.0, {"A": 3.0, "B": 1.0}, 2.0)  # tick rounding: 4 s seen vs 2 s busy
    assert math.isclose(a.workloads["A"], 7.5) and math.isclose(a.unattributed, 0.0, abs_tol=1e-12)


def test_usage_ratio_and_aggregate() -> None:
    assert usage_ratio(CpuTimes(10, 100), CpuTimes(30, 200)) == 0.2
    assert usage_ratio(CpuTimes(10, 100), CpuTimes(10, 100)) == 0.0
    assert aggregate({1: 2.0, 2: 3.0, 3: 4.0}, {1: "c", 2: "c", 3: None}.get) == {"c": 5.0}
