"""An app's children as the operator applies them: its Deployment and its two Services (pure).

The layout is the one the operator contract fixes for the activator and the packaging: a pod pulls the app
into an ``emptyDir`` with ``zerowatt pull`` (init container ``pull``) and serves it with ``zerowatt up``
(container ``runtime``); the public Service has no selector (the activator writes its EndpointSlice), the
``NAME-pods`` Service selects the pods. Each manifest is what server-side apply sends: only the fields the
operator owns, so another manager's fields (the activator's ``spec.replicas`` when autoscaling is on, an
HPA's, kubectl's) are left alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from zerowatt.operator import names as n
from zerowatt.operator.model import AppSpec, ExecutorSpec, Probe

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Settings:
    """Operator-wide choices that shape every child (``zerowatt operator`` flags)."""

    runtime_image: str = f"{n.DEFAULT_RUNTIME_IMAGE}:latest"
    image_pull_policy: str = "IfNotPresent"


def labels(app: AppSpec) -> dict[str, str]:
    return {
        n.LABEL_NAME: app.ref.name,
        n.LABEL_MANAGED_BY: n.COMPONENT,
        n.LABEL_APP: app.ref.name,
        n.LABEL_OWNER_KIND: app.ref.kind,
    }


def owner_reference(app: AppSpec) -> dict[str, Any]:
    return {
        "apiVersion": app.api_version,
        "kind": app.ref.kind,
        "name": app.ref.name,
        "uid": app.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _metadata(app: AppSpec, name: str, annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "namespace": app.ref.namespace,
        "labels": labels(app),
        "ownerReferences": [owner_reference(app)],
    }
    if annotations:
        out["annotations"] = dict(annotations)
    return out


def _probe(probe: Probe | None, default_path: str, port: str) -> dict[str, Any]:
    if probe is None:
        return {"httpGet": {"path": default_path, "port": port}, "periodSeconds": 5, "failureThreshold": 3}
    http: dict[str, Any] = {"path": probe.path, "port": "http"}
    if probe.headers:
        http["httpHeaders"] = [{"name": k, "value": v} for k, v in probe.headers]
    return {"httpGet": http, **probe.timings}


def deployment_annotations(app: AppSpec) -> dict[str, str]:
    """The user's ``deploymentAnnotations`` plus what the activator reads."""
    auto = app.autoscaling
    out = dict(app.deployment_annotations)
    out[n.ANN_SERVICE] = app.ref.name
    out[n.ANN_POLICY] = auto.policy
    out[n.ANN_MIN_SCALE] = str(auto.min_scale)
    out[n.ANN_MAX_SCALE] = str(auto.max_scale)
    if auto.params:
        out[n.ANN_POLICY_PARAMS] = json.dumps(dict(auto.params), sort_keys=True, separators=(",", ":"))
    if auto.enabled:
        out[n.ANN_AUTOSCALING] = "true"
    return out


def _pull_container(app: AppSpec, settings: Settings) -> dict[str, Any]:
    mounts: list[dict[str, Any]] = [{"name": n.APP_VOLUME, "mountPath": n.APP_DIR}]
    for i, secret in enumerate(app.pull_secrets):
        mounts.append({"name": f"zerowatt-pull-{i}", "mountPath": f"{n.PULL_SECRETS_DIR}/{secret}", "readOnly": True})
    return {
        "name": "pull",
        "image": settings.runtime_image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["zerowatt", "pull", app.image, "--to", n.APP_DIR],
        "volumeMounts": mounts,
    }


