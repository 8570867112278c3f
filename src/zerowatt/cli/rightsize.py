"""``zerowatt rightsize``: VPA-exact (or KRR-simple) recommendations from Prometheus or sample files."""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from zerowatt.cli.common import console, err_console, esc, reports_errors
from zerowatt.cli.energy import CarbonOpt, PueOpt, RegionOpt, WueOpt, capacity_pricing
from zerowatt.energy.capacity import with_overrides
from zerowatt.errors import UsageError, ValidationError
from zerowatt.rightsize import apply as apply_mod
from zerowatt.rightsize import prometheus, report, samples
from zerowatt.rightsize.estimator import SimpleConfig, VpaConfig


class StrategyName(StrEnum):
    vpa = "vpa"
    simple = "simple"


class Format(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"
    csv = "csv"
    html = "html"


class PowerModel(StrEnum):
    node = "node"
    ccf = "ccf"


class ApplyAs(StrEnum):
    vpa = "vpa"
    patch = "patch"


def _fraction(value: float | None, where: str) -> float | None:
    """Percentiles and margins may be given as 0.9 or 90 (percent)."""
    if value is None:
        return None
    frac = value / 100.0 if value > 1.0 else value
    if not 0.0 <= frac <= 1.0:
        raise ValidationError(where, f"expected a fraction in [0, 1] or a percentage, got {value}")
    return frac


def _progress(description: str) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )


