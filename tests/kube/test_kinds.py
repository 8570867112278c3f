"""Each kind's down and up transforms, on the decision's patches applied as the API server would."""

from __future__ import annotations

from typing import Any

import pytest

from tests.kube.conftest import NOW, merge_patch, real_matcher, workload
from zerowatt.kube import annotations as ann
from zerowatt.kube.decide import Decision, NamespaceView, decide
from zerowatt.kube.kinds import KINDS
from zerowatt.kube.settings import make_settings

MATCH = real_matcher()


def step(obj: dict[str, Any], kind: str, uptime: str, **settings: Any) -> tuple[Decision, dict[str, Any]]:
    s = make_settings(include_resources=kind, default_uptime=uptime, **settings)
    d = decide(obj, KINDS[kind], NamespaceView("dev"), s, NOW, MATCH)
    return d, merge_patch(obj, d.patch) if d.patch else obj


def cycle(obj: dict[str, Any], kind: str, **settings: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Down, check a second pass is a no-op; up, check the same; return (down state, up state)."""
    d, down = step(obj, kind, "never", **settings)
    assert d.action == "down", d
    assert step(down, kind, "never", **settings)[0].action == "none"
    u, up = step(down, kind, "always", **settings)
    assert u.action == "up", u
    assert step(up, kind, "always", **settings)[0].action == "none"
    assert ann.ORIGINAL_REPLICAS not in up["metadata"].get("annotations", {})
    return down, up


@pytest.mark.parametrize(
    ("plural", "kind"),
    [("deployments", "Deployment"), ("statefulsets", "StatefulSet"), ("rollouts", "Rollout"), ("wasmapps", "WasmApp")],
)
def test_replica_kinds(plural: str, kind: str) -> None:
    down, up = cycle(workload(kind, spec={"replicas": 4}), plural)
    assert down["spec"]["replicas"] == 0 and down["metadata"]["annotations"][ann.ORIGINAL_REPLICAS] == "4"
    assert up["spec"]["replicas"] == 4


def test_absent_replicas_means_one() -> None:
    down, up = cycle(workload(spec={}), "deployments")
    assert down["metadata"]["annotations"][ann.ORIGINAL_REPLICAS] == "1" and up["spec"]["replicas"] == 1


def test_hpa_never_below_one_and_capped_on_restore() -> None:
    hpa = workload("HorizontalPodAutoscaler", spec={"minReplicas": 4, "maxReplicas": 10})
    down, up = cycle(hpa, "horizontalpodautoscalers")
    assert down["spec"]["minReplicas"] == 1 and down["metadata"]["annotations"][ann.ORIGINAL_REPLICAS] == "4"
    assert up["spec"]["minReplicas"] == 4
    # maxReplicas lowered during the downtime: the restore stays within it
    down["spec"]["maxReplicas"] = 3
    assert merge_patch(down, step(down, "horizontalpodautoscalers", "always")[0].patch)["spec"]["minReplicas"] == 3
    # already at 1: nothing to do
    assert (
        step(
            workload("HorizontalPodAutoscaler", spec={"minReplicas": 1, "maxReplicas": 5}),
            "horizontalpodautoscalers",
            "never",
        )[0].action
        == "none"
    )
    # downtime-replicas 2 is honoured
    d, _ = step(hpa, "horizontalpodautoscalers", "never", downtime_replicas=2)
    assert d.target == 2


@pytest.mark.parametrize(("plural", "kind"), [("cronjobs", "CronJob"), ("jobs", "Job")])
def test_suspend_kinds(plural: str, kind: str) -> None:
    down, up = cycle(workload(kind, spec={"schedule": "*/5 * * * *", "suspend": False}), plural)
    assert down["spec"]["suspend"] is True and down["metadata"]["annotations"][ann.ORIGINAL_REPLICAS] == "1"
    assert up["spec"]["suspend"] is False
    # downtime-replicas does not matter for on/off kinds
    assert step(workload(kind, spec={}), plural, "never", downtime_replicas=2)[0].target == 0


def test_cronjob_suspended_by_hand_stays_suspended() -> None:
    manual = workload("CronJob", spec={"schedule": "0 * * * *", "suspend": True})
    for uptime in ("always", "never"):
        assert step(manual, "cronjobs", uptime)[0].action == "none"


def test_daemonset_node_selector() -> None:
    ds = workload("DaemonSet", spec={"template": {"spec": {"nodeSelector": {"disk": "ssd"}, "containers": []}}})
    down, up = cycle(ds, "daemonsets")
    assert down["spec"]["template"]["spec"]["nodeSelector"] == {"disk": "ssd", ann.DAEMONSET_NODE_SELECTOR_KEY: "true"}
    assert up["spec"]["template"]["spec"]["nodeSelector"] == {"disk": "ssd"}
    bare = workload("DaemonSet", spec={"template": {"spec": {"containers": []}}})
    down, up = cycle(bare, "daemonsets")
    assert up["spec"]["template"]["spec"].get("nodeSelector", {}) == {}


@pytest.mark.parametrize("field", ["minAvailable", "maxUnavailable"])
def test_pdb(field: str) -> None:
    down, up = cycle(workload("PodDisruptionBudget", spec={field: 2}), "poddisruptionbudgets")
    assert down["spec"][field] == 0 and up["spec"][field] == 2


def test_pdb_percentage_is_an_error_when_unreadable() -> None:
    d, _ = step(workload("PodDisruptionBudget", spec={"minAvailable": "half"}), "poddisruptionbudgets", "never")
    assert d.action == "error" and "half" in d.reason and "PodDisruptionBudget dev/web" in d.reason


def test_keda_scaled_object_paused_replicas() -> None:
    down, up = cycle(workload("ScaledObject", spec={"scaleTargetRef": {"name": "web"}}), "scaledobjects")
    assert down["metadata"]["annotations"][ann.KEDA_PAUSED_REPLICAS] == "0"
    assert ann.KEDA_PAUSED_REPLICAS not in up["metadata"]["annotations"]


def test_keda_keeps_a_users_pause() -> None:
    paused = workload("ScaledObject", spec={}, annotations={ann.KEDA_PAUSED_REPLICAS: "2"})
    down, up = cycle(paused, "scaledobjects")
    assert down["metadata"]["annotations"][ann.KEDA_PAUSED_REPLICAS] == "0"
    assert down["metadata"]["annotations"][ann.ORIGINAL_PAUSE_REPLICAS] == "2"
    assert up["metadata"]["annotations"] == {ann.KEDA_PAUSED_REPLICAS: "2"}


def test_keda_bad_pause_value() -> None:
    bad = workload("ScaledObject", spec={}, annotations={ann.KEDA_PAUSED_REPLICAS: "lots"})
    assert step(bad, "scaledobjects", "never")[0].action == "error"


RUNNING = {"created": True, "ready": True, "printableStatus": "Running"}
STOPPED = {"created": True, "ready": False, "printableStatus": "Stopped"}  # a final VMI (vm.go setPrintableStatus)


def vm(spec: dict[str, Any], status: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    obj = workload("VirtualMachine", spec=spec, **kw)
    if status is not None:
        obj["status"] = dict(status)
    return obj


@pytest.mark.parametrize("strategy", ["Always", "RerunOnFailure", "Once", "Manual"])
def test_kubevirt_run_strategy(strategy: str) -> None:
    down, up = cycle(vm({"runStrategy": strategy, "template": {}}, RUNNING), "virtualmachines")
    assert down["spec"]["runStrategy"] == "Halted"
    assert down["metadata"]["annotations"][ann.ORIGINAL_RUN_STRATEGY] == strategy
    assert up["spec"]["runStrategy"] == strategy and up["metadata"]["annotations"] == {}
    restore = step(down, "virtualmachines", "always")[0]
    assert restore.then == ("start" if strategy == "Manual" else None)  # only Manual needs a start request


@pytest.mark.parametrize("strategy", ["RerunOnFailure", "Once", "Manual"])
@pytest.mark.parametrize("status", [STOPPED, None, {"created": False, "printableStatus": "Stopped"}])
def test_kubevirt_stopped_vm_is_not_halted(strategy: str, status: dict[str, Any] | None) -> None:
    """Stopped by its owner (or finished): halting it would release nothing and restoring would (re)start it."""
    d, _ = step(vm({"runStrategy": strategy}, status), "virtualmachines", "never")
    assert d.action == "none" and d.level == 0


def test_kubevirt_always_is_on_whatever_its_status() -> None:
    d, _ = step(vm({"runStrategy": "Always"}, STOPPED), "virtualmachines", "never")
    assert d.action == "down"  # KubeVirt restarts a stopped Always VM at once


def test_kubevirt_legacy_running() -> None:
    down, up = cycle(vm({"running": True}), "virtualmachines")
    assert down["spec"]["running"] is False and up["spec"]["running"] is True
    assert down["metadata"]["annotations"][ann.ORIGINAL_RUN_STRATEGY] == "running"
    halted = vm({"runStrategy": "Halted"})
    assert step(halted, "virtualmachines", "always")[0].action == "none"  # stopped by its owner: left stopped
    assert step(vm({"running": False}), "virtualmachines", "never")[0].action == "none"


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"runStrategy": "Sometimes"}, "'Sometimes' is not one of"),
        ({"runStrategy": "WaitAsReceiver"}, "WaitAsReceiver (a live-migration receiver)"),
        ({"template": {}}, "neither spec.running nor spec.runStrategy"),
        ({"running": True, "runStrategy": "Always"}, "both set"),
        ({"running": "yes"}, "spec.running is 'yes'"),
        ({"runStrategy": ["Always"]}, "expected a string"),
    ],
)
@pytest.mark.parametrize("uptime", ["never", "always"])
def test_kubevirt_unknown_strategies_are_errors_naming_the_vm(spec: dict[str, Any], words: str, uptime: str) -> None:
    d, after = step(vm(spec, RUNNING, name="db"), "virtualmachines", uptime)
    assert d.action == "error" and d.patch is None and after["spec"] == spec
    assert d.reason.startswith("VirtualMachine dev/db: ") and words in d.reason
    assert d.event == "UnsupportedObject"


@pytest.mark.parametrize("kept", ["Bogus", "Halted", "WaitAsReceiver", ""])
def test_kubevirt_forged_state_is_not_written_back(kept: str) -> None:
    halted = vm(
        {"runStrategy": "Halted"},
        annotations={ann.ORIGINAL_REPLICAS: "1", ann.ORIGINAL_RUN_STRATEGY: kept},
        name="db",
    )
    d, _ = step(halted, "virtualmachines", "always")
    assert d.action == "error" and d.patch is None
    assert f"{ann.ORIGINAL_RUN_STRATEGY}={kept!r}" in d.reason and "VirtualMachine dev/db" in d.reason


def test_kubevirt_missing_state_is_an_error_for_run_strategies_only() -> None:
    strategy = vm({"runStrategy": "Halted"}, annotations={ann.ORIGINAL_REPLICAS: "1"})
    d, _ = step(strategy, "virtualmachines", "always")
    assert d.action == "error" and "is missing" in d.reason
    legacy = vm({"running": False}, annotations={ann.ORIGINAL_REPLICAS: "1"})
    d, up = step(legacy, "virtualmachines", "always")
    assert d.action == "up" and up["spec"]["running"] is True  # a boolean has one "on" value


def test_kubevirt_owner_switched_fields_during_the_downtime() -> None:
    """The two fields are mutually exclusive (the VM admitter): the restore writes the one the VM now uses."""
    was_running = vm(
        {"runStrategy": "Halted"}, annotations={ann.ORIGINAL_REPLICAS: "1", ann.ORIGINAL_RUN_STRATEGY: "running"}
    )
    _, up = step(was_running, "virtualmachines", "always")
    assert up["spec"] == {"runStrategy": "Always"}
    was_strategy = vm({"running": False}, annotations={ann.ORIGINAL_REPLICAS: "1", ann.ORIGINAL_RUN_STRATEGY: "Manual"})
    d, up = step(was_strategy, "virtualmachines", "always")
    assert up["spec"] == {"runStrategy": "Manual"} and d.then == "start"


def test_kubevirt_manual_vm_started_by_hand_in_the_downtime_stays_manual() -> None:
    """``virtctl start`` on the halted VM makes it Always (virt-api); halted again, Manual is what comes back."""
    down, _ = cycle(vm({"runStrategy": "Manual"}, RUNNING), "virtualmachines")
    started = merge_patch(down, {"spec": {"runStrategy": "Always"}})
    d, again = step(started, "virtualmachines", "never")
    assert d.action == "down" and again["metadata"]["annotations"][ann.ORIGINAL_RUN_STRATEGY] == "Manual"
    u, up = step(again, "virtualmachines", "always")
    assert up["spec"]["runStrategy"] == "Manual" and u.then == "start"
    # An Always VM never downscaled keeps Always, whatever stale annotation it carries without the state
    stale = vm({"runStrategy": "Always"}, RUNNING, annotations={ann.ORIGINAL_RUN_STRATEGY: "Manual"})
    _, halted = step(stale, "virtualmachines", "never")
    assert halted["metadata"]["annotations"][ann.ORIGINAL_RUN_STRATEGY] == "Always"


def test_spinapp_replicas_and_autoscaled_spinapps_are_left_alone() -> None:
    down, up = cycle(
        workload(
            "SpinApp", spec={"image": "ghcr.io/spinkube/hello:v1", "executor": "containerd-shim-spin", "replicas": 2}
        ),
        "spinapps",
    )
    assert down["spec"]["replicas"] == 0 and up["spec"]["replicas"] == 2
    auto = workload("SpinApp", spec={"image": "ghcr.io/spinkube/hello:v1", "enableAutoscaling": True})
    for uptime in ("never", "always"):
        d, after = step(auto, "spinapps", uptime)
        assert d.action == "skip" and "enableAutoscaling" in d.reason and after == auto


def test_kind_paths() -> None:
    assert KINDS["deployments"].collection_path(None) == "/apis/apps/v1/deployments"
    assert KINDS["cronjobs"].object_path("a", "b") == "/apis/batch/v1/namespaces/a/cronjobs/b"
    assert KINDS["wasmapps"].api_version == "zerowatt.dev/v1alpha1"
    assert KINDS["spinapps"].object_path("a", "b") == "/apis/core.spinkube.dev/v1alpha1/namespaces/a/spinapps/b"
    assert (
        KINDS["virtualmachines"].subresource_path("a", "b", "start")
        == "/apis/subresources.kubevirt.io/v1/namespaces/a/virtualmachines/b/start"
    )
    assert KINDS["deployments"].subresource_path("a", "b", "scale") == "/apis/apps/v1/namespaces/a/deployments/b/scale"
