"""The small text parsers every subsystem shares: ``HOST:PORT``, durations and timestamps.

Why one module: each of these was written two or three times (the listen addresses of ``zerowatt up``,
``energy serve`` and the downscaler; the downscaler's and the right-sizer's durations; the times of
annotations, ``--at`` and ``--end``), each copy with its own defaults and its own checks. Here there is one
grammar and one set of checks per kind of value; what legitimately differs between callers (a default host,
which duration units a setting takes, whether a time without an offset means UTC) is a keyword argument.

Every function is pure and raises :class:`zerowatt.errors.ValidationError` whose ``where`` is the
``key`` the caller names: the configuration key, annotation or column the value came from. The key is
keyword-only everywhere, so an argument order cannot be mixed up again.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

from zerowatt.errors import ValidationError

__all__ = [
    "GO_UNITS",
    "PROMETHEUS_UNITS",
    "parse_duration",
    "parse_host_port",
    "parse_timestamp",
    "parse_unix_or_timestamp",
    "split_host_port",
]

# --- HOST:PORT ----------------------------------------------------------------------------------------


def split_host_port(text: str) -> tuple[str, str | None]:
    """(host, port text or None) of ``host``, ``host:port``, ``[v6]`` or ``[v6]:port``; no checks.

    The lenient split, for a ``Host`` header (RFC 9110 §7.2: ``uri-host [ ":" port ]``), where a bad
    value is the client's business and must not fail the request; brackets are kept on an IPv6 host.
    A bare IPv6 address without brackets is all host.
    """
    if text.startswith("["):
        end = text.find("]")
        if end >= 0:
            rest = text[end + 1 :]
            return text[: end + 1], rest[1:] if rest.startswith(":") else None
        return text, None
    host, sep, port = text.rpartition(":")
    if not sep or ":" in host:
        return text, None
    return host, port


def parse_host_port(text: str, *, key: str, default_host: str | None = None) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) → (host, port), the host without brackets.

    The port is a decimal number from 0 to 65535 (0: any free port). With ``default_host``, the host may
    be left out (``:9102`` or ``9102``) and is that default; without, it is required. An IPv6 host must be
    bracketed, since ``::1:80`` is ambiguous.
    """
    value = text.strip()
    expected = "expected HOST:PORT, e.g. 127.0.0.1:3000" if default_host is None else "expected PORT or HOST:PORT"
    if value.startswith("["):
        end = value.find("]")
        if end <= 1 or value[end + 1 : end + 2] != ":":
            raise ValidationError(key, f"{text!r}: {expected} ([::1]:PORT for IPv6)")
        host, port = value[1:end], value[end + 2 :]
    else:
        host, sep, port = value.rpartition(":")
        if ":" in host:
            raise ValidationError(key, f"{text!r}: an IPv6 host needs brackets, e.g. [::1]:3000")
        if not sep and default_host is not None:
            port = value
    if not host:
        if default_host is None:
            raise ValidationError(key, f"{text!r}: {expected}")
        host = default_host
    # isascii: "²".isdigit() is True and int() refuses it; 5 digits: int() refuses over 4,300 of them.
    if not (port.isascii() and port.isdigit() and len(port) <= 5) or int(port) > 65535:
        raise ValidationError(key, f"{text!r}: {expected} (the port is a number from 0 to 65535)")
    return host, int(port)


# --- durations ----------------------------------------------------------------------------------------

#: Prometheus's duration units (``prometheus/common`` model.ParseDuration), seconds each.
PROMETHEUS_UNITS: dict[str, float] = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 7 * 86400.0,
    "y": 365 * 86400.0,
}
#: The units of Go's ``time.ParseDuration`` that kube-downscaler's forks take (no days: ``1d`` is an error).
GO_UNITS: dict[str, float] = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)([a-z]+)")
#: Longest duration accepted: 100 years. More is a typo, and ``now - history`` must stay a real time.
MAX_DURATION = 100 * 365.25 * 86400
#: Instants RFC 3339 can write: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z, in Unix seconds.
MIN_INSTANT = -62135596800.0
MAX_INSTANT = 253402300799.0


