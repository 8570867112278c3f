"""What the activator reads of an app: the Deployment's annotations, as the operator writes them (core).

The contract (``OPERATOR_CONTRACT.md``, docs/operator-activator.md): ``zerowatt.dev/autoscaling: "true"``
hands ``spec.replicas`` to the activator; ``zerowatt.dev/policy`` (``kpa`` by default) and
``zerowatt.dev/policy-params`` (a JSON object with the keys of ``zerowatt up --policy-option``) pick the
policy; ``zerowatt.dev/min-scale`` (0) and ``zerowatt.dev/max-scale`` (10) bound it;
``zerowatt.dev/service`` names the public Service (the Deployment's name by default).

A bad annotation never stops the app from being served: the app falls back to the default of that
annotation and :attr:`AppConfig.errors` says which annotation was wrong and why (logged, and shown on
the activator's metrics), so a typo costs a warning, not an outage.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from zerowatt.activator.hosts import AppKey
from zerowatt.errors import UsageError
from zerowatt.scaling.policies import PolicyConfig, parse_policy

PREFIX = "zerowatt.dev/"
AUTOSCALING = PREFIX + "autoscaling"
POLICY = PREFIX + "policy"
POLICY_PARAMS = PREFIX + "policy-params"
MIN_SCALE = PREFIX + "min-scale"
MAX_SCALE = PREFIX + "max-scale"
SERVICE = PREFIX + "service"
APP_LABEL = PREFIX + "app"
MANAGED_BY = "app.kubernetes.io/managed-by"
OPERATOR = "zerowatt-operator"
DEFAULT_POLICY = "kpa"
DEFAULT_MIN_SCALE = 0
DEFAULT_MAX_SCALE = 10
#: Highest max-scale accepted: a guard against a typo that would ask the cluster for a million pods.
MAX_SCALE_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class AppConfig:
    """One app behind the activator, from its Deployment."""

    key: AppKey  # the Deployment's namespace and name
    service: str  # the public Service (and ``SERVICE-zerowatt`` slice, ``SERVICE-pods`` Service)
    autoscaling: bool
    policy: PolicyConfig
    min_scale: int
    max_scale: int
    replicas: int  # spec.replicas as observed
    generation: str  # the annotations' fingerprint: a change rebuilds the app's autoscaler
    errors: tuple[str, ...] = ()

    @property
    def pods_service(self) -> str:
        return f"{self.service}-pods"

    @property
    def slice_name(self) -> str:
        return f"{self.service}-zerowatt"

    def clamp(self, replicas: int) -> int:
        return max(self.min_scale, min(self.max_scale, replicas))


def is_app(deployment: Mapping[str, Any]) -> bool:
    """Whether a Deployment is a zerowatt app (made by the operator, or annotated with its Service)."""
    meta = deployment.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    return labels.get(MANAGED_BY) == OPERATOR or SERVICE in annotations


def _scale(annotations: Mapping[str, Any], key: str, default: int, errors: list[str], where: str) -> int:
    text = annotations.get(key)
    if text is None:
        return default
    try:
        value = int(str(text).strip())
    except ValueError:
        errors.append(f"{where}: annotation {key}={str(text)[:40]!r}: expected a whole number; using {default}")
        return default
    if not 0 <= value <= MAX_SCALE_LIMIT:
        errors.append(f"{where}: annotation {key}={value}: expected 0..{MAX_SCALE_LIMIT}; using {default}")
        return default
    return value


def _params(text: Any, where: str, errors: list[str]) -> list[str]:
    """``policy-params`` JSON → ``KEY=VALUE`` items (numbers only), errors appended."""
    try:
        data = json.loads(str(text))
    except ValueError as exc:
        errors.append(f"{where}: annotation {POLICY_PARAMS}: not JSON ({exc}); using the policy's defaults")
        return []
    if not isinstance(data, dict):
        errors.append(f"{where}: annotation {POLICY_PARAMS}: expected a JSON object; using the policy's defaults")
        return []
    items = []
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            errors.append(f"{where}: annotation {POLICY_PARAMS}: {key}: expected a number; using the defaults")
            return []
        items.append(f"{key}={value}")
    return items


def app_config(deployment: Mapping[str, Any]) -> AppConfig:
    """The :class:`AppConfig` of a Deployment (never raises for bad annotations: see the module docstring)."""
    meta = deployment.get("metadata") or {}
    key = AppKey(str(meta.get("namespace") or "default"), str(meta.get("name") or ""))
    where = f"Deployment {key}"
    annotations: Mapping[str, Any] = meta.get("annotations") or {}
    errors: list[str] = []
    autoscaling = str(annotations.get(AUTOSCALING, "")).strip().lower() == "true"
    name = str(annotations.get(POLICY) or DEFAULT_POLICY).strip()
    items = _params(annotations[POLICY_PARAMS], where, errors) if POLICY_PARAMS in annotations else []
    try:
        policy = parse_policy(name, items)
    except UsageError as exc:
        errors.append(f"{where}: annotations {POLICY}/{POLICY_PARAMS}: {exc}; using {DEFAULT_POLICY} defaults")
        policy = parse_policy(DEFAULT_POLICY)
    low = _scale(annotations, MIN_SCALE, DEFAULT_MIN_SCALE, errors, where)
    high = _scale(annotations, MAX_SCALE, DEFAULT_MAX_SCALE, errors, where)
    if low > high:
        errors.append(f"{where}: {MIN_SCALE}={low} > {MAX_SCALE}={high}; using {high} for both")
        low = high
    service = str(annotations.get(SERVICE) or key.name)
    replicas_raw = (deployment.get("spec") or {}).get("replicas", 1)
    replicas = replicas_raw if isinstance(replicas_raw, int) and replicas_raw >= 0 else 1
    fingerprint = json.dumps([autoscaling, name, annotations.get(POLICY_PARAMS), low, high, service])
    return AppConfig(key, service, autoscaling, policy, low, high, replicas, fingerprint, tuple(errors))
