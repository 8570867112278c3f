"""The live autoscaler: the simulator's policies as per-component state machines for the app host.

One :class:`Autoscaler` per component. The host (``zerowatt up --policy NAME``) owns the clock, the
instances and the activator; the autoscaler only turns observations into a desired instance count:

* call :meth:`Autoscaler.decide` on every request arrival and completion (``in_flight``/``pending``
  changed), every :attr:`Autoscaler.tick` seconds when it is not ``None`` (KPA: 2 s), and at the returned
  :attr:`Decision.wake_at` (window edges: pre-warm, keep-alive expiry);
* make the component's instance count converge to :attr:`Decision.desired`; while it is 0 and a request
  comes in, hold the request (activator) and call ``decide`` at once: any load gives ``desired >= 1``, so a
  cold start costs latency, never an error.

Everything is pure: no clocks, no I/O; ``now`` is the caller's monotonic time in seconds.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from zerowatt.errors import UsageError, ValidationError
from zerowatt.scaling import kpa as kpa_core
from zerowatt.scaling.energy import EnergyParams
from zerowatt.scaling.policies import (
    EnergyAware,
    FixedKeepAlive,
    HybridParams,
    ar1_forecast,
    hybrid_windows,
    out_of_range,
)
from zerowatt.units import Seconds


@dataclass(frozen=True, slots=True)
class Observation:
    """What the host sees of one component at ``now``."""

    now: Seconds  # monotonic seconds (any origin, never decreasing)
    in_flight: int  # requests executing on the component's instances
    pending: int = 0  # requests the activator holds, waiting for an instance
    ready: int = 0  # instances ready to serve

    def __post_init__(self) -> None:
        if self.in_flight < 0 or self.pending < 0 or self.ready < 0:
            raise ValidationError("Observation", "in_flight, pending and ready must be >= 0")

    @property
    def load(self) -> int:
        return self.in_flight + self.pending


@dataclass(frozen=True, slots=True)
class Decision:
    """The desired instance count, and when to ask again at the latest (``None``: on the next event)."""

    desired: int
    wake_at: Seconds | None
    reason: str


class Autoscaler(Protocol):
    """A per-component policy state machine (see the module docstring for the calling contract)."""

    name: str
    tick: Seconds | None

    def decide(self, obs: Observation) -> Decision: ...


class IdleHistogram:
    """Shahrad et al.'s per-function idle-time histogram (1-minute bins over 4 hours, plus out-of-range)."""

    #: Idle times kept for the out-of-range forecast (a bound on memory; the simulator fits on all of a
    #: day's, which for a function mostly idle beyond 4 hours is at most a handful).
    HISTORY = 256

    def __init__(self, params: HybridParams) -> None:
        self.params = params
        self.counts = np.zeros(params.bins, dtype=np.int64)
        self.out_of_range = 0
        self.recent: list[float] = []  # the idle times the out-of-range forecast is fitted on

    def add(self, idle_time: Seconds) -> None:
        self.recent.append(max(idle_time, 0.0))
        del self.recent[: -self.HISTORY]
        b = math.floor(max(idle_time, 0.0) / self.params.bin_width)
        if b < self.params.bins:
            self.counts[b] += 1
        else:
            self.out_of_range += 1

    def windows(self) -> tuple[Seconds, Seconds]:
        hist = self.counts[None, :]
        oob = np.array([self.out_of_range])
        forecast = None
        if out_of_range(self.params, hist, oob)[0]:
            forecast = np.array([ar1_forecast(np.array(self.recent))])
        p, k, _ = hybrid_windows(self.params, hist, oob, forecast)
        return float(p[0]), float(k[0])


