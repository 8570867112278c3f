"""``zerowatt downscaler``: kube-downscaler's command line (same flags, same environment variables)."""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from zerowatt.cli.common import print_json, reports_errors
from zerowatt.energy.capacity import CapacityPricing
from zerowatt.errors import UsageError

log = logging.getLogger("zerowatt.kube")


def _opt(help_: str, env: str | list[str] | None = None, *names: str, **kw: Any) -> Any:
    return typer.Option(*names, help=help_, envvar=env, show_envvar=env is not None, **kw)


#: py-kube-downscaler's argparse groups: a flag and its partner may not both be given on the command line
#: (their environment variables may both be set: argparse only checks arguments).
_EXCLUSIVE = (("upscale_period", "default_uptime"), ("downscale_period", "default_downtime"))
ADMISSION_CONTROLLERS = ("gatekeeper", "kyverno")


def _check_exclusive(ctx: typer.Context) -> None:
    for a, b in _EXCLUSIVE:
        if all(getattr(ctx.get_parameter_source(p), "name", "") == "COMMANDLINE" for p in (a, b)):
            flags = " and ".join("--" + p.replace("_", "-") for p in (a, b))
            raise UsageError(f"{flags} exclude each other (as in py-kube-downscaler): give one of them")


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


@reports_errors
def downscaler(
    ctx: typer.Context,
    interval: Annotated[int, _opt("Seconds between passes", "INTERVAL", min=1)] = 60,
    once: Annotated[bool, _opt("Run one pass and exit")] = False,
    dry_run: Annotated[bool, _opt("Decide and log, change nothing", "DRY_RUN")] = False,
    namespace: Annotated[str, _opt("Only these namespaces (comma-separated; default all)", "NAMESPACE")] = "",
    include_resources: Annotated[
        str, _opt("Kinds to downscale (comma-separated)", "INCLUDE_RESOURCES")
    ] = "deployments",
    grace_period: Annotated[
        str, _opt("Seconds (or 15m) after creation/deployment not to downscale", "GRACE_PERIOD")
    ] = "900",
    default_uptime: Annotated[str, _opt("Default uptime schedule", "DEFAULT_UPTIME")] = "always",
    default_downtime: Annotated[str, _opt("Default downtime schedule", "DEFAULT_DOWNTIME")] = "never",
    upscale_period: Annotated[str, _opt("Period to scale up in (then only periods count)", "UPSCALE_PERIOD")] = "never",
    downscale_period: Annotated[str, _opt("Period to scale down in", "DOWNSCALE_PERIOD")] = "never",
    exclude_namespaces: Annotated[str, _opt("Namespace regexes to leave alone", "EXCLUDE_NAMESPACES")] = "kube-system",
    exclude_deployments: Annotated[
        str, _opt("Object names to leave alone", "EXCLUDE_DEPLOYMENTS")
    ] = "py-kube-downscaler,kube-downscaler,downscaler,zerowatt-downscaler",
    downtime_replicas: Annotated[
        str,
        _opt("Replicas during downtime (or a percentage such as 20%: PodDisruptionBudgets only)", "DOWNTIME_REPLICAS"),
    ] = "0",
    deployment_time_annotation: Annotated[
        str, _opt("Annotation holding the last deployment time (grace period)", "DEPLOYMENT_TIME_ANNOTATION")
    ] = "",
    enable_events: Annotated[bool, _opt("Emit Kubernetes Events on changes and errors", "EVENTS")] = False,
    matching_labels: Annotated[
        str, _opt("Only objects with a label key=value matching a regex", "MATCHING_LABELS")
    ] = "",
    upscale_target_only: Annotated[
        bool, _opt("Never upscale objects outside the targeted namespaces", "UPSCALE_TARGET_ONLY")
    ] = False,
    json_logs: Annotated[bool, _opt("Logs as JSON lines", "JSON_LOGS")] = False,
    default_timezone: Annotated[str, _opt("Time zone for specs without one", "DEFAULT_TIMEZONE")] = "",
    default_weekdays: Annotated[
        str, _opt("Weekdays for specs without any", ["DEFAULT_WEEKDAYS", "DEFAULT_WEEKFRAME"])
    ] = "",
    kubeconfig: Annotated[str, _opt("kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)")] = "",
    context: Annotated[str, _opt("kubeconfig context")] = "",
    metrics_listen: Annotated[str, _opt("Serve Prometheus metrics on PORT or HOST:PORT", "METRICS_LISTEN")] = "",
    argocd_pause_self_heal: Annotated[
        bool, _opt("Pause the owning Argo CD Application's self-heal while downscaled", "ARGOCD_PAUSE_SELF_HEAL")
    ] = False,
    argocd_namespace: Annotated[str, _opt("Namespace of Argo CD Applications", "ARGOCD_NAMESPACE")] = "argocd",
    pod_force_uptime: Annotated[
        bool, _opt("Keep a namespace up while a running pod there has downscaler/force-uptime", "POD_FORCE_UPTIME")
    ] = True,
    power_model: Annotated[
        str, _opt("Savings estimate: energy (zerowatt.energy's node model), ccf (fixed CCF averages)", "POWER_MODEL")
    ] = "energy",
    cpu: Annotated[
        str, _opt("CPU model of the cluster's nodes for the energy model (default: this node's)", "CPU_MODEL")
    ] = "",
    pue: Annotated[str, _opt("Facility PUE: a number or hyperscale, free-cooled, industry-average", "PUE")] = "",
    carbon: Annotated[float | None, _opt("Grid intensity, g CO2e per kWh", "CARBON_INTENSITY")] = None,
    region: Annotated[str, _opt("Cloud region for grid intensity, e.g. aws:eu-west-1", "REGION")] = "",
    debug: Annotated[bool, _opt("Debug logging", "DEBUG", "--debug", "-d")] = False,
    api_server_timeout: Annotated[
        float, _opt("Seconds to wait for the API server (connect, each answer)", "API_SERVER_TIMEOUT", min=0.001)
    ] = 10.0,
    max_retries_on_conflict: Annotated[
        int,
        _opt(
            "Re-read and re-decide an object after a 409 conflict at most this often", "MAX_RETRIES_ON_CONFLICT", min=0
        ),
    ] = 3,
    max_retries_on_throttling: Annotated[
        int,
        _opt(
            "Retries of a request the API server throttled (429), with backoff",
            ["MAX_RETRIES_ON_THROTTLING", "MAX_RETRIES_ON_CONFLICT"],
            min=0,
        ),
    ] = 4,
    qps: Annotated[int, _opt("Client-side limit, requests per second (0: none)", "QPS", min=0)] = 0,
    burst: Annotated[int, _opt("Requests allowed at once above --qps (at least --qps; 0: none)", "BURST", min=0)] = 0,
    admission_controller: Annotated[
        str, _opt("py-kube-downscaler's Job policies (gatekeeper, kyverno): not supported", "ADMISSION_CONTROLLER")
    ] = "",
    json_out: Annotated[bool, typer.Option("--json", help="Print each pass's report as JSON on stdout")] = False,
) -> None:
    """Scale workloads down off-hours and back up: a drop-in replacement for kube-downscaler."""
    from prometheus_client import REGISTRY, start_http_server

    from zerowatt.kube import logs
    from zerowatt.kube.api import KubeApi, RetryPolicy, load_api_client
    from zerowatt.kube.controller import Downscaler, Options
    from zerowatt.kube.decide import grace_seconds
    from zerowatt.kube.matcher import schedule_matcher
    from zerowatt.kube.metrics import DownscalerMetrics
    from zerowatt.kube.ratelimit import token_bucket
    from zerowatt.kube.settings import make_settings
    from zerowatt.parsing import parse_host_port

    _check_exclusive(ctx)
    check_admission_controller(admission_controller)
    rate = token_bucket(qps, burst)
    logs.configure(json_logs, debug)
    settings = make_settings(
        default_uptime=default_uptime,
        default_downtime=default_downtime,
        upscale_period=upscale_period,
        downscale_period=downscale_period,
        downtime_replicas=downtime_replicas,
        grace_period=grace_seconds(grace_period, key="--grace-period"),
        deployment_time_annotation=deployment_time_annotation or None,
        exclude_namespaces=exclude_namespaces,
        exclude_deployments=exclude_deployments,
        matching_labels=matching_labels,
        upscale_target_only=upscale_target_only,
        include_resources=include_resources,
    )
    matches = schedule_matcher(default_timezone or None, default_weekdays or None)
    now = datetime.now(UTC)
    for flag, spec in (
        ("--default-uptime", default_uptime),
        ("--default-downtime", default_downtime),
        ("--upscale-period", upscale_period),
        ("--downscale-period", downscale_period),
    ):
        try:
            matches(spec, now)  # a bad flag is a usage error at start, not an error on every object
        except UsageError as exc:
            raise UsageError(f"{flag}: {exc}") from None
    options = Options(
        namespaces=tuple(n.strip() for n in namespace.split(",") if n.strip()),
        dry_run=dry_run,
        enable_events=enable_events,
        argocd_pause_self_heal=argocd_pause_self_heal,
        argocd_namespace=argocd_namespace,
        pod_force_uptime=pod_force_uptime,
        conflict_retries=max_retries_on_conflict,
    )
    pricing = _pricing(power_model, cpu or None, pue or None, carbon, region or None)
    api = KubeApi(
        load_api_client(kubeconfig or None, context or None),
        timeout=api_server_timeout,
        retry=RetryPolicy(throttle_retries=max_retries_on_throttling),
        rate=rate,
    )
    controller = Downscaler(api, settings, matches, options)
    metrics = DownscalerMetrics(REGISTRY, pricing)
    if metrics_listen:
        host, port = parse_host_port(metrics_listen, key="--metrics-listen", default_host="0.0.0.0")
        start_http_server(port, addr=host)
    stop = threading.Event()
    if not once:
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
            metrics.observe(report, now)
            log.info(
                "pass done",
                extra={
                    "fields": {"objects": report.objects, "changes": len(report.changes), "errors": len(report.errors)}
                },
            )
            if json_out:
                print_json(report.as_dict())
        if once:
            break
        try:
            if stop.wait(interval):
                break
        except KeyboardInterrupt:
            break
    if failed:
        raise typer.Exit(1)


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
    """Add ``zerowatt downscaler``."""
    app.command("downscaler")(downscaler)
