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

This module is the policy's parameters (also the ``--policy-option`` schema) and its online autoscaler
for one component, in plain Python. The batch simulation, with the same decision vectorised over thousands
of functions, is :mod:`.kpa_batch`; a property test checks that the two decide alike.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from zerowatt.errors import ValidationError
from zerowatt.scaling.online import Decision, Observation, OnlineContext
from zerowatt.scaling.options import option
from zerowatt.units import Seconds


def bucket_index(t: Seconds, bucket: Seconds) -> int:
    """The bucket holding time ``t``; a time on an edge up to float rounding (compressed, non-integer
    buckets) belongs to the later one."""
    return math.floor(t / bucket + 1e-9)


@dataclass(frozen=True, slots=True)
class KpaParams:
    """Knative's defaults (see the module docstring for where each comes from); the fields marked as options
    are ``zerowatt up --policy kpa --policy-option KEY=VALUE`` (``target`` sets the concurrency target)."""

    container_concurrency_target: float = field(
        default=100.0, metadata=option("container concurrency target per instance (Knative: 100)", key="target")
    )
    target_utilization: float = field(
        default=0.7, metadata=option("share of the target aimed for, (0, 1] (Knative: 0.7)")
    )
    stable_window: Seconds = field(default=60.0, metadata=option("stable window, seconds (Knative: 60, in [6, 3600])"))
    panic_window_percentage: float = field(
        default=10.0, metadata=option("panic window as % of the stable window (Knative: 10)")
    )
    panic_threshold_percentage: float = field(default=200.0, metadata=option("panic threshold, % (Knative: 200)"))
    max_scale_up_rate: float = field(default=1000.0, metadata=option("max scale-up rate (Knative: 1000)"))
    max_scale_down_rate: float = field(default=2.0, metadata=option("max scale-down rate (Knative: 2)"))
    scale_to_zero_grace_period: Seconds = field(
        default=30.0, metadata=option("scale-to-zero grace period, seconds (Knative: 30)")
    )
    tick: Seconds = field(default=2.0, metadata=option("decision tick, seconds (Knative: 2)"))
    bucket: Seconds = 1.0
    max_scale: int = field(default=0, metadata=option("most instances the KPA asks for (0: unbounded)"))
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


@dataclass(slots=True)
class KpaDecider:
    """Knative's decider for one component: ``panicTime``/``maxPanicPods`` plus the scale-to-zero grace.

    ``-inf`` stands for Knative's zero time (not panicking / not asking for zero). :meth:`decide` is the
    one-component form of :func:`zerowatt.scaling.sim.kpa_batch.decide`.
    """

    params: KpaParams
    panic_since: Seconds = -math.inf
    max_panic_pods: int = 0
    zero_since: Seconds = -math.inf

    def decide(self, now: Seconds, ready: int, stable: float, panic: float, has_data: bool) -> int:
        """One KPA tick: the desired pod count (``has_data`` False: Knative's ``ErrNoData``, keep ``ready``)."""
        p = self.params
        target = p.target
        ready_f = float(max(ready, 1))
        max_up = math.ceil(ready_f * p.max_scale_up_rate)
        max_down = math.floor(ready_f / p.max_scale_down_rate)
        dspc = math.ceil(stable / target)
        dppc = math.ceil(panic / target)
        desired_stable = min(max(dspc, max_down), max_up)
        desired_panic = min(max(dppc, max_down), max_up)
        # Begin or extend panic while over the threshold; stop once a stable window passed without it.
        if has_data and dppc >= ready_f * p.panic_threshold:
            self.panic_since = now
        if has_data and self.panic_since > -math.inf and self.panic_since + p.stable_window < now:
            self.panic_since = -math.inf
            self.max_panic_pods = 0
        desired = desired_stable
        if self.panic_since > -math.inf:
            self.max_panic_pods = max(self.max_panic_pods, desired_stable, desired_panic)
            desired = self.max_panic_pods
        if p.max_scale > 0:
            desired = min(desired, p.max_scale)
        # Scale to zero only after the grace period; meanwhile keep one pod (handleScaleToZero).
        if desired == 0 and has_data and ready > 0:
            if self.zero_since == -math.inf:
                self.zero_since = now
            if now - self.zero_since < p.scale_to_zero_grace_period:
                desired = 1
        else:
            self.zero_since = -math.inf
        return desired if has_data else ready

    @property
    def panicking(self) -> bool:
        return self.panic_since > -math.inf


