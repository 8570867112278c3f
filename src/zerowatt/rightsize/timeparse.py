"""Durations (``14d``, ``90s``, ``1h30m``) and instants (RFC 3339 or Unix seconds) from the command line."""

from __future__ import annotations

import re
from datetime import datetime

from zerowatt.errors import ValidationError

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(text: str, where: str) -> float:
    """Seconds in a Prometheus-style duration; a bare number is seconds."""
    s = text.strip()
    try:
        value = float(s)
    except ValueError:
        pass
    else:
        if value > 0:
            return value
        raise ValidationError(where, f"duration must be positive, got {text!r}")
    pos, total = 0, 0.0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s) or total <= 0:
        raise ValidationError(where, f"expected a duration like 14d, 12h, 90s or 1h30m, got {text!r}")
    return total


def parse_instant(text: str, where: str) -> float:
    """Unix seconds from RFC 3339 (``2026-11-28T00:00:00Z``) or a number of seconds."""
    s = text.strip()
    try:
        return float(s)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(where, f"expected RFC 3339 time or Unix seconds, got {text!r}") from None
    if dt.tzinfo is None:
        raise ValidationError(where, f"time {text!r} needs a zone (Z or +HH:MM)")
    return dt.timestamp()
