"""The VPA recommender's estimators, composable as upstream's: percentile → margin → confidence → floors.

Upstream (kubernetes/autoscaler, ``vertical-pod-autoscaler/pkg/recommender/logic/estimator.go``) builds
each recommendation from small estimators that wrap one another: ``percentileEstimator`` reads a percentile
of the aggregate's histograms, ``marginEstimator`` adds a safety margin, ``confidenceMultiplier`` widens a
bound while little history is known, and ``minResourcesEstimator`` applies the per-pod floors;
``logic/recommender.go`` composes three of them (target, lower and upper bound). The same shapes are here,
each over all aggregates at once (arrays, not one container per call), each an ``estimate`` that takes
:class:`AggregateStates` (what :class:`zerowatt.rightsize.accumulator.UsageAccumulator` accumulated) and
returns an :class:`Estimate`. Written after upstream's structure and constants; no code is copied.

The defaults (``logic/recommender.go``): target = P90 × 1.15, lower bound = P50 × 1.15 × (1 + 0.001/c)^−2,
upper bound = P95 × 1.15 × (1 + 1/c), with the confidence c = min(days between first and last CPU sample,
CPU samples / 1440); each step truncates to whole millicores / bytes (``ScaleResource``); then per-pod floors
of 25 millicores and 250 MiB split evenly across the pod's containers (``WithMinResources``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from zerowatt.rightsize.histogram import FloatArray, HistogramOptions, percentiles
from zerowatt.units import MIB

DAY = 86400.0

# model/aggregations_config.go: minSampleWeight = 0.1, epsilon = 0.001 * minSampleWeight.
MIN_SAMPLE_WEIGHT = 0.1
EPSILON = 0.001 * MIN_SAMPLE_WEIGHT
# model/aggregations_config.go: DefaultHistogramBucketSizeGrowth = 0.05 (each bucket 5% wider).
BUCKET_GROWTH = 0.05
# model/aggregations_config.go: CPU buckets from 0.01 core up to 1000 cores. Upstream has used 0.01 since the
# file was written (2018) and still does (checked at kubernetes/autoscaler 55c37cd5eb).
CPU_HISTOGRAM = HistogramOptions(max_value=1000.0, first_bucket_size=0.01, ratio=1 + BUCKET_GROWTH, epsilon=EPSILON)
# model/aggregations_config.go: memory buckets from 10 MB (1e7 bytes) up to 1 TB (1e12 bytes).
MEMORY_HISTOGRAM = HistogramOptions(max_value=1e12, first_bucket_size=1e7, ratio=1 + BUCKET_GROWTH, epsilon=EPSILON)
# model/types.go: MaxResourceAmount = 1e14 (millicores or bytes); larger amounts are clamped to it.
MAX_RESOURCE_AMOUNT = 1e14


@dataclass(frozen=True)
class VpaConfig:
    """Every knob of the estimator, defaulting to upstream's values (files cited per field)."""

    cpu_histogram: HistogramOptions = CPU_HISTOGRAM
    memory_histogram: HistogramOptions = MEMORY_HISTOGRAM
    # model/aggregations_config.go: DefaultCPUHistogramDecayHalfLife / DefaultMemoryHistogramDecayHalfLife = 24h.
    cpu_half_life: float = DAY
    memory_half_life: float = DAY
    # model/aggregations_config.go: DefaultMemoryAggregationInterval = 24h, ...IntervalCount = 8.
    memory_interval: float = DAY
    memory_interval_count: int = 8
    cpu_sample_weight: float = MIN_SAMPLE_WEIGHT
    # model/aggregate_container_state.go: memory peaks are added with weight 1.0.
    memory_sample_weight: float = 1.0
    # logic/recommender.go: target 0.9, lower bound 0.5, upper bound 0.95 (CPU and memory peaks alike).
    target_cpu_percentile: float = 0.9
    lower_cpu_percentile: float = 0.5
    upper_cpu_percentile: float = 0.95
    target_memory_percentile: float = 0.9
    lower_memory_percentile: float = 0.5
    upper_memory_percentile: float = 0.95
    # logic/recommender.go: --recommendation-margin-fraction = 0.15 (applied to all three estimates).
    cpu_margin: float = 0.15
    memory_margin: float = 0.15
    # logic/recommender.go: WithConfidenceMultiplier(1.0, 1.0, upper) and (0.001, -2.0, lower).
    upper_confidence_multiplier: float = 1.0
    upper_confidence_exponent: float = 1.0
    lower_confidence_multiplier: float = 0.001
    lower_confidence_exponent: float = -2.0
    # logic/recommender.go: --pod-recommendation-min-cpu-millicores = 25, --pod-recommendation-min-memory-mb = 250
    # (multiplied by 1024 * 1024, so MiB), split evenly across the pod's containers.
    pod_min_cpu_millicores: float = 25.0
    pod_min_memory_bytes: float = 250.0 * MIB
    # model/aggregations_config.go: DefaultOOMBumpUpRatio = 1.2, DefaultOOMMinBumpUp = 100 * 1024 * 1024.
    oom_bump_ratio: float = 1.2
    oom_min_bump_bytes: float = 100.0 * MIB


@dataclass(frozen=True)
class SimpleConfig:
    """KRR's ``simple`` strategy: CPU request at a percentile, no CPU limit, memory at the peak plus a buffer."""

    cpu_percentile: float = 0.95
    cpu_margin: float = 0.0
    memory_margin: float = 0.15


