"""The typer application behind ``zerowatt`` (:mod:`zerowatt.cli.main` runs it).

Each capability owns one module in this package with a ``register(app)`` function that adds its
commands; this module only assembles them, so subsystems never edit each other's CLI code.

Commands are registered lazily: :data:`~zerowatt.cli.commands.COMMANDS` names each command, the module
that registers it and its one-line summary, and a module is imported only when one of its commands
runs (or shows its own ``--help``): importing all of them loaded 647 modules (numpy, pyarrow, httpx,
wasmtime, prometheus-client) and took seconds of CPU.
"""

from __future__ import annotations

import importlib
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from zerowatt.cli.commands import COMMANDS, ROOT_HELP, VERSION_COMMAND_HELP, VERSION_OPTION_HELP, package_version


class _Placeholder(typer.core.TyperCommand):
    """Stands in for a command in the root's help listing until the command itself is needed."""


def load_command(name: str) -> Any:
    """The real click command for ``name``: its module imported and registered on a scratch app."""
    scratch = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    importlib.import_module(COMMANDS[name].module).register(scratch)
    return typer.main.get_group(scratch).commands[name]


class LazyGroup(TyperGroup):
    """The root group: placeholders listed in help, each replaced by its real command on first use."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for name, entry in COMMANDS.items():
            self.commands.setdefault(name, _Placeholder(name=name, help=entry.summary, callback=None))

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        """Swap the placeholder of the command about to run for the real one (imported now)."""
        if args and isinstance(self.commands.get(args[0]), _Placeholder):
            self.commands[args[0]] = load_command(args[0])
        return super().resolve_command(ctx, args)


app = typer.Typer(
    name="zerowatt",
    cls=LazyGroup,
    help=ROOT_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(package_version())
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option("--version", help=VERSION_OPTION_HELP, callback=_print_version, is_eager=True),
    ] = False,
) -> None:
    """0 servers == 0 watts: run only what you need."""
    del show_version


@app.command(help=VERSION_COMMAND_HELP)
def version() -> None:
    """Print zerowatt's version (``zerowatt.cli.main`` answers it before typer is imported)."""
    typer.echo(package_version())
