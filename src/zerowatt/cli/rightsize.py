"""``zerowatt rightsize``: VPA-exact (or KRR-simple) recommendations from Prometheus or sample files."""

from __future__ import annotations

import math
import sys
import time
from contextlib import nullcontext
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
from zerowatt.rightsize.accumulator import UsageAccumulator
from zerowatt.rightsize.estimator import SimpleConfig, VpaConfig
from zerowatt.rightsize.krr import KrrConfig
from zerowatt.rightsize.model import Recommendation
from zerowatt.units import MIB


class StrategyName(StrEnum):
    vpa = "vpa"
    simple = "simple"
    simple_limit = "simple_limit"
    simple_hist = "simple-hist"


class Format(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"
    csv = "csv"
    html = "html"
    pprint = "pprint"
    csv_raw = "csv_raw"
    csv_raw_dash = "csv-raw"  # KRR registers its formatter under this name


class Compute(StrEnum):
    local = "local"
    server = "server"


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


def _percent(value: float | None, where: str) -> float | None:
    """A percentile as KRR takes it (66 = 66 %); 0.66 is read as a fraction. Kept as given: no rounding."""
    if value is None:
        return None
    pct = value * 100.0 if value <= 1.0 else value
    if not 0.0 < pct <= 100.0:
        raise ValidationError(where, f"expected a percentile in (0, 100], got {value}")
    return pct


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
    prometheus_url: Annotated[
        str | None, typer.Option("--prometheus", "--prometheus-url", "-p", help="Prometheus base URL.")
    ] = None,
    samples_file: Annotated[
        Path | None, typer.Option("--samples", help="CSV or Parquet file of usage samples.")
    ] = None,
    strategy: Annotated[
        StrategyName,
        typer.Option(
            help="vpa (the VPA recommender), simple / simple_limit (KRR's, exactly), "
            "simple-hist (KRR-like from bounded-memory histograms)."
        ),
    ] = StrategyName.vpa,
    history: Annotated[
        str | None, typer.Option("--history", "--history-length", help="How much history, e.g. 14d, 36h.")
    ] = None,
    history_hours: Annotated[
        float | None,
        typer.Option("--history_duration", "--history-duration", help="KRR's spelling of --history, in hours."),
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="End of the history (RFC 3339 or Unix s); default now / file end.")
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", "--formatter", "-f", help="Output format.")] = Format.table,
    json_out: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    output: Annotated[Path | None, typer.Option(help="Write the report to this file instead of stdout.")] = None,
    namespace: Annotated[list[str] | None, typer.Option("--namespace", "-n", help="Only these namespaces.")] = None,
    selector: Annotated[
        str | None, typer.Option(help="k=v,... label matches (files: namespace/pod/container/workload).")
    ] = None,
    cpu_percentile: Annotated[
        float | None,
        typer.Option(
            "--cpu-percentile",
            "--cpu_percentile",
            "--target-cpu-percentile",
            help="CPU target percentile (vpa 0.9, simple 95), as 0.9 or 90.",
        ),
    ] = None,
    memory_percentile: Annotated[
        float | None,
        typer.Option("--memory-percentile", "--target-memory-percentile", help="Memory-peak target percentile."),
    ] = None,
    cpu_margin: Annotated[float | None, typer.Option(help="CPU safety margin (vpa 0.15).")] = None,
    memory_margin: Annotated[float | None, typer.Option(help="Memory safety margin (vpa 0.15, KRR 0.15).")] = None,
    margin: Annotated[
        float | None,
        typer.Option("--recommendation-margin-fraction", help="vpa: both safety margins (VPA default 0.15)."),
    ] = None,
    cpu_request_pct: Annotated[
        float | None, typer.Option("--cpu_request", "--cpu-request", help="simple_limit: CPU request percentile (66).")
    ] = None,
    cpu_limit_pct: Annotated[
        float | None, typer.Option("--cpu_limit", "--cpu-limit", help="simple_limit: CPU limit percentile (96).")
    ] = None,
    memory_buffer: Annotated[
        float | None,
        typer.Option("--memory_buffer_percentage", "--memory-buffer-percentage", help="KRR: memory buffer % (15)."),
    ] = None,
    points_required: Annotated[
        int, typer.Option("--points_required", "--points-required", help="KRR: points needed per resource.")
    ] = 100,
    cpu_min: Annotated[int, typer.Option("--cpu-min", help="KRR: minimum CPU recommendation, millicores.")] = 10,
    mem_min: Annotated[int, typer.Option("--mem-min", help="KRR: minimum memory recommendation, MiB.")] = 100,
    pod_min_cpu: Annotated[
        float,
        typer.Option("--pod-recommendation-min-cpu-millicores", help="vpa: per-pod CPU floor (VPA default 25)."),
    ] = 25.0,
    pod_min_memory: Annotated[
        float,
        typer.Option("--pod-recommendation-min-memory-mb", help="vpa: per-pod memory floor, MiB (VPA default 250)."),
    ] = 250.0,
    cpu_half_life: Annotated[
        str, typer.Option("--cpu-histogram-decay-half-life", help="vpa: CPU sample half-life (VPA default 24h).")
    ] = "24h",
    oom_ratio: Annotated[
        float, typer.Option("--oom-bump-up-ratio", help="vpa: memory × this after an OOM kill (VPA default 1.2).")
    ] = 1.2,
    oom_min_bytes: Annotated[
        float,
        typer.Option("--oom-min-bump-up-bytes", help="vpa: at least this many more bytes after an OOM kill (100 MiB)."),
    ] = 100.0 * 1024 * 1024,
    step: Annotated[
        str | None, typer.Option(help="Prometheus query resolution (vpa 1m; KRR's strategies 75s).")
    ] = None,
    timeframe_minutes: Annotated[
        float | None,
        typer.Option("--timeframe_duration", "--timeframe-duration", help="KRR's spelling of --step, in minutes."),
    ] = None,
    rate_window: Annotated[
        str, typer.Option(help="Window of rate() for CPU counters (vpa, simple-hist; KRR's use the step).")
    ] = "5m",
    compute: Annotated[
        Compute | None,
        typer.Option(help="local (read raw samples, evaluate rate()/KRR's PromQL here; default) or server."),
    ] = None,
    pods_per_query: Annotated[int, typer.Option(help="Pods per Prometheus query (bounds its load).")] = 50,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "--max-workers", "-w", help="Prometheus queries in flight at once.")
    ] = 4,
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
    """Recommend CPU/memory requests as the VPA (or KRR) would, and show the cores, GiB and watts they free."""
    from zerowatt.parsing import parse_duration, parse_unix_or_timestamp

    if (prometheus_url is None) == (samples_file is None):
        raise UsageError("give exactly one of --prometheus URL or --samples FILE")
    if json_out:
        fmt = Format.json
    if history is not None and history_hours is not None:
        raise UsageError("give --history or --history_duration, not both")
    if step is not None and timeframe_minutes is not None:
        raise UsageError("give --step or --timeframe_duration, not both")
    if pods_per_query < 1:
        raise ValidationError("--pods-per-query", f"must be at least 1, got {pods_per_query}")
    if concurrency < 1:
        raise ValidationError("--concurrency", f"must be at least 1, got {concurrency}")
    if not (timeout > 0 and math.isfinite(timeout)):
        raise ValidationError("--timeout", f"must be a positive number of seconds, got {timeout:g}")
    if history_hours is not None:
        if not (history_hours > 0 and math.isfinite(history_hours)):
            raise ValidationError("--history_duration", f"must be a positive number of hours, got {history_hours:g}")
        hist = history_hours * 3600.0
    else:
        hist = parse_duration(history or "14d", key="--history")
    krr_strategy = strategy in (StrategyName.simple, StrategyName.simple_limit)
    if timeframe_minutes is not None:
        if not (timeframe_minutes > 0 and math.isfinite(timeframe_minutes)):
            raise ValidationError(
                "--timeframe_duration", f"must be a positive number of minutes, got {timeframe_minutes:g}"
            )
        step_s = timeframe_minutes * 60.0
    else:
        step_s = parse_duration(step or ("75s" if krr_strategy else "1m"), key="--step")
    parse_duration(rate_window, key="--rate-window")
    vpa_cfg, simple_cfg, krr_cfg = _configs(
        strategy,
        _fraction(cpu_percentile, "--cpu-percentile"),
        _fraction(memory_percentile, "--memory-percentile"),
        _fraction(cpu_margin, "--cpu-margin"),
        _fraction(memory_margin, "--memory-margin"),
        _fraction(margin, "--recommendation-margin-fraction"),
        cpu_request_pct,
        cpu_limit_pct,
        memory_buffer,
        points_required,
        cpu_min,
        mem_min,
        step_s,
    )
    vpa_cfg = _vpa_tuning(
        vpa_cfg,
        pod_min_cpu,
        pod_min_memory,
        parse_duration(cpu_half_life, key="--cpu-histogram-decay-half-life"),
        oom_ratio,
        oom_min_bytes,
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
                track_simple=strategy is StrategyName.simple_hist,
                keep_series=krr_strategy,
            )
            source = str(samples_file)
            now_at = acc.now
            recs = _recommend(acc, strategy, simple_cfg, krr_cfg)
        else:
            assert prometheus_url is not None
            plan = prometheus.ChunkPlan(
                step=step_s,
                pods_per_query=pods_per_query,
                concurrency=concurrency,
                timeout=timeout,
                rate_window=rate_window,
            )
            now_at = end_at if end_at is not None else time.time()
            source = prometheus_url
            if krr_strategy:
                from zerowatt.rightsize.prometheus_krr import fetch_krr

                got = fetch_krr(
                    prometheus_url,
                    now_at,
                    hist,
                    cfg=krr_cfg,
                    plan=plan,
                    namespaces=namespace or (),
                    selector=sel,
                    allow_partial=allow_partial,
                    progress=tick,
                    compute=(compute or Compute.local).value,
                )
                recs, stats, partial = got.recommendations, got.stats, got.partial
            else:
                fetched = prometheus.fetch(
                    prometheus_url,
                    now_at,
                    hist,
                    plan=plan,
                    config=vpa_cfg,
                    namespaces=namespace or (),
                    selector=sel,
                    allow_partial=allow_partial,
                    progress=tick,
                    track_simple=strategy is StrategyName.simple_hist,
                    compute=(compute or Compute.local).value,
                )
                acc, stats, partial = fetched.accumulator, fetched.stats, fetched.partial
                now_at = acc.now
                recs = _recommend(acc, strategy, simple_cfg, krr_cfg)
    warnings = list(stats.warnings)
    if partial:
        warnings.insert(0, PARTIAL_BANNER)
    rep = report.Report(strategy.value, source, hist, now_at, recs, power, warnings)
    for w in warnings:
        err_console.print(f"[yellow]warning:[/] {esc(w)}", highlight=False, soft_wrap=True)
    _emit(rep, fmt, output, partial)
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


