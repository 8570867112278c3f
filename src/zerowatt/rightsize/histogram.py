"""Exponential histograms as the VPA recommender keeps them, vectorised over many containers.

The VPA recommender stores every container's usage in a histogram whose buckets grow by a constant ratio
and whose samples decay exponentially with age (upstream ``pkg/recommender/util/histogram.go``,
``histogram_options.go`` and ``decaying_histogram.go`` in kubernetes/autoscaler, vertical-pod-autoscaler).
Here one histogram is one row of a 2-D NumPy array, so the percentiles of ten thousand containers are a
handful of array operations instead of ten thousand loops. Bucket arithmetic follows upstream exactly:

* ``numBuckets = ceil(log(max·(r−1)/first + 1) / log r) + 1`` (``NewExponentialHistogramOptions``);
* ``FindBucket(v) = floor(log(v·(r−1)/first + 1) / log r)``, 0 below the first bucket, clamped to the last;
* ``GetBucketStart(b) = first·(r^b − 1)/(r − 1)`` (0 for bucket 0);
* ``Percentile(p)``: walk buckets from the first to the last *non-empty* one (weight ≥ epsilon), stop at the
  first whose cumulative weight reaches ``p × totalWeight`` and return the **end** of that bucket (the start of
  the next); the last bucket, having no end, returns its start. There is no interpolation inside a bucket.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class HistogramOptions:
    """An exponential bucketing scheme (upstream ``exponentialHistogramOptions``)."""

    max_value: float
    first_bucket_size: float
    ratio: float
    #: Weights below this are treated as empty (upstream ``Epsilon()``).
    epsilon: float

    def __post_init__(self) -> None:
        if self.max_value <= 0 or self.first_bucket_size <= 0 or self.ratio <= 1 or self.epsilon <= 0:
            raise ValueError(f"invalid histogram options {self}")

    @property
    def num_buckets(self) -> int:
        # histogram_options.go: NewExponentialHistogramOptions.
        r = self.ratio
        return math.ceil(math.log(self.max_value * (r - 1) / self.first_bucket_size + 1) / math.log(r)) + 1

    def bucket_starts(self) -> FloatArray:
        """Start of every bucket (``GetBucketStart``), bucket 0 starting at 0."""
        b = np.arange(self.num_buckets, dtype=np.float64)
        starts = self.first_bucket_size * (np.power(self.ratio, b) - 1.0) / (self.ratio - 1.0)
        starts[0] = 0.0
        return starts

    def find_buckets(self, values: npt.ArrayLike) -> IntArray:
        """Bucket index of every value (``FindBucket``), vectorised."""
        v = np.asarray(values, dtype=np.float64)
        # Same operation order as Go (value·(r−1)/first + 1) so that values on a bucket boundary fall the same
        # way (up to the last-ulp differences between Go's and the C library's log).
        scaled = v * (self.ratio - 1.0) / self.first_bucket_size + 1.0
        with np.errstate(invalid="ignore", divide="ignore"):
            idx = np.floor(np.log(np.maximum(scaled, 1.0)) / math.log(self.ratio))
        out = idx.astype(np.int64)
        out[v < self.first_bucket_size] = 0
        np.minimum(out, self.num_buckets - 1, out=out)
        return out


def percentiles(weights: FloatArray, percentile: float, options: HistogramOptions) -> FloatArray:
    """Upstream ``histogram.Percentile`` for every row of ``weights`` (shape ``(n, num_buckets)``).

    An empty histogram (no bucket with weight ≥ epsilon, upstream ``IsEmpty``) yields 0.
    """
    n, nb = weights.shape
    if nb != options.num_buckets:
        raise ValueError(f"histogram has {nb} buckets, options say {options.num_buckets}")
    if n == 0:
        return np.zeros(0)
    significant = weights >= options.epsilon
    nonempty = significant.any(axis=1)
    min_bucket = np.argmax(significant, axis=1)
    max_bucket = nb - 1 - np.argmax(significant[:, ::-1], axis=1)
    idx = np.arange(nb)
    in_range = (idx >= min_bucket[:, None]) & (idx <= max_bucket[:, None])
    partial = np.cumsum(np.where(in_range, weights, 0.0), axis=1)
    threshold = percentile * weights.sum(axis=1)
    reached = (partial >= threshold[:, None]) & in_range & (idx < max_bucket[:, None])
    bucket = np.where(reached.any(axis=1), np.argmax(reached, axis=1), max_bucket)
    starts = options.bucket_starts()
    value = np.where(bucket < nb - 1, starts[np.minimum(bucket + 1, nb - 1)], starts[bucket])
    value[~nonempty] = 0.0
    return np.asarray(value, dtype=np.float64)


def round_to_half_life(t: FloatArray, half_life: float) -> FloatArray:
    """Go's ``time.Round(halfLife)`` on Unix seconds: nearest multiple, halfway rounds up.

    Go rounds relative to the zero time (1 January of year 1), which lies a whole number of days before
    the Unix epoch, so for a 24 h half-life this is rounding Unix time to whole days.
    """
    return np.floor(np.asarray(t, dtype=np.float64) / half_life + 0.5) * half_life


#: decaying_histogram.go: the reference timestamp is moved forward once a sample lies more than this many
#: half-lives after it, so that the weights ``2^((t − ref)/halfLife)`` never overflow.
MAX_DECAY_EXPONENT = 100


def decay_reference(first: FloatArray, last: FloatArray, half_life: float) -> FloatArray:
    """The reference timestamp a decaying histogram ends with after seeing samples in ``[first, last]``.

    Upstream starts from the zero time, so the first sample always shifts the reference to itself rounded
    to a half-life; later samples more than ``MAX_DECAY_EXPONENT`` half-lives after the reference shift it
    again (to themselves, rounded). For minute-spaced samples that new reference is the old one plus
    ``MAX_DECAY_EXPONENT`` half-lives, which is what is computed here (exact below ~99 days of history).
    Percentiles do not depend on the reference at all; it only decides which old buckets fall under epsilon.
    """
    ref = round_to_half_life(first, half_life)
    step = MAX_DECAY_EXPONENT * half_life
    behind = last > ref + step
    while behind.any():
        ref = np.where(behind, ref + step, ref)
        behind = last > ref + step
    return ref
