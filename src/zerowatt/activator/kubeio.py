"""The activator's Kubernetes calls, on :class:`zerowatt.kube.api.KubeApi` (adapter).

Blocking calls, made from one worker thread (the lean client's connection is not thread-safe); the
controller awaits them with ``run_in_executor``. Every call is a plain JSON request: Deployments listed in
all namespaces (zerowatt apps picked here, not by a label selector: not every API server honours one),
EndpointSlices listed per namespace, ``spec.replicas`` written through the ``scale`` subresource (so the
activator needs no right to change anything else of a Deployment), and the ``NAME-zerowatt`` slice
written with a JSON merge patch (its lists replaced whole), created when it is missing. Writes carry the
field manager ``zerowatt-activator``.
"""

from __future__ import annotations

from typing import Any

from zerowatt.activator.appconfig import is_app
from zerowatt.activator.hosts import AppKey
from zerowatt.kube.api import ApiError, KubeApi, WatchTarget, path_segment

FIELD_MANAGER = "zerowatt-activator"
_DEPLOYMENTS = "/apis/apps/v1/deployments"


def _ns(namespace: str) -> str:
    return path_segment(namespace)


class ActivatorApi:
    """The handful of API calls the activator makes (blocking; one thread at a time)."""

    def __init__(self, api: KubeApi) -> None:
        self.api = api
        self.round_trips = 0

    def close(self) -> None:
        self.api.close()

    def list_apps(self) -> list[dict[str, Any]]:
        self.round_trips += 1
        return [d for d in self.api.list(_DEPLOYMENTS) if is_app(d)]

    def list_slices(self, namespace: str) -> list[dict[str, Any]]:
        self.round_trips += 1
        return list(self.api.list(f"/apis/discovery.k8s.io/v1/namespaces/{_ns(namespace)}/endpointslices"))

    def scale(self, key: AppKey, replicas: int) -> None:
        self.round_trips += 1
        path = f"/apis/apps/v1/namespaces/{_ns(key.namespace)}/deployments/{path_segment(key.name)}/scale"
        self.api.request(
            "PATCH",
            path,
            query={"fieldManager": FIELD_MANAGER},
            body={"spec": {"replicas": replicas}},
            content_type="application/merge-patch+json",
        )

    def slice_watch(self, namespace: str) -> WatchTarget | None:
        """A watch of the namespace's EndpointSlices, or None when the API is reached through a proxy (the
        lean client's settings are needed; then the activator polls)."""
        return self.api.watch_target(f"/apis/discovery.k8s.io/v1/namespaces/{_ns(namespace)}/endpointslices?watch=true")

    def write_slice(self, manifest: dict[str, Any]) -> None:
        """Create or replace the endpoints and ports of the activator's slice."""
        meta = manifest["metadata"]
        base = f"/apis/discovery.k8s.io/v1/namespaces/{_ns(meta['namespace'])}/endpointslices"
        patch = {
            "metadata": {"labels": meta["labels"]},
            "addressType": manifest["addressType"],
            "endpoints": manifest["endpoints"],
            "ports": manifest["ports"],
        }
        self.round_trips += 1
        try:
            self.api.request(
                "PATCH",
                f"{base}/{path_segment(meta['name'])}",
                query={"fieldManager": FIELD_MANAGER},
                body=patch,
                content_type="application/merge-patch+json",
            )
        except ApiError as exc:
            if exc.status != 404:
                raise
            self.round_trips += 1
            self.api.request("POST", base, query={"fieldManager": FIELD_MANAGER}, body=manifest)