def scale_amount(amount: FloatArray, factor: FloatArray | float) -> FloatArray:
    """Upstream ``ScaleResource``: multiply, clamp to [0, MaxResourceAmount], truncate to an integer.

    ``0 × ∞`` (no history at all) is taken as 0 where Go would produce an undefined conversion.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = amount * factor
    scaled = np.where(np.isnan(scaled), 0.0, scaled)
    return np.floor(np.clip(scaled, 0.0, MAX_RESOURCE_AMOUNT))


def confidence_factor(confidence: FloatArray, multiplier: float, exponent: float) -> FloatArray:
    """``(1 + multiplier / confidence) ^ exponent`` with Go's float semantics (c = 0 → ∞ → 0 or ∞)."""
    with np.errstate(divide="ignore", over="ignore"):
        return np.asarray(np.power(1.0 + multiplier / confidence, exponent), dtype=np.float64)


# --- the estimators ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AggregateStates:
    """What the estimators read of ``n`` aggregates: histograms (one row each) and confidence (days)."""

    cpu: FloatArray  # decaying CPU usage histograms, cores, shape (n, cpu buckets)
    memory: FloatArray  # decaying memory-peak histograms, bytes, shape (n, memory buckets)
    confidence: FloatArray  # shape (n,)
    cpu_options: HistogramOptions
    memory_options: HistogramOptions


@dataclass(frozen=True)
class Estimate:
    """Millicores and bytes per aggregate, whole numbers as upstream's ``ResourceAmount``."""

    cpu_millicores: FloatArray
    memory_bytes: FloatArray


class ResourceEstimator(Protocol):
    """Upstream ``ResourceEstimator``: the resources an aggregate should get, from what it used."""

    def estimate(self, states: AggregateStates) -> Estimate: ...


@dataclass(frozen=True)
class PercentileEstimator:
    """``percentileEstimator``: a percentile of CPU usage and of memory peaks, truncated to millicores/bytes
    (``CPUAmountFromCores``, ``MemoryAmountFromBytes``)."""

    cpu_percentile: float
    memory_percentile: float

    def estimate(self, states: AggregateStates) -> Estimate:
        cpu = percentiles(states.cpu, self.cpu_percentile, states.cpu_options)
        memory = percentiles(states.memory, self.memory_percentile, states.memory_options)
        return Estimate(scale_amount(cpu, 1000.0), scale_amount(memory, 1.0))


@dataclass(frozen=True)
class MarginEstimator:
    """``marginEstimator``: the base estimate × (1 + margin fraction), per resource."""

    cpu_fraction: float
    memory_fraction: float
    base: ResourceEstimator

    def estimate(self, states: AggregateStates) -> Estimate:
        est = self.base.estimate(states)
        return Estimate(
            scale_amount(est.cpu_millicores, 1.0 + self.cpu_fraction),
            scale_amount(est.memory_bytes, 1.0 + self.memory_fraction),
        )


@dataclass(frozen=True)
class ConfidenceMultiplier:
    """``confidenceMultiplier``: the base estimate × (1 + multiplier / confidence) ^ exponent.

    With a positive exponent it grows an upper bound while history is short; with a negative one it
    shrinks a lower bound. Both tend to 1 as the confidence (days of history) grows.
    """

    multiplier: float
    exponent: float
    base: ResourceEstimator

    def estimate(self, states: AggregateStates) -> Estimate:
        est = self.base.estimate(states)
        factor = confidence_factor(states.confidence, self.multiplier, self.exponent)
        return Estimate(scale_amount(est.cpu_millicores, factor), scale_amount(est.memory_bytes, factor))


@dataclass(frozen=True)
class MinResourcesEstimator:
    """``minResourcesEstimator``: at least these millicores and bytes (per aggregate, or one for all)."""

    cpu_millicores: FloatArray | float
    memory_bytes: FloatArray | float
    base: ResourceEstimator

    def estimate(self, states: AggregateStates) -> Estimate:
        est = self.base.estimate(states)
        return Estimate(
            np.maximum(est.cpu_millicores, self.cpu_millicores),
            np.maximum(est.memory_bytes, self.memory_bytes),
        )


def vpa_estimators(
    config: VpaConfig, min_cpu_millicores: FloatArray | float, min_memory_bytes: FloatArray | float
) -> dict[str, ResourceEstimator]:
    """The recommender's three composed estimators (``logic/recommender.go``), floors given per aggregate.

    ``target``: percentile → margin → floors; ``lower_bound`` and ``upper_bound``: percentile → margin →
    confidence multiplier → floors. The floors are the pod minimums split across the pod's containers,
    which the caller knows (``GetRecommendedPodResources``).
    """
    c = config

    def margin(base: ResourceEstimator) -> ResourceEstimator:
        return MarginEstimator(c.cpu_margin, c.memory_margin, base)

    def floors(base: ResourceEstimator) -> ResourceEstimator:
        return MinResourcesEstimator(min_cpu_millicores, min_memory_bytes, base)

    target = margin(PercentileEstimator(c.target_cpu_percentile, c.target_memory_percentile))
    lower = ConfidenceMultiplier(
        c.lower_confidence_multiplier,
        c.lower_confidence_exponent,
        margin(PercentileEstimator(c.lower_cpu_percentile, c.lower_memory_percentile)),
    )
    upper = ConfidenceMultiplier(
        c.upper_confidence_multiplier,
        c.upper_confidence_exponent,
        margin(PercentileEstimator(c.upper_cpu_percentile, c.upper_memory_percentile)),
    )
    return {"target": floors(target), "lower_bound": floors(lower), "upper_bound": floors(upper)}
