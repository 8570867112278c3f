"""deploy/operator: every manifest parses, the kustomizations reference what exists (and build with
kubectl's kustomize where installed), RBAC grants exactly what the operator contract says each component
does, the Deployments run what the contract names, and the SpinKube CRDs accept SpinKube's manifests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
OPERATOR = DEPLOY / "operator"
NAMESPACE = "zerowatt"


def docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def kustomized(base: Path) -> list[dict[str, Any]]:
    """Every object a kustomization lists, following directory bases (what `kubectl apply -k` sends)."""
    kustomization = docs(base / "kustomization.yaml")[0]
    assert kustomization["kind"] == "Kustomization"
    objects: list[dict[str, Any]] = []
    for name in kustomization["resources"]:
        target = (base / name).resolve()
        assert target.exists(), f"{base}/kustomization.yaml lists {name}, which does not exist"
        objects += kustomized(target) if target.is_dir() else docs(target)
    return objects


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def test_every_yaml_parses_and_names_itself() -> None:
    files = [*sorted(OPERATOR.rglob("*.yaml")), DEPLOY / "crds" / "kustomization.yaml"]
    assert len(files) >= 10
    for path in files:
        for doc in docs(path):
            assert {"apiVersion", "kind"} <= set(doc), path
            assert doc["kind"] == "Kustomization" or doc["metadata"]["name"], path


def test_the_kustomization_installs_the_crd_rbac_and_both_components() -> None:
    objects = kustomized(OPERATOR)
    kinds = sorted({o["kind"] for o in objects})
    assert kinds == sorted(
        {"CustomResourceDefinition", "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"}
        | {"Deployment", "Service"}
    )
    assert set(by_kind(objects, "CustomResourceDefinition")) == {"wasmapps.zerowatt.dev"}  # referenced, not copied
    assert set(by_kind(objects, "Deployment")) == {"zerowatt-operator", "zerowatt-activator"}
    for obj in objects:
        if obj["kind"] in ("ServiceAccount", "Deployment", "Service"):
            assert obj["metadata"]["namespace"] == NAMESPACE, obj["metadata"]["name"]
    crds = kustomized(OPERATOR / "spinkube-crds")
    assert set(by_kind(crds, "CustomResourceDefinition")) == {
        "spinapps.core.spinkube.dev",
        "spinappexecutors.core.spinkube.dev",
    }


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with kustomize) is not installed")
@pytest.mark.parametrize("base", ["operator", "operator/spinkube-crds"])
def test_kubectl_kustomize_builds_it(base: str) -> None:
    built = subprocess.run(
        ["kubectl", "kustomize", str(DEPLOY / base)], capture_output=True, text=True, timeout=120, check=False
    )
    assert built.returncode == 0, built.stderr
    objects = [d for d in yaml.safe_load_all(built.stdout) if d]
    assert len(objects) == len(kustomized(DEPLOY / base))
    if base == "operator":
        assert all(o["metadata"]["labels"]["app.kubernetes.io/part-of"] == "zerowatt" for o in objects)


def granted(rbac: Path) -> dict[tuple[str, str], set[str]]:
    role = next(d for d in docs(rbac) if d["kind"] == "ClusterRole")
    grants: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert set(rule) == {"apiGroups", "resources", "verbs"}, rule  # no resourceNames/nonResourceURLs slips
        for group in rule["apiGroups"]:
            for res in rule["resources"]:
                assert "*" not in (group, res) and "*" not in rule["verbs"], rule
                grants.setdefault((group, res), set()).update(rule["verbs"])
    binding = next(d for d in docs(rbac) if d["kind"] == "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": role["metadata"]["name"], "namespace": NAMESPACE}]
    return grants


READ = {"get", "list", "watch"}


def test_operator_rbac_is_what_the_contract_says_it_does() -> None:
    expected: dict[tuple[str, str], set[str]] = {}
    for group, plural in (("zerowatt.dev", "wasmapps"), ("core.spinkube.dev", "spinapps")):
        expected[(group, plural)] = READ | {"patch", "update"}  # finalizers are set with a patch
        expected[(group, f"{plural}/status")] = {"get", "patch", "update"}  # conditions, observedGeneration
        expected[(group, f"{plural}/finalizers")] = {"update"}  # blockOwnerDeletion on owned children
    expected[("core.spinkube.dev", "spinappexecutors")] = READ
    expected[("core.spinkube.dev", "spinappexecutors/status")] = {"get", "patch", "update"}
    children = READ | {"create", "patch", "update", "delete"}  # server-side apply, drift, finalizer cleanup
    expected[("apps", "deployments")] = children
    expected[("", "services")] = children
    expected[("", "configmaps")] = READ  # variables' valueFrom: read only
    expected[("", "secrets")] = READ
    expected[("", "events")] = {"create", "patch"}
    expected[("events.k8s.io", "events")] = {"create", "patch"}
    grants = granted(OPERATOR / "rbac-operator.yaml")
    assert grants == expected
    assert ("discovery.k8s.io", "endpointslices") not in grants  # the activator's alone
    assert ("apps", "deployments/scale") not in grants


def test_activator_rbac_is_what_the_contract_says_it_does() -> None:
    assert granted(OPERATOR / "rbac-activator.yaml") == {
        ("apps", "deployments"): READ,  # annotations written by the operator; never the CRDs
        ("apps", "deployments/scale"): {"get", "patch", "update"},  # 0 → 1 and the policy's decisions
        ("", "services"): READ,
        ("discovery.k8s.io", "endpointslices"): READ | {"create", "patch", "update", "delete"},
    }


def test_deployments_run_the_components_as_the_contract_names_them() -> None:
    objects = kustomized(OPERATOR)
    deployments, services = by_kind(objects, "Deployment"), by_kind(objects, "Service")
    accounts = set(by_kind(objects, "ServiceAccount"))
    for name, command in (("zerowatt-operator", ["zerowatt", "operator"]), ("zerowatt-activator", None)):
        pod = deployments[name]["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == name and name in accounts
        assert pod["securityContext"]["runAsNonRoot"] is True
        container = pod["containers"][0]
        assert container["image"].startswith("ghcr.io/zerowatt/runtime:")
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
        if command:
            assert container["command"] == command
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert deployments[name]["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert services[name]["spec"]["selector"].items() <= labels.items()
    operator = deployments["zerowatt-operator"]["spec"]["template"]["spec"]["containers"][0]
    assert "--runtime-image=ghcr.io/zerowatt/runtime:0.1.0" in operator["args"]
    activator = deployments["zerowatt-activator"]["spec"]["template"]["spec"]["containers"][0]
    assert activator["command"] == ["zerowatt", "activator"]
    assert {p["name"]: p["containerPort"] for p in activator["ports"]} == {"http": 8080, "admin": 9090}
    assert activator["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in activator["env"]}
    assert env["POD_IP"] == "status.podIP"  # the address apps at zero point their EndpointSlice to
    ports = {p["name"]: (p["port"], p["targetPort"]) for p in services["zerowatt-activator"]["spec"]["ports"]}
    assert ports == {"http": (80, "http"), "admin": (9090, "admin")}


@pytest.mark.parametrize("name", ["zerowatt-operator", "zerowatt-activator"])
def test_deployments_pass_only_flags_and_env_the_real_cli_reads(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each component's ``command`` + ``args`` parse with the real click command (every flag exists, every
    value is accepted), and every env var the Deployment sets is one that command reads."""
    from zerowatt.cli.root import load_command

    container = by_kind(kustomized(OPERATOR), "Deployment")[name]["spec"]["template"]["spec"]["containers"][0]
    argv = [*container["command"], *container.get("args", [])]
    assert argv[:2] == ["zerowatt", name.removeprefix("zerowatt-")], argv
    command = load_command(argv[1])
    read = {env for p in command.params for env in ([p.envvar] if isinstance(p.envvar, str) else p.envvar or [])}
    for env in container.get("env", []):
        assert env["name"] in read, f"{name} sets ${env['name']}, which `zerowatt {argv[1]}` does not read"
        monkeypatch.setenv(env["name"], env.get("value", "10.0.0.7"))  # a fieldRef: what the kubelet puts there
    ctx = command.make_context(argv[1], argv[2:])  # parses and converts; UsageError on a bad flag or value
    for flag in argv[2:]:
        if flag.startswith("--"):
            option = flag.split("=", 1)[0]
            param = next(p for p in command.params if option in getattr(p, "opts", []))
            assert ctx.params[param.name] is not None


