"""Argo CD on kmock: both tracking methods, a configurable instance label, ApplicationSets, a malformed Application.

Applications are shaped as Argo CD stores them (project, source, destination, syncPolicy); the generated one
carries the owner reference the ApplicationSet controller sets.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.kube.conftest import NOW, workload
from tests.kube.emulator import EmulatorThread
from tests.kube.test_controller_kmock import controller, create, emu, events, get
from zerowatt.kube import annotations as ann
from zerowatt.kube import argocd

APPS = "/apis/argoproj.io/v1alpha1/namespaces/{ns}/applications"
APPSETS = "/apis/argoproj.io/v1alpha1/namespaces/{ns}/applicationsets"


def application(name: str, namespace: str = "argocd", sync_policy: Any = None, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": name, "namespace": namespace, "finalizers": ["resources-finalizer.argocd.argoproj.io"], **meta,
        },
        "spec": {
            "project": "default",
            "source": {
                "repoURL": "https://github.com/argoproj/argocd-example-apps.git",
                "targetRevision": "HEAD",
                "path": "guestbook",
            },
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "dev"},
            "syncPolicy": sync_policy if sync_policy is not None else {"automated": {"prune": True, "selfHeal": True}},
        },
    }  # fmt: skip


def post(kube: EmulatorThread, path: str, obj: dict[str, Any]) -> None:
    r = httpx.post(kube.url + path.format(ns=obj["metadata"]["namespace"]), json=obj)
    assert r.status_code < 300, r.text


def app_of(kube: EmulatorThread, name: str, namespace: str = "argocd") -> dict[str, Any]:
    r = httpx.get(f"{kube.url}{APPS.format(ns=namespace)}/{name}")
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def self_heal(kube: EmulatorThread, name: str, namespace: str = "argocd") -> Any:
    return app_of(kube, name, namespace)["spec"]["syncPolicy"]["automated"]["selfHeal"]


def tracking(app: str, name: str, ns: str = "dev") -> dict[str, str]:
    return {argocd.TRACKING_ID: f"{app}:apps/Deployment:{ns}/{name}"}


@pytest.fixture
def gitops(kube: EmulatorThread) -> EmulatorThread:
    e = emu(kube)
    e.add_namespace("dev", {ann.UPTIME: "never"})
    e.add_namespace("argocd")
    e.add_namespace("team-a")
    for name in ("blog", "shop", "helm-release", "copied"):
        post(kube, APPS, application(name))
    post(kube, APPS, application("web", namespace="team-a"))  # Applications in any namespace: "team-a_web"
    create(kube, "deployments", workload(name="blog", labels={argocd.DEFAULT_INSTANCE_LABEL: "blog"}))  # 2.x default
    create(kube, "deployments", workload(name="shop", annotations=tracking("shop", "shop")))  # 3.x default
    create(kube, "deployments", workload(name="web", annotations=tracking("team-a_web", "web")))
    # copied by another tool: the annotation names another object, so Argo CD does not manage this one
    create(kube, "deployments", workload(name="copy", annotations=tracking("copied", "original")))
    e.served.clear()
    return kube


def test_both_tracking_methods_pause_and_restore(gitops: EmulatorThread) -> None:
    report = controller(gitops, include="deployments", argocd_pause_self_heal=True).run_pass(NOW)
    assert report.errors == []
    assert sorted(report.argocd_paused) == ["argocd/blog", "argocd/shop", "team-a/web"]
    assert self_heal(gitops, "blog") is False and self_heal(gitops, "shop") is False
    assert self_heal(gitops, "web", "team-a") is False
    assert self_heal(gitops, "copied") is True  # not the owner of what went down
    assert get(gitops, "deployments", "dev", "blog")["spec"]["replicas"] == 0

    emu(gitops).namespaces["dev"]["metadata"]["annotations"][ann.UPTIME] = "always"
    report = controller(gitops, include="deployments", argocd_pause_self_heal=True).run_pass(NOW)
    assert sorted(report.argocd_restored) == ["argocd/blog", "argocd/shop", "team-a/web"]
    assert self_heal(gitops, "blog") is True
    assert ann.ARGOCD_SELF_HEAL_PAUSED not in (app_of(gitops, "blog")["metadata"].get("annotations") or {})


def test_the_instance_label_key_is_configurable(gitops: EmulatorThread) -> None:
    """Argo CD's application.instanceLabelKey set to argocd.argoproj.io/instance: app.kubernetes.io/instance is then
    only Helm's release label, and must not make zerowatt pause an Application of the same name."""
    custom = "argocd.argoproj.io/instance"
    create(gitops, "deployments", workload(name="tracked", labels={custom: "helm-release"}))
    create(gitops, "deployments", workload(name="chart", labels={argocd.DEFAULT_INSTANCE_LABEL: "blog"}))
    kw = {"argocd_pause_self_heal": True, "argocd_instance_label_key": custom}
    report = controller(gitops, include="deployments", **kw).run_pass(NOW)
    assert sorted(report.argocd_paused) == ["argocd/helm-release", "argocd/shop", "team-a/web"]
    assert self_heal(gitops, "blog") is True


