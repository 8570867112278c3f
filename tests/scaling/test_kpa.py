"""Knative KPA decisions on hand-made scenarios, and its bucketed window average."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zerowatt.errors import ValidationError
from zerowatt.scaling.policies.kpa import KpaParams, WindowAverage
from zerowatt.scaling.sim.kpa_batch import KpaState, decide


def step(
    params: KpaParams, state: KpaState, now: float, ready: int, stable: float, panic: float, data: bool = True
) -> int:
    out = decide(
        params,
        state,
        now,
        np.array([ready], dtype=np.int64),
        np.array([stable]),
        np.array([panic]),
        np.array([data]),
    )
    return int(out[0])


def test_defaults_are_knatives() -> None:
    p = KpaParams()
    assert p.target == pytest.approx(70.0)
    assert p.panic_window == pytest.approx(6.0)
    assert p.panic_threshold == pytest.approx(2.0)
    assert (p.max_scale_up_rate, p.max_scale_down_rate) == (1000.0, 2.0)
    assert (p.stable_window, p.scale_to_zero_grace_period, p.tick) == (60.0, 30.0, 2.0)


def test_stable_mode_targets_seventy_per_pod() -> None:
    p, s = KpaParams(), KpaState.fresh(1)
    assert step(p, s, 10, ready=7, stable=140.0, panic=140.0) == 3  # ceil(140/70)=2, but floor(7/2)=3 bound
    assert step(p, s, 12, ready=3, stable=140.0, panic=140.0) == 2
    assert step(p, s, 14, ready=2, stable=141.0, panic=141.0) == 3


def test_max_scale_down_rate_halves_at_most() -> None:
    p, s = KpaParams(), KpaState.fresh(1)
    assert step(p, s, 10, ready=10, stable=1.0, panic=1.0) == 5
    assert step(p, s, 12, ready=5, stable=1.0, panic=1.0) == 2
    assert step(p, s, 14, ready=2, stable=1.0, panic=1.0) == 1


def test_max_scale_up_rate_bounds_growth() -> None:
    p, s = KpaParams(max_scale_up_rate=2.0), KpaState.fresh(1)
    assert step(p, s, 10, ready=1, stable=700.0, panic=700.0) == 2
    assert step(p, s, 12, ready=2, stable=700.0, panic=700.0) == 4


def test_panic_entry_holds_pods_until_a_stable_window_without_it() -> None:
    p, s = KpaParams(), KpaState.fresh(1)
    # 150 concurrent in the panic window on one pod: ceil(150/70)=3 >= 2 * 1 -> panic, scale to 3.
    assert step(p, s, 100, ready=1, stable=10.0, panic=150.0) == 3
    assert s.panic_since[0] == 100
    # Load gone: no scale-down while panicking.
    for t in range(102, 161, 2):
        assert step(p, s, t, ready=3, stable=0.0, panic=0.0) == 3, t
    # 60 s after the last over-threshold tick, panic ends; scale-down is rate-limited to floor(3/2).
    assert step(p, s, 162, ready=3, stable=0.0, panic=0.0) == 1
    assert s.panic_since[0] == -np.inf


def test_panic_is_extended_while_over_threshold() -> None:
    p, s = KpaParams(), KpaState.fresh(1)
    step(p, s, 100, ready=1, stable=10.0, panic=150.0)
    assert step(p, s, 150, ready=3, stable=10.0, panic=450.0) == 7  # ceil(450/70)=7 >= 2*3: still panic
    assert s.panic_since[0] == 150
    assert step(p, s, 200, ready=7, stable=0.0, panic=0.0) == 7  # 50 s later: still panicking


def test_scale_to_zero_waits_for_the_grace_period() -> None:
    p, s = KpaParams(), KpaState.fresh(1)
    assert step(p, s, 100, ready=1, stable=0.0, panic=0.0) == 1
    assert step(p, s, 128, ready=1, stable=0.0, panic=0.0) == 1
    assert step(p, s, 130, ready=1, stable=0.0, panic=0.0) == 0


def test_load_during_grace_cancels_scale_to_zero() -> None:
    p, s = KpaParams(), KpaState.fresh(1)
    step(p, s, 100, ready=1, stable=0.0, panic=0.0)
    assert step(p, s, 110, ready=1, stable=0.5, panic=0.5) == 1
    assert step(p, s, 130, ready=1, stable=0.0, panic=0.0) == 1  # grace restarts at 130
    assert step(p, s, 160, ready=1, stable=0.0, panic=0.0) == 0


def test_no_data_keeps_the_current_scale() -> None:
    p, s = KpaParams(), KpaState.fresh(1)
    assert step(p, s, 10, ready=4, stable=0.0, panic=0.0, data=False) == 4


def test_max_scale_caps_the_decision() -> None:
    p, s = KpaParams(max_scale=3), KpaState.fresh(1)
    assert step(p, s, 10, ready=1, stable=7000.0, panic=7000.0) == 3


@pytest.mark.parametrize(
    "kwargs",
    [{"max_scale_up_rate": 1.0}, {"max_scale_down_rate": 0.5}, {"stable_window": 5.0}, {"target_utilization": 0.0}],
)
def test_invalid_params_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        KpaParams(**kwargs)  # type: ignore[arg-type]


def test_window_average_uses_the_partial_window_after_first_write() -> None:
    w = WindowAverage(60.0)
    w.record(100.2, 10.0)
    w.record(101.5, 20.0)
    assert w.average(101.9) == pytest.approx(15.0)  # two buckets written, not 60
    for t in range(102, 162):
        w.record(t, 0.0)
    assert w.average(161.0) == pytest.approx(0.0)


def test_window_average_counts_gaps_as_zero_and_resets_after_a_window() -> None:
    w = WindowAverage(6.0)
    w.record(0.0, 6.0)
    w.record(3.0, 6.0)
    assert w.average(3.0) == pytest.approx(3.0)  # buckets 0..3, the two gaps count as zeros
    # Window 3..8 with no data since 3: Knative averages over the valid buckets only (3..3).
    assert w.average(8.0) == pytest.approx(6.0)
    assert w.is_empty(10.0)
    w.record(20.0, 4.0)
    assert w.average(20.0) == pytest.approx(4.0)


@settings(max_examples=80, deadline=None)
@given(
    seq=st.lists(
        st.tuples(st.integers(0, 50), st.floats(0, 5000), st.floats(0, 5000), st.booleans()), min_size=1, max_size=40
    )
)
def test_decisions_stay_within_knatives_bounds(seq: list[tuple[int, float, float, bool]]) -> None:
    p, s = KpaParams(max_scale=20), KpaState.fresh(1)
    for i, (ready, stable, panic, data) in enumerate(seq):
        was_panicking = s.panic_since[0] > -np.inf
        before = int(s.max_panic_pods[0])
        d = step(p, s, 2.0 * (i + 1), ready, stable, panic, data)
        assert 0 <= d <= max(20, ready)
        if not data:
            assert d == ready
            continue
        assert d <= max(math.ceil(1000 * max(ready, 1)), 1)
        if s.panic_since[0] > -np.inf:
            assert d >= 1
            if was_panicking:
                assert d >= min(before, 20)  # no scale-down while panicking
