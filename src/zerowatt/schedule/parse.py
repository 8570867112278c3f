"""The schedule grammar of kube-downscaler and its forks, parsed into :class:`Schedule` spans.

Compatible with, and cited from:
- hjacobs/kube-downscaler ``kube_downscaler/helper.py`` (``matches_time_spec``): ``always``/``never``,
  comma lists, ``Mon-Fri 07:30-20:30 Europe/Berlin`` (3-letter weekdays in any case, a wrapping weekday
  range, ``from <= minute < to``), absolute ``A-B`` with ``±HH:MM`` offsets and an inclusive end.
- caas-team/py-kube-downscaler ``kube_downscaler/helper.py``: a missing zone falls back to a default
  (its ``TZ`` environment variable; ours is ``DEFAULT_TIMEZONE``), ``Mon-Fri 07:30 TZ`` and ``07:30 TZ``
  mean a 30-minute window starting then (its ``DEFAULT_PERIOD_MINUTES``).
- caas-team/GoKubeDownscaler ``internal/pkg/values/timespan.go``: ``true``/``false`` as synonyms, constants
  inside lists, ``to < from`` wrapping past midnight on the listed days, hours up to 24, RFC 3339 with ``Z``
  and fractional seconds, spaces around the dash of an absolute range.
zerowatt additions: ``from A``/``until B``, ``holidays CC[-REGION] [TZ]``, a single weekday ``Sat``, and
default weekdays.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from zerowatt.schedule.errors import ScheduleError
from zerowatt.schedule.model import Schedule
from zerowatt.schedule.spans import EARLIEST, LATEST, MINUTES_PER_DAY, Absolute, Constant, Holidays, Recurring, Span
from zerowatt.schedule.zones import zone

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: py-kube-downscaler's DEFAULT_PERIOD_MINUTES: the length of a window written as a single time.
POINT_WINDOW_MINUTES = 30

_RFC3339 = r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})"
_ABSOLUTE = re.compile(rf"^({_RFC3339})\s*-\s*({_RFC3339})$")
_OPEN_ENDED = re.compile(r"^(from|until)\s+(\S+)$", re.IGNORECASE)
_HOLIDAYS = re.compile(r"^holidays(?:\s+(.*))?$", re.IGNORECASE)
_DAYS = re.compile(r"^([A-Za-z]+)(?:-([A-Za-z]+))?$")
_TIMES = re.compile(r"^(\d{1,2}):(\d{2})(?:-(\d{1,2}):(\d{2}))?$")
_LOOKS_ABSOLUTE = re.compile(r"^\d{4}-\d{2}-\d{2}")

_CONSTANTS = {"always": True, "true": True, "never": False, "false": False}


def _timestamp(spec: str, text: str) -> datetime:
    if not re.fullmatch(_RFC3339, text):
        raise ScheduleError(
            spec, f'"{text}" is not an RFC 3339 time with an offset (e.g. 2026-01-01T00:00:00Z or ...+01:00)'
        )
    try:
        instant = datetime.fromisoformat(text.upper()).astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise ScheduleError(spec, f'"{text}" is not a valid date and time ({exc})') from None
    if not EARLIEST <= instant <= LATEST:
        raise ScheduleError(
            spec, f'"{text}" is outside {EARLIEST.date().isoformat()} to {LATEST.date().isoformat()} UTC'
        )
    return instant


def _zone(spec: str, key: str | None, default_timezone: str | None, term: str) -> ZoneInfo:
    name = key if key is not None else default_timezone
    if name is None:
        raise ScheduleError(spec, f'"{term}" names no time zone and no default time zone is set')
    try:
        return zone(name)
    except LookupError as exc:
        raise ScheduleError(spec, str(exc) if key is not None else f"default time zone: {exc}") from None


def _weekday(spec: str, name: str) -> int:
    try:
        return WEEKDAYS.index(name.lower())
    except ValueError:
        raise ScheduleError(spec, f'unknown weekday "{name}" (expected Mon, Tue, Wed, Thu, Fri, Sat or Sun)') from None


def _days_mask(spec: str, text: str) -> int:
    match = _DAYS.match(text)
    if match is None:
        raise ScheduleError(spec, f'"{text}" is not a weekday range such as Mon-Fri')
    first = _weekday(spec, match.group(1))
    last = _weekday(spec, match.group(2)) if match.group(2) else first
    mask, day = 0, first
    while True:  # inclusive and wrapping: Sun-Thu is Sun, Mon, Tue, Wed, Thu
        mask |= 1 << day
        if day == last:
            return mask
        day = (day + 1) % 7


def _minute(spec: str, hour: str, minute: str) -> int:
    h, m = int(hour), int(minute)
    if h > 24 or m > 59 or (h == 24 and m != 0):
        raise ScheduleError(spec, f'"{hour}:{minute}" is not a time of day between 00:00 and 24:00')
    return h * 60 + m


def _recurring(spec: str, term: str, default_timezone: str | None, default_weekdays: str | None) -> Span:
    words = re.sub(r"\s*-\s*", "-", term).split()
    days_text: str | None = None
    if words and _DAYS.match(words[0]) and len(words) >= 2 and _TIMES.match(words[1]):
        days_text, words = words[0], words[1:]
    if not words or not _TIMES.match(words[0]):
        if words and _DAYS.match(words[0]) and len(words) >= 2:
            raise ScheduleError(spec, f'"{words[1]}" in "{term}" is not a time range such as 07:30-20:30')
        raise ScheduleError(spec, f'"{term}" is not a recognised schedule')
    if len(words) > 2:
        raise ScheduleError(spec, f'"{term}" has unexpected extra words after the time zone: "{" ".join(words[2:])}"')
    times = _TIMES.match(words[0])
    assert times is not None
    start = _minute(spec, times.group(1), times.group(2))
    if times.group(3) is None:
        end = min(start + POINT_WINDOW_MINUTES, MINUTES_PER_DAY)
        days_fallback: str | None = default_weekdays or "Mon-Sun"
    else:
        end = _minute(spec, times.group(3), times.group(4))
        days_fallback = default_weekdays
    if days_text is None:
        if days_fallback is None:
            raise ScheduleError(spec, f'"{term}" names no weekdays and no default weekdays are set')
        days_text = days_fallback
    tz = _zone(spec, words[1] if len(words) == 2 else None, default_timezone, term)
    return Recurring(days=_days_mask(spec, days_text), start=start, end=end, tz=tz)


@lru_cache(maxsize=1)
def _supported_countries() -> dict[str, list[str]]:
    import holidays as holidays_lib  # ~0.1 s of imports: only for specs that name holidays

    return dict(holidays_lib.list_supported_countries())


def _holidays(spec: str, term: str, match: re.Match[str], default_timezone: str | None) -> Span:
    words = (match.group(1) or "").split()
    if not words:
        raise ScheduleError(spec, f'"{term}" names no country (e.g. "holidays DE-BY Europe/Berlin")')
    if len(words) > 2:
        raise ScheduleError(spec, f'"{term}" has unexpected extra words after the time zone: "{" ".join(words[2:])}"')
    region = words[0]
    country, _, subdivision = region.partition("-")
    country = country.upper()
    supported = _supported_countries()
    if country not in supported:
        raise ScheduleError(spec, f'"{country}" is not a country code known to the holidays package (e.g. DE, US)')
    sub: str | None = None
    if subdivision:
        # Codes are upper case (BY, CA) but a few regions are names (Augsburg): match without case.
        sub = {code.upper(): code for code in supported[country]}.get(subdivision.upper())
    if subdivision and sub is None:
        regions = ", ".join(supported[country][:12]) + (", ..." if len(supported[country]) > 12 else "")
        raise ScheduleError(spec, f'"{subdivision}" is not a region of {country} (known: {regions})')
    tz = _zone(spec, words[1] if len(words) == 2 else None, default_timezone, term)
    return Holidays(country=country, subdivision=sub, tz=tz)


def _term(spec: str, term: str, default_timezone: str | None, default_weekdays: str | None) -> Span:
    if not term:
        raise ScheduleError(spec, "empty entry in the comma-separated list")
    constant = _CONSTANTS.get(term.lower())
    if constant is not None:
        return Constant(constant)
    if absolute := _ABSOLUTE.match(term):
        start, end = _timestamp(spec, absolute.group(1)), _timestamp(spec, absolute.group(2))
        if start > end:
            raise ScheduleError(spec, f'"{term}" starts after it ends')
        return Absolute(start, end)
    if open_ended := _OPEN_ENDED.match(term):
        instant = _timestamp(spec, open_ended.group(2))
        return Absolute(instant, None) if open_ended.group(1).lower() == "from" else Absolute(None, instant)
    if _LOOKS_ABSOLUTE.match(term):
        raise ScheduleError(
            spec, f'"{term}" is not an absolute range START-END of RFC 3339 times with offsets (Z or ±HH:MM)'
        )
    if holidays := _HOLIDAYS.match(term):
        return _holidays(spec, term, holidays, default_timezone)
    return _recurring(spec, term, default_timezone, default_weekdays)


@lru_cache(maxsize=8192)
def parse_schedule(spec: str, *, default_timezone: str | None = None, default_weekdays: str | None = None) -> Schedule:
    """Parse a kube-downscaler schedule spec (see docs/schedule.md); cached, since specs repeat every pass.

    ``default_timezone``/``default_weekdays`` fill in terms that leave the zone or the weekdays out.
    Raises :class:`ScheduleError` quoting ``spec`` for anything outside the grammar.
    """
    if not spec.strip():
        raise ScheduleError(spec, "the spec is empty")
    default_timezone = (default_timezone or "").strip() or None  # an empty environment variable means unset
    default_weekdays = (default_weekdays or "").strip() or None
    if default_weekdays is not None:
        try:
            _days_mask(spec, default_weekdays)  # a bad default is reported even where no term needs it
        except ScheduleError as exc:
            raise ScheduleError(spec, f'default weekdays "{default_weekdays}": {exc.problem}') from None
    spans = tuple(_term(spec, term.strip(), default_timezone, default_weekdays) for term in spec.split(","))
    return Schedule(spec=spec, spans=spans)
