"""Entry point of the ``zerowatt`` command.

Each capability owns one module in this package with a ``register(app)`` function that adds its
commands; this module only assembles them, so subsystems never edit each other's CLI code.

Commands are registered lazily: :data:`COMMANDS` names each command, the module that registers it
and its one-line summary, and a module is imported only when one of its commands runs (or shows its
own ``--help``). ``zerowatt --help`` therefore imports no capability at all: importing all of them
loaded 647 modules (numpy, pyarrow, httpx, wasmtime, prometheus-client) and took seconds of CPU.
``tests/test_cli.py`` checks that every summary here matches the command's own help.
"""

from __future__ import annotations

import importlib
from typing import Annotated, Any, NamedTuple

import typer
from typer.core import TyperGroup


class LazyCommand(NamedTuple):
    """A top-level command: the module whose ``register(app)`` adds it, and its one-line help."""

    module: str
    summary: str


#: Every top-level command besides ``version``, in the order ``zerowatt --help`` lists them.
COMMANDS: dict[str, LazyCommand] = {
    "check": LazyCommand(
        "zerowatt.cli.apps",
        "Validate manifests without serving: apps, routes, components and executors (secrets redacted).",
    ),
    "build": LazyCommand(
        "zerowatt.cli.apps",
        "Run each component's build command (in its workdir, with a shell); stop at the first failure.",
    ),
    "up": LazyCommand(
        "zerowatt.cli.apps", "Serve the apps of MANIFEST... on 127.0.0.1 with a fresh WebAssembly instance per request."
    ),
    "simulate": LazyCommand(
        "zerowatt.cli.simulate",
        "Replay an Azure Functions 2019 trace through autoscaling policies (cold starts, idle time, energy).",
    ),
    "downscaler": LazyCommand(
        "zerowatt.cli.downscaler",
        "Scale workloads down off-hours and back up: a drop-in replacement for kube-downscaler.",
    ),
    "rightsize": LazyCommand(
        "zerowatt.cli.rightsize",
        "Recommend CPU/memory requests as the VPA would, and show the cores, GiB and watts they free.",
    ),
    "energy": LazyCommand(
        "zerowatt.cli.energy", "Energy per node, process, container and command, with PUE, water and carbon."
    ),
    "schedule": LazyCommand(
        "zerowatt.cli.schedule", "Downscaler schedules (kube-downscaler grammar): check when a spec matches."
    ),
}


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
    help="0 servers == 0 watts: run only what you need.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _package_version() -> str:
    """The installed distribution's version (``zerowatt.__version__`` in a bare source tree)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("zerowatt")
    except PackageNotFoundError:  # pragma: no cover - running from a tree that was never installed
        from zerowatt import __version__

        return __version__


def _print_version(value: bool) -> None:
    if value:
        typer.echo(_package_version())
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option("--version", help="Print zerowatt's version and exit.", callback=_print_version, is_eager=True),
    ] = False,
) -> None:
    """0 servers == 0 watts: run only what you need."""
    del show_version


@app.command()
def version() -> None:
    """Print zerowatt's version."""
    typer.echo(_package_version())


def main() -> None:
    """Run the CLI (console script ``zerowatt``)."""
    app()
