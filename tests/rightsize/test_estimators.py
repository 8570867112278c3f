"""The composable estimators one at a time, against the formulas of upstream's ``logic/estimator.go``."""

from __future__ import annotations

import numpy as np

from zerowatt.rightsize.estimator import (
    CPU_HISTOGRAM,
    MEMORY_HISTOGRAM,
    AggregateStates,
    ConfidenceMultiplier,
    Estimate,
    MarginEstimator,
    MinResourcesEstimator,
    PercentileEstimator,
    VpaConfig,
    vpa_estimators,
)


def states(cpu_bucket: int, mem_bucket: int, confidence: float) -> AggregateStates:
    """One aggregate whose CPU and memory histograms each hold one bucket."""
    cpu = np.zeros((1, CPU_HISTOGRAM.num_buckets))
    cpu[0, cpu_bucket] = 1.0
    mem = np.zeros((1, MEMORY_HISTOGRAM.num_buckets))
    mem[0, mem_bucket] = 1.0
    return AggregateStates(cpu, mem, np.array([confidence]), CPU_HISTOGRAM, MEMORY_HISTOGRAM)


def end(first: float, b: int) -> float:
    """End of bucket b of an exponential histogram with 5 % growth (= start of bucket b + 1)."""
    return first * (1.05 ** (b + 1) - 1) / 0.05


class Fixed:
    """A base estimator that answers fixed amounts: composition needs only the protocol."""

    def __init__(self, cpu: float, memory: float) -> None:
        self.value = Estimate(np.array([cpu]), np.array([memory]))

    def estimate(self, states: AggregateStates) -> Estimate:
        return self.value


def test_percentile_truncates_to_millicores_and_bytes() -> None:
    est = PercentileEstimator(0.9, 0.9).estimate(states(40, 10, 1.0))
    assert est.cpu_millicores.tolist() == [np.floor(end(0.01, 40) * 1000)]
    assert est.memory_bytes.tolist() == [np.floor(end(1e7, 10))]


def test_margin_confidence_and_floors_compose_over_any_base() -> None:
    s = states(0, 0, 2.0)
    assert MarginEstimator(0.15, 0.5, Fixed(1000, 1000)).estimate(s).cpu_millicores.tolist() == [1150]
    assert MarginEstimator(0.15, 0.5, Fixed(1000, 1000)).estimate(s).memory_bytes.tolist() == [1500]
    upper = ConfidenceMultiplier(1.0, 1.0, Fixed(1000, 2000)).estimate(s)  # × (1 + 1/2)
    assert (upper.cpu_millicores.tolist(), upper.memory_bytes.tolist()) == ([1500], [3000])
    lower = ConfidenceMultiplier(0.001, -2.0, Fixed(1000, 2000)).estimate(s)  # × (1 + 0.0005)^-2, truncated
    assert (lower.cpu_millicores.tolist(), lower.memory_bytes.tolist()) == ([999], [1998])
    # no history at all (confidence 0): the lower bound collapses to 0, the upper to MaxResourceAmount
    none = states(0, 0, 0.0)
    assert ConfidenceMultiplier(0.001, -2.0, Fixed(10, 10)).estimate(none).cpu_millicores.tolist() == [0]
    assert ConfidenceMultiplier(1.0, 1.0, Fixed(10, 10)).estimate(none).memory_bytes.tolist() == [1e14]
    floored = MinResourcesEstimator(25.0, 250.0, Fixed(10, 1000)).estimate(s)
    assert (floored.cpu_millicores.tolist(), floored.memory_bytes.tolist()) == ([25], [1000])


def test_vpa_composition_is_percentile_margin_confidence_floors() -> None:
    cfg = VpaConfig()
    s = states(60, 30, 0.5)
    est = {name: e.estimate(s) for name, e in vpa_estimators(cfg, 12.0, 131072000.0).items()}
    p90_cpu = np.floor(np.floor(end(0.01, 60) * 1000) * 1.15)
    p90_mem = np.floor(np.floor(end(1e7, 30)) * 1.15)
    assert est["target"].cpu_millicores.tolist() == [p90_cpu]
    assert est["target"].memory_bytes.tolist() == [p90_mem]
    assert est["upper_bound"].cpu_millicores.tolist() == [np.floor(p90_cpu * 3.0)]  # (1 + 1/0.5)^1
    assert est["lower_bound"].cpu_millicores.tolist() == [np.floor(p90_cpu * (1 + 0.001 / 0.5) ** -2)]
    tiny = {name: e.estimate(states(0, 0, 0.5)) for name, e in vpa_estimators(cfg, 12.0, 131072000.0).items()}
    assert all(e.cpu_millicores[0] >= 12 and e.memory_bytes[0] >= 131072000 for e in tiny.values())
