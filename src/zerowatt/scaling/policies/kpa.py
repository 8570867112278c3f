"""Knative's pod autoscaler (KPA) decision, vectorised over functions, plus its bucketed window average.

Constants and algorithm follow knative/serving (Apache-2.0), read from its source:

* defaults — ``pkg/autoscaler/config/config.go`` ``defaultConfig()``: container-concurrency-target-default
  100, target utilisation 0.7, stable window 60 s, panic-window-percentage 10, panic-threshold-percentage
  200, max-scale-up-rate 1000, max-scale-down-rate 2, scale-to-zero-grace-period 30 s;
* decision tick — ``pkg/autoscaler/scaling/multiscaler.go``: ``tickInterval = 2 * time.Second``; a
  request reaching a revision scaled to zero "pokes" the scaler for an immediate decision (``Poke``);
* the decision — ``pkg/autoscaler/scaling/autoscaler.go`` ``Scale()``: desired stable/panic pod counts
  ``ceil(observed / target)`` clamped to ``[floor(ready / maxScaleDownRate), ceil(maxScaleUpRate * ready)]``
  with ``ready = max(1, readyPods)``; panic starts when ``desiredPanic / ready >= panicThreshold``, is
  extended while over the threshold, and ends once a stable window has passed since the last time it was;
  while panicking the count never decreases (``maxPanicPods``);
* averages — ``pkg/autoscaler/aggregation/bucketing.go`` ``TimedFloat64Buckets.WindowAverage``: 1-second
  buckets (``metrics/collector.go``: ``BucketSize = scrapeTickInterval = 1s``), the average over the buckets
  written since ``firstWrite`` (reset after a whole window without data), floored to 6 digits;
* scale to zero — ``pkg/reconciler/autoscaling/kpa/scaler.go`` ``handleScaleToZero``: a desired scale of 0
  keeps one pod until the grace period has passed (we model the grace period as elapsed time since the
  decider first asked for zero; Knative's fast path can shorten it when the activator was already in the
  request path, so this is the conservative bound).

Everything here is pure NumPy on arrays of one entry per function: the simulator steps thousands of
functions per tick with it, and the live autoscaler (:mod:`zerowatt.scaling.live`) steps one.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from zerowatt.errors import ValidationError
from zerowatt.units import Seconds

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def bucket_index(t: Seconds, bucket: Seconds) -> int:
    """The bucket holding time ``t``; a time on an edge up to float rounding (compressed, non-integer
    buckets) belongs to the later one."""
    return math.floor(t / bucket + 1e-9)


@dataclass(frozen=True, slots=True)
class KpaParams:
    """Knative's defaults (see the module docstring for where each comes from)."""

    container_concurrency_target: float = 100.0
    target_utilization: float = 0.7
    stable_window: Seconds = 60.0
    panic_window_percentage: float = 10.0
    panic_threshold_percentage: float = 200.0
    max_scale_up_rate: float = 1000.0
    max_scale_down_rate: float = 2.0
    scale_to_zero_grace_period: Seconds = 30.0
    tick: Seconds = 2.0
    bucket: Seconds = 1.0
    max_scale: int = 0  # 0 = unbounded, as Knative's max-scale
    #: Time compression of a replay (``compressed()``): the windows above are already divided by it, and
    #: Knative's window limits are checked in uncompressed time (``stable_window * compression``).
    compression: float = 1.0

    def __post_init__(self) -> None:
        if self.max_scale_up_rate <= 1.0:
            raise ValidationError("kpa.max_scale_up_rate", "must be > 1.0 (Knative validates the same)")
        if self.max_scale_down_rate <= 1.0:
            raise ValidationError("kpa.max_scale_down_rate", "must be > 1.0 (Knative validates the same)")
        if not 0 < self.target_utilization <= 1:
            raise ValidationError("kpa.target_utilization", "must be in (0, 1]")
        if self.compression <= 0:
            raise ValidationError("kpa.compression", "must be > 0")
        window = self.stable_window * self.compression  # in uncompressed time
        if not 6 * (1 - 1e-9) <= window <= 3600 * (1 + 1e-9):
            raise ValidationError("kpa.stable_window", "must be in [6 s, 1 h] (Knative's WindowMin/WindowMax)")
        if not 1 <= self.panic_window_percentage <= 100:
            raise ValidationError("kpa.panic_window_percentage", "must be in [1, 100]")
        if self.scale_to_zero_grace_period <= 0:
            raise ValidationError("kpa.scale_to_zero_grace_period", "must be > 0")
        if self.max_scale < 0:
            raise ValidationError("kpa.max_scale", "must be >= 0")

    @property
    def target(self) -> float:
        """Per-pod concurrency the KPA aims for: 100 * 0.7 = 70 by default."""
        return self.container_concurrency_target * self.target_utilization

    def compressed(self, factor: float) -> KpaParams:
        """The same autoscaler on a clock ``factor`` times faster: every window, the tick, the bucket and the
        scale-to-zero grace divided by ``factor`` (a time-compressed trace replay keeps the same decisions)."""
        if factor <= 0:
            raise ValidationError("kpa.compression", f"must be > 0, got {factor}")
        return dataclasses.replace(
            self,
            stable_window=self.stable_window / factor,
            scale_to_zero_grace_period=self.scale_to_zero_grace_period / factor,
            tick=self.tick / factor,
            bucket=self.bucket / factor,
            compression=self.compression * factor,
        )

    @property
    def panic_window(self) -> Seconds:
        return self.stable_window * self.panic_window_percentage / 100.0

    @property
    def panic_threshold(self) -> float:
        return self.panic_threshold_percentage / 100.0

    @property
    def stable_buckets(self) -> int:
        return math.ceil(self.stable_window / self.bucket)

    @property
    def panic_buckets(self) -> int:
        return max(1, math.ceil(self.panic_window / self.bucket))