class WindowAutoscaler:
    """Keep-alive family: one instance while busy; after the last request, unloaded until the pre-warm
    delay, loaded for the keep-alive window, then released (the simulator's window model)."""

    tick: Seconds | None = None

    def __init__(
        self,
        name: str,
        windows: Callable[[], tuple[Seconds, Seconds]],
        learn: Callable[[Seconds], None] | None = None,
        capacity: int | None = None,
    ) -> None:
        if capacity is not None and capacity < 1:
            raise ValidationError(f"{name}.capacity", "must be >= 1 request per instance (or None: unlimited)")
        self.name = name
        self._windows = windows
        self._learn = learn
        self._capacity = capacity
        self._idle_since: Seconds | None = None
        self._prewarm = 0.0
        self._keep = 0.0
        self._seen_load = False

    def decide(self, obs: Observation) -> Decision:
        if obs.load > 0:
            if self._idle_since is not None and self._learn is not None:
                self._learn(obs.now - self._idle_since)
            self._idle_since = None
            self._seen_load = True
            need = 1 if self._capacity is None else math.ceil(obs.load / self._capacity)
            return Decision(max(1, need), None, "busy")
        if not self._seen_load:
            return Decision(0, None, "never invoked")
        if self._idle_since is None:
            self._idle_since = obs.now
            self._prewarm, self._keep = self._windows()
        # Absolute edges, so that a call at exactly ``wake_at`` sees the edge passed.
        load_at = self._idle_since + self._prewarm
        release_at = self._idle_since + self._prewarm + self._keep
        if obs.now < load_at:
            return Decision(0, load_at, "unloaded until pre-warm")
        if obs.now < release_at:
            return Decision(1, release_at, "keep-alive")
        return Decision(0, None, "keep-alive expired")


class KpaAutoscaler:
    """Knative's KPA for one component: 1-second concurrency buckets, a decision every 2 s, poke on load."""

    name = "kpa"

    def __init__(self, params: kpa_core.KpaParams | None = None) -> None:
        self.params = params or kpa_core.KpaParams()
        self.tick: Seconds | None = self.params.tick
        self._stable = kpa_core.WindowAverage(self.params.stable_window, self.params.bucket)
        self._panic = kpa_core.WindowAverage(self.params.panic_window, self.params.bucket)
        self._state = kpa_core.KpaState.fresh(1)
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
        k = kpa_core.bucket_index(t, b)
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
        ready = np.array([max(obs.ready, 0)], dtype=np.int64)
        if ready[0] == 0 and self._desired > 0:
            ready[0] = self._desired  # instances still starting count as the ones the decider asked for
        desired = kpa_core.decide(
            self.params,
            self._state,
            obs.now,
            ready,
            np.array([self._stable.average(obs.now)]),
            np.array([self._panic.average(obs.now)]),
            np.array([has_data]),
        )
        self._desired = int(desired[0])
        if obs.load > 0:
            self._desired = max(self._desired, 1)  # every held request gets an instance
        wake = self._next_tick if self._desired > 0 else None
        return Decision(self._desired, wake, "panic" if self._state.panic_since[0] > -np.inf else "stable")


def make_autoscaler(
    name: str,
    *,
    cold_start: Seconds,
    memory_gb: float,
    energy: EnergyParams | None = None,
    keepalive: FixedKeepAlive | None = None,
    hybrid: HybridParams | None = None,
    kpa: kpa_core.KpaParams | None = None,
    start_joules: float | None = None,
    capacity: int | None = None,
) -> Autoscaler:
    """The live autoscaler for policy ``name`` (``kpa``, ``keepalive``, ``hybrid``, ``energy``).

    ``cold_start`` is the component's measured start latency and ``start_joules`` its measured start energy
    when known; ``memory_gb`` its resident memory (the energy-aware break-even depends on both).
    """
    energy = energy or EnergyParams()
    mem = np.array([memory_gb], dtype=np.float64)
    if name == "kpa":
        return KpaAutoscaler(kpa)
    if name == "keepalive":
        ka = keepalive or FixedKeepAlive()
        return WindowAutoscaler("keepalive", lambda: (0.0, ka.keep_alive), capacity=capacity)
    if name == "energy":
        pol = EnergyAware(cold_start, energy, start_joules=start_joules)
        p, k = pol.windows(mem)
        pk = (float(p[0]), float(k[0]))
        return WindowAutoscaler("energy", lambda: pk, capacity=capacity)
    if name == "hybrid":
        hist = IdleHistogram(hybrid or HybridParams())
        return WindowAutoscaler("hybrid", hist.windows, hist.add, capacity=capacity)
    raise UsageError(f"--policy: unknown policy {name!r}; expected one of kpa, keepalive, hybrid, energy")