def check(schema: dict[str, Any], value: Any, where: str) -> list[str]:
    """Structural-schema check of ``value`` (types, required, enums, nested properties, items)."""
    if schema.get("x-kubernetes-preserve-unknown-fields") or schema.get("x-kubernetes-int-or-string"):
        return [] if isinstance(value, dict | int | str) else [f"{where}: unexpected {value!r}"]
    kind = schema.get("type")
    types = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int}
    if (kind and not isinstance(value, types[kind])) or (kind == "integer" and isinstance(value, bool)):
        return [f"{where}: expected {kind}, got {value!r}"]
    errors = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} not in {schema['enum']}")
    if kind == "object":
        props = schema.get("properties")
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{where}.{name}: required")
        for name, item in value.items():
            if props is not None and name not in props:
                errors.append(f"{where}.{name}: unknown field")
            elif props is not None:
                errors += check(props[name], item, f"{where}.{name}")
            elif "additionalProperties" in schema:
                errors += check(schema["additionalProperties"], item, f"{where}.{name}")
    if kind == "array":
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{where}: fewer than {schema['minItems']} items")
        for i, item in enumerate(value):
            errors += check(schema["items"], item, f"{where}[{i}]")
    return errors


def crd_schema(name: str) -> dict[str, Any]:
    crd = docs(OPERATOR / "spinkube-crds" / f"{name}.yaml")[0]
    version = crd["spec"]["versions"][0]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


