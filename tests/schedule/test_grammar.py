"""The schedule grammar, case by case: what matches when, including DST changes and every error path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from zerowatt.errors import ValidationError
from zerowatt.schedule import Schedule, ScheduleError, parse_schedule

BERLIN_WORKDAY = "Mon-Fri 07:30-20:30 Europe/Berlin"
DEFAULTS = {"default_timezone": "Europe/Berlin", "default_weekdays": "Mon-Fri"}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# (spec, parse keyword arguments, instant in UTC, expected); 2026-11-27 is a Friday.
MATCH_CASES: list[tuple[str, dict[str, Any], str, bool]] = [
    ("always", {}, "2026-11-27T10:00:00", True),
    ("Always", {}, "1999-01-01T00:00:00", True),
    ("NEVER", {}, "2026-11-27T10:00:00", False),
    ("true", {}, "2026-11-27T10:00:00", True),
    ("False", {}, "2026-11-27T10:00:00", False),
    # Winter (CET, +01:00): 07:30-20:30 local is 06:30-19:30 UTC; `from <= t < to`.
    (BERLIN_WORKDAY, {}, "2026-11-27T06:29:59", False),
    (BERLIN_WORKDAY, {}, "2026-11-27T06:30:00", True),
    (BERLIN_WORKDAY, {}, "2026-11-27T19:29:59", True),
    (BERLIN_WORKDAY, {}, "2026-11-27T19:30:00", False),
    (BERLIN_WORKDAY, {}, "2026-11-28T10:00:00", False),  # Saturday
    # Summer (CEST, +02:00).
    (BERLIN_WORKDAY, {}, "2026-07-01T05:29:59", False),
    (BERLIN_WORKDAY, {}, "2026-07-01T05:30:00", True),
    ("mon-FRI 07:30-20:30 Europe/Berlin", {}, "2026-07-01T05:30:00", True),
    ("  Mon-Fri   07:30 - 20:30   Europe/Berlin ", {}, "2026-07-01T05:30:00", True),
    # The weekday is the one in the spec's zone: Friday 12:00 UTC is Saturday 01:00 in Auckland.
    ("Mon-Fri 00:00-24:00 Pacific/Auckland", {}, "2026-11-27T12:00:00", False),
    ("Sat-Sat 00:00-01:30 Pacific/Auckland", {}, "2026-11-27T12:00:00", True),
    ("Sat 00:00-01:30 Pacific/Auckland", {}, "2026-11-27T12:00:00", True),
    # 24:00 is the end of the day.
    ("Fri-Fri 20:00-24:00 UTC", {}, "2026-11-27T23:59:59", True),
    ("Fri-Fri 20:00-24:00 UTC", {}, "2026-11-28T00:00:00", False),
    ("Sat-Sun 00:00-24:00 CET", {}, "2026-11-28T23:00:00", True),
    ("Sat-Sun 00:00-24:00 CET", {}, "2026-11-29T22:59:59", True),
    ("Sat-Sun 00:00-24:00 CET", {}, "2026-11-29T23:00:00", False),
    # Across midnight: 00:00-08:00 and 20:00-24:00 on each listed day (GoKubeDownscaler).
    ("Mon-Fri 20:00-08:00 UTC", {}, "2026-11-30T00:00:00", True),  # Monday
    ("Mon-Fri 20:00-08:00 UTC", {}, "2026-11-30T07:59:59", True),
    ("Mon-Fri 20:00-08:00 UTC", {}, "2026-11-30T08:00:00", False),
    ("Mon-Fri 20:00-08:00 UTC", {}, "2026-11-30T19:59:59", False),
    ("Mon-Fri 20:00-08:00 UTC", {}, "2026-11-27T20:00:00", True),  # Friday evening
    ("Mon-Fri 20:00-08:00 UTC", {}, "2026-11-28T07:00:00", False),  # Saturday morning
    ("Mon-Fri 20:00-08:00 UTC", {}, "2026-11-29T23:00:00", False),  # Sunday night
    # Weekday ranges wrap and are inclusive.
    ("Sun-Thu 08:00-17:00 Asia/Jerusalem", {}, "2026-11-29T08:00:00", True),  # Sunday 10:00
    ("Sun-Thu 08:00-17:00 Asia/Jerusalem", {}, "2026-11-26T08:00:00", True),  # Thursday
    ("Sun-Thu 08:00-17:00 Asia/Jerusalem", {}, "2026-11-27T08:00:00", False),  # Friday
    ("Sun-Thu 08:00-17:00 Asia/Jerusalem", {}, "2026-11-28T08:00:00", False),  # Saturday
    ("Fri-Mon 10:00-11:00 UTC", {}, "2026-11-28T10:30:00", True),
    ("Fri-Mon 10:00-11:00 UTC", {}, "2026-12-01T10:30:00", False),  # Tuesday
    ("Mon-Sun 08:00-08:00 UTC", {}, "2026-11-27T08:00:00", False),  # empty range, as in both originals
    # A single time is a 30-minute window (py-kube-downscaler), capped at 24:00.
    ("Mon-Fri 07:30 UTC", {}, "2026-11-27T07:59:59", True),
    ("Mon-Fri 07:30 UTC", {}, "2026-11-27T08:00:00", False),
    ("23:45 UTC", {}, "2026-11-28T23:59:59", True),
    ("23:45 UTC", {}, "2026-11-29T00:00:00", False),
    # Berlin spring forward, Sun 2026-03-29 01:00 UTC: 02:00 CET -> 03:00 CEST (wall clock skips 02:xx).
    ("Sun-Sun 02:30-04:00 Europe/Berlin", {}, "2026-03-29T00:59:59", False),
    ("Sun-Sun 02:30-04:00 Europe/Berlin", {}, "2026-03-29T01:00:00", True),
    ("Sun-Sun 02:30-04:00 Europe/Berlin", {}, "2026-03-29T01:59:59", True),
    ("Sun-Sun 02:30-04:00 Europe/Berlin", {}, "2026-03-29T02:00:00", False),
    ("Sun-Sun 02:00-02:30 Europe/Berlin", {}, "2026-03-29T00:59:59", False),
    ("Sun-Sun 02:00-02:30 Europe/Berlin", {}, "2026-03-29T01:00:00", False),
    # Berlin fall back, Sun 2026-10-25 01:00 UTC: 03:00 CEST -> 02:00 CET (02:xx happens twice).
    ("Sun-Sun 02:30-04:00 Europe/Berlin", {}, "2026-10-25T00:30:00", True),
    ("Sun-Sun 02:30-04:00 Europe/Berlin", {}, "2026-10-25T00:59:59", True),
    ("Sun-Sun 02:30-04:00 Europe/Berlin", {}, "2026-10-25T01:00:00", False),
    ("Sun-Sun 02:30-04:00 Europe/Berlin", {}, "2026-10-25T01:30:00", True),
    ("Sun-Sun 02:30-04:00 Europe/Berlin", {}, "2026-10-25T02:59:59", True),
    ("Sun-Sun 02:30-04:00 Europe/Berlin", {}, "2026-10-25T03:00:00", False),
    # New York spring forward, Sun 2026-03-08 07:00 UTC: 02:00 EST -> 03:00 EDT.
    ("Sun-Sun 02:00-03:00 America/New_York", {}, "2026-03-08T06:59:59", False),
    ("Sun-Sun 02:00-03:00 America/New_York", {}, "2026-03-08T07:00:00", False),
    ("Mon-Fri 09:00-17:00 America/New_York", {}, "2026-03-06T13:00:00", False),  # Fri 08:00 EST
    ("Mon-Fri 09:00-17:00 America/New_York", {}, "2026-03-06T14:00:00", True),
    ("Mon-Fri 09:00-17:00 America/New_York", {}, "2026-03-09T13:00:00", True),  # Mon 09:00 EDT
    # New York fall back, Sun 2026-11-01 06:00 UTC: 02:00 EDT -> 01:00 EST, so 01:00-02:00 lasts two hours.
    ("Sun-Sun 01:00-02:00 America/New_York", {}, "2026-11-01T04:59:59", False),
    ("Sun-Sun 01:00-02:00 America/New_York", {}, "2026-11-01T05:00:00", True),
    ("Sun-Sun 01:00-02:00 America/New_York", {}, "2026-11-01T06:00:00", True),
    ("Sun-Sun 01:00-02:00 America/New_York", {}, "2026-11-01T06:59:59", True),
    ("Sun-Sun 01:00-02:00 America/New_York", {}, "2026-11-01T07:00:00", False),
    # Absolute ranges: both ends with offsets, end inclusive (kube-downscaler).
    ("2019-12-30T22:00:00+00:00-2020-01-02T07:00:00+00:00", {}, "2019-12-30T21:59:59", False),
    ("2019-12-30T22:00:00+00:00-2020-01-02T07:00:00+00:00", {}, "2019-12-30T22:00:00", True),
    ("2019-12-30T22:00:00+00:00-2020-01-02T07:00:00+00:00", {}, "2020-01-02T07:00:00", True),
    ("2019-12-30T22:00:00+00:00-2020-01-02T07:00:00+00:00", {}, "2020-01-02T07:00:01", False),
    ("2020-01-01T00:00:00+01:00-2020-01-01T01:00:00+01:00", {}, "2019-12-31T23:30:00", True),
    ("2020-01-01T00:00:00-05:00-2020-01-01T01:00:00-05:00", {}, "2020-01-01T05:30:00", True),
    ("2020-01-01T00:00:00Z - 2020-01-02T00:00:00Z", {}, "2020-01-01T12:00:00", True),
    ("2020-01-01T00:00:00.5Z-2020-01-02T00:00:00Z", {}, "2020-01-01T00:00:00", False),
    ("from 2026-01-01T00:00:00Z", {}, "2025-12-31T23:59:59", False),
    ("FROM 2026-01-01T00:00:00Z", {}, "2026-01-01T00:00:00", True),
    ("from 2026-01-01T00:00:00Z", {}, "2099-01-01T00:00:00", True),
    ("until 2026-01-01T00:00:00+01:00", {}, "2025-12-31T23:00:00", True),
    ("until 2026-01-01T00:00:00+01:00", {}, "2025-12-31T23:00:01", False),
    ("until 2026-01-01T00:00:00+01:00", {}, "1970-01-01T00:00:00", True),
    # Any IANA name, not only the originals' [a-zA-Z/_]+.
    ("Mon-Sun 09:00-10:00 Etc/GMT+1", {}, "2026-11-27T10:30:00", True),  # Etc/GMT+1 is UTC-1
    ("Mon-Sun 09:00-10:00 America/Port-au-Prince", {}, "2026-11-27T14:30:00", True),
    # Lists: any of.
    ("Sat-Sun 00:00-24:00 UTC,Fri-Fri 20:00-24:00 UTC", {}, "2026-11-27T21:00:00", True),
    ("Sat-Sun 00:00-24:00 UTC, Fri-Fri 20:00-24:00 UTC", {}, "2026-11-26T21:00:00", False),
    (" never ,  Mon-Sun 00:00-24:00 UTC ", {}, "2026-11-26T21:00:00", True),
    ("Mon-Fri 07:00-08:00 UTC, from 2030-01-01T00:00:00Z", {}, "2026-11-28T07:30:00", False),
    # Defaults for what a spec leaves out.
    ("07:30-20:30", DEFAULTS, "2026-11-27T06:30:00", True),
    ("07:30-20:30", DEFAULTS, "2026-11-28T10:00:00", False),
    ("Sat-Sun 07:30-20:30", DEFAULTS, "2026-11-28T10:00:00", True),
    ("07:30-20:30 UTC", {"default_weekdays": "Sat-Sun"}, "2026-11-28T07:30:00", True),
    ("07:30-20:30 UTC", {"default_weekdays": "Sat-Sun"}, "2026-11-27T07:30:00", False),
    ("Mon-Fri 07:30-20:30 UTC", DEFAULTS, "2026-11-27T07:30:00", True),  # an explicit zone wins
    ("07:30-20:30", {"default_timezone": " UTC ", "default_weekdays": " Fri "}, "2026-11-27T07:30:00", True),
    # Public holidays: the whole local day.
    ("holidays DE-BY Europe/Berlin", {}, "2026-01-06T10:00:00", True),  # Epiphany in Bavaria
    ("holidays DE-BE Europe/Berlin", {}, "2026-01-06T10:00:00", False),  # not in Berlin
    ("holidays DE Europe/Berlin", {}, "2026-12-24T22:59:59", False),
    ("holidays DE Europe/Berlin", {}, "2026-12-24T23:00:00", True),  # Christmas Day 00:00 CET
    ("holidays DE Europe/Berlin", {}, "2026-12-26T22:59:59", True),  # Boxing Day 23:59:59
    ("holidays DE Europe/Berlin", {}, "2026-12-26T23:00:00", False),
    ("Holidays de-by", DEFAULTS, "2026-01-06T10:00:00", True),
    ("holidays DEU-BY Europe/Berlin", {}, "2026-01-06T10:00:00", True),  # alpha-3 country code
    ("holidays DE-augsburg Europe/Berlin", {}, "2026-08-08T10:00:00", True),  # Augsburg's Peace Festival
    ("holidays DE-BY Europe/Berlin", {}, "2026-08-08T10:00:00", False),
    ("holidays US America/New_York", {}, "2026-07-03T04:00:00", True),  # Independence Day (observed)
    ("holidays US America/New_York", {}, "2026-07-03T03:59:59", False),
    ("holidays DE-BY Europe/Berlin, Mon-Fri 20:00-08:00 Europe/Berlin", {}, "2026-01-07T10:00:00", False),
]


@pytest.mark.parametrize(("spec", "kwargs", "at", "expected"), MATCH_CASES)
def test_matches(spec: str, kwargs: dict[str, Any], at: str, expected: bool) -> None:
    schedule = parse_schedule(spec, **kwargs)
    assert schedule.matches(utc(at)) is expected
    assert schedule.spec == spec


def test_matches_any_offset_of_the_same_instant() -> None:
    schedule = parse_schedule(BERLIN_WORKDAY)
    instant = utc("2026-11-27T06:30:00")
    for hours in (-10, -5, 0, 1, 9, 13):
        assert schedule.matches(instant.astimezone(timezone(timedelta(hours=hours))))


def test_naive_instants_are_refused() -> None:
    schedule = parse_schedule(BERLIN_WORKDAY)
    with pytest.raises(ValueError, match="timezone-aware"):
        schedule.matches(datetime(2026, 11, 27, 10))
    with pytest.raises(ValueError, match="timezone-aware"):
        schedule.next_change(datetime(2026, 11, 27, 10))


def test_parse_is_cached() -> None:
    assert parse_schedule(BERLIN_WORKDAY) is parse_schedule(BERLIN_WORKDAY)
    assert parse_schedule("07:30-20:30", **DEFAULTS) is not parse_schedule(
        "07:30-20:30", default_timezone="UTC", default_weekdays="Mon-Fri"
    )


# (spec, parse keyword arguments, fragment of the problem that the message must contain)
ERROR_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("", {}, "the spec is empty"),
    ("   ", {}, "the spec is empty"),
    ("Mon-Fri 07:30-20:30 UTC,", {}, "empty entry"),
    ("always,,never", {}, "empty entry"),
    ("whenever", {}, '"whenever" is not a recognised schedule'),
    ("Mon-Fri", {}, "is not a recognised schedule"),
    ("Mon-Fry 07:30-20:30 UTC", {}, 'unknown weekday "Fry"'),
    ("Monday-Friday 07:30-20:30 UTC", {}, 'unknown weekday "Monday"'),
    ("Mon-Fri 07:30-20:30 Mars/Olympus", {}, 'unknown time zone "Mars/Olympus"'),
    ("Mon-Fri 07:30-20:30 ../etc/passwd", {}, "unknown time zone"),
    ("Mon-Fri 25:00-26:00 UTC", {}, '"25:00" is not a time of day'),
    ("Mon-Fri 07:00-24:30 UTC", {}, '"24:30" is not a time of day'),
    ("Mon-Fri 07:60-08:00 UTC", {}, '"07:60" is not a time of day'),
    ("Mon-Fri seven-eight UTC", {}, '"seven-eight" in "Mon-Fri seven-eight UTC" is not a time range'),
    ("Mon-Fri 07:30-20:30", {}, "names no time zone and no default time zone is set"),
    ("07:30-20:30 UTC", {}, "names no weekdays and no default weekdays are set"),
    ("07:30-20:30", {"default_timezone": "UTC"}, "names no weekdays"),
    ("Mon-Fri 07:30-20:30 UTC extra", {}, 'unexpected extra words after the time zone: "extra"'),
    ("2019-12-30T22:00:00-2020-01-02T07:00:00", {}, "RFC 3339 times with offsets"),
    ("2019-12-30 22:00:00+00:00-2020-01-02 07:00:00+00:00", {}, "RFC 3339 times with offsets"),
    ("2020-01-02T00:00:00Z-2020-01-01T00:00:00Z", {}, "starts after it ends"),
    ("2020-13-01T00:00:00Z-2020-12-01T00:00:00Z", {}, '"2020-13-01T00:00:00Z" is not a valid date'),
    ("until 9999-12-31T23:59:59-01:00", {}, "is not a valid date and time"),
    ("from 9999-12-31T00:00:00Z", {}, "is outside 0001-01-10 to 9999-12-20 UTC"),
    ("from yesterday", {}, '"yesterday" is not an RFC 3339 time'),
    ("until 2020-01-01", {}, '"2020-01-01" is not an RFC 3339 time'),
    ("until 2020-01-01T00:00:00", {}, "is not an RFC 3339 time with an offset"),
    ("holidays", {}, "names no country"),
    ("holidays XX UTC", {}, '"XX" is not a country code'),
    ("holidays DE-XX Europe/Berlin", {}, '"XX" is not a region of DE'),
    ("holidays DE", {}, "names no time zone"),
    ("holidays DE Mars/Phobos", {}, 'unknown time zone "Mars/Phobos"'),
    ("holidays DE Europe/Berlin extra", {}, 'unexpected extra words after the time zone: "extra"'),
    ("07:30-20:30", {"default_timezone": "Nowhere/Land", "default_weekdays": "Mon-Fri"}, "default time zone: unknown"),
    ("always", {"default_weekdays": "Mon-Fry"}, 'default weekdays "Mon-Fry": unknown weekday "Fry"'),
    ("07:30-20:30", {"default_timezone": "", "default_weekdays": " "}, "no default weekdays are set"),
]


@pytest.mark.parametrize(("spec", "kwargs", "fragment"), ERROR_CASES)
def test_errors_quote_the_spec_and_list_the_forms(spec: str, kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(spec, **kwargs)
    error = caught.value
    assert isinstance(error, ValidationError)
    assert fragment in error.problem
    message = str(error)
    assert message.startswith(f'schedule "{spec}": ')
    assert "Accepted forms" in message
    assert "Mon-Fri 07:30-20:30 Europe/Berlin" in message
    assert "2019-12-30T22:00:00+00:00-2020-01-02T07:00:00+00:00" in message
    assert error.exit_code == 2


def test_a_parsed_schedule_is_a_value() -> None:
    schedule = parse_schedule("Sat-Sun 00:00-24:00 UTC")
    assert schedule.matches(utc("2026-11-28T12:00:00"))
    assert not schedule.matches(utc("2026-11-27T12:00:00"))
    assert schedule == Schedule(schedule.spec, schedule.spans)
    assert hash(schedule) == hash(Schedule(schedule.spec, schedule.spans))
    with pytest.raises(ScheduleError):
        parse_schedule("Sat-Sun")


def test_instants_near_the_ends_of_time() -> None:
    until = parse_schedule("until 9999-12-01T00:00:00Z")
    assert until.next_change(utc("9999-11-30T00:00:00")) == utc("9999-12-01T00:00:00.000001")
    assert until.next_change(utc("9999-12-19T00:00:00")) is None
    kiritimati = parse_schedule("Mon-Fri 07:00-08:00 Pacific/Kiritimati")  # UTC+14
    assert kiritimati.next_change(utc("9999-12-19T00:00:00")) == utc("9999-12-19T17:00:00")
    with pytest.raises(ValueError, match="must lie between"):
        kiritimati.matches(datetime.max.replace(tzinfo=UTC))
