"""``zerowatt capacity``: what the cluster's capacity is for, and which servers can be off."""

from __future__ import annotations

import json
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from zerowatt.cli.common import err_console, esc, reports_errors
from zerowatt.cli.energy import CarbonOpt, PueOpt, RegionOpt, WueOpt
from zerowatt.errors import SettingError, UsageError


class Format(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"
    html = "html"


def parse_node_watts(text: str | None) -> tuple[float, float] | None:
    """``--node-watts idle,max`` → (idle, max) watts, both ≥ 0 and idle ≤ max."""
    if text is None:
        return None
    parts = text.split(",")
    try:
        idle, full = (float(p) for p in parts)
    except ValueError:
        raise SettingError("node_watts", f"expected IDLE,MAX in watts (e.g. 80,350), got {text!r}") from None
    if not (0.0 <= idle <= full) or full == float("inf"):
        raise SettingError("node_watts", f"expected 0 ≤ idle ≤ max, finite, got {text!r}")
    return idle, full


def _percent(value: float, key: str) -> float:
    frac = value / 100.0 if value > 1.0 else value
    if not 0.0 <= frac <= 1.0:
        raise SettingError(key, f"expected a percentile in [0, 100], got {value:g}")
    return frac


def capacity(
    snapshot: Annotated[
        Path | None,
        typer.Option(
            "--snapshot", help="kubectl get nodes,pods,pdb,deploy,sts,ds -A -o json output (default: live API)."
        ),
    ] = None,
    kubeconfig: Annotated[str | None, typer.Option(help="Kubeconfig for the live API (default $KUBECONFIG).")] = None,
    context: Annotated[str | None, typer.Option(help="Kubeconfig context for the live API.")] = None,
    samples_file: Annotated[
        Path | None, typer.Option("--samples", help="Usage samples, the CSV/Parquet of zerowatt rightsize --samples.")
    ] = None,
    prometheus_url: Annotated[str | None, typer.Option("--prometheus", help="Prometheus base URL for usage.")] = None,
    history: Annotated[str, typer.Option(help="How much usage history to read, e.g. 14d.")] = "14d",
    end: Annotated[str | None, typer.Option(help="End of the history (RFC 3339 or Unix s).")] = None,
    step: Annotated[str, typer.Option(help="Prometheus query resolution.")] = "1m",
    rate_window: Annotated[str, typer.Option(help="Window of rate() for CPU counters.")] = "5m",
    base_percentile: Annotated[float, typer.Option(help="Usage percentile that is base load.")] = 10.0,
    peak_percentile: Annotated[float, typer.Option(help="Usage percentile that is the peak.")] = 95.0,
    node_watts: Annotated[
        str | None, typer.Option("--node-watts", help="IDLE,MAX watts of every node (default: from its labels).")
    ] = None,
    node_cpu: Annotated[
        str | None, typer.Option("--node-cpu", help="CPU model of every node, for the SPECpower/CCF model.")
    ] = None,
    pue: PueOpt = None,
    wue: WueOpt = None,
    carbon: CarbonOpt = None,
    region: RegionOpt = None,
    price_per_node_hour: Annotated[
        float | None, typer.Option(min=0.0, help="Price of one node-hour, for the money saved per year.")
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
    json_out: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    output: Annotated[Path | None, typer.Option(help="Write the report to this file instead of stdout.")] = None,
) -> None:
    """What a cluster's capacity is for (base, variable, safety, growth, redundancy, idle); which nodes can go."""
    from zerowatt.capacity import load, render
    from zerowatt.capacity.power import node_models
    from zerowatt.capacity.report import analyse, document
    from zerowatt.capacity.usage import Usage
    from zerowatt.energy.facility import facility_from
    from zerowatt.parsing import parse_duration, parse_unix_or_timestamp

    if samples_file is not None and prometheus_url is not None:
        raise UsageError("give at most one of --samples FILE or --prometheus URL")
    if json_out:
        fmt = Format.json
    watts = parse_node_watts(node_watts)
    facility = facility_from(pue, wue, carbon, region)
    base_q = _percent(base_percentile, "base_percentile")
    peak_q = _percent(peak_percentile, "peak_percentile")
    if base_q > peak_q:
        raise SettingError("base_percentile", "must not be above --peak-percentile")
    hist = parse_duration(history, key="--history")
    end_at = parse_unix_or_timestamp(end, key="--end") if end else None
    snap = load.read_snapshot(snapshot) if snapshot is not None else load.live_snapshot(kubeconfig, context)
    cluster = snap.cluster
    warnings = list(snap.warnings)
    if samples_file is not None:
        usage, more = load.usage_from_samples(cluster, samples_file, hist, end_at, base_q, peak_q)
        usage_source = str(samples_file)
    elif prometheus_url is not None:
        now = end_at if end_at is not None else time.time()
        parse_duration(rate_window, key="--rate-window")
        usage, more = load.usage_from_prometheus(
            cluster, prometheus_url, hist, now, base_q, peak_q, parse_duration(step, key="--step"), rate_window
        )
        usage_source = prometheus_url
    else:
        usage, more, usage_source = Usage.unknown(cluster.n_rows), [], ""
        more.append("no usage given (--samples or --prometheus): every request counts as base load")
    warnings += more
    unknown = cluster.n_rows - usage.known_rows()
    if usage_source and unknown:
        warnings.append(f"{unknown} of {cluster.n_rows} containers have no usage data: their requests count as base")
    models = node_models(cluster.node_labels, cluster.node_cpus, watts, node_cpu)
    generic = models.basis.count("generic-default")
    if generic:
        warnings.append(
            f"{generic} node(s) have no known CPU or instance type: CCF's average per-vCPU watts "
            "(set --node-cpu or --node-watts)"
        )
    result = analyse(cluster, usage, models, facility, price_per_node_hour)
    result.source = str(snapshot) if snapshot is not None else "the Kubernetes API"
    result.usage_source = usage_source
    result.warnings = warnings
    doc = document(result)
    for w in warnings:
        err_console.print(f"[yellow]warning:[/] {esc(w)}", highlight=False, soft_wrap=True)
    if fmt is Format.json:
        text = json.dumps(doc, indent=2) + "\n"
    elif fmt is Format.yaml:
        text = render.render_yaml(doc)
    elif fmt is Format.html:
        text = render.render_html(doc)
    else:
        text = render.render_table(doc)
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        output.write_text(text)


def register(app: typer.Typer) -> None:
    """Add ``zerowatt capacity``."""
    app.command(name="capacity")(reports_errors(capacity))
