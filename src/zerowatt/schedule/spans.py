"""The kinds of time span a schedule is a union of.

Every span answers two questions about UTC instants: ``contains(utc)`` (hot: the controller asks it for
every workload on every pass, so it is a handful of integer operations after one ``astimezone``) and
``boundaries(lo, hi)``: a superset of the instants in ``[lo, hi]`` where ``contains`` may flip. Being a
superset is enough for :meth:`Schedule.next_change`, which checks each candidate in order.

Wall-clock semantics: recurring and holiday spans are judged on the local wall clock of their zone
(weekday, hour, minute), exactly as kube-downscaler and GoKubeDownscaler do. On a spring-forward day the
skipped hour never matches and a window that starts inside it starts when the clock jumps; on a fall-back
day the repeated hour is judged twice, once per pass of the clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo

from zerowatt.schedule.zones import transitions, wall_to_utc

MINUTES_PER_DAY = 24 * 60
_ONE_DAY = timedelta(days=1)
#: Smallest representable step after an end-inclusive bound (datetime resolution).
EPSILON = timedelta(microseconds=1)
#: Instants a schedule reasons about: a margin inside datetime's range so that local-day arithmetic in any
#: zone (and a lookahead horizon) never overflows.
EARLIEST = datetime(1, 1, 10, tzinfo=UTC)
LATEST = datetime(9999, 12, 20, tzinfo=UTC)


class Span(Protocol):
    """One term of a schedule spec."""

    def contains(self, utc: datetime) -> bool:
        """Whether the UTC instant ``utc`` lies in the span."""
        ...

    def boundaries(self, lo: datetime, hi: datetime) -> Iterator[datetime]:
        """A superset of the UTC instants in ``[lo, hi]`` where :meth:`contains` may change."""
        ...


@dataclass(frozen=True)
class Constant:
    """``always`` / ``never``."""

    value: bool

    def contains(self, utc: datetime) -> bool:
        return self.value

    def boundaries(self, lo: datetime, hi: datetime) -> Iterator[datetime]:
        return iter(())


def _minute_time(minute: int) -> time | None:
    """A minute of the day as a wall time; 1440 (24:00) is ``None``, the next midnight."""
    return None if minute >= MINUTES_PER_DAY else time(minute // 60, minute % 60)


@dataclass(frozen=True)
class Recurring:
    """``Mon-Fri 07:30-20:30 Europe/Berlin``: listed local weekdays, ``start <= wall minute < end``.

    ``start > end`` wraps past midnight the way GoKubeDownscaler does: on each listed day it matches
    00:00-end and start-24:00 (so ``Fri 20:00-08:00`` is Friday early morning and Friday evening, not
    Saturday morning). ``start == end`` never matches, as in both originals.
    """

    days: int  # bit i set: weekday i (Monday = 0) is listed
    start: int  # minute of the day, 0..1440
    end: int
    tz: ZoneInfo

    def contains(self, utc: datetime) -> bool:
        local = utc.astimezone(self.tz)
        if not (self.days >> local.weekday()) & 1:
            return False
        minute = local.hour * 60 + local.minute
        if self.start <= self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end

    def boundaries(self, lo: datetime, hi: datetime) -> Iterator[datetime]:
        day = lo.astimezone(self.tz).date() - _ONE_DAY
        last = hi.astimezone(self.tz).date() + _ONE_DAY
        walls = {_minute_time(self.start), _minute_time(self.end), time(0), None}
        while day <= last:
            if (self.days >> day.weekday()) & 1:
                for wall in walls:
                    yield from wall_to_utc(day, wall, self.tz)
            day += _ONE_DAY
        yield from transitions(self.tz, lo, hi)


@dataclass(frozen=True)
class Absolute:
    """``A-B`` (both RFC 3339), ``from A`` (no end) or ``until B`` (no start); the end is inclusive.

    End-inclusive like the original kube-downscaler (``time_from <= time <= time_to``); the flip after the
    end is therefore reported one microsecond (datetime's resolution) after it.
    """

    start: datetime | None
    end: datetime | None

    def contains(self, utc: datetime) -> bool:
        return (self.start is None or self.start <= utc) and (self.end is None or utc <= self.end)

    def boundaries(self, lo: datetime, hi: datetime) -> Iterator[datetime]:
        if self.start is not None and lo <= self.start <= hi:
            yield self.start
        if self.end is not None and lo <= self.end + EPSILON <= hi:
            yield self.end + EPSILON


@lru_cache(maxsize=1024)
def holiday_dates(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    """Public holidays of a country (and region) in one year, from the ``holidays`` package."""
    # Neighbouring years too: an "observed" day can be listed under the year of the holiday it stands for.
    years = [y for y in (year - 1, year, year + 1) if 1 <= y <= 9999]
    import holidays as holidays_lib  # ~0.1 s of imports: only for specs that name holidays

    calendar = holidays_lib.country_holidays(country, subdiv=subdivision, years=years)
    return frozenset(day for day in calendar if day.year == year)


@dataclass(frozen=True)
class Holidays:
    """``holidays DE-BY Europe/Berlin``: the whole local day (00:00-24:00) of each public holiday."""

    country: str
    subdivision: str | None
    tz: ZoneInfo

    def contains(self, utc: datetime) -> bool:
        day = utc.astimezone(self.tz).date()
        return day in holiday_dates(self.country, self.subdivision, day.year)

    def boundaries(self, lo: datetime, hi: datetime) -> Iterator[datetime]:
        first = lo.astimezone(self.tz).date() - _ONE_DAY
        last = hi.astimezone(self.tz).date() + _ONE_DAY
        for year in range(first.year, last.year + 1):
            for day in sorted(holiday_dates(self.country, self.subdivision, year)):
                if first <= day <= last:
                    yield from wall_to_utc(day, time(0), self.tz)
                    yield from wall_to_utc(day, None, self.tz)
        yield from transitions(self.tz, lo, hi)


def utc_of(at: datetime) -> datetime:
    """``at`` in UTC; a naive datetime is refused because its instant is unknown."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"schedule times must be timezone-aware, got naive {at.isoformat()}")
    utc = at.astimezone(UTC)
    if not EARLIEST <= utc <= LATEST:
        raise ValueError(f"schedule times must lie between {EARLIEST.isoformat()} and {LATEST.isoformat()}")
    return utc