def parse_duration(
    text: str, *, key: str, units: dict[str, float] = PROMETHEUS_UNITS, allow_zero: bool = False
) -> float:
    """Seconds in ``900``, ``1.5``, ``90s``, ``15m`` or ``1h30m`` (numbers with units, largest first or not).

    A bare number is seconds. The value must be finite and positive (or zero with ``allow_zero``); ``units``
    says which unit names the setting takes (:data:`PROMETHEUS_UNITS` or :data:`GO_UNITS`).
    """
    s = text.strip()
    names = ", ".join(units)
    expected = f"expected seconds (900) or a duration like 15m or 1h30m (units {names})"
    total: float
    try:
        total = float(s)
    except ValueError:
        pos, total = 0, 0.0
        for m in _DURATION_PART.finditer(s):
            unit = units.get(m.group(2))
            if m.start() != pos or unit is None:
                break
            total += float(m.group(1)) * unit
            pos = m.end()
        if not s or pos != len(s):
            raise ValidationError(key, f"{text!r} is not a duration; {expected}") from None
    if not math.isfinite(total) or total < 0 or (total == 0 and not allow_zero):
        limit = "zero or positive" if allow_zero else "positive"
        raise ValidationError(key, f"{text!r}: the duration must be finite and {limit}")
    if total > MAX_DURATION:  # "1e300", "9999999y"
        raise ValidationError(key, f"{text!r}: expected a duration of at most 100 years")
    return total


# --- timestamps ---------------------------------------------------------------------------------------


def parse_timestamp(text: str, *, key: str, naive_is_utc: bool = True) -> datetime:
    """An RFC 3339 / ISO 8601 time (``2026-01-05T08:00:00Z``, ``2024-12-24 18:30``, ``2024-12-24``) → aware datetime.

    ``datetime.fromisoformat`` (Python ≥ 3.11) reads RFC 3339 as well as all four of kube-downscaler's UTC
    formats (``%Y-%m-%dT%H:%M:%SZ``, ``%Y-%m-%dT%H:%M``, ``%Y-%m-%d %H:%M``, ``%Y-%m-%d``) at a twentieth
    of ``strptime``'s cost. A time without an offset is UTC when ``naive_is_utc``, an error otherwise.
    """
    s = text.strip()
    try:
        instant = datetime.fromisoformat(s)
    except ValueError:
        raise ValidationError(
            key,
            f'"{text}" is not an ISO 8601 time (e.g. 2026-01-05T08:00:00+01:00, 2024-12-24T18:00:00Z or 2024-12-24)',
        ) from None
    if instant.tzinfo is None:
        if not naive_is_utc:
            raise ValidationError(key, f"time {text!r} needs a zone (Z or +HH:MM)")
        instant = instant.replace(tzinfo=UTC)
    return instant


def parse_unix_or_timestamp(text: str, *, key: str) -> float:
    """Unix seconds from a number of seconds or an RFC 3339 time with a zone (``2026-11-28T00:00:00Z``)."""
    try:
        seconds = float(text.strip())
    except ValueError:
        try:
            seconds = parse_timestamp(text, key=key, naive_is_utc=False).timestamp()
        except (OverflowError, ValueError) as exc:  # year 1 with a positive offset lies before year 1
            if isinstance(exc, ValidationError):
                raise
            raise ValidationError(key, f"{text!r}: outside years 1 to 9999") from None
    if not (math.isfinite(seconds) and MIN_INSTANT <= seconds <= MAX_INSTANT):
        raise ValidationError(
            key, f"{text!r}: expected an RFC 3339 time or Unix seconds between 0001-01-01 and 9999-12-31"
        )
    return seconds
