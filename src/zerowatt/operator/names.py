"""Names the operator shares with the activator and the packaging (see the operator contract in issue 12).

Plain constants only: API groups and plurals, labels, the annotations the activator reads on Deployments,
the field manager, the finalizer and the container layout of a pod.
"""

from __future__ import annotations

from typing import Final

ZEROWATT_API: Final = "zerowatt.dev/v1alpha1"
SPINKUBE_API: Final = "core.spinkube.dev/v1alpha1"

WASMAPP: Final = "WasmApp"
SPINAPP: Final = "SpinApp"
EXECUTOR: Final = "SpinAppExecutor"

#: kind → (apiVersion, plural) of the resources the operator watches.
APP_KINDS: Final = {WASMAPP: (ZEROWATT_API, "wasmapps"), SPINAPP: (SPINKUBE_API, "spinapps")}
EXECUTOR_PLURAL: Final = "spinappexecutors"

FIELD_MANAGER: Final = "zerowatt-operator"
FINALIZER: Final = "zerowatt.dev/operator"
COMPONENT: Final = "zerowatt-operator"

LABEL_NAME: Final = "app.kubernetes.io/name"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
LABEL_APP: Final = "zerowatt.dev/app"
#: Which kind owns a child (``SpinApp`` or ``WasmApp``): two apps of the same name in one namespace, one
#: of each kind, would fight over the same children; the label tells the loser which they are.
LABEL_OWNER_KIND: Final = "zerowatt.dev/owner-kind"

ANN_AUTOSCALING: Final = "zerowatt.dev/autoscaling"
ANN_POLICY: Final = "zerowatt.dev/policy"
ANN_POLICY_PARAMS: Final = "zerowatt.dev/policy-params"
ANN_MIN_SCALE: Final = "zerowatt.dev/min-scale"
ANN_MAX_SCALE: Final = "zerowatt.dev/max-scale"
ANN_SERVICE: Final = "zerowatt.dev/service"
#: The reserved annotation and label prefix: users may not set these through deployment/pod annotations.
RESERVED_PREFIX: Final = "zerowatt.dev/"

POLICIES: Final = ("kpa", "keepalive", "hybrid", "energy")
DEFAULT_POLICY: Final = "kpa"
DEFAULT_MIN_SCALE: Final = 0
DEFAULT_MAX_SCALE: Final = 10

HTTP_PORT: Final = 8080
ADMIN_PORT: Final = 9090
APP_DIR: Final = "/app"
APP_VOLUME: Final = "app"
PULL_SECRETS_DIR: Final = "/var/run/zerowatt/pull-secrets"
CA_CERTS_PATH: Final = "/etc/ssl/certs/ca-certificates.crt"
DEFAULT_RUNTIME_IMAGE: Final = "ghcr.io/zerowatt/runtime"
