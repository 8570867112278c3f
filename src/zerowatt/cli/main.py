"""Entry point of the ``zerowatt`` command.

Each capability owns one module in this package with a ``register(app)`` function that adds its
commands; this module only assembles them, so subsystems never edit each other's CLI code.
"""

from __future__ import annotations

import typer

from zerowatt import __version__
from zerowatt.cli import apps, downscaler, energy, rightsize, schedule, simulate

app = typer.Typer(
    name="zerowatt",
    help="0 servers == 0 watts: run only what you need.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root() -> None:
    """0 servers == 0 watts: run only what you need."""


@app.command()
def version() -> None:
    """Print zerowatt's version."""
    typer.echo(__version__)


for _module in (apps, energy, simulate, schedule, downscaler, rightsize):
    _module.register(app)


def main() -> None:
    """Run the CLI (console script ``zerowatt``)."""
    app()