PARTIAL_BANNER = "PARTIAL DATA: some chunks failed; recommendations are incomplete"


def _configs(
    strategy: StrategyName,
    cp: float | None,
    mp: float | None,
    cm: float | None,
    mm: float | None,
    margin: float | None,
    cpu_request_pct: float | None,
    cpu_limit_pct: float | None,
    memory_buffer: float | None,
    points_required: int,
    cpu_min: int,
    mem_min: int,
    step_s: float,
) -> tuple[VpaConfig, SimpleConfig, KrrConfig]:
    """The three strategies' settings from the flags; a flag that does not apply to the strategy is an error."""
    vpa_cfg, simple_cfg = VpaConfig(), SimpleConfig()
    krr_cfg = KrrConfig(step=step_s)
    if points_required < 1:
        raise ValidationError("--points_required", f"must be at least 1, got {points_required}")
    if cpu_min < 0 or mem_min < 0:
        raise ValidationError("--cpu-min/--mem-min", "must not be negative")
    krr_only = {"--cpu_request": cpu_request_pct, "--cpu_limit": cpu_limit_pct}
    if strategy is StrategyName.vpa:
        if memory_buffer is not None or any(v is not None for v in krr_only.values()):
            raise UsageError("--cpu_request, --cpu_limit and --memory_buffer_percentage apply to KRR's strategies")
        if margin is not None and (cm is not None or mm is not None):
            raise UsageError("give --recommendation-margin-fraction or --cpu-margin/--memory-margin, not both")
        cm = margin if margin is not None else cm
        mm = margin if margin is not None else mm
        vpa_cfg = replace(
            vpa_cfg,
            target_cpu_percentile=cp if cp is not None else vpa_cfg.target_cpu_percentile,
            target_memory_percentile=mp if mp is not None else vpa_cfg.target_memory_percentile,
            cpu_margin=cm if cm is not None else vpa_cfg.cpu_margin,
            memory_margin=mm if mm is not None else vpa_cfg.memory_margin,
        )
        return vpa_cfg, simple_cfg, krr_cfg
    if mp is not None or margin is not None:
        raise UsageError("--memory-percentile and --recommendation-margin-fraction apply to the vpa strategy")
    if strategy is StrategyName.simple_hist:
        if memory_buffer is not None or any(v is not None for v in krr_only.values()):
            raise UsageError("--cpu_request, --cpu_limit and --memory_buffer_percentage apply to simple/simple_limit")
        simple_cfg = SimpleConfig(
            cpu_percentile=cp if cp is not None else simple_cfg.cpu_percentile,
            cpu_margin=cm if cm is not None else simple_cfg.cpu_margin,
            memory_margin=mm if mm is not None else simple_cfg.memory_margin,
        )
        return vpa_cfg, simple_cfg, krr_cfg
    if cm is not None:
        raise UsageError("KRR's strategies have no CPU margin (--cpu-margin applies to vpa and simple-hist)")
    if mm is not None and memory_buffer is not None:
        raise UsageError("give --memory-margin or --memory_buffer_percentage, not both")
    if strategy is StrategyName.simple and any(v is not None for v in krr_only.values()):
        raise UsageError("--cpu_request and --cpu_limit apply to simple_limit (simple uses --cpu_percentile)")
    if strategy is StrategyName.simple_limit and cp is not None:
        raise UsageError("--cpu_percentile applies to simple (simple_limit uses --cpu_request and --cpu_limit)")
    pct = {k: _percent(v, k) for k, v in krr_only.items()}
    buffer = memory_buffer if memory_buffer is not None else (mm * 100 if mm is not None else None)
    if buffer is not None and not (buffer >= 0 and math.isfinite(buffer)):
        raise ValidationError("--memory_buffer_percentage", f"must be a percentage ≥ 0, got {buffer:g}")
    krr_cfg = KrrConfig(
        strategy="simple" if strategy is StrategyName.simple else "simple_limit",
        cpu_percentile=cp * 100 if cp is not None else krr_cfg.cpu_percentile,
        cpu_request=pct["--cpu_request"] if pct["--cpu_request"] is not None else krr_cfg.cpu_request,
        cpu_limit=pct["--cpu_limit"] if pct["--cpu_limit"] is not None else krr_cfg.cpu_limit,
        memory_buffer_percentage=buffer if buffer is not None else krr_cfg.memory_buffer_percentage,
        points_required=points_required,
        cpu_min_millicores=cpu_min,
        memory_min_mib=mem_min,
        step=step_s,
    )
    return vpa_cfg, simple_cfg, krr_cfg


