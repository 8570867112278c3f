"""Table tests of reading SpinApp, WasmApp and SpinAppExecutor: every bad or unsupported field is named."""

from __future__ import annotations

from typing import Any

import pytest

from tests.operator.samples import executor, spinapp, wasmapp, with_meta
from zerowatt.operator.model import parse_executor, parse_spinapp, parse_wasmapp

OK_REF = {"name": "cfg", "key": "greeting"}

#: (SpinApp spec fields to set, the field the problem must name, whether it is "unsupported").
BAD_SPINAPP: list[tuple[dict[str, Any], str, bool]] = [
    ({"image": None}, "spec.image", False),
    ({"image": 7}, "spec.image", False),
    ({"replicas": -1}, "spec.replicas", False),
    ({"replicas": "2"}, "spec.replicas", False),
    ({"enableAutoscaling": "yes"}, "spec.enableAutoscaling", False),
    ({"executor": ["a"]}, "spec.executor", False),
    ({"variables": {"a": "b"}}, "spec.variables", False),
    ({"variables": [{"name": "Bad-Name", "value": "x"}]}, "spec.variables[0].name", False),
    ({"variables": [{"value": "x"}]}, "spec.variables[0].name", False),
    ({"variables": [{"name": "a", "value": "1"}, {"name": "a", "value": "2"}]}, "spec.variables[1].name", False),
    (
        {"variables": [{"name": "a", "value": "x", "valueFrom": {"configMapKeyRef": OK_REF}}]},
        "spec.variables[0]",
        False,
    ),
    ({"variables": [{"name": "a", "valueFrom": {}}]}, "spec.variables[0].valueFrom", False),
    (
        {"variables": [{"name": "a", "valueFrom": {"secretKeyRef": {"name": "s"}}}]},
        "spec.variables[0].valueFrom.secretKeyRef.key",
        False,
    ),
    (
        {"variables": [{"name": "a", "valueFrom": {"configMapKeyRef": {"key": "k"}}}]},
        "spec.variables[0].valueFrom.configMapKeyRef.name",
        False,
    ),
    (
        {"variables": [{"name": "a", "valueFrom": {"configMapKeyRef": {"name": "Not_A_Name", "key": "k"}}}]},
        "spec.variables[0].valueFrom.configMapKeyRef.name",
        False,
    ),
    (
        {"variables": [{"name": "a", "valueFrom": {"configMapKeyRef": OK_REF, "secretKeyRef": OK_REF}}]},
        "spec.variables[0].valueFrom",
        False,
    ),
    (
        {"variables": [{"name": "a", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]},
        "spec.variables[0].valueFrom.fieldRef",
        True,
    ),
    (
        {"variables": [{"name": "a", "valueFrom": {"secretKeyRef": {**OK_REF, "optional": "no"}}}]},
        "spec.variables[0].valueFrom.secretKeyRef.optional",
        False,
    ),
    ({"variables": [{"name": "a", "secret": True}]}, "spec.variables[0].secret", True),
    ({"runtimeConfig": {"llmCompute": {"type": "remote_http"}}}, "spec.runtimeConfig.llmCompute", True),
    (
        {"runtimeConfig": {"keyValueStores": [{"name": "default", "type": "redis"}]}},
        "spec.runtimeConfig.keyValueStores",
        True,
    ),
    (
        {"runtimeConfig": {"sqliteDatabases": [{"name": "default", "type": "libsql"}]}},
        "spec.runtimeConfig.sqliteDatabases",
        True,
    ),
    ({"runtimeConfig": {"loadFromSecret": "rc"}}, "spec.runtimeConfig.loadFromSecret", True),
    ({"runtimeConfig": {"somethingNew": 1}}, "spec.runtimeConfig.somethingNew", True),
    ({"invocationLimits": {"memory": "1Gi"}}, "spec.invocationLimits['memory']", True),
    ({"bogus": 1}, "spec.bogus", True),
    ({"resources": {"limits": {"cpu": True}}}, "spec.resources.limits.cpu", False),
    ({"resources": {"claims": []}}, "spec.resources.claims", True),
    ({"resources": {"requests": "1"}}, "spec.resources.requests", False),
    ({"volumes": [{"name": "app", "emptyDir": {}}]}, "spec.volumes[0].name", False),
    ({"volumes": [{"emptyDir": {}}]}, "spec.volumes[0].name", False),
    ({"volumeMounts": [{"name": "nope", "mountPath": "/data"}]}, "spec.volumeMounts[0].name", False),
    (
        {"volumes": [{"name": "d", "emptyDir": {}}], "volumeMounts": [{"name": "d", "mountPath": "/app/x"}]},
        "spec.volumeMounts[0].mountPath",
        False,
    ),
    (
        {"volumes": [{"name": "d", "emptyDir": {}}], "volumeMounts": [{"name": "d"}]},
        "spec.volumeMounts[0].mountPath",
        False,
    ),
    ({"imagePullSecrets": [{"name": "Bad_Name"}]}, "spec.imagePullSecrets[0].name", False),
    ({"imagePullSecrets": [{}]}, "spec.imagePullSecrets[0].name", False),
    ({"checks": {"readiness": {"httpGet": {"path": "health"}}}}, "spec.checks.readiness.httpGet.path", False),
    ({"checks": {"readiness": {}}}, "spec.checks.readiness.httpGet.path", False),
    (
        {"checks": {"liveness": {"exec": {"command": ["true"]}, "httpGet": {"path": "/h"}}}},
        "spec.checks.liveness.exec",
        True,
    ),
    ({"checks": {"startup": {}}}, "spec.checks.startup", True),
    (
        {"checks": {"readiness": {"httpGet": {"path": "/h"}, "periodSeconds": -1}}},
        "spec.checks.readiness.periodSeconds",
        False,
    ),
    (
        {"checks": {"readiness": {"httpGet": {"path": "/h", "httpHeaders": [{"value": "v"}]}}}},
        "spec.checks.readiness.httpGet.httpHeaders[0].name",
        False,
    ),
    ({"podLabels": {"zerowatt.dev/app": "x"}}, "spec.podLabels['zerowatt.dev/app']", False),
    ({"podLabels": {"app.kubernetes.io/name": "x"}}, "spec.podLabels['app.kubernetes.io/name']", False),
    ({"podLabels": {"team": "not valid!"}}, "spec.podLabels['team']", False),
    ({"podAnnotations": {"zerowatt.dev/x": "1"}}, "spec.podAnnotations['zerowatt.dev/x']", False),
    (
        {"deploymentAnnotations": {"zerowatt.dev/policy": "kpa"}},
        "spec.deploymentAnnotations['zerowatt.dev/policy']",
        False,
    ),
    ({"serviceAnnotations": {"a": 1}}, "spec.serviceAnnotations['a']", False),
    ({"components": []}, "spec.components", False),
    ({"components": ["Bad Id"]}, "spec.components[0]", False),
    ({"serviceAccountName": "Not Valid"}, "spec.serviceAccountName", False),
]


@pytest.mark.parametrize(("fields", "where", "unsupported"), BAD_SPINAPP, ids=[b[1] for b in BAD_SPINAPP])
def test_a_bad_spinapp_field_is_named(fields: dict[str, Any], where: str, unsupported: bool) -> None:
    app = parse_spinapp(spinapp(**fields))
    assert [p.field for p in app.problems] == [where], app.problems
    assert app.problems[0].unsupported is unsupported


#: (annotation, value, the field the problem names)
BAD_ANNOTATIONS = [
    ("zerowatt.dev/policy", "fastest", "metadata.annotations['zerowatt.dev/policy']"),
    ("zerowatt.dev/policy-params", "{not json", "metadata.annotations['zerowatt.dev/policy-params']"),
    ("zerowatt.dev/policy-params", "[1]", "metadata.annotations['zerowatt.dev/policy-params']"),
    ("zerowatt.dev/policy-params", '{"no_such_option": 1}', "metadata.annotations['zerowatt.dev/policy-params']"),
    ("zerowatt.dev/policy-params", '{"window": true}', "metadata.annotations['zerowatt.dev/policy-params'].window"),
    ("zerowatt.dev/min-scale", "two", "metadata.annotations['zerowatt.dev/min-scale']"),
    ("zerowatt.dev/min-scale", "-1", "metadata.annotations['zerowatt.dev/min-scale']"),
    ("zerowatt.dev/max-scale", "0", "metadata.annotations['zerowatt.dev/max-scale']"),
]


@pytest.mark.parametrize(("key", "value", "where"), BAD_ANNOTATIONS, ids=[f"{a[0]}={a[1]}" for a in BAD_ANNOTATIONS])
def test_a_bad_autoscaling_annotation_is_named(key: str, value: str, where: str) -> None:
    app = parse_spinapp(with_meta(spinapp(enableAutoscaling=True), annotations={key: value}))
    assert [p.field for p in app.problems] == [where], app.problems


def test_max_below_min_names_max_scale() -> None:
    obj = with_meta(spinapp(), annotations={"zerowatt.dev/min-scale": "3", "zerowatt.dev/max-scale": "2"})
    assert [p.field for p in parse_spinapp(obj).problems] == ["metadata.annotations['zerowatt.dev/max-scale']"]


def test_autoscaling_annotations_are_read() -> None:
    annotations = {
        "zerowatt.dev/policy": "keepalive",
        "zerowatt.dev/policy-params": '{"keep_alive": 60}',
        "zerowatt.dev/min-scale": "1",
        "zerowatt.dev/max-scale": "4",
    }
    app = parse_spinapp(with_meta(spinapp(enableAutoscaling=True), annotations=annotations))
    assert app.problems == ()
    auto = app.autoscaling
    assert (auto.enabled, auto.policy, dict(auto.params), auto.min_scale, auto.max_scale) == (
        True,
        "keepalive",
        {"keep_alive": 60.0},
        1,
        4,
    )


def test_several_problems_are_all_named() -> None:
    app = parse_spinapp(spinapp(image=None, replicas=-2, runtimeConfig={"llmCompute": {"type": "x"}}))
    assert {p.field for p in app.problems} == {"spec.image", "spec.replicas", "spec.runtimeConfig.llmCompute"}


def test_a_good_spinapp_reads_every_field() -> None:
    app = parse_spinapp(
        spinapp(
            replicas=3,
            resources={"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": 0.1}},
            variables=[
                {"name": "greeting", "value": "hi"},
                {"name": "token", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token", "optional": True}}},
                {"name": "colour", "valueFrom": {"configMapKeyRef": OK_REF}},
            ],
            components=["api", "static-files"],
            serviceAccountName="web-sa",
            imagePullSecrets=[{"name": "regcred"}],
            checks={"readiness": {"httpGet": {"path": "/ready"}}, "liveness": {"httpGet": {"path": "/live"}}},
        )
    )
    assert app.problems == ()
    assert app.image == "ghcr.io/example/web:v1"
    assert app.replicas == 3
    assert app.env == (
        {"name": "SPIN_VARIABLE_GREETING", "value": "hi"},
        {
            "name": "SPIN_VARIABLE_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token", "optional": True}},
        },
        {"name": "SPIN_VARIABLE_COLOUR", "valueFrom": {"configMapKeyRef": OK_REF}},
    )
    assert app.components == ("api", "static-files")
    assert app.pull_secrets == ("regcred",)
    assert app.readiness is not None and app.readiness.path == "/ready"
    assert app.readiness.timings["periodSeconds"] == 10  # SpinKube's CRD default
    assert app.liveness is not None and app.liveness.path == "/live"


