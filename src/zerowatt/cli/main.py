"""Entry point of the ``zerowatt`` command: what must be fast before typer is even imported.

The command-line interface itself is a typer application (:mod:`zerowatt.cli.root`), but importing
typer, rich and click costs ~0.25 s of CPU and typer's option parsing imports pydantic (another
0.1–0.4 s). Two things therefore happen here, on nothing but the standard library:

- ``zerowatt``, ``zerowatt --help``/``-h`` and ``zerowatt --version`` are answered at once: the root
  help is rendered from :data:`COMMANDS` by :mod:`zerowatt.cli.roothelp` (the same text typer prints;
  ``tests/test_cli.py`` compares the two);
- ``zerowatt up`` starts its worker processes before typer parses its options
  (:func:`early_workers`), so the workers import wasmtime and the host while this process parses
  and validates; ``up`` takes them over (:func:`zerowatt.host.spawn.prestart`).

Every command is listed in :data:`COMMANDS` with the module whose ``register(app)`` adds it, so a
command's module is imported only when it runs; ``tests/test_cli.py`` checks that every summary
here matches the command's own help.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from zerowatt.cli.commands import COMMANDS, package_version  # noqa: F401 - COMMANDS: the table, as callers of main read it


def early_workers(args: list[str]) -> int | None:
    """How many workers ``zerowatt up ARGS`` will ask for, guessed from ``ARGS`` before typer parses
    them; None: start none now (``--help``, or a ``--workers`` value typer will reject).

    Only a guess, so it can be simple: the last ``--workers N``/``--workers=N`` wins, as in click;
    a wrong guess (``--variable --workers``) only costs starting or stopping a worker later.
    """
    guess: int | None = None
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg in ("-h", "--help"):
            return None
        value = None
        if arg == "--workers":
            value = args[i + 1] if i + 1 < len(args) else ""
        elif arg.startswith("--workers="):
            value = arg.removeprefix("--workers=")
        if value is not None:
            guess = int(value) if value.isascii() and value.isdigit() and int(value) >= 1 else None
            if guess is None:
                return None
    if guess is None:
        from zerowatt.host.spawn import default_workers

        return default_workers()
    return guess


def _fast(args: list[str]) -> int | None:
    """Answer what needs no typer (root help, version); the exit code, or None to run typer."""
    if args in (["--version"], ["version"]):
        sys.stdout.write(package_version() + "\n")
        return 0
    if args in ([], ["--help"], ["-h"]) and not os.environ.get("TYPER_USE_RICH"):
        from zerowatt.cli.roothelp import render_root_help

        text = render_root_help(_program_name())
        if text is None:  # a terminal too narrow for the plain layout: typer's own wrapping
            return None
        # No arguments: the help, exit 2, as click's no_args_is_help does (on stdout, as typer does).
        sys.stdout.write(text)
        return 0 if args else 2
    return None


def _program_name() -> str:
    """The name click shows in ``Usage:``: ``python -m zerowatt`` or the script's file name."""
    main = sys.modules.get("__main__")
    path = sys.argv[0] if sys.argv else "zerowatt"
    package = getattr(main, "__package__", None)
    if not package:
        return Path(path).name
    name = Path(path).stem
    return f"python -m {package if name == '__main__' else f'{package}.{name}'}".replace("-m .", "-m ")


def main() -> None:
    """Run the CLI (console script ``zerowatt``)."""
    args = sys.argv[1:]
    code = _fast(args)
    if code is not None:
        sys.stdout.flush()
        raise SystemExit(code)
    if args[:1] == ["downscaler"]:  # argparse, no typer: its start-up is paid at every --once run
        from zerowatt.cli.downscaler import main as downscaler

        sys.stdout.flush()
        raise SystemExit(downscaler(args[1:]))
    if args[:1] == ["up"] and (count := early_workers(args[1:])) is not None:
        from zerowatt.host.spawn import prestart_early

        prestart_early(count)
    from zerowatt.cli.root import app

    app()


def __getattr__(name: str) -> Any:
    """``app`` and ``load_command`` live in :mod:`zerowatt.cli.root` (importing typer): loaded on use."""
    if name in ("app", "load_command", "LazyGroup"):
        from zerowatt.cli import root

        return getattr(root, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
