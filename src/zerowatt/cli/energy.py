"""``zerowatt energy``: measure a command, watch the node (``top``), export metrics (``serve``)."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from zerowatt.cli.common import console, err_console, esc, print_json, reports_errors
from zerowatt.energy.capacity import CapacityPricing, choose_pricing
from zerowatt.energy.config import EnergyConfig, load_config
from zerowatt.energy.detect import FallbackSource, Roots, detect_source
from zerowatt.energy.exporter import Exporter
from zerowatt.energy.measure import measure_command
from zerowatt.energy.meter import Interval, Meter
from zerowatt.energy.procfs import ProcReader
from zerowatt.energy.sources.base import SensorError
from zerowatt.energy.sources.model import ModelSource
from zerowatt.energy.sources.nvml import NvmlSource
from zerowatt.errors import ValidationError

energy_app = typer.Typer(
    name="energy",
    help="Energy per node, process, container and command, with PUE, water and carbon.",
    no_args_is_help=True,
)

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML config (see docs/energy.md).")]
SourceOpt = Annotated[str | None, typer.Option("--source", help="auto, rapl, hwmon or model.")]
IdleOpt = Annotated[float | None, typer.Option("--idle-watts", help="Node watts at idle (selects the model).")]
MaxOpt = Annotated[float | None, typer.Option("--max-watts", help="Node watts at 100% CPU (selects the model).")]
PueOpt = Annotated[
    str | None, typer.Option("--pue", help="PUE: a number or industry-average, hyperscale, free-cooled.")
]
WueOpt = Annotated[
    str | None, typer.Option("--wue", help="WUE in L/kWh: a number or industry-average, hyperscale, dry.")
]
CarbonOpt = Annotated[float | None, typer.Option("--carbon", help="Grid carbon intensity, g CO2e per kWh.")]
RegionOpt = Annotated[str | None, typer.Option("--region", help="Cloud region for carbon, e.g. aws:eu-west-1.")]
SpreadOpt = Annotated[bool | None, typer.Option("--spread-idle/--no-spread-idle", help="Share idle power too.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]


def _roots() -> Roots:
    """Sysfs/proc roots; the environment may point them elsewhere (tests, containers with host mounts)."""
    env = os.environ
    return Roots(
        powercap=env.get("ZEROWATT_POWERCAP_ROOT", "/sys/class/powercap"),
        hwmon=env.get("ZEROWATT_HWMON_ROOT", "/sys/class/hwmon"),
        proc=env.get("ZEROWATT_PROC_ROOT", "/proc"),
    )


def capacity_pricing(
    power_model: str,
    cpu: str | None = None,
    pue: str | None = None,
    wue: str | None = None,
    carbon: float | None = None,
    region: str | None = None,
) -> CapacityPricing:
    """What a reserved core and GB stand for (``zerowatt rightsize``, ``zerowatt downscaler``): the node model
    of ``--cpu`` or of this machine's CPU (``$ZEROWATT_PROC_ROOT/cpuinfo``), or CCF's averages; the facility from
    ``--pue``/``--wue``/``--carbon``/``--region``, parsed as ``zerowatt energy`` parses them."""
    return choose_pricing(power_model, cpu=cpu, pue=pue, wue=wue, carbon=carbon, region=region, proc_root=_roots().proc)


def _metered(
    config: Path | None,
    source: str | None,
    idle_watts: float | None,
    max_watts: float | None,
    spread_idle: bool | None,
    *,
    pue: str | None = None,
    wue: str | None = None,
    carbon: float | None = None,
    region: str | None = None,
) -> tuple[EnergyConfig, Roots, FallbackSource]:
    """The configuration (file < environment < these flags), the roots, and the power source chain it selects."""
    flags = {
        "source": source,
        "idle_watts": idle_watts,
        "max_watts": max_watts,
        "spread_idle": spread_idle,
        "pue": pue,
        "wue": wue,
        "carbon_g_per_kwh": carbon,
        "region": region,
    }
    cfg = load_config(config, os.environ, flags)
    roots = _roots()
    chain = detect_source(roots, cfg.overrides(), cfg.source)
    for note in chain.notes:
        err_console.print(f"[dim]energy source: {esc(note)}[/]", highlight=False)
    return cfg, roots, chain


def _model_fields(source: FallbackSource) -> dict[str, Any]:
    current = source.current
    if isinstance(current, ModelSource):
        m = current.choice.model
        return {
            "basis": current.choice.basis,
            "detail": current.choice.detail,
            "idle_watts": m.idle_watts,
            "max_watts": m.max_watts,
            "logical_cpus": m.logical_cpus,
        }
    return {}


@energy_app.command(context_settings={"allow_interspersed_args": False})
@reports_errors
def measure(
    command: Annotated[list[str], typer.Argument(help="The command to run (after --).", show_default=False)],
    json_out: JsonOpt = False,
    pue: PueOpt = None,
    wue: WueOpt = None,
    carbon: CarbonOpt = None,
    region: RegionOpt = None,
    source: SourceOpt = None,
    idle_watts: IdleOpt = None,
    max_watts: MaxOpt = None,
    spread_idle: SpreadOpt = None,
    config: ConfigOpt = None,
    interval: Annotated[float, typer.Option(help="Sampling interval, seconds.", min=0.01)] = 0.5,
) -> None:
    """Run COMMAND and report its energy (IT and facility), CO2e, water, CPU and wall time.

    The command's exit code is kept (127 if it is not found). With --json the command's own stdout goes to
    stderr so that stdout is JSON only; without it the report goes to stderr, like perf stat.
    """
    cfg, roots, src = _metered(
        config, source, idle_watts, max_watts, spread_idle, pue=pue, wue=wue, carbon=carbon, region=region
    )
    facility = cfg.facility()
    try:
        m = measure_command(
            command,
            src,
            ProcReader(roots.proc),
            interval=interval,
            spread_idle=cfg.spread_idle,
            stdout=sys.stderr.fileno() if json_out else None,
        )
    except FileNotFoundError:
        err_console.print(f"zerowatt energy measure: {command[0]}: command not found", highlight=False, markup=False)
        raise typer.Exit(127) from None
    except PermissionError:
        err_console.print(f"zerowatt energy measure: {command[0]}: permission denied", highlight=False, markup=False)
        raise typer.Exit(126) from None
    report = facility.report(m.it_joules)
    info = src.info
    data: dict[str, Any] = {
        "command": list(command),
        "exit_code": m.exit_code,
        "it_joules": m.it_joules,
        "facility_joules": report.facility_joules,
        "co2e_grams": report.co2e_grams,
        "water_litres": report.water_litres,
        "cpu_seconds": m.cpu_seconds,
        "wall_seconds": m.wall_seconds,
        "source": info.name,
        "source_trust": info.trust.value,
        "source_measures": info.measures,
        "model": _model_fields(src) or None,
        "node_it_joules": m.node_joules,
        "node_average_watts": m.node_joules / m.wall_seconds if m.wall_seconds > 0 else 0.0,
        "node_cpu_usage": m.usage,
        "joules_per_cpu_second": m.joules_per_cpu_second,
        "spread_idle": cfg.spread_idle,
        "pue": report.pue,
        "wue_l_per_kwh": report.wue_l_per_kwh,
        "carbon_g_per_kwh": report.carbon_g_per_kwh,
        "carbon_basis": report.carbon_basis,
        "notes": m.notes,
    }
    if json_out:
        print_json(data)
    else:
        t = Table(title=f"energy of: {esc(' '.join(command))}", show_header=False)
        t.add_row("IT energy", f"{m.it_joules:.4g} J (node: {m.node_joules:.4g} J over the run)")
        t.add_row("facility energy", f"{report.facility_joules:.4g} J (PUE {report.pue:g})")
        t.add_row("CO2e", f"{report.co2e_grams:.4g} g ({report.carbon_g_per_kwh:g} g/kWh, {esc(report.carbon_basis)})")
        t.add_row("water", f"{report.water_litres * 1000:.4g} mL (WUE {report.wue_l_per_kwh:g} L/kWh)")
        t.add_row("CPU time", f"{m.cpu_seconds:.3f} s")
        t.add_row("wall time", f"{m.wall_seconds:.3f} s")
        t.add_row("source", esc(f"{info.name} ({info.trust.value}): {info.measures}"))
        if info.detail:
            t.add_row("basis", esc(info.detail))
        t.add_row("exit code", str(m.exit_code))
        err_console.print(t)
    raise typer.Exit(m.exit_code)


def _top_data(iv: Interval, limit: int) -> dict[str, Any]:
    procs = sorted(iv.processes.workloads.items(), key=lambda kv: -kv[1])[:limit]
    rows = []
    for pid, joules in procs:
        p = iv.info.get(pid)
        rows.append(
            {
                "pid": pid,
                "comm": p.comm if p else "",
                "container_id": p.container.container_id if p and p.container else "",
                "watts": joules / iv.seconds if iv.seconds > 0 else 0.0,
                "cpu_seconds": iv.process_cpu.get(pid, 0.0),
            }
        )
    containers = [
        {"container_id": ref.container_id, "runtime": ref.runtime, "watts": j / iv.seconds if iv.seconds else 0.0}
        for ref, j in sorted(iv.containers().items(), key=lambda kv: -kv[1])[:limit]
    ]
    return {
        "seconds": iv.seconds,
        "source": iv.source.name,
        "source_trust": iv.source.trust.value,
        "node_watts": iv.node_watts,
        "active_watts": iv.processes.active / iv.seconds if iv.seconds else 0.0,
        "idle_watts": iv.processes.idle / iv.seconds if iv.seconds else 0.0,
        "cpu_usage": iv.usage,
        "logical_cpus": iv.logical_cpus,
        "processes": rows,
        "containers": containers,
    }


def _top_table(d: dict[str, Any]) -> Table:
    t = Table(
        title=f"node {d['node_watts']:.2f} W (active {d['active_watts']:.2f} W, idle {d['idle_watts']:.2f} W), "
        f"CPU {d['cpu_usage'] * 100:.0f}% of {d['logical_cpus']}, source {esc(d['source'])} ({d['source_trust']})"
    )
    for col in ("pid", "command", "container", "watts", "CPU s"):
        t.add_column(col, justify="right" if col in ("pid", "watts", "CPU s") else "left")
    for p in d["processes"]:
        t.add_row(
            str(p["pid"]), esc(p["comm"]), esc(p["container_id"][:12]), f"{p['watts']:.3f}", f"{p['cpu_seconds']:.2f}"
        )
    return t


@energy_app.command()
@reports_errors
def top(
    json_out: JsonOpt = False,
    once: Annotated[bool, typer.Option("--once", help="One interval, then exit.")] = False,
    iterations: Annotated[int | None, typer.Option("--iterations", "-n", min=1, help="Stop after N intervals.")] = None,
    interval: Annotated[float, typer.Option(help="Refresh interval, seconds.", min=0.05)] = 1.0,
    limit: Annotated[int, typer.Option(help="Top consumers shown.", min=1)] = 15,
    source: SourceOpt = None,
    idle_watts: IdleOpt = None,
    max_watts: MaxOpt = None,
    spread_idle: SpreadOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Live view of node power and its top consumers, refreshed each interval (--json: one object per line)."""
    cfg, roots, src = _metered(config, source, idle_watts, max_watts, spread_idle)
    meter = Meter(src, ProcReader(roots.proc), spread_idle=cfg.spread_idle)
    count = 1 if once else iterations
    meter.sample(time.monotonic())
    done = 0
    live: Live | None = None
    if not json_out and count != 1 and console.is_terminal:  # redrawn in place only on a terminal
        live = Live(console=console, auto_refresh=False)
        live.start()
    try:
        while count is None or done < count:
            time.sleep(interval)
            iv = meter.sample(time.monotonic())
            if iv is None:
                continue
            done += 1
            d = _top_data(iv, limit)
            if json_out:
                sys.stdout.write(json.dumps(d) + "\n")
                sys.stdout.flush()
            elif live is not None:
                live.update(_top_table(d), refresh=True)
            else:  # not a terminal: one plain frame per interval, flushed (a SIGTERM must not lose them)
                console.print(_top_table(d))
                console.file.flush()
    except KeyboardInterrupt:
        pass
    finally:
        if live is not None:
            live.stop()