def test_replicas_default_to_one() -> None:
    assert parse_spinapp(spinapp(replicas=None)).replicas == 1


BAD_WASMAPP: list[tuple[dict[str, Any], str]] = [
    ({"component": None}, "spec.component"),
    ({"executor": "x"}, "spec.executor"),
    ({"enableAutoscaling": True}, "spec.enableAutoscaling"),
    ({"autoscaling": {"enabled": 1}}, "spec.autoscaling.enabled"),
    ({"autoscaling": {"policy": "nope"}}, "spec.autoscaling.policy"),
    ({"autoscaling": {"minScale": -1}}, "spec.autoscaling.minScale"),
    ({"autoscaling": {"params": {"keep_alive": -5}, "policy": "keepalive"}}, "spec.autoscaling.params"),
    ({"autoscaling": {"target": 3}}, "spec.autoscaling.target"),
]


@pytest.mark.parametrize(("fields", "where"), BAD_WASMAPP, ids=[b[1] for b in BAD_WASMAPP])
def test_a_bad_wasmapp_field_is_named(fields: dict[str, Any], where: str) -> None:
    app = parse_wasmapp(wasmapp(**fields))
    assert [p.field for p in app.problems] == [where], app.problems


def test_wasmapp_autoscaling_is_read() -> None:
    obj = wasmapp(autoscaling={"enabled": True, "policy": "hybrid", "minScale": 0, "maxScale": 3})
    app = parse_wasmapp(obj)
    assert app.problems == ()
    assert (app.autoscaling.enabled, app.autoscaling.policy, app.autoscaling.max_scale) == (True, "hybrid", 3)
    assert app.image == "ghcr.io/example/web:v1"


