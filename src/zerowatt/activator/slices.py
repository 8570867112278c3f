"""EndpointSlices: the ready pods of an app (read) and its public Service's endpoints (written) (core).

Kubernetes' endpoint controller publishes the pods of ``NAME-pods`` as EndpointSlices labelled
``kubernetes.io/service-name: NAME-pods``; the activator reads the ready ones (``conditions.ready`` true or
absent, which the API defines as ready; a terminating pod is not ready). The public Service ``NAME`` has no
selector: its one EndpointSlice ``NAME-zerowatt`` is written by the activator alone, with the ready pods'
addresses when there are any, else the activator's own address, so traffic goes straight to the pods while
the app is up and reaches the activator while it is at zero (Knative's "serve" and "proxy" modes).

An EndpointSlice has one port list for all its endpoints; pods of one Deployment share their container
ports, so the written slice takes the ``http`` port of the first ready endpoint and the endpoints with that
port (others keep reaching the app through the activator).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGER = "activator.zerowatt.dev"
HTTP_PORT = "http"
ADMIN_PORT = "admin"


@dataclass(frozen=True, slots=True, order=True)
class Endpoint:
    """One ready pod (or the activator): an address and its named ports."""

    address: str
    http: int
    admin: int | None = None
    pod: str = field(default="", compare=False)

    @property
    def http_url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.http}"

    @property
    def admin_url(self) -> str | None:
        if self.admin is None:
            return None
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.admin}"


def _ports(slice_: Mapping[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for port in slice_.get("ports") or []:
        if isinstance(port, Mapping) and isinstance(port.get("port"), int):
            out[str(port.get("name") or "")] = port["port"]
    return out


def ready_endpoints(slices: Iterable[Mapping[str, Any]], service: str) -> list[Endpoint]:
    """The ready endpoints of ``service`` in ``slices`` (any slices: the label is checked here, because not
    every API server honours label selectors), sorted, one per address."""
    seen: dict[str, Endpoint] = {}
    for s in slices:
        labels = (s.get("metadata") or {}).get("labels") or {}
        if labels.get(SERVICE_NAME_LABEL) != service:
            continue
        ports = _ports(s)
        http = ports.get(HTTP_PORT)
        if http is None:
            continue
        for ep in s.get("endpoints") or []:
            if not isinstance(ep, Mapping):
                continue
            cond = ep.get("conditions") or {}
            if cond.get("ready") is False or cond.get("terminating") is True:
                continue
            pod = str((ep.get("targetRef") or {}).get("name") or "")
            for address in ep.get("addresses") or []:
                if isinstance(address, str) and address and address not in seen:
                    seen[address] = Endpoint(address, http, ports.get(ADMIN_PORT), pod)
    return sorted(seen.values())


def written_endpoints(ready: Sequence[Endpoint], activator: Endpoint) -> list[Endpoint]:
    """What ``NAME-zerowatt`` should hold: the ready endpoints sharing the first one's port, else the activator."""
    if not ready:
        return [activator]
    port = ready[0].http
    return [e for e in ready if e.http == port]


def slice_manifest(namespace: str, service: str, endpoints: Sequence[Endpoint]) -> dict[str, Any]:
    """The ``SERVICE-zerowatt`` EndpointSlice for ``endpoints`` (all with the same http port)."""
    family = "IPv6" if endpoints and ":" in endpoints[0].address else "IPv4"
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service}-zerowatt",
            "namespace": namespace,
            "labels": {SERVICE_NAME_LABEL: service, MANAGED_BY_LABEL: MANAGER},
        },
        "addressType": family,
        "endpoints": [{"addresses": [e.address], "conditions": {"ready": True}} for e in endpoints],
        "ports": [{"name": HTTP_PORT, "port": endpoints[0].http if endpoints else 0, "protocol": "TCP"}],
    }


def slice_targets(slice_: Mapping[str, Any] | None) -> list[tuple[str, int]]:
    """The (address, http port) pairs an existing ``NAME-zerowatt`` slice sends traffic to (sorted)."""
    if not slice_:
        return []
    http = _ports(slice_).get(HTTP_PORT)
    if http is None:
        return []
    out = set()
    for ep in slice_.get("endpoints") or []:
        if isinstance(ep, Mapping):
            for address in ep.get("addresses") or []:
                if isinstance(address, str):
                    out.add((address, http))
    return sorted(out)
