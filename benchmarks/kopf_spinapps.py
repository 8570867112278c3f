"""The same operator on kopf, for ``bench_operator --kopf``: kopf's handlers and indexes + the official client.

Not shipped: it exists to measure what the framework costs against :mod:`zerowatt.operator.controller` on
the same work. It makes the same decisions (:func:`zerowatt.operator.reconcile.reconcile`), from kopf's
in-memory indexes of executors and children, and writes the children with server-side apply through the
official client's urllib3 pool (one request at a time, as a kopf handler does), the status through kopf's
patch. Kopf adds its own finalizer and progress annotations. Run: ``kopf run --standalone -n apps THIS``.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes import config

from zerowatt.operator import names as n
from zerowatt.operator.children import Settings
from zerowatt.operator.reconcile import reconcile

_API: Any = None
SETTINGS = Settings(runtime_image="rt:1")


def api() -> Any:
    global _API
    if _API is None:
        _API = config.new_client_from_config(config_file=os.environ["KUBECONFIG"])  # type: ignore[no-untyped-call]
    return _API


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.level = 40  # only errors become Events (fewer writes than kopf's default)
    settings.watching.server_timeout = 300


@kopf.index("core.spinkube.dev", "v1alpha1", "spinappexecutors")
def executors(namespace: str, name: str, body: Any, **_: Any) -> dict[Any, Any]:
    return {(namespace, name): dict(body)}


@kopf.index("apps", "v1", "deployments", labels={n.LABEL_MANAGED_BY: n.COMPONENT})
def deployments(namespace: str, name: str, body: Any, **_: Any) -> dict[Any, Any]:
    return {namespace: (("Deployment", name), dict(body))}


@kopf.index("", "v1", "services", labels={n.LABEL_MANAGED_BY: n.COMPONENT})
def services(namespace: str, name: str, body: Any, **_: Any) -> dict[Any, Any]:
    return {namespace: (("Service", name), dict(body))}


@kopf.on.resume("core.spinkube.dev", "v1alpha1", "spinapps")
@kopf.on.create("core.spinkube.dev", "v1alpha1", "spinapps")
@kopf.on.update("core.spinkube.dev", "v1alpha1", "spinapps")
def spinapp(body: Any, namespace: str, executors: Any, deployments: Any, services: Any, patch: Any, **_: Any) -> None:
    ex = {name: obj for (ns, name), objs in executors.items() if ns == namespace for obj in objs}
    kids = {key: obj for key, obj in list(deployments.get(namespace, [])) + list(services.get(namespace, []))}
    obj = json.loads(json.dumps(dict(body)))
    obj["metadata"].setdefault("finalizers", [n.FINALIZER])  # kopf owns the finalizer here
    plan = reconcile(obj, "SpinApp", ex, kids, datetime.now(UTC), SETTINGS)
    rest = api().rest_client
    host = api().configuration.host
    for m in plan.apply:
        meta = m["metadata"]
        base = "/apis/apps/v1" if m["kind"] == "Deployment" else "/api/v1"
        plural = "deployments" if m["kind"] == "Deployment" else "services"
        url = f"{host}{base}/namespaces/{meta['namespace']}/{plural}/{meta['name']}"
        url += f"?fieldManager={n.FIELD_MANAGER}&force=true"
        headers = {"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"}
        rest.request("PATCH", url, headers=headers, body=m).read()
    if plan.status is not None:
        patch.status.update(plan.status)


@kopf.on.delete("core.spinkube.dev", "v1alpha1", "spinapps")
def gone(**_: Any) -> None:
    """Children go with their owner (garbage collection); kopf removes its finalizer."""
