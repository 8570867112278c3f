"""Helpers shared by every CLI module: error reporting, JSON output, consoles."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from zerowatt.errors import SettingError, ZerowattError

P = ParamSpec("P")
R = TypeVar("R")

#: Human output goes to stdout; diagnostics and progress bars to stderr so ``--json`` stays parseable.
console = Console()
err_console = Console(stderr=True)


def esc(value: object) -> str:
    """``value`` as text that Rich prints as is: user strings (names, paths, keys like ``[component.x]``,
    messages that quote them) must never be read as console markup, or ``[bold]`` or ``[component.x]``
    vanish from the output. Every user string printed through Rich in the CLI goes through this."""
    return escape(str(value))


#: The flag of each setting key whose flag is not ``--`` + the key with ``-`` for ``_``.
FLAGS: dict[str, str] = {
    "carbon_or_region": "--carbon/--region",
    "prometheus_url": "--prometheus",
}


def flag(key: str) -> str:
    """The command-line flag that sets the library setting ``key`` (``matching_labels`` → ``--matching-labels``)."""
    return FLAGS.get(key, "--" + key.replace("_", "-"))


def describe(exc: ZerowattError) -> str:
    """The message the user reads: a :class:`SettingError` under the flag of its key, others as they are."""
    if isinstance(exc, SettingError):
        return f"{flag(exc.key)}: {exc.message}"
    return str(exc)


def print_notes(notes: Iterable[str]) -> None:
    """The loader's notes on an app (e.g. which executor was chosen and why), one line each."""
    for note in notes:
        console.print(f"[yellow]note:[/] {esc(note)}", highlight=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``message`` on stderr and return the ``typer.Exit`` to raise (exit 2: bad usage/input)."""
    err_console.print(f"[bold red]error:[/] {esc(message)}", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(code)


def reports_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn :class:`ZerowattError` into a clean message and its exit code instead of a traceback."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ZerowattError as exc:
            raise fail(describe(exc), exc.exit_code) from None

    return wrapper


def print_json(data: Any) -> None:
    """Write ``data`` as JSON on stdout (plain, no colour codes, one trailing newline)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()
