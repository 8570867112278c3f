"""A parsed schedule: the union of its spans, asked "does it match now?" and "when does that change?"."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from zerowatt.schedule.spans import LATEST, Span, utc_of

#: next_change looks this far ahead per step, so a change next week costs one step, not a year of days.
_STEP = timedelta(days=8)


@dataclass(frozen=True)
class Schedule:
    """The spans of one spec (``spec`` is kept verbatim for messages and for equality with the annotation).

    Built by :func:`zerowatt.schedule.parse.parse_schedule` (cached, and the only way to pass default
    zone/weekdays). The model does not parse: the parser imports this module, never the other way round.
    """

    spec: str
    spans: tuple[Span, ...] = field(repr=False)

    def matches(self, at: datetime) -> bool:
        """Whether the timezone-aware instant ``at`` lies in any span (``ValueError`` for a naive ``at``)."""
        return self._matches_utc(utc_of(at))

    def _matches_utc(self, utc: datetime) -> bool:
        return any(span.contains(utc) for span in self.spans)

    def next_change(self, at: datetime, horizon: timedelta = timedelta(days=366)) -> datetime | None:
        """The first instant after ``at`` where :meth:`matches` gives the other answer, in UTC.

        Computed from the spans' boundaries (their written times, both readings of a repeated wall time,
        and the zone's offset transitions), checked in time order: between two consecutive candidates
        nothing can flip. ``None`` when the answer stays the same up to ``at + horizon``.
        """
        utc = utc_of(at)
        stop = utc + horizon if horizon < LATEST - utc else LATEST
        state = self._matches_utc(utc)
        lo = utc
        while lo < stop:
            hi = min(lo + _STEP, stop)
            candidates = sorted({c for span in self.spans for c in span.boundaries(lo, hi) if lo < c <= hi and c > utc})
            for candidate in candidates:
                if self._matches_utc(candidate) != state:
                    return candidate
            lo = hi
        return None
