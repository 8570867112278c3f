"""The one error a schedule spec can raise, with the list of forms the grammar accepts.

The controller turns it into a Kubernetes Event on the annotated object and the CLI into exit code 2,
so the message must stand alone: it quotes the whole spec, names the offending part and shows every
accepted form (users copy the examples).
"""

from __future__ import annotations

from zerowatt.errors import ValidationError

#: One line per accepted form; keep in sync with docs/schedule.md.
ACCEPTED_FORMS = (
    '"always" or "never" (any case; also "true"/"false")',
    '"Mon-Fri 07:30-20:30 Europe/Berlin": weekdays (range wraps, e.g. Sun-Thu; one day: Sat or Sat-Sat), '
    "from-to local time (24:00 allowed; to < from wraps past midnight), IANA time zone",
    '"Mon-Fri 07:30 Europe/Berlin": a 30-minute window starting at that time (py-kube-downscaler)',
    '"2019-12-30T22:00:00+00:00-2020-01-02T07:00:00+00:00": absolute range, RFC 3339 with offset or Z, end inclusive',
    '"from 2026-01-01T00:00:00Z" / "until 2026-01-01T00:00:00Z": open-ended absolute range',
    '"holidays DE-BY Europe/Berlin": the whole local day of each public holiday of a country[-region]',
    'several forms joined by "," match when any of them matches; weekdays and the time zone may be left out '
    "when defaults are set (--default-weekdays/DEFAULT_WEEKDAYS, --default-timezone/DEFAULT_TIMEZONE)",
)


class ScheduleError(ValidationError):
    """A schedule spec that the grammar rejects; ``str()`` quotes the spec and lists the accepted forms."""

    def __init__(self, spec: str, problem: str) -> None:
        self.spec = spec
        self.problem = problem
        forms = "\n".join(f"  - {form}" for form in ACCEPTED_FORMS)
        super().__init__(f'schedule "{spec}"', f"{problem}. Accepted forms:\n{forms}")
