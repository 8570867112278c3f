"""The VPA estimator against hand-computed cases, one rule per test.

Expected values are computed here from the formulas in the upstream sources (bucket ends
``0.01·(1.05^b − 1)/0.05``, the confidence multipliers, the truncation to millicores/bytes), not by calling
the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from zerowatt.rightsize.accumulator import UsageAccumulator
from zerowatt.rightsize.estimator import CPU_HISTOGRAM, MEMORY_HISTOGRAM, SimpleConfig, VpaConfig
from zerowatt.rightsize.histogram import decay_reference, percentiles, round_to_half_life

NOW = 1_764_288_000.0  # 2025-11-28T00:00:00Z, a UTC midnight
DAY = 86400.0
MIB = 1024 * 1024


def cpu_end(b: int) -> float:
    """End of CPU bucket b = start of bucket b + 1."""
    return 0.01 * (1.05 ** (b + 1) - 1) / 0.05


def mem_end(b: int) -> float:
    return 1e7 * (1.05 ** (b + 1) - 1) / 0.05


def cpu_bucket(v: float) -> int:
    return 0 if v < 0.01 else int(math.log(v * 0.05 / 0.01 + 1) / math.log(1.05))


def mem_bucket(v: float) -> int:
    return 0 if v < 1e7 else int(math.log(v * 0.05 / 1e7 + 1) / math.log(1.05))


def minute_series(acc: UsageAccumulator, sid: int, days: float, cpu: float, mem: float, step: float = 60.0) -> None:
    t = np.arange(NOW - days * DAY + step, NOW + 1, step)
    acc.add_samples(np.full(t.size, sid), t, cpu=np.full(t.size, cpu), memory=np.full(t.size, mem))


# -- histogram options and percentiles --------------------------------------------------------------------


def test_bucket_scheme_matches_upstream_formulas() -> None:
    # ceil(log(1000·0.05/0.01 + 1)/log 1.05) + 1 = ceil(174.58) + 1 = 176, same for memory (1e12/1e7).
    assert CPU_HISTOGRAM.num_buckets == 176
    assert MEMORY_HISTOGRAM.num_buckets == 176
    starts = CPU_HISTOGRAM.bucket_starts()
    assert starts[0] == 0.0 and starts[1] == pytest.approx(0.01) and starts[2] == pytest.approx(0.0205)
    got = CPU_HISTOGRAM.find_buckets([0.0, 0.005, 0.01, 0.021, 0.5, 5000.0])
    assert got.tolist() == [0, 0, 1, 2, 25, 175]


def test_percentile_returns_end_of_bucket_without_interpolation() -> None:
    w = np.zeros((1, 176))
    w[0, 25] = 1.0  # one sample of 0.5 core
    for p in (0.01, 0.5, 0.99):
        assert percentiles(w, p, CPU_HISTOGRAM)[0] == pytest.approx(cpu_end(25))
    assert cpu_end(25) == pytest.approx(0.511134, rel=1e-5)


def test_last_bucket_returns_its_start() -> None:
    w = np.zeros((1, 176))
    w[0, 175] = 1.0
    assert percentiles(w, 0.9, CPU_HISTOGRAM)[0] == pytest.approx(0.01 * (1.05**175 - 1) / 0.05)


def test_percentile_walk_stops_at_first_bucket_reaching_threshold() -> None:
    w = np.zeros((1, 176))
    w[0, 10], w[0, 20], w[0, 30] = 1.0, 1.0, 2.0  # total 4
    p = lambda q: percentiles(w, q, CPU_HISTOGRAM)[0]  # noqa: E731
    assert p(0.25) == pytest.approx(cpu_end(10))  # threshold 1 reached at bucket 10
    assert p(0.5) == pytest.approx(cpu_end(20))  # threshold 2 reached exactly at bucket 20
    assert p(0.51) == pytest.approx(cpu_end(30))
    assert p(1.0) == pytest.approx(cpu_end(30))


def test_buckets_below_epsilon_are_empty() -> None:
    w = np.zeros((2, 176))
    w[0, 5] = 0.5e-4  # below epsilon 1e-4: not the min bucket, not counted as data
    w[0, 40] = 1.0
    w[1, 7] = 0.5e-4  # only sub-epsilon weight: an empty histogram
    got = percentiles(w, 0.0, CPU_HISTOGRAM)
    assert got[0] == pytest.approx(cpu_end(40))
    assert got[1] == 0.0


def test_go_time_round_halfway_rounds_up() -> None:
    got = round_to_half_life(np.array([NOW + 12 * 3600 - 1, NOW + 12 * 3600, NOW - 12 * 3600 - 1]), DAY)
    assert got.tolist() == [NOW, NOW + DAY, NOW - DAY]


def test_decay_reference_shifts_by_100_half_lives() -> None:
    first = np.array([NOW, NOW])
    last = np.array([NOW + 50 * DAY, NOW + 150 * DAY])
    assert decay_reference(first, last, DAY).tolist() == [NOW, NOW + 100 * DAY]


# -- CPU: decay, confidence, margins ---------------------------------------------------------------------


def test_decay_halves_weight_per_day() -> None:
    acc = UsageAccumulator(NOW, 14 * DAY)
    sid = acc.series_id("ns", "p", "c")
    # 0.1 core one day ago, 1.0 core now: weights 0.1·2^-1 vs 0.1·2^0 → 1/3 vs 2/3 of the total.
    acc.add_samples([sid, sid], [NOW - DAY, NOW], cpu=[0.1, 1.0])
    hist = acc._cpu_histograms()[0]
    assert hist[cpu_bucket(0.1)] / hist.sum() == pytest.approx(1 / 3)
    # P30 lands in the old sample's bucket, P40 in the new one's; without decay P40 would still be old.
    assert percentiles(hist[None], 0.3, CPU_HISTOGRAM)[0] == pytest.approx(cpu_end(cpu_bucket(0.1)))
    assert percentiles(hist[None], 0.4, CPU_HISTOGRAM)[0] == pytest.approx(cpu_end(cpu_bucket(1.0)))
    # Absolute weights follow upstream's reference: the first sample rounded to a day → ref = NOW − DAY.
    assert hist.sum() == pytest.approx(0.1 * 1 + 0.1 * 2)


def test_cpu_usage_is_truncated_to_millicores_first() -> None:
    acc = UsageAccumulator(NOW, DAY)
    sid = acc.series_id("ns", "p", "c")
    acc.add_samples([sid], [NOW], cpu=[0.0209999])  # 20 millicores → bucket 1, not bucket 2 (starts 0.0205)
    assert int(np.argmax(acc._cpu_histograms()[0])) == 1


def test_target_and_bounds_with_confidence_hand_computed() -> None:
    acc = UsageAccumulator(NOW, 14 * DAY)
    sid = acc.series_id("ns", "p", "c", "web")
    # 7 days of 5-minute samples at a constant 0.5 core, 300 MB.
    minute_series(acc, sid, 7, 0.5, 300e6, step=300.0)
    n = 7 * 288
    conf = min((NOW - (NOW - 7 * DAY + 300)) / DAY, n / 1440)
    assert conf == pytest.approx(1.4)
    rec = acc.recommend()[0]
    assert rec.samples == n and rec.confidence_days == pytest.approx(conf)
    cpu_m = math.floor(cpu_end(cpu_bucket(0.5)) * 1000)  # percentile → millicores
    cpu_margin = math.floor(cpu_m * 1.15)
    assert rec.target.cpu == pytest.approx(cpu_margin / 1000)
    assert rec.upper_bound.cpu == pytest.approx(math.floor(cpu_margin * (1 + 1 / conf)) / 1000)
    assert rec.lower_bound.cpu == pytest.approx(math.floor(cpu_margin * (1 + 0.001 / conf) ** -2) / 1000)
    mem = math.floor(math.floor(mem_end(mem_bucket(300e6))) * 1.15)
    assert rec.target.memory == mem
    assert rec.upper_bound.memory == math.floor(mem * (1 + 1 / conf))
    assert rec.lower_bound.memory == math.floor(mem * (1 + 0.001 / conf) ** -2)


def test_percentiles_and_margins_are_configurable() -> None:
    cfg = VpaConfig(target_cpu_percentile=0.5, cpu_margin=0.0, memory_margin=0.3)
    acc = UsageAccumulator(NOW, DAY, cfg)
    sid = acc.series_id("ns", "p", "c")
    t = np.arange(NOW - 99 * 60, NOW + 1, 60.0)
    cpu = np.where(np.arange(t.size) < 60, 0.2, 2.0)  # 60 % of samples at 0.2 core (equal decay aside)
    acc.add_samples(np.full(t.size, sid), t, cpu=cpu, memory=np.full(t.size, 1e9))
    rec = acc.recommend()[0]
    assert rec.target.cpu == pytest.approx(math.floor(cpu_end(cpu_bucket(0.2)) * 1000) / 1000)
    assert rec.target.memory == math.floor(math.floor(mem_end(mem_bucket(1e9))) * 1.3)


# -- floors ------------------------------------------------------------------------------------------------


def test_pod_floors_split_across_containers() -> None:
    acc = UsageAccumulator(NOW, DAY)
    for c in ("app", "sidecar"):
        sid = acc.series_id("ns", "p-1", c, "web")
        minute_series(acc, sid, 1, 0.001, 1e6)  # far below the floors
    solo = acc.series_id("ns", "q-1", "only", "api")
    minute_series(acc, solo, 1, 0.001, 1e6)
    recs = {r.id.container: r for r in acc.recommend()}
    # 25 millicores and 250 MiB per pod: 12 m / 125 MiB each for two containers, all of it for one.
    for name in ("app", "sidecar"):
        assert recs[name].target.cpu == pytest.approx(0.012)
        assert recs[name].target.memory == 125 * MIB
        assert recs[name].lower_bound.cpu == pytest.approx(0.012)
    assert recs["only"].target.cpu == pytest.approx(0.025)
    assert recs["only"].target.memory == 250 * MIB


# -- memory peaks, intervals, OOM ---------------------------------------------------------------------------


def test_memory_peak_replaced_within_interval() -> None:
    acc = UsageAccumulator(NOW, DAY)
    sid = acc.series_id("ns", "p", "c")
    # Three samples in the same 24 h interval: the histogram holds one peak (300 MB), weight 1 at the end.
    acc.add_samples([sid] * 3, [NOW - 3600 * 3, NOW - 3600 * 2, NOW - 3600], memory=[100e6, 300e6, 200e6])
    hist, _ = acc._memory_histograms()
    assert np.count_nonzero(hist[0]) == 1
    # The interval starts at the first sample (NOW − 3 h) and ends 21 h after NOW; the decay reference is
    # that end rounded to a day (NOW + 24 h): weight 2^(−3/24).
    assert hist[0, mem_bucket(300e6)] == pytest.approx(2.0**-0.125)


def test_memory_keeps_eight_intervals_only() -> None:
    acc = UsageAccumulator(NOW, 14 * DAY)
    sid = acc.series_id("ns", "p", "c")
    # 10 GB nine days ago (outside the 8 × 24 h memory window), 400 MB in each of the last 8 days.
    acc.add_samples([sid], [NOW - 9 * DAY], cpu=[0.1], memory=[10e9])
    t = NOW - np.arange(8) * DAY - 60
    acc.add_samples(np.full(8, sid), t, cpu=np.full(8, 0.1), memory=np.full(8, 400e6))
    hist, _ = acc._memory_histograms()
    assert hist[0, mem_bucket(10e9)] == 0.0
    assert np.count_nonzero(hist[0]) == 1
    # One peak per interval (intervals start at the first sample, NOW − 7 d − 60 s), decayed by the interval end
    # against the first end rounded to a day (NOW − 6 d): weights 2^(w − 60/86400), w = 0 … 7.
    assert hist[0, mem_bucket(400e6)] == pytest.approx(sum(2.0 ** (w - 60 / DAY) for w in range(8)))
    rec = acc.recommend()[0]
    assert rec.target.memory == math.floor(math.floor(mem_end(mem_bucket(400e6))) * 1.15)
    assert rec.samples == 9  # CPU history is the full 14 days


def test_oom_bump_min_100_mib() -> None:
    acc = UsageAccumulator(NOW, DAY)
    sid = acc.series_id("ns", "p", "c")
    used = 300 * MIB
    acc.add_samples([sid, sid], [NOW - 600, NOW - 60], memory=[used, used], oom=[False, True])
    hist, ooms = acc._memory_histograms()
    bumped = max(used + 100 * MIB, math.floor(used * 1.2))  # 400 MiB: the 100 MiB minimum wins
    assert bumped == 400 * MIB
    assert int(np.argmax(hist[0])) == mem_bucket(bumped)
    assert ooms.tolist() == [1]
    assert acc.recommend()[0].oom_kills == 1


def test_oom_bump_ratio_and_request() -> None:
    acc = UsageAccumulator(NOW, DAY)
    a = acc.series_id("ns", "a", "c")
    b = acc.series_id("ns", "b", "c")
    acc.add_samples([a, a], [NOW - 600, NOW - 60], memory=[2000 * MIB, 1000 * MIB], oom=[False, True])
    acc.set_current([b], memory_request=[1000 * MIB])  # the request when the kill happens: used = 1000 MiB
    acc.add_samples([b, b], [NOW - 600, NOW - 60], memory=[100 * MIB, 100 * MIB], oom=[False, True])
    hist, _ = acc._memory_histograms()
    assert int(np.argmax(hist[0])) == mem_bucket(math.floor(2000 * MIB * 1.2))  # 20 % beats +100 MiB
    assert int(np.argmax(hist[1])) == mem_bucket(math.floor(1000 * MIB * 1.2))


def test_workload_aggregates_pods_and_counts_replicas() -> None:
    acc = UsageAccumulator(NOW, DAY)
    for pod, cpu in (("web-1", 0.1), ("web-2", 1.0)):
        sid = acc.series_id("ns", pod, "app", "web")
        minute_series(acc, sid, 1, cpu, 200e6)
        acc.set_current([sid], cpu_request=[2.0], memory_request=[1e9])
    (rec,) = acc.recommend()
    assert rec.id.owner == "web" and rec.replicas == 2 and rec.samples == 2 * 1440
    # Half the samples at each level: P90 is the 1-core bucket.
    assert rec.target.cpu == pytest.approx(math.floor(math.floor(cpu_end(cpu_bucket(1.0)) * 1000) * 1.15) / 1000)
    cores, mem = rec.freed()
    assert cores == pytest.approx(2 * (2.0 - rec.request.cpu))
    assert mem == pytest.approx(2 * (1e9 - rec.request.memory))


def test_simple_strategy_krr() -> None:
    acc = UsageAccumulator(NOW, DAY)
    sid = acc.series_id("ns", "p", "c")
    t = np.arange(NOW - 99 * 60, NOW + 1, 60.0)
    cpu = np.where(np.arange(t.size) < 95, 0.2, 3.0)
    mem = np.linspace(100e6, 500e6, t.size)
    acc.add_samples(np.full(t.size, sid), t, cpu=cpu, memory=mem)
    rec = acc.recommend("simple")[0]
    assert rec.request.cpu == pytest.approx(cpu_end(cpu_bucket(0.2)))  # 95 % of samples at 0.2
    assert rec.limit.cpu is None
    assert rec.request.memory == math.floor(500e6 * 1.15) == rec.limit.memory
    rec2 = acc.recommend("simple", SimpleConfig(cpu_percentile=0.99, memory_margin=0.0))[0]
    assert rec2.request.cpu == pytest.approx(cpu_end(cpu_bucket(3.0)))
    assert rec2.request.memory == 500e6


def test_samples_outside_history_nan_and_negative_are_ignored() -> None:
    acc = UsageAccumulator(NOW, DAY)
    sid = acc.series_id("ns", "p", "c")
    acc.add_samples([sid] * 4, [NOW - 2 * DAY, NOW - 60, NOW - 30, NOW + 60], cpu=[9.0, 0.5, np.nan, -1.0])
    assert acc.recommend()[0].samples == 1


def test_no_history_gives_infinite_upper_and_zero_lower_before_floors() -> None:
    acc = UsageAccumulator(NOW, DAY)
    sid = acc.series_id("ns", "p", "c")
    acc.add_samples([sid], [NOW], cpu=[1.0], memory=[1e9])  # one sample: lifespan 0 → confidence 0
    rec = acc.recommend()[0]
    assert rec.confidence_days == 0.0
    assert rec.upper_bound.cpu == pytest.approx(1e14 / 1000)  # MaxResourceAmount
    assert rec.lower_bound.cpu == pytest.approx(0.025)  # 0, then the floor


def test_millicore_bucket_table_matches_find_bucket() -> None:
    acc = UsageAccumulator(NOW, DAY)
    cores = np.concatenate([np.arange(0, 5000) / 1000.0, np.array([0.0209999, 999.9999, 1048.577, 5000.0])])
    expected = CPU_HISTOGRAM.find_buckets(np.floor(cores * 1000.0) / 1000.0)
    assert acc._cpu_buckets(cores).tolist() == expected.tolist()
    assert (
        acc._cpu_buckets(cores.astype(np.float32)).tolist()
        == CPU_HISTOGRAM.find_buckets(np.floor(cores.astype(np.float32).astype(np.float64) * 1000.0) / 1000.0).tolist()
    )


def test_current_requests_follow_the_latest_sample() -> None:
    acc = UsageAccumulator(NOW, DAY)
    sid = acc.series_id("ns", "p", "c")
    acc.add_samples([sid, sid], [NOW - 60, NOW], cpu=[0.5, 0.5])
    acc.set_current([sid, sid], cpu_request=[2.0, 1.0], timestamps=[NOW - 60, NOW])
    acc.set_current([sid], cpu_request=[4.0], timestamps=[NOW - 120])  # older batch: ignored
    assert acc.recommend()[0].current_request.cpu == 1.0


def test_memory_intervals_start_at_first_sample_and_out_of_order_samples_drop() -> None:
    acc = UsageAccumulator(NOW, 14 * DAY)
    sid = acc.series_id("ns", "p", "c")
    first = NOW - 2 * DAY + 3600  # intervals [first, first + 24 h), [first + 24 h, first + 48 h)
    acc.add_samples([sid] * 3, [first, first + DAY - 1, first + DAY], memory=[500e6, 900e6, 300e6])
    acc.add_samples([sid], [first - 60], memory=[5e9])  # older than the anchor: out of order, dropped
    hist, _ = acc._memory_histograms()
    assert acc.memory_out_of_order == 1
    assert hist[0, mem_bucket(5e9)] == 0.0
    # Ends first + 24 h and first + 48 h; reference = first end rounded (NOW − 1 d): weights 2^(1/24), 2^(25/24).
    assert hist[0, mem_bucket(900e6)] == pytest.approx(2.0 ** (1 / 24))
    assert hist[0, mem_bucket(300e6)] == pytest.approx(2.0 ** (25 / 24))


def test_oom_used_is_the_peak_up_to_the_kill() -> None:
    acc = UsageAccumulator(NOW, DAY)
    sid = acc.series_id("ns", "p", "c")
    # Two batches: 700 MiB before the kill (previous batch), 800 MiB in this batch before it, 3 GiB after it.
    acc.add_samples([sid], [NOW - 7200], memory=[700 * MIB])
    acc.add_samples([sid] * 3, [NOW - 3600, NOW - 1800, NOW - 600], memory=[800 * MIB, 800 * MIB, 3 * 1024 * MIB],
                    oom=[False, True, False])  # fmt: skip
    hist, ooms = acc._memory_histograms()
    bumped = max(800 * MIB + 100 * MIB, math.floor(800 * MIB * 1.2))  # not 3 GiB × 1.2
    assert ooms.tolist() == [1]
    # The interval holds max(usage peak 3 GiB, bump 960 MiB) = 3 GiB: one peak, not two.
    assert np.count_nonzero(hist[0]) == 1 and hist[0, mem_bucket(3 * 1024 * MIB)] > 0
    acc2 = UsageAccumulator(NOW, DAY)
    s2 = acc2.series_id("ns", "p", "c")
    acc2.add_samples([s2] * 2, [NOW - 3600, NOW - 1800], memory=[800 * MIB, 100 * MIB], oom=[False, True])
    hist2, _ = acc2._memory_histograms()
    assert int(np.argmax(hist2[0])) == mem_bucket(bumped)