class WindowAverage:
    """Knative's ``TimedFloat64Buckets`` for one series: 1-second buckets, ``WindowAverage`` semantics.

    Pure: ``record(now, value)`` and ``average(now)`` take the caller's clock. Used by the online autoscaler;
    the batch simulation computes the same averages for all functions at once from cumulative sums.
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


class KpaAutoscaler:
    """Knative's KPA for one component: 1-second concurrency buckets, a decision every 2 s, poke on load."""

    name = "kpa"

    def __init__(self, params: KpaParams | None = None) -> None:
        self.params = params or KpaParams()
        self.tick: Seconds | None = self.params.tick
        self._stable = WindowAverage(self.params.stable_window, self.params.bucket)
        self._panic = WindowAverage(self.params.panic_window, self.params.bucket)
        self._decider = KpaDecider(self.params)
        self._last_t: Seconds | None = None
        self._last_load = 0.0
        self._last_ready = 0
        self._acc = 0.0  # concurrency-seconds in the current bucket
        self._next_tick: Seconds | None = None
        self._desired = 0

    def _integrate(self, now: Seconds) -> None:
        """Close the 1-second buckets between the previous observation and ``now`` (Knative's scrapes).

        Buckets are walked by integer index: with a bucket that is not a whole number of seconds (a
        time-compressed replay, e.g. 1/60 s), ``floor(edge / b)`` can round an edge back into the bucket it
        closes, which would never advance.
        """
        if self._last_t is None:
            return
        b = self.params.bucket
        t = self._last_t
        k = bucket_index(t, b)
        while True:
            edge = (k + 1) * b
            if edge > now:
                self._acc += self._last_load * max(now - t, 0.0)
                return
            self._acc += self._last_load * max(edge - t, 0.0)
            if self._last_ready > 0 or self._acc > 0:
                at = (k + 1.5) * b  # inside bucket k + 1, whatever the rounding of its edge
                self._stable.record(at, self._acc / b)
                self._panic.record(at, self._acc / b)
            self._acc = 0.0
            t = edge
            k += 1

    def decide(self, obs: Observation) -> Decision:
        if self._last_t is not None and obs.now < self._last_t:
            raise ValidationError("Observation.now", f"went backwards ({obs.now} < {self._last_t})")
        self._integrate(obs.now)
        self._last_t = obs.now
        self._last_load = float(obs.load)
        self._last_ready = max(obs.ready, self._desired)
        if self._desired == 0 and obs.load > 0:
            # The activator pokes the decider: scale from zero at once (Knative's MultiScaler.Poke).
            self._desired = 1
            self._next_tick = obs.now + self.params.tick
            return Decision(1, self._next_tick, "scale from zero")
        if self._next_tick is None:
            return Decision(0, None, "scaled to zero")
        if obs.now < self._next_tick:
            return Decision(self._desired, self._next_tick if self._desired > 0 else None, "between ticks")
        while self._next_tick <= obs.now:
            self._next_tick += self.params.tick
        has_data = not self._stable.is_empty(obs.now)
        ready = max(obs.ready, 0)
        if ready == 0 and self._desired > 0:
            ready = self._desired  # instances still starting count as the ones the decider asked for
        self._desired = self._decider.decide(
            obs.now, ready, self._stable.average(obs.now), self._panic.average(obs.now), has_data
        )
        if obs.load > 0:
            self._desired = max(self._desired, 1)  # every held request gets an instance
        wake = self._next_tick if self._desired > 0 else None
        return Decision(self._desired, wake, "panic" if self._decider.panicking else "stable")


def online(params: KpaParams, context: OnlineContext) -> KpaAutoscaler:
    """The online KPA of one component; a time-compressed replay shrinks every window (:meth:`KpaParams.compressed`)."""
    c = context.compression
    return KpaAutoscaler(params.compressed(c) if c != 1 else params)
