"""deploy/: the manifests parse, the kustomize base lists them, RBAC grants exactly what the code uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.conftest import ROOT
from zerowatt.kube.kinds import KINDS

DEPLOY = ROOT / "deploy"


def docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_kustomization_lists_existing_manifests() -> None:
    base = DEPLOY / "downscaler"
    kustomization = docs(base / "kustomization.yaml")[0]
    assert kustomization["kind"] == "Kustomization"
    kinds = set()
    for name in kustomization["resources"]:
        for doc in docs(base / name):
            assert {"apiVersion", "kind", "metadata"} <= set(doc)
            kinds.add(doc["kind"])
    assert kinds == {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment"}


def test_rbac_is_exactly_what_the_controller_uses() -> None:
    role = next(d for d in docs(DEPLOY / "downscaler" / "rbac.yaml") if d["kind"] == "ClusterRole")
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for res in rule["resources"]:
                assert "*" not in (group, res) and "*" not in rule["verbs"]
                granted.setdefault((group, res), set()).update(rule["verbs"])
    expected = {(k.group, k.plural): {"get", "list", "patch"} for k in KINDS.values()}
    expected[("", "namespaces")] = {"get", "list"}  # list all, or get those of --namespace
    expected[("", "events")] = {"create"}
    expected[("", "pods")] = {"list"}  # force-uptime pods
    expected[("argoproj.io", "applications")] = {"list", "patch"}
    expected[("argoproj.io", "applicationsets")] = {"get"}  # generated Applications: can self-heal be paused?
    expected[("subresources.kubevirt.io", "virtualmachines/start")] = {"update"}  # restored Manual VMs
    assert granted == expected


def test_deployment_runs_the_downscaler_with_its_service_account() -> None:
    dep = docs(DEPLOY / "downscaler" / "deployment.yaml")[0]
    pod = dep["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == docs(DEPLOY / "downscaler" / "serviceaccount.yaml")[0]["metadata"]["name"]
    assert pod["containers"][0]["command"] == ["zerowatt", "downscaler"]
    assert dep["spec"]["replicas"] == 1


def test_wasmapp_crd_matches_the_kind() -> None:
    crd = docs(DEPLOY / "crds" / "wasmapp.yaml")[0]
    kind = KINDS["wasmapps"]
    assert crd["metadata"]["name"] == f"{kind.plural}.{kind.group}"
    assert crd["spec"]["names"]["kind"] == kind.kind
    version = crd["spec"]["versions"][0]
    assert version["name"] == kind.version
    assert "replicas" in version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