# ------------------------------------------------------------------------------ options (zerowatt up)

#: ``--policy-option`` keys every policy takes.
COMMON_OPTIONS: dict[str, str] = {
    "compression": "time compression: every policy window divided by this (a trace replayed N times faster)",
    "max_instances": "most instances per component and worker (WAGI: 1, an in-process component)",
}
#: ``--policy-option`` keys of each policy (values in seconds are in uncompressed time).
POLICY_OPTIONS: dict[str, dict[str, str]] = {
    "kpa": {
        "target": "container concurrency target per instance (Knative: 100)",
        "target_utilization": "share of the target aimed for, (0, 1] (Knative: 0.7)",
        "stable_window": "stable window, seconds (Knative: 60, in [6, 3600])",
        "panic_window_percentage": "panic window as % of the stable window (Knative: 10)",
        "panic_threshold_percentage": "panic threshold, % (Knative: 200)",
        "max_scale_up_rate": "max scale-up rate (Knative: 1000)",
        "max_scale_down_rate": "max scale-down rate (Knative: 2)",
        "scale_to_zero_grace_period": "scale-to-zero grace period, seconds (Knative: 30)",
        "tick": "decision tick, seconds (Knative: 2)",
        "max_scale": "most instances the KPA asks for (0: unbounded)",
    },
    "keepalive": {
        "keep_alive": "seconds an instance stays loaded after its last request (600)",
        "capacity": "concurrent requests per instance while busy (default: unlimited)",
    },
    "hybrid": {
        "bin_width": "idle-time histogram bin, seconds (60)",
        "range": "histogram range, seconds (14400)",
        "margin": "pre-warm/keep-alive margin, [0, 1) (0.1)",
        "cv_threshold": "coefficient of variation below which the histogram is not representative (2)",
        "fallback_keep_alive": "keep-alive when not representative, seconds (default: the range)",
        "capacity": "concurrent requests per instance while busy (default: unlimited)",
    },
    "energy": {
        "cold_start": "start latency the break-even uses, seconds (default: the executor's measured order)",
        "memory_gb": "resident memory of an instance, GB (default 0.128)",
        "start_joules": "measured energy of one start, joules (default: from the power model)",
        "latency_watts": "price of a second of added latency, watts (0)",
        "capacity": "concurrent requests per instance while busy (default: unlimited)",
    },
}
_INTEGER_OPTIONS = frozenset({"max_instances", "capacity", "max_scale"})
_DEFAULT_MEMORY_GB = 0.128


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """A validated ``--policy NAME --policy-option KEY=VALUE ...``: builds one autoscaler per component."""

    name: str
    options: tuple[tuple[str, float], ...] = ()

    @property
    def values(self) -> dict[str, float]:
        return dict(self.options)

    @property
    def compression(self) -> float:
        return self.values.get("compression", 1.0)

    @property
    def max_instances(self) -> int | None:
        v = self.values.get("max_instances")
        return None if v is None else int(v)

    def autoscaler(self, *, cold_start: Seconds, memory_gb: float | None = None) -> Autoscaler:
        """A fresh autoscaler for one component (``cold_start``: the executor's start latency, used by the
        energy policy unless the ``cold_start`` option overrides it)."""
        v = self.values
        c = self.compression
        capacity = int(v["capacity"]) if "capacity" in v else None
        if self.name == "kpa":
            fields: dict[str, float] = {f: v[key] for key, f in _KPA_FIELDS.items() if key in v and key != "max_scale"}
            kp = kpa_core.KpaParams(**fields)  # type: ignore[arg-type]  # every field but max_scale is a float
            if "max_scale" in v:
                kp = dataclasses.replace(kp, max_scale=int(v["max_scale"]))
            return make_autoscaler("kpa", cold_start=cold_start, memory_gb=0.0, kpa=kp.compressed(c) if c != 1 else kp)
        if self.name == "keepalive":
            ka = FixedKeepAlive(v.get("keep_alive", FixedKeepAlive().keep_alive) / c)
            return make_autoscaler("keepalive", cold_start=cold_start, memory_gb=0.0, keepalive=ka, capacity=capacity)
        if self.name == "hybrid":
            d = HybridParams()
            fallback = v.get("fallback_keep_alive")
            hp = HybridParams(
                bin_width=v.get("bin_width", d.bin_width) / c,
                range=v.get("range", d.range) / c,
                margin=v.get("margin", d.margin),
                cv_threshold=v.get("cv_threshold", d.cv_threshold),
                fallback_keep_alive=None if fallback is None else fallback / c,
            )
            return make_autoscaler("hybrid", cold_start=cold_start, memory_gb=0.0, hybrid=hp, capacity=capacity)
        # energy: the break-even comes from the physical start latency; compression does not change it.
        start = v.get("cold_start", cold_start)
        mem = v.get("memory_gb", _DEFAULT_MEMORY_GB if memory_gb is None else memory_gb)
        scaler = make_autoscaler(
            "energy", cold_start=start, memory_gb=mem, start_joules=v.get("start_joules"), capacity=capacity
        )
        if v.get("latency_watts"):
            pol = EnergyAware(start, start_joules=v.get("start_joules"), latency_watts=v["latency_watts"])
            p, k = pol.windows(np.array([mem]))
            pk = (float(p[0]), float(k[0]))
            scaler = WindowAutoscaler("energy", lambda: pk, capacity=capacity)
        return scaler


