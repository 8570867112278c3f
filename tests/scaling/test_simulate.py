"""The simulator on tiny hand-computable traces, the KPA shortcut against its tick loop, and invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.scaling.conftest import invocations
from zerowatt.scaling.policies.hybrid import HybridParams
from zerowatt.scaling.policies.keepalive import FixedKeepAlive
from zerowatt.scaling.policies.kpa import KpaParams
from zerowatt.scaling.power import EnergyParams
from zerowatt.scaling.sim.driver import SimulationConfig, prepare, run_policy
from zerowatt.scaling.sim.kpa_batch import kpa_tick_loop, peak_concurrency
from zerowatt.scaling.sim.pareto import keepalive_matching_idle_memory, pareto, window_metrics
from zerowatt.scaling.sim.periods import busy_periods, latency_percentiles

THREE = [(0, 0.0, 10.0), (0, 100.0, 10.0), (0, 1000.0, 10.0)]


def test_busy_periods_merge_overlaps_per_function() -> None:
    inv = invocations([(0, 0.0, 5.0), (0, 2.0, 10.0), (0, 20.0, 1.0), (1, 3.0, 1.0)], n_functions=2)
    p = busy_periods(inv)
    assert p.fid.tolist() == [0, 0, 1]
    assert p.start.tolist() == [0.0, 20.0, 3.0]
    assert p.end.tolist() == [12.0, 21.0, 4.0]
    assert p.first_of_function.tolist() == [True, False, True]


def test_keepalive_by_hand() -> None:
    prep = prepare(invocations(THREE))
    r = run_policy("keepalive", prep, SimulationConfig(cold_start=1.0))
    # Gaps: 90 s (warm), 890 s (> 600: cold), then 2590 s to the horizon of which 600 stay warm.
    assert r.cold_starts == 2 and r.instance_starts == 2
    assert r.idle_instance_seconds == pytest.approx(90 + 600 + 600)
    assert r.instance_seconds == pytest.approx(30 + 1290 + 2 * 1.0)
    assert r.idle_memory_gb_seconds == pytest.approx(1290.0)
    assert r.latency_added_ms["p50"] == pytest.approx(1000.0)  # two of three waited 1 s
    e = EnergyParams()
    present = 0.392 + e.cpu_min_watts_per_vcpu
    active = e.cpu_max_watts_per_vcpu - e.cpu_min_watts_per_vcpu
    assert r.energy_joules == pytest.approx(1322 * present + (30 + 2 * 1.0) * active)
    assert r.facility_energy_joules == pytest.approx(r.energy_joules * 1.58)


def test_energy_policy_by_hand() -> None:
    prep = prepare(invocations(THREE))
    r = run_policy("energy", prep, SimulationConfig(cold_start=1.0))
    e = EnergyParams()
    present = 0.392 + e.cpu_min_watts_per_vcpu
    keep = (present + e.cpu_max_watts_per_vcpu - e.cpu_min_watts_per_vcpu) / present
    assert r.cold_starts == 3
    assert r.idle_instance_seconds == pytest.approx(3 * keep)


def test_hybrid_by_hand() -> None:
    inv = invocations([(0, 0.0, 1.0), (0, 300.0, 1.0), (0, 1000.0, 1.0), (0, 1700.0, 1.0)])
    config = SimulationConfig(cold_start=0.5, hybrid=HybridParams(fallback_keep_alive=600.0))
    r = run_policy("hybrid", prepare(inv), config)
    # Gap 1 (299 s, from 1 s) is decided with an empty histogram: the 600 s fallback keeps it warm.
    # Gap 2 (from 301 s) knows 299 s (bin 4): pre-warm 4 min * 0.9 = 216 s, loaded until 5 min * 1.1 = 330 s;
    #   the next request comes 699 s later: cold, after 114 s of pre-warmed idling.
    # Gap 3 (from 1001 s) knows 299 and 699 s (bins 4 and 11): loaded from 216 s to 12 min * 1.1 = 792 s;
    #   699 s later is inside: warm, 483 s idle.
    # The trailing gap (from 1701 s) has the same windows: 576 s idle before the horizon.
    assert r.cold_starts == 2
    assert r.instance_starts == 2 + 3  # three pre-warm loads
    assert r.idle_instance_seconds == pytest.approx(299 + (330 - 216) + (699 - 216) + (792 - 216))


def test_hybrid_default_fallback_keeps_the_first_gap_for_the_histogram_range() -> None:
    inv = invocations([(0, 0.0, 1.0), (0, 300.0, 1.0), (0, 1000.0, 1.0), (0, 1700.0, 1.0)])
    r = run_policy("hybrid", prepare(inv), SimulationConfig(cold_start=0.5))
    # As test_hybrid_by_hand, but gap 1 is decided by the §4.2 fallback (4 h keep-alive): still warm.
    assert r.params["fallback_keep_alive_s"] == 4 * 3600.0
    assert r.cold_starts == 2
    assert r.idle_instance_seconds == pytest.approx(299 + (330 - 216) + (699 - 216) + (792 - 216))


def test_hybrid_out_of_range_branch_pre_warms_at_the_forecast() -> None:
    # Four 1-s requests 5 h apart (idle times of 17,999 s, beyond the 4 h range), over 20 h.
    h = 3600.0
    inv = invocations([(0, 0.0, 1.0), (0, 5 * h, 1.0), (0, 10 * h, 1.0), (0, 15 * h, 1.0)], horizon=20 * h)
    r = run_policy("hybrid", prepare(inv), SimulationConfig(cold_start=0.5))
    it = 5 * h - 1.0
    # Gap 0: empty histogram -> 4 h keep-alive: the request 17,999 s later is cold after 14,400 s idle.
    # Gaps 1, 2 and the trailing one: every idle time so far is out of range -> forecast (persistence with
    #   fewer than three points, AR(1) of a constant series after) = 17,999 s; pre-warm at 85 % of it,
    #   keep 30 %: the next request (or the horizon, 17,999 s on) falls inside: warm, idle it - 0.85 it.
    assert r.cold_starts == 2
    assert r.instance_starts == 2 + 3
    assert r.idle_instance_seconds == pytest.approx(4 * h + 3 * (it - 0.85 * it))


def test_kpa_light_functions_by_hand() -> None:
    inv = invocations([(0, 0.0, 1.0), (0, 80.0, 1.0), (0, 300.0, 1.0)])
    r = run_policy("kpa", prepare(inv), SimulationConfig(cold_start=0.0))
    # After a busy period ending at e the pod lives until the first tick past e + 60 s, plus 30 s grace.
    assert r.cold_starts == 2
    assert r.idle_instance_seconds == pytest.approx(79 + 91 + 91)
    assert r.params["heavy_functions"] == 0


def test_kpa_tick_loop_agrees_with_the_light_shortcut() -> None:
    rows = [(0, 0.5, 1.0), (0, 80.25, 3.0), (0, 300.0, 0.5), (0, 301.0, 2.0), (0, 999.0, 40.0), (0, 1500.7, 1.0)]
    inv = invocations(rows, horizon=2400.0)
    prep = prepare(inv)
    light = run_policy("kpa", prep, SimulationConfig(cold_start=0.25))
    loop = kpa_tick_loop(inv, prep.periods, np.array([0]), KpaParams(), 0.25, None)
    busy = float(np.sum(np.minimum(prep.periods.end, 2400.0) - prep.periods.start))
    assert loop.event_time.size == light.cold_starts
    assert loop.idle_seconds[0] == pytest.approx(light.idle_instance_seconds)
    assert loop.instance_seconds[0] == pytest.approx(busy + light.idle_instance_seconds + 0.25 * light.cold_starts)


def test_kpa_scales_out_and_panics_for_a_burst() -> None:
    rows = [(0, 10.0 + i * 0.001, 30.0) for i in range(300)]  # 300 concurrent requests for 30 s
    inv = invocations(rows, horizon=600.0)
    prep = prepare(inv)
    assert peak_concurrency(inv, prep.periods, 70.0)[0] == 300
    r = run_policy("kpa", prep, SimulationConfig(cold_start=0.0))
    assert r.params["heavy_functions"] == 1
    assert r.cold_starts == 1
    loop = kpa_tick_loop(inv, prep.periods, np.array([0]), KpaParams(), 0.0, None)
    assert loop.scale_up_starts >= 4 - 1  # ceil(300 / 70) = 5 pods wanted; at least 4 started after the first
    # Extra pods stay while panicking and the stable window drains: much more instance time than one pod.
    assert loop.instance_seconds[0] > 4 * 60


def test_latency_percentiles_match_numpy() -> None:
    rng = np.random.default_rng(0)
    d = np.where(rng.random(5000) < 0.02, rng.random(5000), 0.0)
    got = latency_percentiles(d, d.size)
    want = np.percentile(d, [50, 99, 99.9]) * 1000
    assert [got["p50"], got["p99"], got["p999"]] == pytest.approx(list(want))


def test_keepalive_matching_idle_memory_finds_the_window() -> None:
    prep = prepare(invocations(THREE))
    config = SimulationConfig(cold_start=0.0, keepalive=FixedKeepAlive(600.0))
    target = run_policy("keepalive", prep, config).idle_memory_gb_seconds
    match = keepalive_matching_idle_memory(prep, config, target)
    assert match.idle_memory_gb_seconds == pytest.approx(target, rel=1e-6)


rows_strategy = st.lists(
    st.tuples(
        st.integers(0, 2),
        st.floats(0, 3000, allow_nan=False),
        st.floats(0, 200, allow_nan=False),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=40, deadline=None)
@given(rows=rows_strategy, cold=st.sampled_from([0.0, 0.0003, 1.0]))
def test_every_request_is_served_and_nothing_is_negative(rows: list[tuple[int, float, float]], cold: float) -> None:
    inv = invocations(rows, n_functions=3)
    prep = prepare(inv)
    active = len({r[0] for r in rows})
    for name in ("kpa", "keepalive", "hybrid", "energy"):
        r = run_policy(name, prep, SimulationConfig(cold_start=cold))
        assert r.invocations == len(rows)
        assert active <= r.cold_starts <= len(rows)  # each function's first request is cold
        assert r.cold_starts <= r.instance_starts
        assert r.waited >= (r.cold_starts if cold > 0 else 0)
        assert 0.0 <= r.idle_instance_seconds <= r.instance_seconds + 1e-6
        assert r.latency_added_ms["p50"] >= 0 and r.latency_added_ms["p999"] <= cold * 1000 + 1e-6
        assert r.energy_joules >= 0 and r.facility_energy_joules >= r.energy_joules


def test_hybrid_prewarms_a_periodic_function_that_keepalive_always_misses() -> None:
    # A timer every 30 minutes: a 10-minute keep-alive starts it cold every time and idles 10 minutes;
    # the histogram learns the 30-minute idle time and loads the instance just before it (the paper's case).
    inv = invocations([(0, 1800.0 * i, 1.0) for i in range(40)], horizon=1800.0 * 40)
    prep = prepare(inv)
    ka = run_policy("keepalive", prep, SimulationConfig(cold_start=1.0))
    hy = run_policy("hybrid", prep, SimulationConfig(cold_start=1.0))
    assert ka.cold_starts == 40
    # Only the first request: the empty histogram's 4 h fallback keeps the first gap warm, and from the
    # second gap on the learnt 29-minute bin unloads the instance and re-loads it at 29 min x 0.9 = 1,566 s.
    assert hy.cold_starts == 1
    assert hy.instance_starts == 1 + 39
    assert hy.idle_instance_seconds == pytest.approx(1799.0 + 39 * (1799.0 - 29 * 60 * 0.9))
    assert hy.idle_instance_seconds < 0.5 * ka.idle_instance_seconds
    assert hy.waited == 1  # pre-warmed instances are ready long before their request


def test_pareto_sweep_on_the_papers_axes() -> None:
    # Function 0: a 30-minute timer (the hybrid pre-warms it); function 1: two requests 2 minutes apart.
    rows = [(0, 1800.0 * i, 1.0) for i in range(8)] + [(1, 0.0, 1.0), (1, 120.0, 1.0)]
    inv = invocations(rows, n_functions=2, horizon=1800.0 * 8)
    prep = prepare(inv)
    sweep = pareto(prep, SimulationConfig(cold_start=1.0), keepalive_windows=(600.0, 3600.0), hybrid_ranges=(14400.0,))
    ka10, ka60 = sweep.keepalive
    assert ka10.memory_norm == pytest.approx(1.0)  # normalised to the 10-minute keep-alive
    # 10 min: function 0 cold 8/8, function 1 cold 1/2 -> 75th percentile of (1, 0.5) = 0.875.
    assert ka10.cold_starts == 9 and ka10.cold_start_share_p75 == pytest.approx(0.875)
    # 60 min: function 0 cold only at first (1/8), function 1 1/2 -> p75 = 0.125 + 0.75 * 0.375.
    assert ka60.cold_starts == 2 and ka60.cold_start_share_p75 == pytest.approx(0.40625)
    (hy,) = sweep.hybrid
    assert hy.cold_starts == 2  # each function's first request only
    assert hy.memory_norm < ka60.memory_norm
    share, cold = sweep.keepalive_at(ka60.memory_norm)
    assert (share, cold) == (pytest.approx(ka60.cold_start_share_p75), pytest.approx(2.0))
    assert np.isnan(sweep.keepalive_at(100.0)[0])  # outside the swept range: no extrapolation
    assert sweep.to_json()["hybrid"][0]["keepalive_p75_at_same_memory"] == pytest.approx(
        sweep.keepalive_at(hy.memory_norm)[0], nan_ok=True
    )


def test_window_metrics_match_the_full_accounting_and_count_only_after_the_warm_up() -> None:
    rows = [(0, 1800.0 * i, 1.0) for i in range(8)] + [(1, 0.0, 1.0), (1, 120.0, 1.0)]
    prep = prepare(invocations(rows, n_functions=2, horizon=1800.0 * 8))
    zeros = np.zeros(prep.gaps.fid.size)
    full = run_policy("keepalive", prep, SimulationConfig(cold_start=1.0))
    assert window_metrics(prep, zeros, zeros + 600.0) == (
        full.cold_starts,
        pytest.approx(full.cold_start_share_p75),
        pytest.approx(full.idle_memory_gb_seconds),
    )
    # From 2 h on: function 0's requests at 2, 2.5, 3 and 3.5 h are all cold (30 min > 10 min); function 1
    # has no request left (out of the per-function shares). Idle: 600 s after each of those four requests.
    assert window_metrics(prep, zeros, zeros + 600.0, measure_from=7200.0) == (4, 1.0, pytest.approx(2400.0))
    sweep = pareto(prep, SimulationConfig(cold_start=1.0), (600.0,), (14400.0,), warmup=7200.0)
    assert sweep.warmup_s == 7200.0 and sweep.keepalive[0].cold_starts == 4
    assert sweep.hybrid[0].cold_starts == 0  # the histogram has learnt the 30-minute period by then
