"""Time zone helpers: cached ``ZoneInfo`` lookup, wall-clock to UTC, and the zone's offset transitions.

``zoneinfo`` does not expose a zone's transition instants, yet :meth:`Schedule.next_change` needs them:
where the wall clock jumps (spring forward, fall back) a wall-clock schedule can flip without any of its
written boundaries being reached. They are found once per zone and year by sampling the UTC offset every
six hours and bisecting each change to the second, then cached (real zones never change offset twice
within six hours).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_SAMPLE = timedelta(hours=6)
_ONE_SECOND = timedelta(seconds=1)


@lru_cache(maxsize=1024)
def zone(key: str) -> ZoneInfo:
    """The ``ZoneInfo`` for an IANA key; raises ``LookupError`` with a readable reason when unknown."""
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise LookupError(f'unknown time zone "{key}" (expected an IANA name such as Europe/Berlin or UTC)') from exc


def wall_to_utc(day: date, wall: time | None, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Both UTC readings of the wall-clock time ``wall`` on ``day`` (``None`` means 24:00, the next midnight).

    They are equal except in a fall-back fold, where the wall time happens twice. In a spring-forward gap
    the wall time never happens; the results are then harmless extra candidates and the transition
    instant itself (see :func:`transitions`) is where the wall clock really crosses it.
    """
    if wall is None:
        day, wall = day + timedelta(days=1), time(0)
    naive = datetime.combine(day, wall)
    return (
        naive.replace(tzinfo=tz, fold=0).astimezone(UTC),
        naive.replace(tzinfo=tz, fold=1).astimezone(UTC),
    )


@lru_cache(maxsize=4096)
def _transitions_in_year(tz: ZoneInfo, year: int) -> tuple[datetime, ...]:
    # Years 1 and 9999 stop a day short of datetime's limits, where local times would overflow.
    start = datetime(year, 1, 1, tzinfo=UTC) if year > 1 else datetime(1, 1, 2, tzinfo=UTC)
    stop = datetime(year + 1, 1, 1, tzinfo=UTC) if year < 9999 else datetime(9999, 12, 30, tzinfo=UTC)
    found: list[datetime] = []
    left, left_offset = start, start.astimezone(tz).utcoffset()
    while left < stop:
        right = min(left + _SAMPLE, stop)
        right_offset = right.astimezone(tz).utcoffset()
        if right_offset != left_offset:
            # Invariant: offset(lo) == left_offset, offset(hi) == right_offset; narrow to one second.
            lo, hi = left, right
            while hi - lo > _ONE_SECOND:
                mid = lo + (hi - lo) / 2
                mid = mid.replace(microsecond=0)
                if mid <= lo:
                    mid = lo + _ONE_SECOND
                if mid.astimezone(tz).utcoffset() == left_offset:
                    lo = mid
                else:
                    hi = mid
            found.append(hi)
        left, left_offset = right, right_offset
    return tuple(found)


def transitions(tz: ZoneInfo, start: datetime, stop: datetime) -> Iterator[datetime]:
    """UTC instants in ``[start, stop]`` where ``tz``'s offset (and so its wall clock) jumps."""
    for year in range(max(start.year - 1, 1), min(stop.year, 9999) + 1):
        for instant in _transitions_in_year(tz, year):
            if start <= instant <= stop:
                yield instant
