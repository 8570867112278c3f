"""Properties of the grammar that must hold for every range, zone and instant (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from zerowatt.schedule import parse_schedule

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Pacific/Auckland",
    "Asia/Kolkata",
    "America/Santiago",
    "Pacific/Chatham",
]
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]

instants = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC))
zones = st.sampled_from(ZONES)
minutes = st.integers(min_value=0, max_value=24 * 60)
day_ranges = st.tuples(st.sampled_from(DAYS), st.sampled_from(DAYS)).map(lambda pair: f"{pair[0]}-{pair[1]}")


def hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@st.composite
def recurring_specs(draw: st.DrawFn) -> str:
    start, end = draw(minutes), draw(minutes)
    return f"{draw(day_ranges)} {hhmm(start)}-{hhmm(end)} {draw(zones)}"


@st.composite
def absolute_specs(draw: st.DrawFn) -> str:
    a, b = sorted((draw(instants), draw(instants)))
    offset = timedelta(minutes=15 * draw(st.integers(min_value=-48, max_value=56)))
    zulu = draw(st.booleans()) and not offset

    def text(instant: datetime) -> str:
        written = instant.replace(microsecond=0).astimezone(timezone(offset)).isoformat()
        return written.replace("+00:00", "Z") if zulu else written

    a_text, b_text = text(a), text(b)
    kind = draw(st.sampled_from(["range", "from", "until"]))
    return {"range": f"{a_text}-{b_text}", "from": f"from {a_text}", "until": f"until {b_text}"}[kind]


specs = st.lists(
    st.one_of(
        recurring_specs(), absolute_specs(), st.sampled_from(["always", "never", "holidays DE-BY Europe/Berlin"])
    ),
    min_size=1,
    max_size=3,
).map(", ".join)


@settings(max_examples=200, deadline=None)
@given(zone=zones, start=minutes, end=minutes, at=instants)
def test_a_range_and_its_complement_partition_every_day(zone: str, start: int, end: int, at: datetime) -> None:
    """``A-B`` and ``B-A`` on the same days never both match, and between them cover the whole day."""
    forward = parse_schedule(f"Mon-Sun {hhmm(start)}-{hhmm(end)} {zone}")
    backward = parse_schedule(f"Mon-Sun {hhmm(end)}-{hhmm(start)} {zone}")
    both = forward.matches(at), backward.matches(at)
    if start % 1440 == end % 1440:  # 08:00-08:00 is empty in both originals; 00:00-24:00 is the whole day
        assert both in {(False, False), (True, False), (False, True)}
        assert both[0] or both[1] or start == end
    else:
        assert both in {(True, False), (False, True)}


@settings(max_examples=150, deadline=None)
@given(days=day_ranges, zone=zones, start=minutes, end=minutes, at=instants)
def test_a_range_and_its_complement_never_both_match(days: str, zone: str, start: int, end: int, at: datetime) -> None:
    forward = parse_schedule(f"{days} {hhmm(start)}-{hhmm(end)} {zone}")
    backward = parse_schedule(f"{days} {hhmm(end)}-{hhmm(start)} {zone}")
    assert not (forward.matches(at) and backward.matches(at))


@settings(max_examples=150, deadline=None)
@given(spec=specs, at=instants, probes=st.lists(st.floats(min_value=0, max_value=1), min_size=5, max_size=5))
def test_next_change_really_flips_and_nothing_flips_before(spec: str, at: datetime, probes: list[float]) -> None:
    schedule = parse_schedule(spec)
    horizon = timedelta(days=10)
    state = schedule.matches(at)
    change = schedule.next_change(at, horizon=horizon)
    end = change if change is not None else at + horizon
    assert end > at
    if change is not None:
        assert schedule.matches(change) != state
        assert schedule.matches(change - timedelta(microseconds=1)) == state
        assert change <= at + horizon
    # Nothing flips in between: probe random points, every whole hour and the second before the end.
    points = [at + (end - at) * p for p in probes]
    hour = at.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    while hour < end:
        points.append(hour)
        hour += timedelta(hours=1)
    points.append(end - timedelta(seconds=1))
    for point in points:
        if at <= point < end:
            assert schedule.matches(point) == state, (spec, at, point, change)


@settings(max_examples=50, deadline=None)
@given(word=st.sampled_from(["always", "ALWAYS", "Always", "true", "never", "Never", "false"]), at=instants)
def test_constants_are_constant(word: str, at: datetime) -> None:
    schedule = parse_schedule(word)
    assert schedule.matches(at) is (word.lower() in {"always", "true"})
    assert schedule.next_change(at) is None


@settings(max_examples=100, deadline=None)
@given(spec=recurring_specs(), at=instants, hours=st.integers(min_value=-12, max_value=14))
def test_the_offset_of_the_instant_does_not_matter(spec: str, at: datetime, hours: int) -> None:
    schedule = parse_schedule(spec)
    shifted = at.astimezone(timezone(timedelta(hours=hours)))
    assert schedule.matches(shifted) == schedule.matches(at)
