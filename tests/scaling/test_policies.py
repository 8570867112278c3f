"""Window policies: hybrid histogram windows and fallbacks, the energy break-even, fixed keep-alive."""

from __future__ import annotations

import numpy as np
import pytest

from zerowatt.errors import ValidationError
from zerowatt.scaling.policies.energy import EnergyAware
from zerowatt.scaling.policies.hybrid import HybridParams, ar1_forecast
from zerowatt.scaling.policies.keepalive import FixedKeepAlive
from zerowatt.scaling.power import EnergyParams
from zerowatt.scaling.sim.hybrid_batch import hybrid_windows, out_of_range


def hist_of(idle_minutes: list[int], bins: int = 240) -> np.ndarray:
    h = np.zeros((1, bins), dtype=np.int64)
    for m in idle_minutes:
        h[0, m] += 1
    return h


def test_fixed_keep_alive_is_ten_minutes_without_prewarm() -> None:
    p, k = FixedKeepAlive().windows(np.array([0.5, 2.0]))
    assert p.tolist() == [0.0, 0.0]
    assert k.tolist() == [600.0, 600.0]


def test_hybrid_windows_from_head_and_tail_with_ten_percent_margins() -> None:
    # 100 idle times: 5 in minute 10, 94 in minute 12, 1 in minute 30.
    h = hist_of([10] * 5 + [12] * 94 + [30])
    p, k, rep = hybrid_windows(HybridParams(), h, np.zeros(1, dtype=np.int64))
    assert rep[0]
    assert p[0] == pytest.approx(10 * 60 * 0.9)  # 5th percentile bin 10, less 10 %
    # 99th percentile: 99 of 100 are within bin 12 -> upper edge 13 min, plus 10 %.
    assert p[0] + k[0] == pytest.approx(13 * 60 * 1.1)


def test_hybrid_head_in_first_bin_means_no_unloading() -> None:
    p, k, rep = hybrid_windows(HybridParams(), hist_of([0] * 50 + [3] * 50), np.zeros(1, dtype=np.int64))
    assert rep[0] and p[0] == 0.0
    assert k[0] == pytest.approx(4 * 60 * 1.1)


def test_hybrid_falls_back_to_a_range_long_keep_alive_when_histogram_is_empty_or_flat() -> None:
    # Shahrad et al. §4.2: not representative -> standard keep-alive with the histogram range, no pre-warm.
    empty = np.zeros((1, 240), dtype=np.int64)
    flat = np.ones((1, 240), dtype=np.int64)  # coefficient of variation 0 < 2
    p, k, rep = hybrid_windows(HybridParams(), np.concatenate([empty, flat]), np.zeros(2, dtype=np.int64))
    assert rep.tolist() == [False, False]
    assert p.tolist() == [0.0, 0.0]
    assert k.tolist() == [4 * 3600.0, 4 * 3600.0]
    # A 2-hour histogram falls back to 2 hours; an explicit fallback overrides the range.
    assert hybrid_windows(HybridParams(range=7200.0), empty[:, :120], np.zeros(1, dtype=np.int64))[1][0] == 7200.0
    assert hybrid_windows(HybridParams(fallback_keep_alive=600.0), empty, np.zeros(1, dtype=np.int64))[1][0] == 600.0


def test_hybrid_out_of_range_branch_uses_the_forecast_with_fifteen_percent_margins() -> None:
    peaked = hist_of([5] * 10)
    # 10 of 20 idle times beyond 4 h: half reaches the threshold -> out-of-range branch.
    oob = np.array([10])
    p, k, rep = hybrid_windows(HybridParams(), peaked, oob, np.array([20000.0]))
    assert not rep[0]
    assert p[0] == pytest.approx(20000.0 * 0.85)  # pre-warm 15 % before the forecast
    assert k[0] == pytest.approx(20000.0 * 0.30)  # and keep 15 % past it
    # Without a forecast (NaN) the range-long keep-alive is used instead.
    p2, k2, _ = hybrid_windows(HybridParams(), peaked, oob, np.array([np.nan]))
    assert (p2[0], k2[0]) == (0.0, 4 * 3600.0)
    # 9 of 19 beyond the range: below half, the histogram decides.
    p3, _, rep3 = hybrid_windows(HybridParams(), peaked, np.array([9]), np.array([20000.0]))
    assert rep3[0] and p3[0] == pytest.approx(5 * 60 * 0.9)
    assert out_of_range(HybridParams(), np.concatenate([peaked, peaked]), np.array([10, 9])).tolist() == [True, False]