def _runtime_container(app: AppSpec, executor: ExecutorSpec | None, settings: Settings) -> dict[str, Any]:
    command = [
        "zerowatt",
        "up",
        f"{n.APP_DIR}/spin.toml",
        "--listen",
        f"0.0.0.0:{n.HTTP_PORT}",
        "--admin",
        f"0.0.0.0:{n.ADMIN_PORT}",
    ]
    for component in app.components:
        command += ["--component", component]
    mounts: list[Any] = [{"name": n.APP_VOLUME, "mountPath": n.APP_DIR, "readOnly": True}]
    mounts += [dict(m) for m in app.volume_mounts]
    if executor is not None and executor.ca_cert_secret:
        mounts.append(
            {
                "name": "zerowatt-ca-certs",
                "mountPath": n.CA_CERTS_PATH,
                "subPath": "ca-certificates.crt",
                "readOnly": True,
            }
        )
    container: dict[str, Any] = {
        "name": "runtime",
        "image": settings.runtime_image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": command,
        "ports": [
            {"name": "http", "containerPort": n.HTTP_PORT, "protocol": "TCP"},
            {"name": "admin", "containerPort": n.ADMIN_PORT, "protocol": "TCP"},
        ],
        "readinessProbe": _probe(app.readiness, "/readyz", "admin"),
        "livenessProbe": _probe(app.liveness, "/healthz", "admin"),
        "volumeMounts": mounts,
    }
    if app.env:
        container["env"] = [dict(e) for e in app.env]
    if app.resources:
        container["resources"] = {k: dict(v) for k, v in app.resources.items()}
    return container


def _volumes(app: AppSpec, executor: ExecutorSpec | None) -> list[Any]:
    volumes: list[Any] = [{"name": n.APP_VOLUME, "emptyDir": {}}]
    for i, secret in enumerate(app.pull_secrets):
        volumes.append(
            {
                "name": f"zerowatt-pull-{i}",
                "secret": {"secretName": secret, "items": [{"key": ".dockerconfigjson", "path": ".dockerconfigjson"}]},
            }
        )
    if executor is not None and executor.ca_cert_secret:
        volumes.append({"name": "zerowatt-ca-certs", "secret": {"secretName": executor.ca_cert_secret}})
    volumes += [dict(v) for v in app.volumes]
    return volumes


def deployment(app: AppSpec, executor: ExecutorSpec | None, settings: Settings) -> Manifest:
    """The app's Deployment; without ``spec.replicas`` when the activator owns it."""
    pod_labels = {**app.pod_labels, **labels(app)}
    pod_meta: dict[str, Any] = {"labels": pod_labels}
    if app.pod_annotations:
        pod_meta["annotations"] = dict(app.pod_annotations)
    pod: dict[str, Any] = {
        "initContainers": [_pull_container(app, settings)],
        "containers": [_runtime_container(app, executor, settings)],
        "volumes": _volumes(app, executor),
    }
    if app.pull_secrets:
        pod["imagePullSecrets"] = [{"name": s} for s in app.pull_secrets]
    if app.service_account:
        pod["serviceAccountName"] = app.service_account
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {n.LABEL_APP: app.ref.name}},
        "template": {"metadata": pod_meta, "spec": pod},
    }
    if not app.autoscaling.enabled:
        spec["replicas"] = app.replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(app, app.ref.name, deployment_annotations(app)),
        "spec": spec,
    }


def public_service(app: AppSpec) -> Manifest:
    """Service ``NAME`` without a selector: the activator writes its endpoints (pods, or itself at zero)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(app, app.ref.name, app.service_annotations),
        "spec": {
            "type": "ClusterIP",
            "ports": [{"name": "http", "port": 80, "targetPort": n.HTTP_PORT, "protocol": "TCP"}],
        },
    }


def pods_service(app: AppSpec) -> Manifest:
    """Service ``NAME-pods`` selecting the app's pods (the activator's way to find them and their metrics)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(app, f"{app.ref.name}-pods"),
        "spec": {
            "type": "ClusterIP",
            "selector": {n.LABEL_APP: app.ref.name},
            "ports": [
                {"name": "http", "port": 80, "targetPort": n.HTTP_PORT, "protocol": "TCP"},
                {"name": "admin", "port": n.ADMIN_PORT, "targetPort": n.ADMIN_PORT, "protocol": "TCP"},
            ],
        },
    }


def children(app: AppSpec, executor: ExecutorSpec | None, settings: Settings) -> list[Manifest]:
    return [deployment(app, executor, settings), public_service(app), pods_service(app)]
