"""The schedule matcher the controller injects into the pure decision: ``zerowatt.schedule``, cached.

Specs repeat across thousands of objects (namespace defaults, flags), so each distinct spec is parsed once
per matcher; a spec that fails to parse is remembered too, and re-raised for every object that uses it. A
pass asks every question at the same ``now``, so the answers are kept too, for the latest ``now`` only.
"""

from __future__ import annotations

from datetime import datetime

from zerowatt.errors import ValidationError
from zerowatt.kube.decide import Matcher
from zerowatt.schedule import Schedule, parse_schedule


def schedule_matcher(default_timezone: str | None = None, default_weekdays: str | None = None) -> Matcher:
    """A :data:`~zerowatt.kube.decide.Matcher` backed by :func:`zerowatt.schedule.parse_schedule`."""
    cache: dict[str, Schedule | ValidationError] = {}
    answers: dict[str, bool] = {}
    answered_at: list[datetime | None] = [None]

    def matches(spec: str, now: datetime) -> bool:
        if answered_at[0] == now:
            known = answers.get(spec)
            if known is not None:
                return known
        else:
            answers.clear()
            answered_at[0] = now
        parsed = cache.get(spec)
        if parsed is None:
            try:
                parsed = parse_schedule(spec, default_timezone=default_timezone, default_weekdays=default_weekdays)
            except ValidationError as exc:  # ScheduleError, or a bad default zone
                parsed = exc
            cache[spec] = parsed
        if isinstance(parsed, ValidationError):
            raise parsed
        answer = answers[spec] = parsed.matches(now)
        return answer

    return matches