def _vpa_tuning(
    cfg: VpaConfig, pod_min_cpu: float, pod_min_mib: float, half_life: float, ratio: float, min_bytes: float
) -> VpaConfig:
    """The VPA recommender's tuning flags (``pkg/recommender/config/config.go``), checked and applied."""
    for name, value in (
        ("--pod-recommendation-min-cpu-millicores", pod_min_cpu),
        ("--pod-recommendation-min-memory-mb", pod_min_mib),
        ("--oom-min-bump-up-bytes", min_bytes),
    ):
        if not (value >= 0 and math.isfinite(value)):
            raise ValidationError(name, f"must be a number ≥ 0, got {value:g}")
    if not (ratio >= 1 and math.isfinite(ratio)):
        raise ValidationError("--oom-bump-up-ratio", f"must be a number ≥ 1, got {ratio:g}")
    return replace(
        cfg,
        pod_min_cpu_millicores=pod_min_cpu,
        pod_min_memory_bytes=pod_min_mib * MIB,  # the VPA multiplies the "MB" flag by 1024 × 1024
        cpu_half_life=half_life,
        oom_bump_ratio=ratio,
        oom_min_bump_bytes=min_bytes,
    )


def _recommend(
    acc: UsageAccumulator, strategy: StrategyName, simple_cfg: SimpleConfig, krr_cfg: KrrConfig
) -> list[Recommendation]:
    if strategy in (StrategyName.simple, StrategyName.simple_limit):
        return acc.krr_recommend(krr_cfg)
    return acc.recommend("simple" if strategy is StrategyName.simple_hist else "vpa", simple_cfg)


def _emit(rep: report.Report, fmt: Format, output: Path | None, partial: bool) -> None:
    if fmt is Format.table:
        from rich.console import Console

        with output.open("w") if output is not None else nullcontext(None) as fh:
            out = Console(file=fh, width=160) if fh is not None else console
            if partial:  # on the report itself, not only on stderr: a pasted table must carry it
                out.print(f"[bold red]{PARTIAL_BANNER}[/]", highlight=False)
            for t in report.render_table(rep):
                out.print(t)
        return
    text = {
        Format.json: report.render_json,
        Format.yaml: report.render_yaml,
        Format.csv: report.render_csv,
        Format.html: report.render_html,
        Format.pprint: report.render_pprint,
        Format.csv_raw: report.render_csv_raw,
        Format.csv_raw_dash: report.render_csv_raw,
    }[fmt](rep)
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        output.write_text(text)


def register(app: typer.Typer) -> None:
    """Add ``zerowatt rightsize``."""
    app.command(name="rightsize")(reports_errors(rightsize))
