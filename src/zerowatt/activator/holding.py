"""Bounded request holding: how many requests may wait for an app to scale up (core).

A request for an app with no ready endpoint waits at the activator until one is ready or its deadline
passes. Waiting costs memory (its head, and its body stays unread in the socket), so it is bounded per app
(one app's burst cannot starve the others) and in total (the activator's memory). A request over either
bound is refused at once with 503 and ``Retry-After``, never queued; one admitted is never dropped while
it is within its deadline. The counters are plain integers: the activator serves from one event loop, so
``admit``/``release`` never interleave (the adapter calls them on that loop only).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from zerowatt.activator.hosts import AppKey
from zerowatt.errors import ValidationError


@dataclass(frozen=True, slots=True)
class HoldLimits:
    per_app: int = 1000  # requests held for one app
    total: int = 10000  # requests held for all apps together
    deadline: float = 60.0  # seconds a held request waits for a ready endpoint (then 504)

    def __post_init__(self) -> None:
        if self.per_app < 1 or self.total < 1:
            raise ValidationError("hold limits", "per-app and total holding limits must be >= 1")
        if not self.deadline > 0:
            raise ValidationError("hold deadline", f"must be > 0 s, got {self.deadline}")


@dataclass(frozen=True, slots=True)
class Refused:
    status: int
    reason: str


@dataclass
class HoldGate:
    """Counts held requests per app and in total; :meth:`admit` says yes or why not."""

    limits: HoldLimits = field(default_factory=HoldLimits)
    held: Counter[AppKey] = field(default_factory=Counter)
    total: int = 0
    refused: int = 0

    def admit(self, app: AppKey) -> Refused | None:
        """Take a place for one request of ``app`` (then :meth:`release` it exactly once), or refuse."""
        if self.total >= self.limits.total:
            self.refused += 1
            return Refused(503, f"the activator holds {self.total} requests (its limit): retry later")
        if self.held[app] >= self.limits.per_app:
            self.refused += 1
            return Refused(503, f"{self.held[app]} requests already wait for {app} to start (its limit): retry later")
        self.held[app] += 1
        self.total += 1
        return None

    def release(self, app: AppKey) -> None:
        if self.held[app] <= 0:
            raise ValidationError(f"hold {app}", "released more requests than were admitted")
        self.held[app] -= 1
        self.total -= 1
        if not self.held[app]:
            del self.held[app]
