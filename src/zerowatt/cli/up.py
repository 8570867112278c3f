"""``zerowatt up``: serve Spin-style apps (its own module: ``up`` imports no more of the CLI than it uses)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from zerowatt.cli.common import console, esc, print_json, print_notes, reports_errors
from zerowatt.errors import UsageError
from zerowatt.host.settings import (
    DEFAULT_HEAD_TIMEOUT,
    DEFAULT_MAX_BODY,
    DEFAULT_MIN_BODY_RATE,
    HTTP_SERVERS,
    HostSettings,
)
from zerowatt.host.spawn import default_workers, prestart
from zerowatt.wasm.limits import DEFAULT_MEMORY_LIMIT, DEFAULT_REQUEST_TIMEOUT
from zerowatt.wasm.manifest.variables import parse_assignments

if TYPE_CHECKING:
    from zerowatt.wasm.model import App


def announce(apps: list[App], settings: HostSettings, as_json: bool = False) -> None:
    """Print the route URLs (and the admin URLs) once everything is validated and listening."""
    from zerowatt.host.server import route_urls

    admin_url = f"http://{settings.admin_host}:{settings.admin_port}"
    if as_json:
        routes = [{"app": a, "component": c, "url": u} for a, c, u in route_urls(apps, settings)]
        print_json(
            {
                "routes": routes,
                "admin": admin_url,
                "workers": settings.workers,
                "policy": (
                    {"name": settings.policy, "options": list(settings.policy_options)} if settings.policy else None
                ),
            }
        )
        return
    for app_ in apps:
        print_notes(app_.notes)
    console.print(f"[bold]zerowatt[/] serving {len(apps)} app(s) with {settings.workers} worker(s):", highlight=False)
    for app, component, url in route_urls(apps, settings):
        console.print(f"  {esc(url)}  [dim]({esc(app)}/{esc(component)})[/]", highlight=False)
    if settings.policy:
        options = " ".join(settings.policy_options)
        console.print(f"autoscaling: {esc(settings.policy)}{' ' + esc(options) if options else ''}", highlight=False)
    console.print(f"admin: {admin_url}/metrics {admin_url}/healthz {admin_url}/readyz", highlight=False, markup=False)
    console.file.flush()


@reports_errors
def up(
    manifests: Annotated[list[Path] | None, typer.Argument(help="spin.toml files (default: ./spin.toml)")] = None,
    listen: Annotated[str, typer.Option(help="Address to serve apps on (HOST:PORT).")] = "127.0.0.1:3000",
    admin: Annotated[str, typer.Option(help="Admin listener for /healthz, /readyz, /metrics (HOST:PORT).")] = (
        "127.0.0.1:3001"
    ),
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: one per CPU core).", min=1)] = None,
    idle_unload: Annotated[
        float, typer.Option(help="Unload a component after this many idle seconds (0: never).", min=0)
    ] = 60.0,
    request_timeout: Annotated[
        float, typer.Option(help="Wall-clock deadline per request, seconds (504 after it).", min=0.001)
    ] = DEFAULT_REQUEST_TIMEOUT,
    memory_limit: Annotated[int, typer.Option(help="Memory cap per guest instance, bytes.", min=65536)] = (
        DEFAULT_MEMORY_LIMIT
    ),
    max_body: Annotated[int, typer.Option(help="Largest request body accepted, bytes (413 above).", min=0)] = (
        DEFAULT_MAX_BODY
    ),
    drain: Annotated[
        float | None,
        typer.Option(
            help="On SIGTERM/SIGINT/SIGHUP, seconds requests in flight may finish (503 after it); "
            "default: --request-timeout.",
            min=0,
        ),
    ] = None,
    head_timeout: Annotated[
        float, typer.Option(help="Seconds a request head may take from its first byte (408 after it).", min=0.01)
    ] = DEFAULT_HEAD_TIMEOUT,
    min_body_rate: Annotated[
        float, typer.Option(help="Bytes/s a request body must keep up after --head-timeout (408 below it).", min=1)
    ] = DEFAULT_MIN_BODY_RATE,
    variable: Annotated[list[str] | None, typer.Option(help="Set an app variable: NAME=VALUE (repeatable).")] = None,
    component: Annotated[
        list[str] | None,
        typer.Option(help="Serve only this component's routes (repeatable; Spin's selective deployment)."),
    ] = None,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Precompiled module cache (default ~/.cache/zerowatt).")
    ] = None,
    energy_summary: Annotated[
        float,
        typer.Option(help="Seconds between joules-per-request log lines (0: no energy accounting).", min=0),
    ] = 60.0,
    energy_interval: Annotated[
        float,
        typer.Option(
            help="Seconds between energy samples, at whole multiples since the epoch; set it to the exporter's "
            "--interval for the apps' joules to add up to its figures.",
            min=0.05,
        ),
    ] = 1.0,
    policy: Annotated[
        str | None,
        typer.Option(
            help="Autoscaling policy per component: kpa, keepalive, hybrid or energy "
            "(default: unload after --idle-unload seconds idle)."
        ),
    ] = None,
    policy_option: Annotated[
        list[str] | None,
        typer.Option(help="A policy parameter KEY=VALUE (repeatable), e.g. keep_alive=60 or compression=60."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    http: Annotated[
        str, typer.Option(help="Workers' HTTP server: native (asyncio + httptools, no ASGI) or uvicorn.")
    ] = "native",
    json_output: Annotated[bool, typer.Option("--json", help="Print the routes as JSON on stdout.")] = False,
) -> None:
    """Serve the apps of MANIFEST... on 127.0.0.1 with a fresh WebAssembly instance per request."""
    from zerowatt.parsing import parse_host_port

    listen_host, listen_port = parse_host_port(listen, key="--listen")
    admin_host, admin_port = parse_host_port(admin, key="--admin")
    if log_level.lower() not in ("debug", "info", "warning", "error"):
        raise UsageError(f"--log-level {log_level!r}: expected debug, info, warning or error")
    if http not in HTTP_SERVERS:
        raise UsageError(f"--http {http!r}: expected one of {', '.join(HTTP_SERVERS)}")
    if policy_option and policy is None:
        raise UsageError("--policy-option needs --policy NAME (kpa, keepalive, hybrid or energy)")
    settings = HostSettings(
        manifests=tuple(str(m) for m in (manifests or [Path("spin.toml")])),
        listen_host=listen_host,
        listen_port=listen_port,
        admin_host=admin_host,
        admin_port=admin_port,
        workers=workers or default_workers(),
        idle_unload=idle_unload or None,
        request_timeout=request_timeout,
        memory_limit=memory_limit,
        max_body=max_body,
        drain=drain,
        head_timeout=head_timeout,
        min_body_rate=min_body_rate,
        variables=parse_assignments(variable or []),
        components=tuple(component or ()),
        cache_dir=str(cache_dir) if cache_dir else None,
        log_level=log_level.lower(),
        energy_summary=energy_summary or None,
        energy_interval=energy_interval,
        http=http,
        policy=policy,
        policy_options=tuple(policy_option or ()),
    )
    # The workers started first (zerowatt.cli.main started them before parsing these options) and
    # import their modules while this process validates: the two halves of start-up overlap
    # (docs/benchmarks.md, "Start-up"). prestart() takes them over, or starts them now.
    started = prestart(settings)
    from zerowatt.host.server import serve

    raise typer.Exit(serve(settings, lambda apps, s: announce(apps, s, json_output), workers=started))


def register(app: typer.Typer) -> None:
    """Add ``up`` to the main zerowatt app."""
    app.command("up")(up)
