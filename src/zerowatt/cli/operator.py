"""``zerowatt operator``: serve SpinApps, SpinAppExecutors and WasmApps on a cluster (see docs/operator.md)."""

from __future__ import annotations

import logging
import signal
from typing import Annotated, Any

import typer

from zerowatt.cli.common import print_json, reports_errors
from zerowatt.errors import UsageError

log = logging.getLogger("zerowatt.operator")


def _opt(help_: str, env: str | None = None, **kw: Any) -> Any:
    return typer.Option(help=help_, envvar=env, show_envvar=env is not None, **kw)


def _in_cluster_client() -> Any:
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except ConfigException as exc:
        raise UsageError(f"--in-cluster: not running in a cluster ({exc})") from None
    return client.ApiClient(configuration)


@reports_errors
def operator(
    kubeconfig: Annotated[str, _opt("kubeconfig file (default: $KUBECONFIG, ~/.kube/config, else in-cluster)")] = "",
    context: Annotated[str, _opt("kubeconfig context")] = "",
    in_cluster: Annotated[bool, _opt("Use the pod's service account even if a kubeconfig exists")] = False,
    namespace: Annotated[
        str, _opt("Only these namespaces (comma-separated; default all)", "ZEROWATT_OPERATOR_NAMESPACES")
    ] = "",
    runtime_image: Annotated[
        str, _opt("Image of the pods' pull and runtime containers", "ZEROWATT_RUNTIME_IMAGE")
    ] = "",
    log_format: Annotated[str, _opt("Log lines: text or json", "ZEROWATT_LOG_FORMAT")] = "text",
    once: Annotated[bool, _opt("One reconcile pass over everything, then exit (tests, benchmarks)")] = False,
    metrics_port: Annotated[int, _opt("Serve Prometheus /metrics on this port (0: off)", min=0, max=65535)] = 0,
    resync: Annotated[float, _opt("Seconds between full relists", min=1.0)] = 600.0,
    debug: Annotated[bool, _opt("Debug logging")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="With --once: print the pass's counters as JSON")] = False,
) -> None:
    """Serve SpinApps (SpinKube's, unchanged) and WasmApps on Kubernetes: Deployments, Services, status."""
    from zerowatt.kube import logs
    from zerowatt.kube.api import KubeApi, load_api_client
    from zerowatt.operator.children import Settings
    from zerowatt.operator.controller import Operator, Options
    from zerowatt.operator.names import DEFAULT_RUNTIME_IMAGE

    if log_format not in ("text", "json"):
        raise UsageError(f"--log-format {log_format!r}: expected text or json")
    logs.configure(log_format == "json", debug)
    logging.getLogger("zerowatt.operator").handlers = logging.getLogger("zerowatt.kube").handlers
    logging.getLogger("zerowatt.operator").setLevel(logging.DEBUG if debug else logging.INFO)
    logging.getLogger("zerowatt.operator").propagate = False
    if in_cluster and kubeconfig:
        raise UsageError("--in-cluster and --kubeconfig: choose one")
    api_client = _in_cluster_client() if in_cluster else load_api_client(kubeconfig or None, context or None)
    image = runtime_image or f"{DEFAULT_RUNTIME_IMAGE}:{_version()}"
    namespaces = tuple(ns.strip() for ns in namespace.split(",") if ns.strip())
    op = Operator(KubeApi(api_client), api_client, Settings(runtime_image=image), Options(namespaces, resync))
    if metrics_port:
        from prometheus_client import REGISTRY, start_http_server

        from zerowatt.operator.metrics import OperatorMetrics

        OperatorMetrics(op, REGISTRY)
        start_http_server(metrics_port)
    log.info("operator starting", extra={"fields": {"namespaces": ",".join(namespaces) or "*", "image": image}})
    if once:
        stats = op.run_once()
        log.info("pass done", extra={"fields": stats.as_dict()})
        if json_out:
            print_json({**stats.as_dict(), "apps": len(op.apps)})
        if stats.errors:
            raise typer.Exit(1)
        return
    signal.signal(signal.SIGTERM, lambda *_: op.close())
    try:
        op.run()
    except KeyboardInterrupt:
        op.close()


def _version() -> str:
    from zerowatt.cli.commands import package_version

    return package_version()


def register(app: typer.Typer) -> None:
    """Add ``zerowatt operator``."""
    app.command("operator")(operator)
