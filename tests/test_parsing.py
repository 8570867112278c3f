"""The shared small parsers: one grammar and one set of checks for HOST:PORT, durations and times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zerowatt.errors import ValidationError
from zerowatt.parsing import (
    GO_UNITS,
    parse_duration,
    parse_host_port,
    parse_timestamp,
    parse_unix_or_timestamp,
    split_host_port,
)


def test_host_port_required_host() -> None:
    assert parse_host_port("127.0.0.1:3000", key="listen") == ("127.0.0.1", 3000)
    assert parse_host_port(" [::1]:0 ", key="listen") == ("::1", 0)
    assert parse_host_port("localhost:65535", key="listen") == ("localhost", 65535)
    for bad in (":3000", "3000", "localhost", "host:", "host:65536", "host:-1", "host:+80", "host:٣", "[::1]", "[]:80"):
        with pytest.raises(ValidationError, match=r"^--listen: .*expected HOST:PORT"):
            parse_host_port(bad, key="--listen")
    with pytest.raises(ValidationError, match="IPv6 host needs brackets"):
        parse_host_port("::1:80", key="--listen")


def test_host_port_with_a_default_host() -> None:
    for text in (":9102", "9102"):
        assert parse_host_port(text, key="k", default_host="0.0.0.0") == ("0.0.0.0", 9102)
    assert parse_host_port("10.0.0.1:80", key="k", default_host="0.0.0.0") == ("10.0.0.1", 80)
    with pytest.raises(ValidationError, match=r"k: 'x:y': expected PORT or HOST:PORT"):
        parse_host_port("x:y", key="k", default_host="0.0.0.0")


def test_split_host_port_is_lenient() -> None:
    assert split_host_port("example.org") == ("example.org", None)
    assert split_host_port("example.org:8080") == ("example.org", "8080")
    assert split_host_port("example.org:") == ("example.org", "")
    assert split_host_port("[::1]") == ("[::1]", None)
    assert split_host_port("[::1]:9") == ("[::1]", "9")
    assert split_host_port("::1") == ("::1", None)


@given(st.sampled_from(["localhost", "10.1.2.3", "[2001:db8::1]"]), st.integers(0, 65535))
def test_host_port_round_trip(host: str, port: int) -> None:
    assert parse_host_port(f"{host}:{port}", key="k") == (host.strip("[]"), port)
    assert split_host_port(f"{host}:{port}") == (host, str(port))


def test_durations() -> None:
    assert parse_duration("14d", key="history") == 14 * 86400
    assert parse_duration("1h30m", key="k") == parse_duration("90m", key="k") == 5400
    assert parse_duration("1.5", key="k") == 1.5 and parse_duration(" 250ms ", key="k") == 0.25
    assert parse_duration("1w2d", key="k") == 9 * 86400
    with pytest.raises(ValidationError, match="finite and positive"):
        parse_duration("0", key="k")
    for bad in ("", "-5", "inf", "nan", "1e999", "5x", "h", "1h 30m", "m5"):
        with pytest.raises(ValidationError, match=r"^k: "):
            parse_duration(bad, key="k")


def test_go_units_allow_zero_and_reject_days() -> None:
    assert parse_duration("0", key="k", units=GO_UNITS, allow_zero=True) == 0
    assert parse_duration("900", key="k", units=GO_UNITS, allow_zero=True) == 900
    assert parse_duration("1h30m15s", key="k", units=GO_UNITS) == 5415
    with pytest.raises(ValidationError, match=r"is not a duration.*units ms, s, m, h"):
        parse_duration("1d", key="k", units=GO_UNITS)


def test_timestamps() -> None:
    assert parse_timestamp("2024-12-24", key="k") == datetime(2024, 12, 24, tzinfo=UTC)
    assert parse_timestamp("2024-12-24T18:00:00Z", key="k") == datetime(2024, 12, 24, 18, tzinfo=UTC)
    assert parse_timestamp(" 2024-12-24 18:30 ", key="k").minute == 30
    assert parse_timestamp("2024-12-24T18:30:00+02:00", key="k").utcoffset() == timedelta(hours=2)
    with pytest.raises(ValidationError, match="needs a zone"):
        parse_timestamp("2024-12-24T18:00", key="k", naive_is_utc=False)
    with pytest.raises(ValidationError, match=r'^--at: "next tuesday" is not an ISO 8601 time'):
        parse_timestamp("next tuesday", key="--at")


def test_unix_or_timestamp() -> None:
    assert parse_unix_or_timestamp("1764288000", key="end") == 1764288000.0
    assert parse_unix_or_timestamp("2025-11-28T00:00:00Z", key="end") == 1764288000.0
    for bad in ("2025-11-28T00:00:00", "inf", "nan", "soon"):
        with pytest.raises(ValidationError, match=r"^end: "):
            parse_unix_or_timestamp(bad, key="end")
