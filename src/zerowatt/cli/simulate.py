"""``zerowatt simulate``: replay an Azure Functions trace through autoscaling policies.

A thin adapter: picks the trace files, runs :mod:`zerowatt.scaling.sim.driver`, prints a rich table or JSON,
and writes the comparison plot. Results from the Azure trace carry its attribution.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from zerowatt.cli.common import console, err_console, esc, print_json, reports_errors
from zerowatt.errors import UsageError
from zerowatt.scaling.sim.driver import PolicyResult, SimulationConfig, parse_policies, prepare, run_policy
from zerowatt.scaling.sim.pareto import Pareto, keepalive_sweep, pareto
from zerowatt.scaling.sim.plot import ATTRIBUTION, write_pareto_plot, write_plot
from zerowatt.scaling.sim.trace import SPREADS, Trace, available_sizes, expand, read_trace

#: Fixed keep-alive windows of the frontier drawn in the plot (1 minute to 4 hours).
FRONTIER_WINDOWS = (60.0, 300.0, 600.0, 1200.0, 3600.0, 7200.0, 14400.0)
#: ``--functions`` above the largest file resamples into a [functions, minutes] count matrix: 100,000
#: functions of a day are 1.2 GB of counts (the Azure 2019 trace has about 50,000 functions a day).
MAX_FUNCTIONS = 100_000
#: ``--cold-start`` above a day is a unit mistake (the flag is in seconds).
MAX_COLD_START = 86400.0


def load_trace(directory: Path, functions: int | None, seed: int) -> tuple[Trace, str]:
    """Pick the ``N_*.csv`` set in ``directory`` and cut or resample it to ``functions`` functions."""
    sizes = available_sizes(directory)
    if not sizes:
        raise UsageError(f"--trace {directory}: no N_inv.csv file (expected N_inv.csv, N_run.csv, N_mem.csv)")
    note = ""
    if functions is None:
        size = sizes[-1]
        if len(sizes) > 1:
            note = f"using the {size}-function files (also present: {', '.join(map(str, sizes[:-1]))})"
        return read_trace(directory, size), note
    if functions < 1:
        raise UsageError(f"--functions: expected at least 1, got {functions}")
    if functions > MAX_FUNCTIONS:
        raise UsageError(f"--functions: expected at most {MAX_FUNCTIONS:,}, got {functions:,}")
    bigger = [s for s in sizes if s >= functions]
    if bigger:
        trace = read_trace(directory, bigger[0])
        return (trace.take(functions) if bigger[0] > functions else trace), note
    trace = read_trace(directory, sizes[-1])
    note = f"resampled the {sizes[-1]}-function files to {functions} functions (seed {seed})"
    return trace.resample(functions, seed), note


def _ms(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def _table(results: dict[str, PolicyResult], cold_start: float, trace: Trace) -> Table:
    table = Table(
        title=f"{trace.n_functions} functions, {trace.invocations:,} invocations, cold start {cold_start * 1000:g} ms",
        caption=ATTRIBUTION,
    )
    for col in ("policy", "cold starts", "share", "p50 ms", "p99 ms", "p99.9 ms", "instance-s", "idle inst-s",
                "idle GB-s", "IT kJ", "facility kJ"):  # fmt: skip
        table.add_column(col, justify="left" if col == "policy" else "right")
    for name, r in results.items():
        lat = r.latency_added_ms
        table.add_row(
            name,
            f"{r.cold_starts:,}",
            f"{r.cold_start_share:.2%}",
            _ms(lat["p50"]),
            _ms(lat["p99"]),
            _ms(lat["p999"]),
            f"{r.instance_seconds:,.0f}",
            f"{r.idle_instance_seconds:,.0f}",
            f"{r.idle_memory_gb_seconds:,.0f}",
            f"{r.energy_joules / 1000:,.1f}",
            f"{r.facility_energy_joules / 1000:,.1f}",
        )
    return table


def _pareto_table(sweep: Pareto) -> Table:
    table = Table(title="Pareto sweep (Shahrad et al. §5.2 axes)", caption=ATTRIBUTION)
    for col in ("policy", "window / range", "p75 fn cold %", "wasted mem (x 10-min)", "cold starts",
                "keep-alive p75 % at same memory"):  # fmt: skip
        table.add_column(col, justify="left" if col == "policy" else "right")
    for q in sweep.keepalive:
        table.add_row("keepalive", f"{q.param_s / 60:g} min", f"{100 * q.cold_start_share_p75:.1f}",
                      f"{q.memory_norm:.2f}", f"{q.cold_starts:,}", "")  # fmt: skip
    for q in sweep.hybrid:
        share, _ = sweep.keepalive_at(q.memory_norm)
        table.add_row("hybrid", f"{q.param_s / 3600:g} h", f"{100 * q.cold_start_share_p75:.1f}",
                      f"{q.memory_norm:.2f}", f"{q.cold_starts:,}", f"{100 * share:.1f}")  # fmt: skip
    return table


def register(app: typer.Typer) -> None:
    """Add ``zerowatt simulate``."""

    @app.command()
    @reports_errors
    def simulate(
        trace: Annotated[Path, typer.Option("--trace", help="Directory with N_inv.csv, N_run.csv, N_mem.csv.")],
        policy: Annotated[
            str, typer.Option("--policy", help="Comma-separated: kpa, keepalive, hybrid, energy.")
        ] = "kpa,keepalive,hybrid,energy",
        functions: Annotated[
            int | None, typer.Option("--functions", help="Use N functions (the first N, or resampled if more).")
        ] = None,
        cold_start: Annotated[
            float, typer.Option("--cold-start", help="Seconds an instance takes to start (0.0003 Wasm, 1 container).")
        ] = 0.0003,
        seed: Annotated[int, typer.Option("--seed", help="Seed of arrival spreading and durations.")] = 1,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
        plot: Annotated[Path | None, typer.Option("--plot", help="Write a PNG comparing the policies.")] = None,
        arrivals: Annotated[
            str,
            typer.Option("--arrivals", help="Spreading inside each minute: uniform (default) or phase (timer-like)."),
        ] = "uniform",
        pareto_plot: Annotated[
            Path | None,
            typer.Option(
                "--pareto",
                help="Sweep fixed keep-alive windows and hybrid ranges; write the paper's Pareto plot (PNG).",
            ),
        ] = None,
        warmup: Annotated[
            float,
            typer.Option(
                "--warmup", help="With --pareto: count only from this many seconds on (policies learn from 0)."
            ),
        ] = 0.0,
    ) -> None:
        """Replay an Azure Functions 2019 trace through autoscaling policies (cold starts, idle time, energy)."""
        names = parse_policies(policy)
        if not (math.isfinite(warmup) and warmup >= 0):  # NaN passes "< 0": ask for what is wanted
            raise UsageError(f"--warmup: expected seconds >= 0, got {warmup}")
        if arrivals not in SPREADS:
            raise UsageError(f"--arrivals: expected one of {', '.join(SPREADS)}, got {arrivals!r}")
        if not (math.isfinite(cold_start) and 0 <= cold_start <= MAX_COLD_START):
            raise UsageError(f"--cold-start: expected seconds between 0 and {MAX_COLD_START:g}, got {cold_start}")
        if seed < 0:
            raise UsageError(f"--seed: expected a whole number >= 0, got {seed}")
        loaded, note = load_trace(trace, functions, seed)
        if note:
            err_console.print(f"[dim]{esc(note)}[/]")
        config = SimulationConfig(cold_start=cold_start)
        results: dict[str, PolicyResult] = {}
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
            disable=not err_console.is_terminal,
        ) as progress:
            task = progress.add_task("expanding trace", total=len(names) + 1)
            prep = prepare(expand(loaded, seed, arrivals))
            for i, name in enumerate(names):
                progress.update(task, description=f"policy {name}", completed=i + 1)

                def step(frac: float, base: int = i + 1) -> None:
                    progress.update(task, completed=base + min(frac, 1.0))

                results[name] = run_policy(name, prep, config, step)
            progress.update(task, completed=len(names) + 1)
        if plot is not None:
            frontier = keepalive_sweep(prep, config, FRONTIER_WINDOWS)
            title = (f"{loaded.n_functions} functions, one day, cold start {cold_start * 1000:g} ms"
                     f" (seed {seed})")  # fmt: skip
            write_plot(plot, results, frontier, title)
            err_console.print(f"[dim]plot written to {esc(plot)}[/]")
        sweep = None
        if pareto_plot is not None:
            if warmup >= loaded.horizon:
                raise UsageError(f"--warmup: {warmup:g} s leaves nothing of the {loaded.horizon:g} s trace")
            sweep = pareto(prep, config, warmup=warmup)
            title = (f"{loaded.n_functions} functions, one day, cold start {cold_start * 1000:g} ms"
                     f" (seed {seed}, {arrivals} arrivals, counted from {warmup / 3600:g} h)")  # fmt: skip
            write_pareto_plot(pareto_plot, {arrivals: sweep}, title)
            err_console.print(f"[dim]Pareto plot written to {esc(pareto_plot)}[/]")
        if as_json:
            out: dict[str, Any] = {
                "policies": {n: r.to_json() for n, r in results.items()},
                "trace": {
                    "source": loaded.source,
                    "functions": loaded.n_functions,
                    "invocations": loaded.invocations,
                    "fallbacks": loaded.fallbacks,
                    "attribution": ATTRIBUTION,
                },
                "cold_start_s": cold_start,
                "seed": seed,
                "arrivals": arrivals,
            }
            if sweep is not None:
                out["pareto"] = sweep.to_json()
            print_json(out)
            return
        # Piped output is not cut to 80 columns: the table is meant to be read whole.
        out_console = console if console.is_terminal else Console(width=max(console.width, 160))
        out_console.print(_table(results, cold_start, loaded))
        if sweep is not None:
            out_console.print(_pareto_table(sweep))
