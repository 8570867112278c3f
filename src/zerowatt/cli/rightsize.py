"""CLI commands of one capability (see the module name); filled in by that capability's work."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this capability's commands to the main zerowatt app."""
    del app