@energy_app.command()
@reports_errors
def serve(
    listen: Annotated[str, typer.Option(help="HOST:PORT to serve /metrics on.")] = "127.0.0.1:28282",
    interval: Annotated[
        float,
        typer.Option(
            help="Sampling interval, seconds, at its multiples since the epoch (zerowatt up --energy-interval "
            "must match for the apps' joules to add up to these figures).",
            min=0.05,
        ),
    ] = 1.0,
    duration: Annotated[float, typer.Option(help="Stop after this many seconds (0: run until stopped).", min=0)] = 0.0,
    node_name: Annotated[str | None, typer.Option(help="node_name label (default: host name).")] = None,
    gpu: Annotated[bool, typer.Option("--gpu/--no-gpu", help="Also export NVIDIA GPUs when NVML is available.")] = True,
    max_terminated: Annotated[
        int,
        typer.Option(
            help="Exited processes kept as series with state=terminated, highest energy first; the rest add "
            "to zerowatt_terminated_joules_total (0: none, -1: all; Kepler's monitor.max-terminated).",
            min=-1,
        ),
    ] = 500,
    pue: PueOpt = None,
    wue: WueOpt = None,
    carbon: CarbonOpt = None,
    region: RegionOpt = None,
    source: SourceOpt = None,
    idle_watts: IdleOpt = None,
    max_watts: MaxOpt = None,
    spread_idle: SpreadOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Export node, process and container energy to Prometheus (zerowatt and Kepler metric names)."""
    from zerowatt.parsing import parse_host_port

    host, port = parse_host_port(listen, key="--listen", default_host="127.0.0.1")
    cfg, roots, src = _metered(
        config, source, idle_watts, max_watts, spread_idle, pue=pue, wue=wue, carbon=carbon, region=region
    )
    nvml: NvmlSource | None = None
    if gpu:
        try:
            nvml = NvmlSource()
        except SensorError as exc:
            err_console.print(f"[dim]GPU source: {esc(exc)}[/]", highlight=False)
    exporter = Exporter(
        Meter(src, ProcReader(roots.proc), spread_idle=cfg.spread_idle),
        cfg.facility(),
        interval=interval,
        node_name=node_name,
        gpu=nvml,
        max_terminated=max_terminated,
    )
    try:
        bound = exporter.start(host, port)
    except OSError as exc:
        raise ValidationError("--listen", f"cannot listen on {listen}: {exc.strerror}") from None
    shown = f"[{host}]" if ":" in host else host
    err_console.print(
        f"serving energy metrics on http://{shown}:{bound}/metrics (source: {src.info.name})",
        highlight=False,
        markup=False,
    )
    stop = {"now": False}

    def _stop(signum: int, frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    deadline = time.monotonic() + duration if duration > 0 else None
    try:
        while not stop["now"] and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.1)
    except KeyboardInterrupt:
        pass
    finally:
        exporter.stop()


def register(app: typer.Typer) -> None:
    """Add ``zerowatt energy ...`` to the main app."""
    app.add_typer(energy_app, name="energy")
