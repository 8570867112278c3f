"""``zerowatt schedule check``: try a downscaler schedule spec before putting it in an annotation.

The adapter around :mod:`zerowatt.schedule`: it reads the clock (when ``--at`` is not given) and the
defaults from flags or the environment, the same ``DEFAULT_TIMEZONE``/``DEFAULT_WEEKDAYS`` variables the
downscaler reads, so the answer here is the answer the controller will give.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from zerowatt.cli.common import print_json, reports_errors
from zerowatt.schedule import parse_schedule

schedule_app = typer.Typer(
    name="schedule",
    help="Downscaler schedules (kube-downscaler grammar): check when a spec matches.",
    no_args_is_help=True,
)


@schedule_app.callback()
def _schedule() -> None:
    """Downscaler schedules (kube-downscaler grammar): check when a spec matches."""


@schedule_app.command("check")
@reports_errors
def check(
    spec: Annotated[
        str, typer.Argument(metavar="SPEC", help='Schedule spec, e.g. "Mon-Fri 07:30-20:30 Europe/Berlin".')
    ],
    at: Annotated[
        str | None, typer.Option("--at", help="ISO 8601 time to judge (default: now; no offset means UTC).")
    ] = None,
    default_timezone: Annotated[
        str | None,
        typer.Option("--default-timezone", envvar="DEFAULT_TIMEZONE", help="Time zone for specs that omit one."),
    ] = None,
    default_weekdays: Annotated[
        str | None,
        typer.Option(
            "--default-weekdays", envvar="DEFAULT_WEEKDAYS", help="Weekdays (e.g. Mon-Fri) for specs that omit them."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print spec, at, matches and next_change as JSON.")] = False,
) -> None:
    """Print true or false: whether SPEC matches at TIME (exit code 2 for an invalid spec or time)."""
    from zerowatt.parsing import parse_timestamp

    instant = parse_timestamp(at, key="--at") if at is not None else datetime.now(UTC)
    schedule = parse_schedule(
        spec, default_timezone=default_timezone or None, default_weekdays=default_weekdays or None
    )
    matches = schedule.matches(instant)
    if as_json:
        change = schedule.next_change(instant)
        print_json(
            {
                "spec": spec,
                "at": instant.isoformat(),
                "matches": matches,
                "next_change": change.isoformat() if change is not None else None,
            }
        )
    else:
        typer.echo("true" if matches else "false")


def register(app: typer.Typer) -> None:
    """Add ``zerowatt schedule`` to the main app."""
    app.add_typer(schedule_app, name="schedule")
