"""``zerowatt downscaler``: py-kube-downscaler's command line (same flags, same environment variables).

Parsed with :mod:`argparse` from the :data:`OPTIONS` table, as upstream parses its own, and reached from
:func:`zerowatt.cli.main.main` before typer is imported: a downscaler run as a CronJob (``--once``) pays its
start-up every time, and typer, pydantic and rich are a third of it. The typer command registered for
``zerowatt --help`` hands its arguments over unparsed (:func:`register`).

Environment variables are read only for flags not given on the command line (a bad value names the
variable); ``--upscale-period``/``--default-uptime`` and ``--downscale-period``/``--default-downtime`` are
mutually exclusive on the command line, as in upstream's argparse groups.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zerowatt.errors import UsageError, ZerowattError

if TYPE_CHECKING:
    import typer

    from zerowatt.energy.capacity import CapacityPricing

log = logging.getLogger("zerowatt.kube")

SUMMARY = "Scale workloads down off-hours and back up: a drop-in replacement for kube-downscaler."
ADMISSION_CONTROLLERS = ("gatekeeper", "kyverno")
_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off", ""})


@dataclass(frozen=True)
class Opt:
    """One flag: its names, type (``str``, ``int``, ``float``, ``bool``), default, environment variables."""

    flags: tuple[str, ...]
    kind: type
    default: Any
    help: str
    env: tuple[str, ...] = ()
    minimum: float | None = None
    negatable: bool = False  # --x / --no-x

    @property
    def dest(self) -> str:
        return self.flags[0].removeprefix("--").replace("-", "_")


OPTIONS: tuple[Opt, ...] = (
    # default: py-kube-downscaler's README and Helm chart (its code says 30; see docs/downscaler.md)
    Opt(("--interval",), int, 60, "Seconds between passes", ("INTERVAL",), 1),
    Opt(("--once",), bool, False, "Run one pass and exit (1 if it failed)"),
    Opt(("--dry-run",), bool, False, "Decide and log, change nothing", ("DRY_RUN",)),
    Opt(("--namespace",), str, "", "Only these namespaces (comma-separated; default all)", ("NAMESPACE",)),
    Opt(("--include-resources",), str, "deployments", "Kinds to downscale (comma-separated)", ("INCLUDE_RESOURCES",)),
    Opt(
        ("--grace-period",),
        str,
        "900",
        "Seconds (or 15m) after creation/deployment not to downscale",
        ("GRACE_PERIOD",),
    ),
    Opt(("--default-uptime",), str, "always", "Default uptime schedule", ("DEFAULT_UPTIME",)),
    Opt(("--default-downtime",), str, "never", "Default downtime schedule", ("DEFAULT_DOWNTIME",)),
    Opt(("--upscale-period",), str, "never", "Period to scale up in (then only periods count)", ("UPSCALE_PERIOD",)),
    Opt(("--downscale-period",), str, "never", "Period to scale down in", ("DOWNSCALE_PERIOD",)),
    Opt(("--exclude-namespaces",), str, "kube-system", "Namespace regexes to leave alone", ("EXCLUDE_NAMESPACES",)),
    Opt(
        ("--exclude-deployments",),
        str,
        "py-kube-downscaler,kube-downscaler,downscaler,zerowatt-downscaler",
        "Object names (of any kind) to leave alone",
        ("EXCLUDE_DEPLOYMENTS",),
    ),
    Opt(
        ("--downtime-replicas",),
        str,
        "0",
        "Replicas during downtime (or a percentage, 20%: PodDisruptionBudgets only)",
        ("DOWNTIME_REPLICAS",),
    ),
    Opt(
        ("--deployment-time-annotation",),
        str,
        "",
        "Annotation holding the last deployment time (grace period)",
        ("DEPLOYMENT_TIME_ANNOTATION",),
    ),
    Opt(("--enable-events",), bool, False, "Emit Kubernetes Events on changes and errors", ("EVENTS",)),
    Opt(("--matching-labels",), str, "", "Only objects with a label key=value matching a regex", ("MATCHING_LABELS",)),
    Opt(
        ("--upscale-target-only",),
        bool,
        False,
        "Leave every excluded object as it is, even one that is down",
        ("UPSCALE_TARGET_ONLY",),
    ),
    Opt(
        ("--admission-controller",),
        str,
        "",
        "py-kube-downscaler's Job policies (gatekeeper, kyverno): not supported",
        ("ADMISSION_CONTROLLER",),
    ),
    Opt(("--json-logs",), bool, False, "Logs as JSON lines", ("JSON_LOGS",)),
    Opt(("--debug", "-d"), bool, False, "Debug logging", ("DEBUG",)),
    Opt(("--default-timezone",), str, "", "Time zone for specs without one", ("DEFAULT_TIMEZONE",)),
    Opt(("--default-weekdays",), str, "", "Weekdays for specs without any", ("DEFAULT_WEEKDAYS", "DEFAULT_WEEKFRAME")),
    Opt(
        ("--api-server-timeout",),
        float,
        10.0,
        "Seconds to wait for the API server (connect, each answer)",
        ("API_SERVER_TIMEOUT",),
        0.001,
    ),
    Opt(
        ("--max-retries-on-conflict",),
        int,
        3,
        "Re-read and re-decide an object after a 409 at most this often",
        ("MAX_RETRIES_ON_CONFLICT",),
        0,
    ),
    Opt(
        ("--max-retries-on-throttling",),
        int,
        4,
        "Retries of a request the API server throttled (429), with backoff",
        # upstream's cmd.py reads MAX_RETRIES_ON_CONFLICT for this flag: honoured after our own name
        ("MAX_RETRIES_ON_THROTTLING", "MAX_RETRIES_ON_CONFLICT"),
        0,
    ),
    Opt(("--qps",), int, 0, "Client-side limit, requests per second (0: none)", ("QPS",), 0),
    Opt(("--burst",), int, 0, "Requests allowed at once above --qps (at least --qps; 0: none)", ("BURST",), 0),
    Opt(("--kubeconfig",), str, "", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)"),
    Opt(("--context",), str, "", "kubeconfig context"),
    Opt(("--metrics-listen",), str, "", "Serve Prometheus metrics on PORT or HOST:PORT", ("METRICS_LISTEN",)),
    Opt(
        ("--argocd-pause-self-heal",),
        bool,
        False,
        "Pause the owning Argo CD Application's self-heal while downscaled",
        ("ARGOCD_PAUSE_SELF_HEAL",),
    ),
    Opt(("--argocd-namespace",), str, "argocd", "Namespace of Argo CD Applications", ("ARGOCD_NAMESPACE",)),
    Opt(
        ("--argocd-instance-label-key",),
        str,
        "app.kubernetes.io/instance",
        "Argo CD's application.instanceLabelKey (label tracking)",
        ("ARGOCD_INSTANCE_LABEL_KEY",),
    ),
    Opt(
        ("--pod-force-uptime",),
        bool,
        True,
        "A running pod annotated downscaler/force-uptime keeps the cluster up",
        ("POD_FORCE_UPTIME",),
        negatable=True,
    ),
    Opt(
        ("--power-model",),
        str,
        "energy",
        "Savings estimate: energy (zerowatt.energy's node model), ccf (fixed CCF averages)",
        ("POWER_MODEL",),
    ),
    Opt(
        ("--cpu",),
        str,
        "",
        "CPU model of the cluster's nodes for the energy model (default: this node's)",
        ("CPU_MODEL",),
    ),
    Opt(("--pue",), str, "", "Facility PUE: a number or hyperscale, free-cooled, industry-average", ("PUE",)),
    Opt(("--carbon",), float, None, "Grid intensity, g CO2e per kWh", ("CARBON_INTENSITY",)),
    Opt(("--region",), str, "", "Cloud region for grid intensity, e.g. aws:eu-west-1", ("REGION",)),
    Opt(("--json",), bool, False, "Print each pass's report as JSON on stdout"),
)

#: py-kube-downscaler's argparse groups: not both given on the command line (the environment may set both).
EXCLUSIVE = (("upscale_period", "default_uptime"), ("downscale_period", "default_downtime"))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zerowatt downscaler",
        description=SUMMARY,
        allow_abbrev=False,
        epilog="Each flag not given is read from the environment variable named after it; see docs/downscaler.md.",
    )
    for o in OPTIONS:
        env = f" [env: {', '.join(o.env)}]" if o.env else ""
        text = f"{o.help} (default: {o.default}){env}".replace("%", "%%")
        if o.kind is bool:
            action: Any = argparse.BooleanOptionalAction if o.negatable else "store_true"
            parser.add_argument(*o.flags, dest=o.dest, action=action, default=None, help=text)
        else:
            parser.add_argument(*o.flags, dest=o.dest, default=None, metavar=o.kind.__name__.upper(), help=text)
    return parser


def _convert(o: Opt, raw: Any, source: str) -> Any:
    if o.kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise UsageError(f"{source}: {raw!r} is not a boolean (true or false)")
    if o.kind is str:
        return str(raw)
    try:
        value = o.kind(str(raw).strip())
    except ValueError:
        raise UsageError(f"{source}: {raw!r} is not {'an integer' if o.kind is int else 'a number'}") from None
    if o.minimum is not None and value < o.minimum:
        raise UsageError(f"{source}: {raw!r} is below the minimum {o.minimum:g}")
    return value


def parse(argv: Sequence[str], environ: Mapping[str, str]) -> tuple[dict[str, Any], set[str]]:
    """The options' values (flag, else environment, else default) and which came from the command line."""
    ns = _parser().parse_args(list(argv))
    values: dict[str, Any] = {}
    given: set[str] = set()
    for o in OPTIONS:
        raw, source = getattr(ns, o.dest), o.flags[0]
        if raw is not None:
            given.add(o.dest)
        else:
            for name in o.env:
                if name in environ:
                    raw, source = environ[name], f"{o.flags[0]} (from ${name})"
                    break
        values[o.dest] = o.default if raw is None else _convert(o, raw, source)
    for a, b in EXCLUSIVE:
        if a in given and b in given:
            flags = " and ".join("--" + p.replace("_", "-") for p in (a, b))
            raise UsageError(f"{flags} exclude each other (as in py-kube-downscaler): give one of them")
    return values, given


