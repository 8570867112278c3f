"""The time grammar of kube-downscaler (``Mon-Fri 07:30-20:30 Europe/Berlin`` and friends), DST-correct.

Pure: callers pass the instant to judge; nothing here reads a clock. See docs/schedule.md.
"""

from __future__ import annotations

from zerowatt.schedule.errors import ACCEPTED_FORMS, ScheduleError
from zerowatt.schedule.model import Schedule
from zerowatt.schedule.parse import parse_schedule

__all__ = ["ACCEPTED_FORMS", "Schedule", "ScheduleError", "parse_schedule"]