def test_ar1_forecast_by_hand() -> None:
    assert np.isnan(ar1_forecast(np.array([])))
    assert ar1_forecast(np.array([5.0, 9.0])) == 9.0  # under three points: the last idle time
    # x = 1, 3, 1, 3: mean 2, deviations -1, 1, -1, 1; phi = sum(d[t] d[t-1]) / sum(d[t-1]^2) = -3 / 3 = -1:
    # the alternation continues, next = 2 + (-1)(1) = 1.
    assert ar1_forecast(np.array([1.0, 3.0, 1.0, 3.0])) == pytest.approx(1.0)
    assert ar1_forecast(np.array([7.0, 7.0, 7.0])) == pytest.approx(7.0)  # constant: phi 0, the mean


def test_hybrid_cv_threshold_separates_concentrated_from_spread() -> None:
    spread = np.zeros((1, 240), dtype=np.int64)
    spread[0, :120] = 1  # half the bins, one each: CV = 1.0
    assert not hybrid_windows(HybridParams(), spread, np.zeros(1, dtype=np.int64))[2][0]
    assert hybrid_windows(HybridParams(cv_threshold=0.9), spread, np.zeros(1, dtype=np.int64))[2][0]


def test_energy_break_even_is_start_energy_over_idle_power() -> None:
    e = EnergyParams()
    pol = EnergyAware(start_latency=1.0, energy=e)
    mem = np.array([1.0])
    idle_w = 0.392 + e.cpu_min_watts_per_vcpu
    start_j = 1.0 * (idle_w + e.cpu_max_watts_per_vcpu - e.cpu_min_watts_per_vcpu)
    p, k = pol.windows(mem)
    assert p[0] == 0.0
    assert k[0] == pytest.approx(start_j / idle_w)
    # At the break-even, staying warm costs exactly one cold start.
    assert k[0] * idle_w == pytest.approx(pol.cold_cost_joules(mem)[0])


def test_energy_policy_keeps_almost_nothing_warm_with_a_wasm_start() -> None:
    _, k = EnergyAware(start_latency=0.0003).windows(np.array([0.128, 1.0, 4.0]))
    assert (k < 0.002).all()
    _, k_container = EnergyAware(start_latency=1.0).windows(np.array([0.128]))
    assert 1.0 < k_container[0] < 10.0


def test_energy_policy_prices_latency_when_asked_and_uses_a_measured_start_energy() -> None:
    base = EnergyAware(start_latency=0.5).windows(np.array([1.0]))[1][0]
    priced = EnergyAware(start_latency=0.5, latency_watts=100.0).windows(np.array([1.0]))[1][0]
    assert priced > base
    measured = EnergyAware(start_latency=0.5, start_joules=2.0).windows(np.array([1.0]))[1][0]
    assert measured == pytest.approx(2.0 / (0.392 + EnergyParams().cpu_min_watts_per_vcpu))


@pytest.mark.parametrize(
    "make",
    [
        lambda: FixedKeepAlive(keep_alive=-1),
        lambda: EnergyAware(start_latency=-1),
        lambda: HybridParams(margin=1.5),
        lambda: EnergyParams(pue=0.9),
        lambda: EnergyParams(cpu_min_watts_per_vcpu=3.0, cpu_max_watts_per_vcpu=2.0),
    ],
)
def test_invalid_parameters_raise_validation_errors(make: object) -> None:
    with pytest.raises(ValidationError):
        make()  # type: ignore[operator]


def test_energy_params_from_the_energy_subsystems_models() -> None:
    from zerowatt.energy.facility import Facility
    from zerowatt.energy.model import NodePowerModel

    e = EnergyParams.from_models(NodePowerModel(idle_watts=40.0, max_watts=200.0, logical_cpus=16), Facility(pue=1.2))
    assert e.cpu_min_watts_per_vcpu == pytest.approx(2.5)
    assert e.cpu_max_watts_per_vcpu == pytest.approx(12.5)
    assert e.pue == pytest.approx(1.2)
    assert e.present_watts(2.0) == pytest.approx(2 * 0.392 + 2.5)
