"""next_change: exact flip instants, including DST transitions, checked against a per-second reference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from zerowatt.schedule import parse_schedule


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# (spec, parse keyword arguments, from, expected next change or None)
NEXT_CASES: list[tuple[str, dict[str, Any], str, str | None]] = [
    ("Mon-Fri 07:30-20:30 Europe/Berlin", {}, "2026-11-27T10:00:00", "2026-11-27T19:30:00"),
    ("Mon-Fri 07:30-20:30 Europe/Berlin", {}, "2026-11-27T19:30:00", "2026-11-30T06:30:00"),  # over the weekend
    ("Mon-Fri 07:30-20:30 Europe/Berlin", {}, "2026-11-27T06:29:59", "2026-11-27T06:30:00"),
    # Spring forward: the window 02:30-04:00 begins when the clock jumps to 03:00 CEST.
    ("Sun-Sun 02:30-04:00 Europe/Berlin", {}, "2026-03-29T00:00:00", "2026-03-29T01:00:00"),
    ("Sun-Sun 02:30-04:00 Europe/Berlin", {}, "2026-03-29T01:00:00", "2026-03-29T02:00:00"),
    # A window entirely inside the skipped hour does not happen that day: next week instead.
    ("Sun-Sun 02:00-02:30 Europe/Berlin", {}, "2026-03-28T12:00:00", "2026-04-05T00:00:00"),
    # Fall back: 02:30 happens twice, and the window is left while the clock repeats 02:00-02:30.
    ("Sun-Sun 02:30-04:00 Europe/Berlin", {}, "2026-10-25T00:45:00", "2026-10-25T01:00:00"),
    ("Sun-Sun 02:30-04:00 Europe/Berlin", {}, "2026-10-25T01:00:00", "2026-10-25T01:30:00"),
    ("Sun-Sun 02:30-04:00 Europe/Berlin", {}, "2026-10-25T01:30:00", "2026-10-25T03:00:00"),
    ("Sun-Sun 01:00-02:00 America/New_York", {}, "2026-11-01T05:30:00", "2026-11-01T07:00:00"),
    ("Mon-Fri 20:00-08:00 UTC", {}, "2026-11-27T21:00:00", "2026-11-28T00:00:00"),  # Friday night ends at 24:00
    ("Mon-Fri 20:00-08:00 UTC", {}, "2026-11-28T00:00:00", "2026-11-30T00:00:00"),
    ("Fri-Fri 20:00-24:00 UTC", {}, "2026-11-27T20:00:00", "2026-11-28T00:00:00"),
    ("Mon-Sun 00:00-24:00 UTC", {}, "2026-11-27T20:00:00", None),
    ("Mon-Sun 08:00-08:00 UTC", {}, "2026-11-27T20:00:00", None),
    ("always", {}, "2026-11-27T20:00:00", None),
    ("never", {}, "2026-11-27T20:00:00", None),
    # Absolute: the end is inclusive, so the change comes one microsecond after it.
    (
        "2019-12-30T22:00:00+00:00-2020-01-02T07:00:00+00:00",
        {},
        "2020-01-01T00:00:00",
        "2020-01-02T07:00:00.000001",
    ),
    ("2019-12-30T22:00:00+00:00-2020-01-02T07:00:00+00:00", {}, "2019-01-01T00:00:00", "2019-12-30T22:00:00"),
    ("2019-12-30T22:00:00+00:00-2020-01-02T07:00:00+00:00", {}, "2020-02-01T00:00:00", None),
    ("from 2026-01-01T00:00:00+01:00", {}, "2025-06-01T00:00:00", "2025-12-31T23:00:00"),
    ("until 2026-01-01T00:00:00Z", {}, "2025-06-01T00:00:00", "2026-01-01T00:00:00.000001"),
    ("holidays DE Europe/Berlin", {}, "2026-12-25T10:00:00", "2026-12-26T23:00:00"),
    ("holidays DE-BY Europe/Berlin", {}, "2026-11-27T10:00:00", "2026-12-24T23:00:00"),
    # Two spans that touch: no flip where one hands over to the other.
    ("Mon-Fri 08:00-12:00 UTC, Mon-Fri 12:00-18:00 UTC", {}, "2026-11-27T09:00:00", "2026-11-27T18:00:00"),
    (
        "07:30-20:30",
        {"default_timezone": "Europe/Berlin", "default_weekdays": "Sat-Sun"},
        "2026-11-27T10:00:00",
        "2026-11-28T06:30:00",
    ),
]


@pytest.mark.parametrize(("spec", "kwargs", "start", "expected"), NEXT_CASES)
def test_next_change(spec: str, kwargs: dict[str, Any], start: str, expected: str | None) -> None:
    change = parse_schedule(spec, **kwargs).next_change(utc(start))
    assert change == (utc(expected) if expected else None)
    if change is not None:
        assert change.tzinfo is UTC


def test_horizon_limits_the_search() -> None:
    schedule = parse_schedule("Mon-Mon 00:00-01:00 UTC")
    tuesday = utc("2026-12-01T12:00:00")
    assert schedule.next_change(tuesday, horizon=timedelta(days=5)) is None
    assert schedule.next_change(tuesday, horizon=timedelta(days=6)) == utc("2026-12-07T00:00:00")
    assert schedule.next_change(tuesday, horizon=timedelta(days=5, hours=12)) == utc("2026-12-07T00:00:00")


def _reference_next_change(spec: str, start: datetime, span: timedelta, step: timedelta) -> datetime | None:
    """Brute force: walk forward in fixed steps (the test's oracle, not how next_change works)."""
    schedule = parse_schedule(spec)
    state = schedule.matches(start)
    t = start + step
    while t <= start + span:
        if schedule.matches(t) != state:
            return t
        t += step
    return None


REFERENCE_SPECS = [
    "Sun-Sun 02:30-04:00 Europe/Berlin",
    "Sat-Sun 01:15-02:45 America/New_York",
    "Mon-Sun 01:45-02:15 Australia/Lord_Howe",  # a 30-minute DST shift
    "Sat-Sun 23:30-00:30 America/Santiago",  # DST changes at midnight
    "Mon-Fri 20:00-08:00 Europe/Berlin, holidays DE Europe/Berlin",
]
REFERENCE_STARTS = [
    "2026-03-28T00:00:00",
    "2026-10-24T00:00:00",
    "2026-04-04T00:00:00",
    "2026-09-05T00:00:00",
    "2026-03-07T00:00:00",
    "2026-10-31T00:00:00",
    "2026-12-23T00:00:00",
]


@pytest.mark.parametrize("spec", REFERENCE_SPECS)
def test_next_change_agrees_with_a_minute_by_minute_walk(spec: str) -> None:
    schedule = parse_schedule(spec)
    for start_text in REFERENCE_STARTS:
        t = utc(start_text)
        for _ in range(12):  # follow a chain of changes across the DST weekend
            expected = _reference_next_change(spec, t, timedelta(days=3), timedelta(minutes=1))
            got = schedule.next_change(t, horizon=timedelta(days=3))
            assert got == expected, (spec, t)
            if got is None:
                break
            t = got