def check_admission_controller(value: str) -> None:
    """``--admission-controller``: upstream blocks new Jobs with Kyverno/Gatekeeper policies; zerowatt does not."""
    name = value.strip()
    if not name:
        return
    known = name in ADMISSION_CONTROLLERS
    raise UsageError(
        f"--admission-controller {name}: "
        + (
            "not supported by zerowatt. py-kube-downscaler creates a Kyverno Policy or a Gatekeeper constraint "
            "per namespace that rejects new Jobs during downtime; zerowatt suspends Jobs instead "
            "(--include-resources jobs, spec.suspend), and CronJobs with cronjobs. Remove the flag "
            "(and ADMISSION_CONTROLLER) and include jobs,cronjobs."
            if known
            else f"not supported (py-kube-downscaler accepts {' or '.join(ADMISSION_CONTROLLERS)}, "
            "zerowatt neither: it suspends Jobs, --include-resources jobs)"
        )
    )


def main(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> int:
    """Run ``zerowatt downscaler ARGV``; the exit code (2: bad usage, with the message on stderr)."""
    try:
        values, _ = parse(argv, os.environ if environ is None else environ)
        return run(values)
    except ZerowattError as exc:
        from zerowatt.cli.common import describe  # typer and rich: only on the way out with an error

        sys.stderr.write(f"error: {describe(exc)}\n")
        return exc.exit_code


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def run(v: dict[str, Any]) -> int:
    """Validate, connect and run passes until SIGTERM (or once); 1 if the last pass failed."""
    import json
    import signal
    import threading
    from datetime import UTC, datetime

    from zerowatt.kube import logs
    from zerowatt.kube.api import KubeApi, RetryPolicy, load_api_client
    from zerowatt.kube.controller import Downscaler, Options
    from zerowatt.kube.decide import grace_seconds
    from zerowatt.kube.matcher import schedule_matcher
    from zerowatt.kube.ratelimit import token_bucket
    from zerowatt.kube.settings import make_settings

    check_admission_controller(v["admission_controller"])
    if v["power_model"] not in ("energy", "ccf"):
        raise UsageError(f"--power-model: expected energy or ccf, got {v['power_model']!r}")
    rate = token_bucket(v["qps"], v["burst"])
    logs.lean_records()
    logs.configure(v["json_logs"], v["debug"])
    settings = make_settings(
        default_uptime=v["default_uptime"],
        default_downtime=v["default_downtime"],
        upscale_period=v["upscale_period"],
        downscale_period=v["downscale_period"],
        downtime_replicas=v["downtime_replicas"],
        grace_period=grace_seconds(v["grace_period"], key="--grace-period"),
        deployment_time_annotation=v["deployment_time_annotation"] or None,
        exclude_namespaces=v["exclude_namespaces"],
        exclude_deployments=v["exclude_deployments"],
        matching_labels=v["matching_labels"],
        upscale_target_only=v["upscale_target_only"],
        include_resources=v["include_resources"],
    )
    matches = schedule_matcher(v["default_timezone"] or None, v["default_weekdays"] or None)
    now = datetime.now(UTC)
    for flag in ("default_uptime", "default_downtime", "upscale_period", "downscale_period"):
        try:
            matches(v[flag], now)  # a bad flag is a usage error at start, not an error on every object
        except UsageError as exc:
            raise UsageError(f"{_flag(flag)}: {exc}") from None
    options = Options(
        namespaces=tuple(n.strip() for n in v["namespace"].split(",") if n.strip()),
        dry_run=v["dry_run"],
        enable_events=v["enable_events"],
        argocd_pause_self_heal=v["argocd_pause_self_heal"],
        argocd_namespace=v["argocd_namespace"],
        argocd_instance_label_key=v["argocd_instance_label_key"],
        pod_force_uptime=v["pod_force_uptime"],
        conflict_retries=v["max_retries_on_conflict"],
        savings=bool(v["metrics_listen"] or v["json"]),
    )
    metrics = None
    if v["metrics_listen"]:
        metrics = _metrics(v)
    elif v["cpu"] or v["pue"] or v["carbon"] is not None or v["region"]:
        _pricing_of(v)  # given without --metrics-listen: still checked at start
    api = KubeApi(
        load_api_client(v["kubeconfig"] or None, v["context"] or None),
        timeout=v["api_server_timeout"],
        retry=RetryPolicy(throttle_retries=v["max_retries_on_throttling"]),
        rate=rate,
    )
    controller = Downscaler(api, settings, matches, options)
    stop = threading.Event()
    if not v["once"]:
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    failed = False
    while True:
        now = datetime.now(UTC)
        try:
            report = controller.run_pass(now)
        except Exception as exc:  # an unreachable API server: log, and try again next interval
            log.error("pass failed", extra={"fields": {"error": str(exc)}})
            failed = True
        else:
            failed = False
            if metrics is not None:
                metrics.observe(report, now)
            fields = {"objects": report.objects, "changes": len(report.changes), "errors": len(report.errors)}
            log.info("pass done", extra={"fields": fields})
            if v["json"]:
                sys.stdout.write(json.dumps(report.as_dict(), indent=2, default=str) + "\n")
                sys.stdout.flush()
        if v["once"]:
            break
        try:
            if stop.wait(v["interval"]):
                break
        except KeyboardInterrupt:
            break
    return 1 if failed else 0


def _metrics(v: dict[str, Any]) -> Any:
    """The Prometheus metrics and their HTTP server (``--metrics-listen``): only then priced and imported."""
    from prometheus_client import REGISTRY, start_http_server

    from zerowatt.kube.metrics import DownscalerMetrics
    from zerowatt.parsing import parse_host_port

    metrics = DownscalerMetrics(REGISTRY, _pricing_of(v))
    host, port = parse_host_port(v["metrics_listen"], key="--metrics-listen", default_host="0.0.0.0")
    start_http_server(port, addr=host)
    return metrics


def _pricing_of(v: dict[str, Any]) -> CapacityPricing:
    return _pricing(v["power_model"], v["cpu"] or None, v["pue"] or None, v["carbon"], v["region"] or None)


def _pricing(
    power_model: str, cpu: str | None, pue: str | None, carbon: float | None, region: str | None
) -> CapacityPricing:
    """The savings pricing: the energy subsystem's node model, or CCF's averages (see docs/downscaler.md)."""
    from zerowatt.cli.energy import capacity_pricing

    if power_model not in ("energy", "ccf"):
        raise UsageError(f"--power-model: expected energy or ccf, got {power_model!r}")
    pricing = capacity_pricing("node" if power_model == "energy" else "ccf", cpu, pue, None, carbon, region)
    if power_model == "energy" and pricing.power_model == "ccf":
        log.warning("energy model not available, using CCF defaults", extra={"fields": {"detail": pricing.detail}})
    log.info("power model", extra={"fields": {"basis": pricing.basis, "detail": pricing.describe()}})
    return pricing


def register(app: typer.Typer) -> None:
    """Add ``zerowatt downscaler`` to the typer app: its arguments go to :func:`main` unparsed."""
    import typer

    def downscaler(ctx: Any) -> None:
        code = main(list(ctx.args))
        if code:
            raise typer.Exit(code)

    downscaler.__annotations__ = {"ctx": typer.Context, "return": None}  # resolved here: typer is imported
    app.command(
        "downscaler",
        help=SUMMARY,
        add_help_option=False,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )(downscaler)