def rightsize(
    prometheus_url: Annotated[str | None, typer.Option("--prometheus", help="Prometheus base URL.")] = None,
    samples_file: Annotated[
        Path | None, typer.Option("--samples", help="CSV or Parquet file of usage samples.")
    ] = None,
    strategy: Annotated[
        StrategyName, typer.Option(help="vpa (the VPA recommender) or simple (KRR's).")
    ] = StrategyName.vpa,
    history: Annotated[str, typer.Option(help="How much history to use, e.g. 14d, 8d, 36h.")] = "14d",
    end: Annotated[
        str | None, typer.Option(help="End of the history (RFC 3339 or Unix s); default now / file end.")
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
    json_out: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    output: Annotated[Path | None, typer.Option(help="Write the report to this file instead of stdout.")] = None,
    namespace: Annotated[list[str] | None, typer.Option(help="Only these namespaces (repeatable).")] = None,
    selector: Annotated[
        str | None, typer.Option(help="k=v,... label matches (files: namespace/pod/container/workload).")
    ] = None,
    cpu_percentile: Annotated[float | None, typer.Option(help="CPU target percentile (vpa 90, simple 95).")] = None,
    memory_percentile: Annotated[float | None, typer.Option(help="Memory-peak target percentile (vpa 90).")] = None,
    cpu_margin: Annotated[float | None, typer.Option(help="CPU safety margin (vpa 0.15, simple 0).")] = None,
    memory_margin: Annotated[float | None, typer.Option(help="Memory safety margin (vpa 0.15, simple 0.15).")] = None,
    step: Annotated[str, typer.Option(help="Prometheus query resolution.")] = "1m",
    rate_window: Annotated[str, typer.Option(help="Window of rate() for CPU counters.")] = "5m",
    pods_per_query: Annotated[int, typer.Option(help="Pods per Prometheus query (bounds its load).")] = 50,
    concurrency: Annotated[int, typer.Option(help="Prometheus queries in flight at once.")] = 4,
    timeout: Annotated[float, typer.Option(help="Seconds before one Prometheus query times out.")] = 30.0,
    allow_partial: Annotated[bool, typer.Option(help="Report even if some chunks failed (never applied).")] = False,
    apply: Annotated[
        Path | None, typer.Option("--apply", help="Write VPA objects or patches into this directory.")
    ] = None,
    apply_as: Annotated[
        ApplyAs, typer.Option(help="What --apply writes: vpa (updateMode Off) or patch.")
    ] = ApplyAs.vpa,
    dry_run: Annotated[bool, typer.Option(help="With --apply: print the objects, write nothing.")] = False,
    power_model: Annotated[
        PowerModel,
        typer.Option(help="Watts per freed core: node (the energy model of this CPU or --cpu) or ccf (CCF averages)."),
    ] = PowerModel.node,
    cpu: Annotated[
        str | None, typer.Option("--cpu", help="CPU model name for --power-model node (default: /proc/cpuinfo).")
    ] = None,
    pue: PueOpt = None,
    wue: WueOpt = None,
    carbon: CarbonOpt = None,
    region: RegionOpt = None,
    watts_per_vcpu: Annotated[
        float | None, typer.Option(min=0.0, help="Override the watts per freed vCPU of --power-model.")
    ] = None,
    watts_per_gb: Annotated[
        float | None, typer.Option(min=0.0, help="Override the watts per freed GB of memory (default 0.392, CCF).")
    ] = None,
) -> None:
    """Recommend CPU/memory requests as the VPA would, and show the cores, GiB and watts they free."""
    from zerowatt.parsing import parse_duration, parse_unix_or_timestamp

    if (prometheus_url is None) == (samples_file is None):
        raise UsageError("give exactly one of --prometheus URL or --samples FILE")
    if json_out:
        fmt = Format.json
    hist = parse_duration(history, key="--history")
    vpa_cfg = VpaConfig()
    simple_cfg = SimpleConfig()
    cp, mp = _fraction(cpu_percentile, "--cpu-percentile"), _fraction(memory_percentile, "--memory-percentile")
    cm, mm = _fraction(cpu_margin, "--cpu-margin"), _fraction(memory_margin, "--memory-margin")
    if strategy is StrategyName.vpa:
        vpa_cfg = replace(
            vpa_cfg,
            target_cpu_percentile=cp if cp is not None else vpa_cfg.target_cpu_percentile,
            target_memory_percentile=mp if mp is not None else vpa_cfg.target_memory_percentile,
            cpu_margin=cm if cm is not None else vpa_cfg.cpu_margin,
            memory_margin=mm if mm is not None else vpa_cfg.memory_margin,
        )
    else:
        if mp is not None:
            raise UsageError("--memory-percentile applies to the vpa strategy; simple uses the peak")
        simple_cfg = SimpleConfig(
            cpu_percentile=cp if cp is not None else simple_cfg.cpu_percentile,
            cpu_margin=cm if cm is not None else simple_cfg.cpu_margin,
            memory_margin=mm if mm is not None else simple_cfg.memory_margin,
        )
    sel = samples.parse_selector(selector)
    power = with_overrides(
        capacity_pricing(power_model.value, cpu, pue, wue, carbon, region), watts_per_vcpu, watts_per_gb
    )
    end_at = parse_unix_or_timestamp(end, key="--end") if end else None
    partial = False
    with _progress("reading") as bar:
        task = bar.add_task("reading samples" if samples_file else "querying Prometheus", total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        if samples_file is not None:
            flt = samples.SampleFilter(namespaces=tuple(namespace or ()), selector=sel)
            acc, stats = samples.load_samples(
                samples_file,
                hist,
                now=end_at,
                config=vpa_cfg,
                flt=flt,
                progress=tick,
                track_simple=strategy is StrategyName.simple,
            )
            source = str(samples_file)
        else:
            assert prometheus_url is not None
            plan = prometheus.ChunkPlan(
                step=parse_duration(step, key="--step"),
                pods_per_query=max(1, pods_per_query),
                concurrency=max(1, concurrency),
                timeout=timeout,
                rate_window=rate_window,
            )
            parse_duration(rate_window, key="--rate-window")
            fetched = prometheus.fetch(
                prometheus_url,
                end_at if end_at is not None else time.time(),
                hist,
                plan=plan,
                config=vpa_cfg,
                namespaces=namespace or (),
                selector=sel,
                allow_partial=allow_partial,
                progress=tick,
                track_simple=strategy is StrategyName.simple,
            )
            acc, stats, partial = fetched.accumulator, fetched.stats, fetched.partial
            source = prometheus_url
    recs = acc.recommend(strategy.value, simple_cfg)
    warnings = list(stats.warnings)
    if partial:
        warnings.insert(0, "PARTIAL DATA: some chunks failed; recommendations are incomplete")
    rep = report.Report(strategy.value, source, hist, acc.now, recs, power, warnings)
    for w in warnings:
        err_console.print(f"[yellow]warning:[/] {esc(w)}", highlight=False, soft_wrap=True)
    _emit(rep, fmt, output)
    if apply is not None:
        if partial:
            raise UsageError("refusing --apply: the data is partial (some Prometheus chunks failed)")
        files, notes = apply_mod.render_objects(recs, apply_as.value)
        for n in notes:
            err_console.print(f"[yellow]note:[/] {esc(n)}", highlight=False, soft_wrap=True)
        for rel, text in files:
            if dry_run:
                err_console.print(f"# {apply / rel}", highlight=False, markup=False)
                sys.stderr.write(text + "---\n")
            else:
                target = apply / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
        verb = "would write" if dry_run else "wrote"
        err_console.print(f"{verb} {len(files)} file(s) under {apply}", highlight=False, markup=False)


def _emit(rep: report.Report, fmt: Format, output: Path | None) -> None:
    if fmt is Format.table:
        if output is None:
            for t in report.render_table(rep):
                console.print(t)
            return
        from rich.console import Console

        with output.open("w") as fh:
            file_console = Console(file=fh, width=160)
            for t in report.render_table(rep):
                file_console.print(t)
        return
    text = {
        Format.json: report.render_json,
        Format.yaml: report.render_yaml,
        Format.csv: report.render_csv,
        Format.html: report.render_html,
    }[fmt](rep)
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        output.write_text(text)


def register(app: typer.Typer) -> None:
    """Add ``zerowatt rightsize``."""
    app.command(name="rightsize")(reports_errors(rightsize))
