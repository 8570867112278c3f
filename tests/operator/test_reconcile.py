"""Table tests of the pure reconcile: children per field, errors as conditions and events, drift, deletion."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from tests.operator.samples import LATER, NOW, executor, spinapp, wasmapp, with_meta
from zerowatt.operator import names as n
from zerowatt.operator.children import Settings
from zerowatt.operator.reconcile import Delete, Plan, contains, failed, reconcile

SETTINGS = Settings(runtime_image="registry.local/zerowatt/runtime:1.0")
EXECUTORS = {"containerd-shim-spin": executor()}
Obj = dict[str, Any]


def plan_for(obj: Obj, executors: dict[str, Obj] | None = None, observed: dict[Any, Obj] | None = None) -> Plan:
    kind = obj["kind"]
    return reconcile(obj, kind, EXECUTORS if executors is None else executors, observed or {}, NOW, SETTINGS)


def applied(plan: Plan) -> dict[tuple[str, str], Obj]:
    return {(m["kind"], m["metadata"]["name"]): m for m in plan.apply}


def settle(obj: Obj, executors: dict[str, Obj] | None = None) -> tuple[Obj, dict[Any, Obj]]:
    """The app and its children after one reconcile was carried out (as the API server would store them)."""
    plan = plan_for(obj, executors)
    stored = copy.deepcopy(obj)
    if plan.finalizers is not None:
        stored["metadata"]["finalizers"] = plan.finalizers
    if plan.status is not None:
        stored["status"] = {k: v for k, v in plan.status.items() if v is not None}
    observed: dict[Any, Obj] = {}
    for key, manifest in applied(plan).items():
        child = copy.deepcopy(manifest)
        child["metadata"]["resourceVersion"] = "7"  # fields the server adds
        if key[0] == "Deployment":
            child["spec"].setdefault("strategy", {"type": "RollingUpdate"})
            child["status"] = {"replicas": 0}
        observed[key] = child
    second = plan_for(stored, executors, observed)  # the status once the children exist
    if second.status is not None:
        stored["status"] = {k: v for k, v in second.status.items() if v is not None}
    return stored, observed


def deployment_of(plan: Plan) -> Obj:
    return applied(plan)[("Deployment", "web")]


def runtime_of(plan: Plan) -> Obj:
    containers: list[Obj] = deployment_of(plan)["spec"]["template"]["spec"]["containers"]
    return containers[0]


def test_a_good_spinapp_gets_finalizer_children_and_status() -> None:
    plan = plan_for(spinapp())
    assert plan.finalizers == [n.FINALIZER]
    assert set(applied(plan)) == {("Deployment", "web"), ("Service", "web"), ("Service", "web-pods")}
    dep = deployment_of(plan)
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["selector"] == {"matchLabels": {"zerowatt.dev/app": "web"}}
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "web" and labels["app.kubernetes.io/managed-by"] == "zerowatt-operator"
    assert dep["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "core.spinkube.dev/v1alpha1",
            "kind": "SpinApp",
            "name": "web",
            "uid": "uid-web",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    pod = dep["spec"]["template"]["spec"]
    assert pod["initContainers"][0]["command"] == ["zerowatt", "pull", "ghcr.io/example/web:v1", "--to", "/app"]
    assert pod["initContainers"][0]["image"] == "registry.local/zerowatt/runtime:1.0"
    runtime = pod["containers"][0]
    assert runtime["command"] == [
        "zerowatt",
        "up",
        "/app/spin.toml",
        "--listen",
        "0.0.0.0:8080",
        "--admin",
        "0.0.0.0:9090",
    ]
    assert [(p["name"], p["containerPort"]) for p in runtime["ports"]] == [("http", 8080), ("admin", 9090)]
    assert runtime["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    assert dep["metadata"]["annotations"] == {
        "zerowatt.dev/service": "web",
        "zerowatt.dev/policy": "kpa",
        "zerowatt.dev/min-scale": "0",
        "zerowatt.dev/max-scale": "10",
    }
    public = applied(plan)[("Service", "web")]
    assert "selector" not in public["spec"]
    assert public["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]
    pods = applied(plan)[("Service", "web-pods")]
    assert pods["spec"]["selector"] == {"zerowatt.dev/app": "web"}
    assert [(p["name"], p["port"], p["targetPort"]) for p in pods["spec"]["ports"]] == [
        ("http", 80, 8080),
        ("admin", 9090, 9090),
    ]
    assert plan.status is not None
    assert plan.status["deploymentName"] == plan.status["serviceName"] == "web"
    assert plan.status["activeScheduler"] == "containerd-shim-spin"
    assert "observedGeneration" not in plan.status  # not in SpinKube's status schema; conditions carry it
    accepted, ready = plan.status["conditions"]
    assert (accepted["type"], accepted["status"], accepted["observedGeneration"]) == ("Accepted", "True", 1)
    assert "runtimeClassName has no effect" in accepted["message"]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "False", "Creating")
    assert plan.events == []


def _pod(plan: Plan) -> Obj:
    spec: Obj = deployment_of(plan)["spec"]["template"]["spec"]
    return spec


#: (SpinApp fields, a function of the plan, the value it must give): one row per SpinApp field.
FIELD_TABLE: list[tuple[str, dict[str, Any], Callable[[Plan], Any], Any]] = [
    ("image", {"image": "oci.local/a:v2"}, lambda p: _pod(p)["initContainers"][0]["command"][2], "oci.local/a:v2"),
    ("replicas", {"replicas": 5}, lambda p: deployment_of(p)["spec"]["replicas"], 5),
    (
        "enableAutoscaling omits replicas",
        {"enableAutoscaling": True},
        lambda p: "replicas" in deployment_of(p)["spec"],
        False,
    ),
    (
        "enableAutoscaling annotation",
        {"enableAutoscaling": True},
        lambda p: deployment_of(p)["metadata"]["annotations"]["zerowatt.dev/autoscaling"],
        "true",
    ),
    (
        "resources",
        {"resources": {"limits": {"memory": "128Mi"}, "requests": {"cpu": "100m"}}},
        lambda p: runtime_of(p)["resources"],
        {"limits": {"memory": "128Mi"}, "requests": {"cpu": "100m"}},
    ),
    (
        "variables value",
        {"variables": [{"name": "greeting", "value": "hi"}]},
        lambda p: runtime_of(p)["env"],
        [{"name": "SPIN_VARIABLE_GREETING", "value": "hi"}],
    ),
    (
        "variables configMapKeyRef",
        {"variables": [{"name": "colour", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "c"}}}]},
        lambda p: runtime_of(p)["env"],
        [{"name": "SPIN_VARIABLE_COLOUR", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "c"}}}],
    ),
    (
        "variables secretKeyRef",
        {"variables": [{"name": "token", "valueFrom": {"secretKeyRef": {"name": "s", "key": "t"}}}]},
        lambda p: runtime_of(p)["env"],
        [{"name": "SPIN_VARIABLE_TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "t"}}}],
    ),
    (
        "volumes",
        {"volumes": [{"name": "data", "configMap": {"name": "files"}}]},
        lambda p: _pod(p)["volumes"][-1],
        {"name": "data", "configMap": {"name": "files"}},
    ),
    (
        "volumeMounts",
        {"volumes": [{"name": "data", "emptyDir": {}}], "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
        lambda p: runtime_of(p)["volumeMounts"][-1],
        {"name": "data", "mountPath": "/data"},
    ),
    (
        "imagePullSecrets on the pod",
        {"imagePullSecrets": [{"name": "regcred"}]},
        lambda p: _pod(p)["imagePullSecrets"],
        [{"name": "regcred"}],
    ),
    (
        "imagePullSecrets mounted for pull",
        {"imagePullSecrets": [{"name": "regcred"}]},
        lambda p: _pod(p)["initContainers"][0]["volumeMounts"][1]["mountPath"],
        "/var/run/zerowatt/pull-secrets/regcred",
    ),
    (
        "imagePullSecrets volume",
        {"imagePullSecrets": [{"name": "regcred"}]},
        lambda p: _pod(p)["volumes"][1]["secret"],
        {"secretName": "regcred", "items": [{"key": ".dockerconfigjson", "path": ".dockerconfigjson"}]},
    ),
    (
        "checks readiness",
        {
            "checks": {
                "readiness": {
                    "httpGet": {"path": "/ok", "httpHeaders": [{"name": "X", "value": "1"}]},
                    "periodSeconds": 3,
                }
            }
        },
        lambda p: runtime_of(p)["readinessProbe"],
        {
            "httpGet": {"path": "/ok", "port": "http", "httpHeaders": [{"name": "X", "value": "1"}]},
            "initialDelaySeconds": 10,
            "timeoutSeconds": 1,
            "periodSeconds": 3,
            "successThreshold": 1,
            "failureThreshold": 3,
        },
    ),
    (
        "checks liveness",
        {"checks": {"liveness": {"httpGet": {"path": "/live"}}}},
        lambda p: runtime_of(p)["livenessProbe"]["httpGet"],
        {"path": "/live", "port": "http"},
    ),
    (
        "no liveness check",
        {},
        lambda p: runtime_of(p)["livenessProbe"]["httpGet"],
        {"path": "/healthz", "port": "admin"},
    ),
    (
        "serviceAnnotations",
        {"serviceAnnotations": {"lb": "internal"}},
        lambda p: applied(p)[("Service", "web")]["metadata"]["annotations"],
        {"lb": "internal"},
    ),
    (
        "deploymentAnnotations",
        {"deploymentAnnotations": {"team": "a"}},
        lambda p: deployment_of(p)["metadata"]["annotations"]["team"],
        "a",
    ),
    (
        "podAnnotations",
        {"podAnnotations": {"prometheus.io/scrape": "true"}},
        lambda p: deployment_of(p)["spec"]["template"]["metadata"]["annotations"],
        {"prometheus.io/scrape": "true"},
    ),
    (
        "podLabels",
        {"podLabels": {"tier": "web"}},
        lambda p: deployment_of(p)["spec"]["template"]["metadata"]["labels"]["tier"],
        "web",
    ),
    (
        "components",
        {"components": ["api", "ui"]},
        lambda p: runtime_of(p)["command"][-4:],
        ["--component", "api", "--component", "ui"],
    ),
    ("serviceAccountName", {"serviceAccountName": "web-sa"}, lambda p: _pod(p)["serviceAccountName"], "web-sa"),
    ("no serviceAccountName", {}, lambda p: "serviceAccountName" in _pod(p), False),
]


@pytest.mark.parametrize(("label", "fields", "read", "expected"), FIELD_TABLE, ids=[row[0] for row in FIELD_TABLE])
def test_each_spinapp_field_reaches_the_children(
    label: str, fields: dict[str, Any], read: Callable[[Plan], Any], expected: Any
) -> None:
    plan = plan_for(spinapp(**fields))
    assert plan.events == [], plan.events
    assert read(plan) == expected


def test_autoscaling_annotations_reach_the_deployment() -> None:
    annotations = {"zerowatt.dev/policy": "energy", "zerowatt.dev/min-scale": "1", "zerowatt.dev/max-scale": "3"}
    plan = plan_for(with_meta(spinapp(enableAutoscaling=True), annotations=annotations))
    ann = deployment_of(plan)["metadata"]["annotations"]
    assert (ann["zerowatt.dev/policy"], ann["zerowatt.dev/min-scale"], ann["zerowatt.dev/max-scale"]) == (
        "energy",
        "1",
        "3",
    )


def test_wasmapp_autoscaling_reaches_the_deployment() -> None:
    obj = wasmapp(autoscaling={"enabled": True, "policy": "keepalive", "params": {"keep_alive": 30}})
    plan = plan_for(obj, executors={})
    dep = applied(plan)[("Deployment", "web")]
    assert "replicas" not in dep["spec"]
    assert dep["metadata"]["annotations"]["zerowatt.dev/policy-params"] == '{"keep_alive":30.0}'
    assert dep["metadata"]["ownerReferences"][0]["kind"] == "WasmApp"
    assert plan.status is not None and plan.status["activeScheduler"] is None
    assert plan.status["observedGeneration"] == 1


#: (SpinApp fields, executors in the namespace, condition reason, text the message must hold)
ERRORS: list[tuple[dict[str, Any], dict[str, Obj], str, str]] = [
    ({"executor": "wasmtime"}, EXECUTORS, "UnknownExecutor", "spec.executor: no SpinAppExecutor named 'wasmtime'"),
    ({"executor": None}, {}, "UnknownExecutor", "spec.executor: no SpinAppExecutor in namespace"),
    ({"image": None}, EXECUTORS, "InvalidSpec", "spec.image: required"),
    (
        {"variables": [{"name": "a", "valueFrom": {"secretKeyRef": {"name": "s"}}}]},
        EXECUTORS,
        "InvalidSpec",
        "spec.variables[0].valueFrom.secretKeyRef.key: required",
    ),
    (
        {"runtimeConfig": {"llmCompute": {"type": "remote_http"}}},
        EXECUTORS,
        "UnsupportedField",
        "spec.runtimeConfig.llmCompute",
    ),
    (
        {},
        {"containerd-shim-spin": executor(deploymentConfig={"otel": {"exporter_otlp_endpoint": "x"}})},
        "UnsupportedExecutor",
        "executor containerd-shim-spin: spec.deploymentConfig.otel",
    ),
]


@pytest.mark.parametrize(
    ("fields", "executors", "reason", "text"), ERRORS, ids=[e[2] + ":" + e[3][:30] for e in ERRORS]
)
def test_errors_become_a_condition_and_an_event(
    fields: dict[str, Any], executors: dict[str, Obj], reason: str, text: str
) -> None:
    plan = plan_for(spinapp(**fields), executors)
    assert plan.apply == [] and plan.delete == []
    assert plan.status is not None
    accepted = plan.status["conditions"][0]
    assert (accepted["type"], accepted["status"], accepted["reason"]) == ("Accepted", "False", reason)
    assert text in accepted["message"]
    assert plan.status["deploymentName"] is None
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", reason)]
    assert text in plan.events[0].message


def test_an_event_is_planned_once_per_message() -> None:
    obj = spinapp(image=None)
    stored, _ = settle(obj)
    again = plan_for(stored)
    assert again.events == [] and again.status is None
    changed = plan_for(with_meta(stored, generation=2) | {"spec": {**stored["spec"], "replicas": -1}})
    assert len(changed.events) == 1 and "spec.replicas" in changed.events[0].message


def test_an_invalid_change_leaves_running_children_alone() -> None:
    stored, observed = settle(spinapp())
    broken = with_meta(stored, generation=2)
    broken["spec"]["executor"] = "gone"
    plan = plan_for(broken, observed=observed)
    assert plan.apply == [] and plan.delete == []
    assert plan.events[0].reason == "UnknownExecutor"


def test_the_default_executor_is_the_first_by_name() -> None:
    executors = {"b-exec": executor("b-exec"), "a-exec": executor("a-exec")}
    plan = plan_for(spinapp(executor=None), executors)
    assert plan.status is not None and plan.status["activeScheduler"] == "a-exec"
    assert len(plan.apply) == 3


def test_an_executor_without_deployments_gets_no_children() -> None:
    plan = plan_for(spinapp(), {"containerd-shim-spin": executor(createDeployment=False)})
    assert plan.apply == []
    assert plan.status is not None and plan.status["conditions"][1]["reason"] == "NoDeployment"


def test_executor_ca_cert_secret_is_mounted() -> None:
    ex = executor(deploymentConfig={"caCertSecret": "corp-ca"})
    plan = plan_for(spinapp(), {"containerd-shim-spin": ex})
    assert {"name": "zerowatt-ca-certs", "secret": {"secretName": "corp-ca"}} in _pod(plan)["volumes"]
    assert runtime_of(plan)["volumeMounts"][-1]["mountPath"] == "/etc/ssl/certs/ca-certificates.crt"


def test_steady_state_plans_nothing() -> None:
    stored, observed = settle(spinapp())
    assert plan_for(stored, observed=observed).idle


@pytest.mark.parametrize(
    ("where", "mutate"),
    [
        ("image", lambda d: d["spec"]["template"]["spec"]["containers"][0].update(image="evil:1")),
        ("replicas", lambda d: d["spec"].update(replicas=9)),
        ("annotation", lambda d: d["metadata"]["annotations"].pop("zerowatt.dev/policy")),
        ("extra container", lambda d: d["spec"]["template"]["spec"]["containers"].append({"name": "x"})),
    ],
)
def test_drift_of_the_deployment_is_reapplied(where: str, mutate: Callable[[Obj], Any]) -> None:
    stored, observed = settle(spinapp())
    mutate(observed[("Deployment", "web")])
    plan = plan_for(stored, observed=observed)
    assert [(m["kind"], m["metadata"]["name"]) for m in plan.apply] == [("Deployment", "web")]


def test_a_deleted_child_is_recreated() -> None:
    stored, observed = settle(spinapp())
    del observed[("Service", "web-pods")]
    plan = plan_for(stored, observed=observed)
    assert [(m["kind"], m["metadata"]["name"]) for m in plan.apply] == [("Service", "web-pods")]


def test_the_activators_replicas_are_not_drift() -> None:
    stored, observed = settle(spinapp(enableAutoscaling=True))
    observed[("Deployment", "web")]["spec"]["replicas"] = 4
    plan = plan_for(stored, observed=observed)
    assert plan.apply == [] and plan.events == []


def test_a_new_generation_is_applied_in_full() -> None:
    stored, observed = settle(spinapp())
    plan = plan_for(with_meta(stored, generation=2), observed=observed)
    assert len(plan.apply) == 3
    assert plan.status is not None and plan.status["conditions"][0]["observedGeneration"] == 2


def test_a_child_controlled_by_another_object_is_a_conflict() -> None:
    _, observed = settle(spinapp(uid="other-uid"))
    plan = plan_for(spinapp(), observed=observed)
    assert plan.apply == []
    assert plan.events[0].reason == "ChildConflict"
    assert "child Deployment web" in plan.events[0].message


def test_deletion_removes_owned_children_then_the_finalizer() -> None:
    stored, observed = settle(spinapp())
    _, foreign = settle(spinapp(name="web", uid="someone-else"))
    deleting = with_meta(stored, deletionTimestamp="2026-12-02T12:00:00Z")
    plan = plan_for(deleting, observed=observed)
    assert plan.delete == [
        Delete("apps/v1", "Deployment", "apps", "web"),
        Delete("v1", "Service", "apps", "web"),
        Delete("v1", "Service", "apps", "web-pods"),
    ]
    assert plan.finalizers == [] and plan.apply == [] and plan.status is None
    assert plan_for(deleting, observed=foreign).delete == []


def test_deletion_without_our_finalizer_does_nothing() -> None:
    obj = with_meta(spinapp(), deletionTimestamp="2026-12-02T12:00:00Z", finalizers=["other"])
    assert plan_for(obj).idle


def test_ready_follows_the_deployment_and_keeps_transition_time() -> None:
    stored, observed = settle(spinapp())
    observed[("Deployment", "web")]["status"] = {"readyReplicas": 2}
    plan = reconcile(stored, "SpinApp", EXECUTORS, observed, LATER, SETTINGS)
    assert plan.status is not None and plan.status["readyReplicas"] == 2
    accepted, ready = plan.status["conditions"]
    assert (ready["status"], ready["reason"], ready["lastTransitionTime"]) == ("True", "Ready", "2026-12-02T13:00:00Z")
    assert accepted["lastTransitionTime"] == "2026-12-02T12:00:00Z"  # unchanged status keeps its time


def test_autoscaled_app_at_zero_is_ready() -> None:
    stored, _ = settle(spinapp(enableAutoscaling=True))
    ready = stored["status"]["conditions"][1]
    assert (ready["status"], ready["reason"]) == ("True", "ScaledToZero")


def test_failed_status_marks_ready_false() -> None:
    stored, _ = settle(spinapp())
    plan = plan_for(stored)
    status = failed(plan, "PATCH deployments/web: 422", LATER, stored["status"])
    ready = [c for c in status["conditions"] if c["type"] == "Ready"]
    assert [(c["status"], c["reason"]) for c in ready] == [("False", "ApplyFailed")]
    assert status["conditions"][0]["observedGeneration"] == 1


@pytest.mark.parametrize(
    ("observed", "desired", "expected"),
    [
        ({"a": 1, "b": 2}, {"a": 1}, True),
        ({"a": 1}, {"a": 2}, False),
        ({"a": [1, 2]}, {"a": [1]}, False),
        ({"q": "1"}, {"q": 1}, True),
        ({"flag": 1}, {"flag": True}, False),
        (None, {"a": 1}, False),
    ],
)
def test_contains(observed: Any, desired: Any, expected: bool) -> None:
    assert contains(observed, desired) is expected


@pytest.mark.parametrize(
    ("deployment_conditions", "reason", "text"),
    [
        (
            [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": "exceeded quota: pods"}],
            "ReplicaFailure",
            "exceeded quota",
        ),
        (
            [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "timed out"}],
            "ProgressDeadlineExceeded",
            "timed out",
        ),
        ([{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}], "Progressing", "waiting"),
    ],
)
def test_ready_reports_the_deployments_failures(deployment_conditions: list[Obj], reason: str, text: str) -> None:
    stored, observed = settle(spinapp())
    observed[("Deployment", "web")]["status"] = {"replicas": 2, "conditions": deployment_conditions}
    plan = plan_for(stored, observed=observed)
    ready = (plan.status or stored["status"])["conditions"][1]
    assert (ready["status"], ready["reason"]) == ("False", reason)
    assert text in ready["message"]
