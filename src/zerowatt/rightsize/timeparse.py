"""Durations (``14d``, ``90s``, ``1h30m``) and instants (RFC 3339 or Unix seconds) from the command line."""

from __future__ import annotations

import math
import re
from datetime import datetime

from zerowatt.errors import ValidationError

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d|w)")
#: Longest duration accepted: 100 years. More is a typo, and ``now - history`` must stay a real time.
MAX_DURATION = 100 * 365.25 * 86400
#: Instants RFC 3339 can write: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z, in Unix seconds.
MIN_INSTANT = -62135596800.0
MAX_INSTANT = 253402300799.0


def parse_duration(text: str, where: str) -> float:
    """Seconds in a Prometheus-style duration; a bare number is seconds. Positive, finite, at most 100 years."""
    s = text.strip()
    try:
        value = float(s)
    except ValueError:
        value = None
    if value is not None:
        if not value > 0:  # NaN too
            raise ValidationError(where, f"duration must be positive, got {text!r}")
        total = value
    else:
        pos, total = 0, 0.0
        for m in _PART.finditer(s):
            if m.start() != pos:
                break
            total += float(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
        if pos != len(s) or total <= 0:
            raise ValidationError(where, f"expected a duration like 14d, 12h, 90s or 1h30m, got {text!r}")
    if not total <= MAX_DURATION:  # inf, and "1e400s"
        raise ValidationError(where, f"expected a duration of at most 100 years, got {text!r}")
    return total


def parse_instant(text: str, where: str) -> float:
    """Unix seconds from RFC 3339 (``2026-11-28T00:00:00Z``) or a number of seconds, in years 1 to 9999."""
    s = text.strip()
    try:
        value = float(s)
    except ValueError:
        pass
    else:
        if not (math.isfinite(value) and MIN_INSTANT <= value <= MAX_INSTANT):
            raise ValidationError(where, f"expected Unix seconds between 0001-01-01 and 9999-12-31, got {text!r}")
        return value
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(where, f"expected RFC 3339 time or Unix seconds, got {text!r}") from None
    if dt.tzinfo is None:
        raise ValidationError(where, f"time {text!r} needs a zone (Z or +HH:MM)")
    return dt.timestamp()
