"""The online side of every policy: what the host observes, what a policy answers, and the window machine.

One :class:`Autoscaler` per component, built by a policy's ``online`` factory
(:mod:`zerowatt.scaling.policies`). The host (``zerowatt up --policy NAME``) owns the clock, the instances
and the activator; the autoscaler only turns observations into a desired instance count:

* call :meth:`Autoscaler.decide` on every request arrival and completion (``in_flight``/``pending``
  changed), every :attr:`Autoscaler.tick` seconds when it is not ``None`` (KPA: 2 s), and at the returned
  :attr:`Decision.wake_at` (window edges: pre-warm, keep-alive expiry);
* make the component's instance count converge to :attr:`Decision.desired`; while it is 0 and a request
  comes in, hold the request (activator) and call ``decide`` at once: any load gives ``desired >= 1``, so a
  cold start costs latency, never an error.

Everything is pure and plain Python (no NumPy: every ``zerowatt up`` worker imports it): no clocks, no
I/O; ``now`` is the caller's monotonic time in seconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from zerowatt.errors import ValidationError
from zerowatt.units import Seconds


@dataclass(slots=True)
class Observation:
    """What the host sees of one component at ``now``.

    Not frozen: the host keeps one per component and updates it in place before each ``decide`` (building
    a frozen one twice per request was a measurable share of the warm path, docs/benchmarks.md). A policy
    reads it during :meth:`Autoscaler.decide` and keeps none of it (copy the numbers it needs).
    """

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


@dataclass(slots=True)
class Decision:
    """The desired instance count, and when to ask again at the latest (``None``: on the next event).

    Read-only by convention, not frozen: a frozen dataclass costs three ``object.__setattr__`` calls per
    answer, paid at every request completion (docs/benchmarks.md), and policies hand out shared ones.
    """

    desired: int
    wake_at: Seconds | None
    reason: str


class Autoscaler(Protocol):
    """A per-component policy state machine (see the module docstring for the calling contract)."""

    name: str
    tick: Seconds | None

    def decide(self, obs: Observation) -> Decision:
        """The desired count for ``obs`` (valid during the call only: the host reuses the object)."""
        ...


#: Resident memory of an instance when neither the policy nor the host knows it (128 MB).
DEFAULT_MEMORY_GB = 0.128


@dataclass(frozen=True, slots=True)
class OnlineContext:
    """What the host knows of a component when it builds the component's autoscaler."""

    cold_start: Seconds  # the executor's start latency
    memory_gb: float | None = None  # resident memory of an instance, when known
    compression: float = 1.0  # time compression: policy windows divided by it (a trace replayed faster)


class WindowAutoscaler:
    """Keep-alive family: one instance while busy; after the last request, unloaded until the pre-warm
    delay, loaded for the keep-alive window, then released (the simulator's window model)."""

    tick: Seconds | None = None

    def __init__(
        self,
        name: str,
        windows: Callable[[], tuple[Seconds, Seconds]] | tuple[Seconds, Seconds],
        learn: Callable[[Seconds], None] | None = None,
        capacity: int | None = None,
    ) -> None:
        if capacity is not None and capacity < 1:
            raise ValidationError(f"{name}.capacity", "must be >= 1 request per instance (or None: unlimited)")
        self.name = name
        # (pre-warm, keep-alive): fixed, or asked at the start of each idle period (a learning policy)
        self._windows = windows if callable(windows) else None
        self._fixed = windows if isinstance(windows, tuple) else (0.0, 0.0)
        self._learn = learn
        self._capacity = capacity
        self._idle_since: Seconds | None = None
        self._prewarm = 0.0
        self._keep = 0.0
        self._seen_load = False
        # The answers that do not depend on the time, built once: the busy case (every request arrival)
        # and an idle one whose edge did not move allocate nothing.
        self._busy = Decision(1, None, "busy")
        self._kept = Decision(1, math.inf, "keep-alive")

    def decide(self, obs: Observation) -> Decision:
        load = obs.in_flight + obs.pending
        if load > 0:
            if self._idle_since is not None:
                if self._learn is not None:
                    self._learn(obs.now - self._idle_since)
                self._idle_since = None
            self._seen_load = True
            if self._capacity is None:
                return self._busy
            return Decision(max(1, math.ceil(load / self._capacity)), None, "busy")
        if not self._seen_load:
            return Decision(0, None, "never invoked")
        if self._idle_since is None:
            self._idle_since = obs.now
            self._prewarm, self._keep = self._fixed if self._windows is None else self._windows()
        # Absolute edges, so that a call at exactly ``wake_at`` sees the edge passed.
        load_at = self._idle_since + self._prewarm
        release_at = self._idle_since + self._prewarm + self._keep
        if obs.now < load_at:
            return Decision(0, load_at, "unloaded until pre-warm")
        if obs.now < release_at:
            kept = self._kept
            if kept.wake_at != release_at:
                kept = self._kept = Decision(1, release_at, "keep-alive")
            return kept
        return Decision(0, None, "keep-alive expired")
