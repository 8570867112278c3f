"""``zerowatt activator``: hold requests for apps at zero, scale them up, switch endpoints, autoscale.

Flags → :class:`~zerowatt.activator.server.ActivatorSettings` → :class:`~zerowatt.activator.server.ActivatorServer`
(docs/operator-activator.md). Every flag also reads an environment variable, as the Deployment in
``deploy/operator/`` sets them.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import typer

from zerowatt.cli.common import reports_errors


def _opt(help_: str, env: str | None = None, **kw: Any) -> Any:
    return typer.Option(help=help_, envvar=env, show_envvar=env is not None, **kw)


@reports_errors
def activator(
    listen: Annotated[str, _opt("Proxy address (HOST:PORT)", "ZEROWATT_ACTIVATOR_LISTEN")] = "0.0.0.0:8080",
    admin: Annotated[
        str, _opt("Admin address: /healthz, /readyz, /metrics", "ZEROWATT_ACTIVATOR_ADMIN")
    ] = "0.0.0.0:9090",
    advertise: Annotated[
        str, _opt("Address written into apps' EndpointSlices while they are at zero (default: $POD_IP)", "POD_IP")
    ] = "",
    kubeconfig: Annotated[str, _opt("kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)")] = "",
    context: Annotated[str, _opt("kubeconfig context")] = "",
    sync: Annotated[float, _opt("Seconds between syncs (apps, endpoints, pod metrics, decisions)", min=0.01)] = 1.0,
    fast_poll: Annotated[
        float, _opt("Seconds between endpoint reads while requests wait (when not watching)", min=0.001)
    ] = 0.01,
    watch: Annotated[bool, _opt("Watch EndpointSlices while requests wait (else poll every --fast-poll)")] = True,
    drain: Annotated[
        float, _opt("Seconds between pointing traffic back at the activator and 0 replicas", min=0.0)
    ] = 2.0,
    hold_per_app: Annotated[int, _opt("Requests held per app while it starts (503 above)", min=1)] = 1000,
    hold_total: Annotated[int, _opt("Requests held in all (503 above)", min=1)] = 10000,
    hold_deadline: Annotated[float, _opt("Seconds a held request waits for a ready pod (504 after)", min=0.001)] = 60.0,
    cluster_domain: Annotated[str, _opt("Cluster DNS domain in Host headers")] = "cluster.local",
    max_connections: Annotated[int, _opt("Client connections served at once (503 above)", min=1)] = 10000,
    backend_timeout: Annotated[float, _opt("Seconds a pod may take to answer", min=0.001)] = 300.0,
    debug: Annotated[bool, _opt("Debug logging")] = False,
) -> None:
    """Hold requests for apps scaled to zero on Kubernetes, scale them up and proxy; autoscale them."""
    from zerowatt.activator.holding import HoldLimits
    from zerowatt.activator.kubeio import ActivatorApi
    from zerowatt.activator.server import ActivatorServer, ActivatorSettings
    from zerowatt.kube.api import KubeApi, load_api_client
    from zerowatt.parsing import parse_host_port

    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = ActivatorSettings(
        listen=parse_host_port(listen, key="--listen", default_host="0.0.0.0"),
        admin=parse_host_port(admin, key="--admin", default_host="0.0.0.0"),
        advertise=advertise or None,
        limits=HoldLimits(per_app=hold_per_app, total=hold_total, deadline=hold_deadline),
        sync=sync,
        fast_poll=fast_poll,
        drain=drain,
        cluster_domain=cluster_domain.strip("."),
        max_connections=max_connections,
        backend_timeout=backend_timeout,
        watch=watch,
    )
    api = ActivatorApi(KubeApi(load_api_client(kubeconfig or None, context or None)))
    ActivatorServer(settings, api).serve()


def register(app: typer.Typer) -> None:
    """Add ``zerowatt activator``."""
    app.command("activator")(activator)