def test_the_instance_label_key_from_the_environment(gitops: EmulatorThread, tmp_path: Any) -> None:
    import subprocess
    import sys

    from tests.conftest import cli_env

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "k",
            "clusters": [{"name": "k", "cluster": {"server": gitops.url}}],
            "contexts": [{"name": "k", "context": {"cluster": "k", "user": "u"}}],
            "users": [{"name": "u", "user": {}}],
        })
    )  # fmt: skip
    create(gitops, "deployments", workload(name="tracked", labels={"team.example/app": "helm-release"}))
    env = {**cli_env(), "ARGOCD_INSTANCE_LABEL_KEY": "team.example/app", "ARGOCD_PAUSE_SELF_HEAL": "true"}
    args = [sys.executable, "-m", "zerowatt", "downscaler", "--once", "--json", "--kubeconfig", str(kubeconfig)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert sorted(json.loads(result.stdout)["argocd_paused"]) == ["argocd/helm-release", "argocd/shop", "team-a/web"]


def test_generated_application_is_not_paused_but_explained(gitops: EmulatorThread) -> None:
    owner = {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet", "name": "shops", "uid": "0b1c",
        "controller": True, "blockOwnerDeletion": True,
    }  # fmt: skip
    post(gitops, APPS, application("outlet", ownerReferences=[owner]))
    appset = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {"name": "shops", "namespace": "argocd"},
        "spec": {
            "generators": [{"list": {"elements": [{"name": "outlet"}]}}],
            "template": {"metadata": {"name": "{{name}}"}, "spec": application("x")["spec"]},
        },
    }
    post(gitops, APPSETS, appset)
    create(gitops, "deployments", workload(name="outlet", annotations=tracking("outlet", "outlet")))
    report = controller(gitops, include="deployments", argocd_pause_self_heal=True, enable_events=True).run_pass(NOW)
    assert "argocd/outlet" not in report.argocd_paused and self_heal(gitops, "outlet") is True
    assert get(gitops, "deployments", "dev", "outlet")["spec"]["replicas"] == 3  # no fight with self-heal
    assert get(gitops, "deployments", "dev", "shop")["spec"]["replicas"] == 0  # the others go on
    errors = dict(report.errors)
    assert "ApplicationSet argocd/shops" in errors["Application argocd/outlet"]
    assert "ignoreApplicationDifferences" in errors["Application argocd/outlet"]
    assert "/spec/syncPolicy" in errors["Application argocd/outlet"]
    assert "Application argocd/outlet" in errors["Deployment dev/outlet"]
    warned = [(ev["involvedObject"]["kind"], ev["reason"]) for ev in events(gitops, "argocd")]
    assert warned == [("Application", "ApplicationSetOwnsSyncPolicy")]
    assert [ev["reason"] for ev in events(gitops, "dev") if ev["involvedObject"]["name"] == "outlet"] == [
        "ArgoCDSelfHealNotPaused"
    ]

    # The user follows the advice: the ApplicationSet ignores /spec/syncPolicy, so the pause now holds.
    appset["spec"]["ignoreApplicationDifferences"] = [{"jsonPointers": ["/spec/syncPolicy"]}]
    r = httpx.patch(
        f"{gitops.url}{APPSETS.format(ns='argocd')}/shops",
        json={"spec": {"ignoreApplicationDifferences": appset["spec"]["ignoreApplicationDifferences"]}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code < 300, r.text
    report = controller(gitops, include="deployments", argocd_pause_self_heal=True).run_pass(NOW)
    assert report.argocd_paused == ["argocd/outlet"] and report.errors == []
    assert get(gitops, "deployments", "dev", "outlet")["spec"]["replicas"] == 0


def test_a_malformed_application_is_isolated(gitops: EmulatorThread) -> None:
    post(gitops, APPS, application("junk", sync_policy="junk"))
    create(gitops, "deployments", workload(name="junk", annotations=tracking("junk", "junk")))
    report = controller(gitops, include="deployments", argocd_pause_self_heal=True).run_pass(NOW)
    errors = dict(report.errors)
    assert set(errors) == {"Application argocd/junk", "Deployment dev/junk"}
    assert "spec.syncPolicy is 'junk'" in errors["Application argocd/junk"]
    assert "Application argocd/junk" in errors["Deployment dev/junk"]
    assert get(gitops, "deployments", "dev", "junk")["spec"]["replicas"] == 3
    assert sorted(report.argocd_paused) == ["argocd/blog", "argocd/shop", "team-a/web"]  # the pass went on
    assert get(gitops, "deployments", "dev", "blog")["spec"]["replicas"] == 0


@pytest.mark.parametrize(
    ("rule", "ignored"),
    [
        ({"jsonPointers": ["/spec/syncPolicy"]}, True),
        ({"jsonPointers": ["/spec/syncPolicy/automated/selfHeal"]}, True),
        ({"jqPathExpressions": [".spec.syncPolicy.automated"]}, True),
        ({"name": "outlet", "jsonPointers": ["/spec/syncPolicy"]}, True),
        ({"name": "other", "jsonPointers": ["/spec/syncPolicy"]}, False),
        ({"jsonPointers": ["/spec/source/targetRevision"]}, False),
    ],
)
def test_appset_rules(rule: dict[str, Any], ignored: bool) -> None:
    assert argocd.appset_ignores_sync_policy({"spec": {"ignoreApplicationDifferences": [rule]}}, "outlet") is ignored


def test_self_heal_reading() -> None:
    assert argocd.self_heal_on(application("a")) is True
    assert (
        argocd.self_heal_on(application("a", sync_policy={"automated": {"selfHeal": True, "enabled": False}})) is False
    )
    assert argocd.self_heal_on(application("a", sync_policy={"automated": {"prune": True}})) is False
    with pytest.raises(argocd.ValidationError, match=r"Application argocd/a: spec\.syncPolicy\.automated is 'x'"):
        argocd.self_heal_on(application("a", sync_policy={"automated": "x"}))


def test_unlistable_applications_hold_only_tracked_objects(gitops: EmulatorThread) -> None:
    """Without ``list`` on Applications (RBAC trimmed) nothing can be paused: tracked objects stay up, reported."""
    from tests.kube.emulator import Fault

    create(gitops, "deployments", workload(name="plain"))
    emu(gitops).faults.append(Fault("GET", r"/apis/argoproj.io/v1alpha1/applications", 403, times=2))
    report = controller(gitops, include="deployments", argocd_pause_self_heal=True).run_pass(NOW)
    assert get(gitops, "deployments", "dev", "plain")["spec"]["replicas"] == 0
    assert get(gitops, "deployments", "dev", "blog")["spec"]["replicas"] == 3
    held = sorted(w for w, e in report.errors if "cannot be listed" in e and "403" in e)
    assert held == ["Deployment dev/blog", "Deployment dev/shop", "Deployment dev/web"]