#: SpinApps as SpinKube's documentation writes them (every field issue 12 lists).
SPINAPPS: list[dict[str, Any]] = [
    {
        "executor": "containerd-shim-spin",
        "image": "ghcr.io/spinkube/containerd-shim-spin/examples/spin-rust-hello:v0.13.0",
        "replicas": 1,
    },
    {
        "executor": "zerowatt",
        "image": "registry.example/apps/web:1.2",
        "enableAutoscaling": True,
        "imagePullSecrets": [{"name": "regcred"}],
        "resources": {"limits": {"cpu": "100m", "memory": "128Mi"}, "requests": {"cpu": 1}},
        "variables": [
            {"name": "greeting", "value": "hi"},
            {"name": "token", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            {"name": "mode", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "m", "optional": True}}},
        ],
        "volumes": [{"name": "data", "emptyDir": {}}],
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
        "checks": {"readiness": {"httpGet": {"path": "/health"}, "periodSeconds": 5}, "liveness": {}},
        "serviceAnnotations": {"a": "b"},
        "deploymentAnnotations": {"c": "d"},
        "podAnnotations": {"e": "f"},
        "podLabels": {"team": "web"},
        "components": ["web"],
        "serviceAccountName": "web",
        "runtimeConfig": {
            "keyValueStores": [{"name": "default", "type": "redis", "options": [{"name": "url", "value": "x"}]}],
            "llmCompute": {"type": "remote_http"},
        },
    },
]


@pytest.mark.parametrize("spec", SPINAPPS)
def test_spinkube_manifests_validate_against_our_spinapp_crd(spec: dict[str, Any]) -> None:
    schema = crd_schema("spinapp")
    app = {"apiVersion": "core.spinkube.dev/v1alpha1", "kind": "SpinApp", "metadata": {"name": "x"}, "spec": spec}
    assert check(schema, app, "SpinApp") == []
    status = {"readyReplicas": 0, "activeScheduler": "zerowatt", "deploymentName": "x", "serviceName": "x"}
    status["conditions"] = [
        {"type": "Ready", "status": "True", "lastTransitionTime": "2026-12-02T00:00:00Z", "reason": "R", "message": ""}
    ]
    assert check(schema["properties"]["status"], status, "status") == []


def test_the_spinapp_crd_refuses_what_upstream_refuses() -> None:
    schema = crd_schema("spinapp")
    bad = {"spec": {"image": "x", "replicas": "two", "components": [], "variables": [{"value": "v"}]}}
    errors = check(schema, bad, "SpinApp")
    assert "SpinApp.spec.executor: required" in errors
    assert any("replicas: expected integer" in e for e in errors)
    assert "SpinApp.spec.components: fewer than 1 items" in errors
    assert "SpinApp.spec.variables[0].name: required" in errors


def test_the_executor_crd_and_the_zerowatt_executor() -> None:
    schema = crd_schema("spinappexecutor")
    executor = docs(OPERATOR / "spinappexecutor-zerowatt.yaml")[0]
    assert executor["metadata"]["name"] == "zerowatt"
    # applied with `kubectl apply -n NS -f` in every namespace (operator-install.md): kubectl refuses -n NS
    # for an object whose metadata names another namespace
    assert "namespace" not in executor["metadata"]
    assert check(schema, executor, "SpinAppExecutor") == []
    assert check(schema, {"spec": {}}, "SpinAppExecutor") == ["SpinAppExecutor.spec.createDeployment: required"]
    shim = {
        "spec": {
            "createDeployment": True,
            "deploymentConfig": {"runtimeClassName": "wasmtime-spin-v2", "installDefaultCACerts": True},
        }
    }
    assert check(schema, shim, "SpinAppExecutor") == []
