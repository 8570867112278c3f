"""The live autoscaler: per-component state machines for the host, and their invariants."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zerowatt.errors import UsageError, ValidationError
from zerowatt.scaling.online import Observation
from zerowatt.scaling.policies import make_autoscaler
from zerowatt.scaling.policies.energy import EnergyAware
from zerowatt.scaling.policies.hybrid import HybridParams, IdleHistogram
from zerowatt.scaling.policies.kpa import KpaParams


def test_keepalive_holds_one_instance_for_ten_minutes() -> None:
    a = make_autoscaler("keepalive", cold_start=1.0, memory_gb=0.5)
    assert a.tick is None
    assert a.decide(Observation(0.0, in_flight=0)).desired == 0  # never invoked
    assert a.decide(Observation(1.0, in_flight=0, pending=1)).desired == 1
    d = a.decide(Observation(5.0, in_flight=0, ready=1))
    assert (d.desired, d.wake_at) == (1, 605.0)
    assert a.decide(Observation(604.9, in_flight=0, ready=1)).desired == 1
    assert a.decide(Observation(605.0, in_flight=0, ready=1)).desired == 0


def test_capacity_scales_busy_instances() -> None:
    a = make_autoscaler("keepalive", cold_start=1.0, memory_gb=0.5, capacity=4)
    assert a.decide(Observation(0.0, in_flight=9)).desired == 3


def test_energy_policy_releases_at_the_break_even() -> None:
    a = make_autoscaler("energy", cold_start=0.0003, memory_gb=0.128)
    a.decide(Observation(0.0, in_flight=1))
    d = a.decide(Observation(1.0, in_flight=0, ready=1))
    keep = float(EnergyAware(0.0003).windows(__import__("numpy").array([0.128]))[1][0])
    assert d.desired == 1 and d.wake_at == pytest.approx(1.0 + keep)
    assert keep < 0.002
    assert a.decide(Observation(1.0 + keep, in_flight=0, ready=1)).desired == 0


def test_hybrid_learns_idle_times_and_prewarms() -> None:
    a = make_autoscaler("hybrid", cold_start=1.0, memory_gb=1.0, hybrid=HybridParams())
    a.decide(Observation(0.0, in_flight=1))
    a.decide(Observation(1.0, in_flight=0))  # idle from 1 s
    a.decide(Observation(301.0, in_flight=1))  # learnt: 300 s (bin 5)
    d = a.decide(Observation(302.0, in_flight=0))
    assert d.desired == 0 and d.wake_at == pytest.approx(302.0 + 5 * 60 * 0.9)  # unloaded until pre-warm
    d = a.decide(Observation(302.0 + 270.0, in_flight=0))
    assert d.desired == 1 and d.wake_at == pytest.approx(302.0 + 6 * 60 * 1.1)


def test_kpa_scales_from_zero_on_the_first_request_and_to_zero_after_window_and_grace() -> None:
    a = make_autoscaler("kpa", cold_start=1.0, memory_gb=1.0)
    assert a.tick == 2.0
    assert a.decide(Observation(0.0, in_flight=0)).desired == 0
    d = a.decide(Observation(10.5, in_flight=0, pending=1))
    assert d.desired == 1 and d.reason == "scale from zero"
    a.decide(Observation(11.0, in_flight=1, ready=1))
    a.decide(Observation(11.5, in_flight=0, ready=1))  # the request ran 0.5 s
    desired = {}
    t = 12.5
    while t < 140:
        desired[t] = a.decide(Observation(t, in_flight=0, ready=1)).desired
        t += 2.0
    assert all(v == 1 for k, v in desired.items() if k < 11.5 + 60)
    zero_at = min(k for k, v in desired.items() if v == 0)
    assert 11.5 + 60 + 30 <= zero_at <= 11.5 + 60 + 30 + 4


def test_kpa_scales_out_under_load() -> None:
    a = make_autoscaler("kpa", cold_start=0.0, memory_gb=1.0)
    a.decide(Observation(0.0, in_flight=0, pending=300))
    ready, t = 1, 0.0
    for _ in range(10):
        t += 1.0
        d = a.decide(Observation(t, in_flight=300, ready=ready))
        ready = d.desired
    assert ready == 5  # ceil(300 / 70)


def test_unknown_policy_and_bad_observations() -> None:
    with pytest.raises(UsageError):
        make_autoscaler("warm-forever", cold_start=1.0, memory_gb=1.0)
    with pytest.raises(ValidationError):
        Observation(0.0, in_flight=-1)
    a = make_autoscaler("kpa", cold_start=1.0, memory_gb=1.0)
    a.decide(Observation(5.0, in_flight=1))
    with pytest.raises(ValidationError, match="backwards"):
        a.decide(Observation(4.0, in_flight=1))


steps = st.lists(
    st.tuples(st.floats(0.01, 400.0), st.integers(0, 500), st.integers(0, 20), st.integers(0, 12)),
    min_size=1,
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(["kpa", "keepalive", "hybrid", "energy"]), seq=steps, cold=st.sampled_from([0.0003, 1.0]))
def test_desired_is_never_negative_never_above_max_and_serves_every_request(
    name: str, seq: list[tuple[float, int, int, int]], cold: float
) -> None:
    a = make_autoscaler(name, cold_start=cold, memory_gb=0.25, kpa=KpaParams(max_scale=8), capacity=100)
    now = 0.0
    for dt, in_flight, pending, ready in seq:
        now += dt
        d = a.decide(Observation(now, in_flight=in_flight, pending=pending, ready=ready))
        assert d.desired >= 0
        assert d.desired <= 8 or name != "kpa"
        if in_flight + pending > 0:
            assert d.desired >= 1
        if d.wake_at is not None:
            assert d.wake_at >= now


ROWS = [(0, 0.5, 1.0), (0, 80.25, 3.0), (0, 300.0, 0.5), (0, 301.0, 2.0), (0, 999.0, 40.0), (0, 1500.7, 1.0),
        (0, 1600.3, 2.0), (0, 1650.2, 1.0)]  # fmt: skip


@pytest.mark.parametrize("name", ["kpa", "keepalive", "hybrid", "energy"])
def test_live_autoscaler_sees_the_cold_starts_the_simulator_counts(name: str) -> None:
    import numpy as np

    from tests.scaling.conftest import invocations
    from zerowatt.scaling.sim.driver import SimulationConfig, prepare, run_policy

    horizon = 2400.0
    starts = [r[1] for r in ROWS]
    ends = [r[1] + r[2] for r in ROWS]
    a = make_autoscaler(name, cold_start=0.0, memory_gb=1.0)
    cold, desired = 0, 0
    for t in sorted(set(starts) | set(ends) | set(np.arange(0.0, horizon, 0.5).tolist())):
        in_flight = sum(1 for s, e in zip(starts, ends, strict=True) if s <= t < e)
        if t in starts and desired == 0:
            cold += 1
        desired = a.decide(Observation(t, in_flight=in_flight, ready=desired)).desired
    sim = run_policy(name, prepare(invocations(ROWS, horizon=horizon)), SimulationConfig(cold_start=0.0))
    assert cold == sim.cold_starts


def test_live_histogram_forecasts_out_of_range_idle_times_and_falls_back_to_the_range() -> None:
    hist = IdleHistogram(HybridParams())
    assert hist.windows() == (0.0, 4 * 3600.0)  # nothing learnt: §4.2's range-long keep-alive
    for it in (18000.0, 18000.0, 18000.0):  # three 5-hour idle times: all beyond the 4-hour range
        hist.add(it)
    p, k = hist.windows()
    assert p == pytest.approx(0.85 * 18000.0) and k == pytest.approx(0.30 * 18000.0)


# -- --policy / --policy-option (zerowatt up) ---------------------------------------------------------


def test_parse_policy_builds_each_policy_with_compressed_windows() -> None:
    from zerowatt.scaling.policies import parse_policy
    from zerowatt.scaling.policies.kpa import KpaAutoscaler

    ka = parse_policy("keepalive", ["keep_alive=600", "compression=60"]).autoscaler(cold_start=0.0003)
    ka.decide(Observation(0.0, in_flight=1))
    assert ka.decide(Observation(1.0, in_flight=0, ready=1)).wake_at == pytest.approx(11.0)  # 600 s / 60
    kpa = parse_policy("kpa", ["compression=60", "max_scale=3"]).autoscaler(cold_start=0.0003)
    assert isinstance(kpa, KpaAutoscaler)
    assert kpa.tick == pytest.approx(2 / 60)
    assert kpa.params.stable_window == pytest.approx(1.0) and kpa.params.max_scale == 3
    assert kpa.params.scale_to_zero_grace_period == pytest.approx(0.5) and kpa.params.bucket == pytest.approx(1 / 60)
    hy = parse_policy("hybrid", ["compression=600", "range=600"]).autoscaler(cold_start=0.0003)
    hy.decide(Observation(0.0, in_flight=1))
    assert hy.decide(Observation(1.0, in_flight=0)).wake_at == pytest.approx(2.0)  # fallback = the 1 s range
    # energy: the break-even comes from the physical start, compression leaves it alone
    en = parse_policy("energy", ["compression=60", "memory_gb=0.128"]).autoscaler(cold_start=0.0003)
    en.decide(Observation(0.0, in_flight=1))
    keep = float(EnergyAware(0.0003).windows(__import__("numpy").array([0.128]))[1][0])
    assert en.decide(Observation(1.0, in_flight=0, ready=1)).wake_at == pytest.approx(1.0 + keep)
    capped = parse_policy("keepalive", ["capacity=2", "max_instances=3"])
    assert capped.max_instances == 3
    assert capped.autoscaler(cold_start=0.0003).decide(Observation(0.0, in_flight=5)).desired == 3


@pytest.mark.parametrize(
    ("name", "options", "named"),
    [
        ("nope", [], "nope"),
        ("kpa", ["keep_alive=1"], "keep_alive"),  # an option of another policy
        ("keepalive", ["keep_alive"], "keep_alive"),
        ("keepalive", ["keep_alive=x"], "keep_alive"),
        ("keepalive", ["keep_alive=nan"], "keep_alive"),
        ("keepalive", ["compression=0"], "compression"),
        ("hybrid", ["capacity=1.5"], "capacity"),
        ("kpa", ["stable_window=3"], "stable_window"),
        ("kpa", ["target_utilization=2"], "target_utilization"),
        ("hybrid", ["margin=1"], "margin"),
    ],
)
def test_parse_policy_rejects_unknown_keys_and_bad_values_naming_them(
    name: str, options: list[str], named: str
) -> None:
    from zerowatt.scaling.policies import parse_policy

    with pytest.raises(UsageError, match=named):
        parse_policy(name, options)


def test_compressed_kpa_keeps_knatives_window_limits_in_uncompressed_time() -> None:
    p = KpaParams().compressed(60)
    assert (p.stable_window, p.tick, p.compression) == pytest.approx((1.0, 2 / 60, 60))
    assert p.compressed(2).compression == 120
    with pytest.raises(ValidationError, match="stable_window"):
        KpaParams(stable_window=1.0)  # uncompressed: below Knative's 6 s
    with pytest.raises(ValidationError, match="compression"):
        KpaParams().compressed(0)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("compression", [60.0, 7.0, 120.0, 600 / 7])
def test_compressed_kpa_walks_fractional_buckets_and_cycles_to_zero_and_back(compression: float) -> None:
    """Buckets of 1/60 s etc.: times that land on a bucket edge up to rounding must still advance (this
    once looped forever at t = 31/60 s), and the pod lives a stable window + grace after each request."""
    from zerowatt.scaling.policies import parse_policy

    a = parse_policy("kpa", [f"compression={compression!r}"]).autoscaler(cold_start=0.0003)
    assert a.tick is not None
    window = (60.0 + 30.0) / compression
    t, ups, last_up = 0.0, 0, 0.0
    for _ in range(2000):
        d = a.decide(Observation(t, in_flight=0, ready=1 if ups else 0))
        if d.desired == 0:
            if ups:
                assert t - last_up >= window  # never released before the window and the grace
            assert a.decide(Observation(t, in_flight=0, pending=1)).desired == 1
            a.decide(Observation(t, in_flight=1, ready=1))
            ups, last_up = ups + 1, t
        t += a.tick
    assert ups >= 3
