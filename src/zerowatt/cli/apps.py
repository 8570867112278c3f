"""CLI for WebAssembly apps: ``zerowatt check``, ``zerowatt build`` and ``zerowatt up``.

One function per command; each is a thin adapter over :mod:`zerowatt.wasm.manifest.load` (``up``: over
:mod:`zerowatt.host.server`, registered by :mod:`zerowatt.cli.up` itself so that ``up`` does not import
Rich's tables).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from zerowatt.cli.common import console, err_console, esc, print_json, print_notes, reports_errors
from zerowatt.errors import ValidationError
from zerowatt.wasm.manifest.variables import parse_assignments
from zerowatt.wasm.model import App, Component
from zerowatt.wasm.router import Router

#: What secret values look like wherever zerowatt prints them.
REDACTED = "<redacted>"

ManifestsArg = Annotated[
    list[Path] | None, typer.Argument(help="spin.toml files (default: ./spin.toml)", show_default=False)
]
VariableOpt = Annotated[
    list[str] | None,
    typer.Option("--variable", help="Set an application variable: NAME=VALUE (repeatable).", show_default=False),
]


def _component_summary(component: Component) -> dict[str, Any]:
    return {
        "source": str(component.source),
        "digest": component.source_digest,
        "description": component.description,
        "environment": dict(component.environment),
        "variables": {
            k: (REDACTED if k in component.secret_variables else v) for k, v in sorted(component.variables.items())
        },
        "files": [{"host": str(p.host_path), "guest": p.guest_path} for p in component.files],
        "allowed_outbound_hosts": list(component.allowed_outbound_hosts),
        "limits": {"request_timeout": component.limits.request_timeout, "memory_limit": component.limits.memory_limit},
        "build": None
        if component.build is None
        else {"commands": list(component.build.commands), "workdir": str(component.build.workdir)},
    }


def app_summary(app: App) -> dict[str, Any]:
    """A JSON-safe description of a loaded app with every secret value redacted."""
    router = Router([app])
    effective = {id(entry.trigger): entry.pattern for entry in router}
    return {
        "name": app.name,
        "version": app.version,
        "description": app.description,
        "manifest": str(app.manifest_path),
        "base": app.base,
        "variables": {
            name: {
                "required": var.required,
                "secret": var.secret,
                "default": REDACTED if var.secret and var.default is not None else var.default,
            }
            for name, var in app.variables.items()
        },
        "routes": [
            {
                "route": effective.get(id(t), "(private)"),
                "private": t.route.private,
                "component": t.component_id,
                "executor": t.executor.value,
            }
            for t in app.triggers
        ],
        "components": {cid: _component_summary(c) for cid, c in app.components.items()},
        "notes": list(app.notes),
    }


def _print_apps(apps: list[App]) -> None:
    for app in apps:
        title = f"[bold]{esc(app.name)}[/] {esc(app.version)}".rstrip()
        table = Table(title=title, title_justify="left", caption=esc(app.manifest_path), caption_justify="left")
        for column in ("route", "component", "executor", "source", "limits"):
            table.add_column(column)
        summary = app_summary(app)
        for route in summary["routes"]:
            component = app.components[route["component"]]
            limits = []
            if component.limits.request_timeout is not None:
                limits.append(f"timeout {component.limits.request_timeout:g}s")
            if component.limits.memory_limit is not None:
                limits.append(f"memory {component.limits.memory_limit} B")
            table.add_row(
                esc(route["route"]),
                esc(route["component"]),
                esc(route["executor"]),
                esc(component.source.name),
                ", ".join(limits) or "host defaults",
            )
        console.print(table)
        for cid, comp in summary["components"].items():
            details = [f"{k}={v}" for k, v in comp["variables"].items()]
            details += [f"{m['guest']} <- {m['host']}" for m in comp["files"]]
            if details:
                console.print(f"  {cid}: " + "; ".join(details), highlight=False, markup=False)
        print_notes(app.notes)
    console.print(f"[green]ok[/]: {len(apps)} app(s), {sum(len(a.triggers) for a in apps)} route(s)")


def _manifests(paths: list[Path] | None) -> list[Path]:
    return list(paths) if paths else [Path("spin.toml")]


@reports_errors
def check(
    manifests: ManifestsArg = None,
    variable: VariableOpt = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the loaded apps as JSON.")] = False,
) -> None:
    """Validate manifests without serving: apps, routes, components and executors (secrets redacted)."""
    from zerowatt.wasm.manifest.load import load_apps  # wasmtime: only when a command needs it

    apps = load_apps(_manifests(manifests), variable_values=parse_assignments(variable or []))
    if json_output:
        print_json({"apps": [app_summary(app) for app in apps]})
    else:
        _print_apps(apps)


@reports_errors
def build(
    manifest: Annotated[Path, typer.Argument(help="spin.toml (default: ./spin.toml)")] = Path("spin.toml"),
    component: Annotated[
        list[str] | None,
        typer.Option("--component", "-c", help="Build only this component (repeatable).", show_default=False),
    ] = None,
) -> None:
    """Run each component's build command (in its workdir, with a shell); stop at the first failure."""
    from zerowatt.wasm.manifest.load import read_manifest

    spec = read_manifest(manifest)
    wanted = list(component or [])
    for cid in wanted:
        if cid not in spec.components:
            known = ", ".join(spec.components) or "none"
            raise ValidationError("--component", f"no component {cid!r} in {manifest} (components: {known})")
    built = 0
    for cid, comp in spec.components.items():
        if wanted and cid not in wanted:
            continue
        if comp.build is None:
            err_console.print(f"[dim]{esc(cid)}: no build command, skipped[/]")
            continue
        if not comp.build.workdir.is_dir():
            raise ValidationError(f"{comp.where}.build.workdir", f"directory not found: {comp.build.workdir}")
        for command in comp.build.commands:  # Spin runs an array of commands left to right
            err_console.print(
                f"[bold]building {esc(cid)}[/] in {esc(comp.build.workdir)}: {esc(command)}", highlight=False
            )
            result = subprocess.run(command, shell=True, cwd=comp.build.workdir, check=False)
            if result.returncode != 0:
                err_console.print(f"[bold red]error:[/] building {esc(cid)} failed with exit code {result.returncode}")
                raise typer.Exit(result.returncode)
        built += 1
    err_console.print(f"[green]built {built} component(s)[/]")


def register(app: typer.Typer) -> None:
    """Add ``check`` and ``build`` to the main zerowatt app (``up``: :mod:`zerowatt.cli.up`)."""
    app.command("check")(check)
    app.command("build")(build)