@dataclass(slots=True)
class KpaState:
    """Decider state per function (arrays): Knative's ``panicTime``/``maxPanicPods`` plus the zero grace.

    ``-inf`` stands for Knative's zero time (not panicking / not asking for zero).
    """

    panic_since: FloatArray
    max_panic_pods: IntArray
    zero_since: FloatArray

    @classmethod
    def fresh(cls, n: int) -> KpaState:
        return cls(np.full(n, -np.inf), np.zeros(n, dtype=np.int64), np.full(n, -np.inf))


def floor6(x: FloatArray) -> FloatArray:
    """Knative's ``roundToNDigits(6, x)``: averages are floored to 6 decimal digits."""
    out: FloatArray = np.floor(x * 1e6) / 1e6
    return out


def decide(
    params: KpaParams,
    state: KpaState,
    now: Seconds,
    ready: IntArray,
    stable: FloatArray,
    panic: FloatArray,
    has_data: BoolArray,
) -> IntArray:
    """One KPA tick for every function: the desired pod count, updating ``state`` in place.

    ``ready`` is the current pod count, ``stable``/``panic`` the window averages of observed concurrency,
    ``has_data`` False where Knative's metric client would answer ``ErrNoData`` (no decision: keep ``ready``).
    The simulator calls this 43,200 times a day, so it is written with few, in-place array operations.
    """
    target = params.target
    ready_f = np.maximum(ready, 1).astype(np.float64)
    max_up = np.ceil(ready_f * params.max_scale_up_rate)
    max_down = np.floor(ready_f / params.max_scale_down_rate)
    dspc = np.ceil(stable / target)
    dppc = np.ceil(panic / target)
    desired_stable = np.minimum(np.maximum(dspc, max_down), max_up)
    desired_panic = np.minimum(np.maximum(dppc, max_down), max_up)
    over = dppc >= ready_f * params.panic_threshold
    over &= has_data

    # Begin or extend panic while over the threshold; stop once a stable window passed without it.
    ps = state.panic_since
    ps[over] = now
    end = ps + params.stable_window < now
    end &= has_data
    end &= ps > -np.inf
    ps[end] = -np.inf
    state.max_panic_pods[end] = 0

    in_panic = ps > -np.inf
    desired = desired_stable.astype(np.int64)
    if in_panic.any():
        both = np.maximum(desired_stable, desired_panic).astype(np.int64)
        mpp = state.max_panic_pods
        np.maximum(mpp, both, out=mpp, where=in_panic)
        desired[in_panic] = mpp[in_panic]
    if params.max_scale > 0:
        np.minimum(desired, params.max_scale, out=desired)

    # Scale to zero only after the grace period; meanwhile keep one pod (handleScaleToZero).
    wants_zero = desired == 0
    wants_zero &= has_data
    wants_zero &= ready > 0
    zs = state.zero_since
    zs[wants_zero & (zs == -np.inf)] = now
    zs[~wants_zero] = -np.inf
    hold = wants_zero & (now - zs < params.scale_to_zero_grace_period)
    desired[hold] = 1
    no_data = ~has_data
    desired[no_data] = ready[no_data]
    return desired


class WindowAverage:
    """Knative's ``TimedFloat64Buckets`` for one series: 1-second buckets, ``WindowAverage`` semantics.

    Pure: ``record(now, value)`` and ``average(now)`` take the caller's clock. Used by the live autoscaler;
    the simulator computes the same averages for all functions at once from cumulative sums.
    """

    def __init__(self, window: Seconds, granularity: Seconds = 1.0) -> None:
        self.granularity = granularity
        self.window = window
        self.n = math.ceil(window / granularity)
        self.buckets: dict[int, float] = {}
        self.first_write: int | None = None
        self.last_write: int | None = None

    def _index(self, now: Seconds) -> int:
        return bucket_index(now, self.granularity)

    def record(self, now: Seconds, value: float) -> None:
        idx = self._index(now)
        if self.last_write is not None and idx < self.last_write - self.n:
            return  # older than a window: ignored, as Knative does
        if self.last_write is None or idx - self.last_write >= self.n:
            self.first_write = idx  # first write, or a whole window without data: restart the partial window
            self.buckets.clear()
        elif self.first_write is None or idx < self.first_write:
            self.first_write = idx
        if self.last_write is None or idx > self.last_write:
            self.last_write = idx
        self.buckets[idx] = self.buckets.get(idx, 0.0) + value
        for k in [k for k in self.buckets if k <= self.last_write - self.n]:
            del self.buckets[k]

    def is_empty(self, now: Seconds) -> bool:
        return self.last_write is None or self._index(now) - self.last_write > self.n

    def average(self, now: Seconds) -> float:
        if self.last_write is None or self.first_write is None or self.is_empty(now):
            return 0.0
        idx = self._index(now)
        lo = max(idx - self.n + 1, self.first_write)
        total = sum(v for k, v in self.buckets.items() if lo <= k <= min(idx, self.last_write))
        valid = min(self.last_write, idx) - lo + 1
        if valid <= 0:
            return 0.0
        return math.floor(total / valid * 1e6) / 1e6