_KPA_FIELDS = {
    "target": "container_concurrency_target",
    "target_utilization": "target_utilization",
    "stable_window": "stable_window",
    "panic_window_percentage": "panic_window_percentage",
    "panic_threshold_percentage": "panic_threshold_percentage",
    "max_scale_up_rate": "max_scale_up_rate",
    "max_scale_down_rate": "max_scale_down_rate",
    "scale_to_zero_grace_period": "scale_to_zero_grace_period",
    "tick": "tick",
    "max_scale": "max_scale",
}


def parse_policy(name: str, options: Sequence[str] = ()) -> PolicyConfig:
    """Validate ``--policy NAME`` and its ``--policy-option KEY=VALUE`` list (``UsageError``, exit 2, naming the
    key). Building one autoscaler here also runs every parameter object's own checks."""
    if name not in POLICY_OPTIONS:
        raise UsageError(f"--policy: unknown policy {name!r}; expected one of {', '.join(POLICY_OPTIONS)}")
    allowed = {**COMMON_OPTIONS, **POLICY_OPTIONS[name]}
    values: dict[str, float] = {}
    for item in options:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--policy-option {item!r}: expected KEY=VALUE, e.g. keep_alive=60")
        if key not in allowed:
            raise UsageError(
                f"--policy-option {key}: not an option of policy {name!r}; expected one of {', '.join(sorted(allowed))}"
            )
        try:
            value = float(text)
        except ValueError:
            raise UsageError(f"--policy-option {key}={text!r}: expected a number") from None
        if not math.isfinite(value) or value < 0:
            raise UsageError(f"--policy-option {key}={text!r}: expected a finite number >= 0")
        if key in _INTEGER_OPTIONS and (value != int(value) or (value < 1 and key != "max_scale")):
            raise UsageError(f"--policy-option {key}={text!r}: expected a whole number >= 1")
        if key == "compression" and value == 0:
            raise UsageError(f"--policy-option {key}={text!r}: expected a number > 0")
        values[key] = value
    config = PolicyConfig(name, tuple(sorted(values.items())))
    try:
        config.autoscaler(cold_start=0.0003)
    except ValidationError as exc:
        raise UsageError(f"--policy-option (policy {name!r}): {exc}") from None
    return config