BAD_EXECUTOR: list[tuple[dict[str, Any], str]] = [
    ({"createDeployment": "yes"}, "spec.createDeployment"),
    ({"deploymentConfig": {"otel": {"exporter_otlp_endpoint": "http://c:4318"}}}, "spec.deploymentConfig.otel"),
    ({"deploymentConfig": {"caCertSecret": "Bad_Name"}}, "spec.deploymentConfig.caCertSecret"),
    ({"deploymentConfig": {"nodeSelector": {}}}, "spec.deploymentConfig.nodeSelector"),
    ({"other": 1}, "spec.other"),
]


@pytest.mark.parametrize(("fields", "where"), BAD_EXECUTOR, ids=[b[1] for b in BAD_EXECUTOR])
def test_a_bad_executor_field_is_named(fields: dict[str, Any], where: str) -> None:
    ex = parse_executor(executor(**fields))
    assert [p.field for p in ex.problems] == [where], ex.problems


def test_executor_runtime_choices_are_noted() -> None:
    ex = parse_executor(executor(deploymentConfig={"runtimeClassName": "wasmtime-spin-v2", "caCertSecret": "ca"}))
    assert ex.problems == ()
    assert ex.ca_cert_secret == "ca"
    assert ex.notes and "runtimeClassName" in ex.notes[0]


def test_the_wasmapp_crd_declares_every_field_the_operator_reads() -> None:
    from pathlib import Path

    import yaml

    from zerowatt.operator.model import WASMAPP_FIELDS

    crd = yaml.safe_load((Path(__file__).parents[2] / "deploy" / "crds" / "wasmapp.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert set(spec) == set(WASMAPP_FIELDS)
    assert set(spec["autoscaling"]["properties"]) == {"enabled", "policy", "params", "minScale", "maxScale"}


def test_docs_field_tables_name_every_field() -> None:
    from pathlib import Path

    from zerowatt.operator.model import SPINAPP_FIELDS

    text = (Path(__file__).parents[2] / "docs" / "operator.md").read_text()
    spinapp_table = text.split("### SpinApp")[1].split("### SpinAppExecutor")[0]
    executor_table = text.split("### SpinAppExecutor")[1].split("### WasmApp")[0]
    for name in SPINAPP_FIELDS:
        assert f"`spec.{name}" in spinapp_table, name
    for name in ("createDeployment", "runtimeClassName", "spinImage", "caCertSecret", "installDefaultCACerts", "otel"):
        assert name in executor_table, name
