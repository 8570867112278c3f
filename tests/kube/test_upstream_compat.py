"""py-kube-downscaler 26.x compatibility: each row of docs/downscaler.md's migration table has a test here.

The expected states are the ones upstream's ``scaler.py`` reads and writes (``scale_up``/``scale_down``,
``get_replicas``, ``resources/keda.py``, ``resources/stack.py``), so a cluster can switch tools either way.
"""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from tests.kube.conftest import NOW, merge_patch, real_matcher, workload
from tests.kube.emulator import EmulatorThread, Fault
from tests.kube.test_controller_kmock import api_for, controller, create, emu, get
from zerowatt.errors import ValidationError
from zerowatt.kube import annotations as ann
from zerowatt.kube.api import RetryPolicy
from zerowatt.kube.decide import Decision, NamespaceView, decide
from zerowatt.kube.kinds import KEDA_ACTIVE, KINDS, Percent, parse_replicas
from zerowatt.kube.ratelimit import TokenBucket, token_bucket
from zerowatt.kube.settings import DEFAULT_EXCLUDE_DEPLOYMENTS, DEFAULT_INTERVAL, make_settings

MATCH = real_matcher()


def step(obj: dict[str, Any], kind: str, uptime: str, ns: NamespaceView | None = None, **kw: Any) -> Decision:
    s = make_settings(include_resources=kind, default_uptime=uptime, **kw)
    return decide(obj, KINDS[kind], ns or NamespaceView("dev"), s, NOW, MATCH)


def applied(obj: dict[str, Any], d: Decision) -> dict[str, Any]:
    out: dict[str, Any] = merge_patch(obj, d.patch) if d.patch else obj
    return out


# --- ScaledObjects: upstream's "-1" placeholder, both directions ----------------------------------------


def scaled_object(annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return workload("ScaledObject", spec={"scaleTargetRef": {"name": "web"}}, annotations=annotations)


def test_keda_pause_writes_upstreams_placeholder() -> None:
    d = step(scaled_object(), "scaledobjects", "never")
    assert d.action == "down"
    annos = applied(scaled_object(), d)["metadata"]["annotations"]
    # What py-kube-downscaler writes for an active ScaledObject (scale_down: str(replicas) with replicas -1).
    assert annos == {ann.KEDA_PAUSED_REPLICAS: "0", ann.ORIGINAL_REPLICAS: "-1"}


def test_keda_resumes_what_upstream_paused() -> None:
    paused_by_upstream = scaled_object({ann.KEDA_PAUSED_REPLICAS: "0", ann.ORIGINAL_REPLICAS: "-1"})
    assert step(paused_by_upstream, "scaledobjects", "never").action == "none"  # stays paused
    d = step(paused_by_upstream, "scaledobjects", "always")
    assert d.action == "up"
    assert applied(paused_by_upstream, d)["metadata"].get("annotations", {}) == {}


def test_keda_downtime_replicas_one_still_pauses() -> None:
    # An active ScaledObject is above any downtime target (upstream's -1 / max+1), even a target of 1.
    d = step(scaled_object(), "scaledobjects", "never", downtime_replicas=1)
    assert (
        d.action == "down" and applied(scaled_object(), d)["metadata"]["annotations"][ann.KEDA_PAUSED_REPLICAS] == "1"
    )


def test_keda_switch_both_ways_through_the_api(kube: EmulatorThread) -> None:
    emu(kube).add_namespace("dev")
    create(kube, "scaledobjects", scaled_object({ann.KEDA_PAUSED_REPLICAS: "0", ann.ORIGINAL_REPLICAS: "-1"}))
    create(kube, "scaledobjects", workload("ScaledObject", name="queue", spec={}))
    up = controller(kube, include="scaledobjects", default_uptime="always").run_pass(NOW)
    assert [(c.name, c.action) for c in up.changes] == [("web", "up")] and not up.errors
    assert ann.KEDA_PAUSED_REPLICAS not in get(kube, "scaledobjects", "dev", "web")["metadata"].get("annotations", {})
    down = controller(kube, include="scaledobjects", default_uptime="never").run_pass(NOW)
    assert sorted(c.name for c in down.changes) == ["queue", "web"]
    for name in ("web", "queue"):
        annos = get(kube, "scaledobjects", "dev", name)["metadata"]["annotations"]
        assert annos[ann.ORIGINAL_REPLICAS] == "-1" and annos[ann.KEDA_PAUSED_REPLICAS] == "0"


# --- percentages (PodDisruptionBudgets) -----------------------------------------------------------------


def test_parse_replicas_as_upstream() -> None:
    assert parse_replicas("3", key="k") == 3 and not isinstance(parse_replicas("3", key="k"), Percent)
    assert isinstance(parse_replicas("20%", key="k"), Percent) and str(parse_replicas(" 20% ", key="k")) == "20%"
    for bad in ("101%", "x%", "-1", "1.5", "", "9" * 5000, "9" * 5000 + "%", "²", "-²", "²%", "٣"):
        with pytest.raises(ValidationError, match="k"):
            parse_replicas(bad, key="k")


@pytest.mark.parametrize("field", ["minAvailable", "maxUnavailable"])
def test_pdb_percentage_kept_and_restored(field: str) -> None:
    pdb = workload("PodDisruptionBudget", spec={field: "75%"})
    d = step(pdb, "poddisruptionbudgets", "never")
    down = applied(pdb, d)
    assert down["spec"][field] == 0 and down["metadata"]["annotations"][ann.ORIGINAL_REPLICAS] == "75%"
    u = step(down, "poddisruptionbudgets", "always")
    up = applied(down, u)
    assert up["spec"][field] == "75%" and ann.ORIGINAL_REPLICAS not in up["metadata"].get("annotations", {})


def test_pdb_downtime_replicas_percentage_flag_and_annotation() -> None:
    pdb = workload("PodDisruptionBudget", spec={"minAvailable": "50%"})
    d = step(pdb, "poddisruptionbudgets", "never", downtime_replicas="20%")
    down = applied(pdb, d)
    assert down["spec"]["minAvailable"] == "20%" and down["metadata"]["annotations"][ann.ORIGINAL_REPLICAS] == "50%"
    assert step(down, "poddisruptionbudgets", "never", downtime_replicas="20%").action == "none"
    up = step(down, "poddisruptionbudgets", "always", downtime_replicas="20%")
    assert applied(down, up)["spec"]["minAvailable"] == "50%"
    # Upstream compares the numbers alone: 4 (pods) is not above 20 (%), so nothing happens.
    assert (
        step(
            workload("PodDisruptionBudget", spec={"minAvailable": 4}),
            "poddisruptionbudgets",
            "never",
            downtime_replicas="20%",
        ).action
        == "none"
    )
    annotated = workload("PodDisruptionBudget", spec={"minAvailable": 40}, annotations={ann.DOWNTIME_REPLICAS: "10%"})
    assert applied(annotated, step(annotated, "poddisruptionbudgets", "never"))["spec"]["minAvailable"] == "10%"


def test_percentage_downtime_replicas_leave_other_kinds_alone() -> None:
    # Upstream: "all resources other than PodDisruptionBudgets will be ignored" (README, scale_down).
    d = step(workload(), "deployments", "never", downtime_replicas="20%")
    assert d.action == "skip" and "PodDisruptionBudgets" in d.reason
    ns = NamespaceView("dev", {ann.DOWNTIME_REPLICAS: "10%"})
    assert step(workload(), "deployments", "never", ns=ns).action == "skip"


def test_downtime_replicas_percentage_on_the_command_line() -> None:
    from zerowatt.cli.main import app

    result = CliRunner().invoke(app, ["downscaler", "--once", "--downtime-replicas", "120%", "--kubeconfig", "/no"])
    assert result.exit_code == 2 and "--downtime-replicas" in result.output and "120%" in result.output
    result = CliRunner().invoke(app, ["downscaler", "--once", "--downtime-replicas", "20%", "--kubeconfig", "/no"])
    assert result.exit_code == 2 and "kubeconfig" in result.output  # accepted; fails later, on the kubeconfig


# --- Stacks and AutoscalingRunnerSets ---------------------------------------------------------------------


def test_stack_without_autoscaler() -> None:
    stack = workload("Stack", spec={"replicas": 3})
    down = applied(stack, step(stack, "stacks", "never"))
    assert down["spec"]["replicas"] == 0 and down["metadata"]["annotations"][ann.ORIGINAL_REPLICAS] == "3"
    up = applied(down, step(down, "stacks", "always"))
    assert up["spec"]["replicas"] == 3


def test_stack_with_autoscaler_is_handed_back_to_it() -> None:
    # No spec.replicas: its level is the autoscaler's maxReplicas; restoring that value removes replicas.
    stack = workload("Stack", spec={"autoscaler": {"minReplicas": 2, "maxReplicas": 5}})
    down = applied(stack, step(stack, "stacks", "never"))
    assert down["spec"]["replicas"] == 0 and down["metadata"]["annotations"][ann.ORIGINAL_REPLICAS] == "5"
    up = applied(down, step(down, "stacks", "always"))
    assert "replicas" not in up["spec"] and ann.ORIGINAL_REPLICAS not in up["metadata"].get("annotations", {})


def test_deployment_owned_by_a_stack_is_left_to_the_stack() -> None:
    owned = workload(spec={"replicas": 3})
    owned["metadata"]["ownerReferences"] = [{"apiVersion": "zalando.org/v1", "kind": "Stack", "name": "web"}]
    assert step(owned, "deployments", "never").action == "skip"
    owned["spec"]["replicas"] = 0
    owned["metadata"]["annotations"] = {ann.ORIGINAL_REPLICAS: "3"}
    assert step(owned, "deployments", "never").action == "up"  # excluded but downscaled: restored


def test_autoscaling_runner_set_min_runners() -> None:
    ars = workload("AutoscalingRunnerSet", spec={"minRunners": 4, "maxRunners": 10})
    down = applied(ars, step(ars, "autoscalingrunnersets", "never"))
    assert down["spec"]["minRunners"] == 0 and down["metadata"]["annotations"][ann.ORIGINAL_REPLICAS] == "4"
    assert applied(down, step(down, "autoscalingrunnersets", "always"))["spec"]["minRunners"] == 4
    k = KINDS["autoscalingrunnersets"]
    assert k.collection_path("ci") == "/apis/actions.github.com/v1alpha1/namespaces/ci/autoscalingrunnersets"
    assert KINDS["stacks"].collection_path(None) == "/apis/zalando.org/v1/stacks"


# --- semantics made identical --------------------------------------------------------------------------


def test_stale_original_replicas_on_an_object_already_up_is_removed() -> None:
    stale = workload(spec={"replicas": 3}, annotations={ann.ORIGINAL_REPLICAS: "3"})
    d = step(stale, "deployments", "always")
    assert d.action == "clear"
    assert applied(stale, d)["metadata"].get("annotations", {}) == {} and applied(stale, d)["spec"]["replicas"] == 3
    # Not at the original (changed by hand) and not at the target: left alone, as upstream does.
    assert (
        step(workload(spec={"replicas": 5}, annotations={ann.ORIGINAL_REPLICAS: "3"}), "deployments", "always").action
        == "none"
    )


def test_stale_mark_is_removed_through_the_api(kube: EmulatorThread) -> None:
    emu(kube).add_namespace("dev")
    create(kube, "deployments", workload(spec={"replicas": 2}, annotations={ann.ORIGINAL_REPLICAS: "2"}))
    report = controller(kube, include="deployments").run_pass(NOW)
    assert [(c.name, c.action, c.applied) for c in report.changes] == [("web", "clear", True)]
    assert ann.ORIGINAL_REPLICAS not in get(kube, "deployments", "dev", "web")["metadata"].get("annotations", {})
    assert not report.down  # not counted as down


def test_matching_labels_mismatch_restores_a_downscaled_object() -> None:
    # Upstream: labels that do not match "exclude", and an excluded object with original-replicas is restored.
    down = workload(spec={"replicas": 0}, labels={"team": "b"}, annotations={ann.ORIGINAL_REPLICAS: "2"})
    assert step(down, "deployments", "never", matching_labels="team=a").action == "up"
    assert step(workload(labels={"team": "b"}), "deployments", "never", matching_labels="team=a").action == "skip"
    assert step(down, "deployments", "never", matching_labels="team=a", upscale_target_only=True).action == "skip"


def test_upscale_target_only_keeps_every_excluded_object_as_it_is() -> None:
    down = workload(spec={"replicas": 0}, annotations={ann.ORIGINAL_REPLICAS: "2", ann.EXCLUDE: "true"})
    assert step(down, "deployments", "never").action == "up"
    assert step(down, "deployments", "never", upscale_target_only=True).action == "skip"


def test_defaults_as_upstream() -> None:
    assert {"py-kube-downscaler", "kube-downscaler", "downscaler"} <= set(DEFAULT_EXCLUDE_DEPLOYMENTS.split(","))
    assert step(workload(name="py-kube-downscaler"), "deployments", "never").action == "skip"
    assert DEFAULT_INTERVAL == 60  # upstream's README and Helm chart (its code says 30)


# --- flags and environment variables -----------------------------------------------------------------


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    from zerowatt.cli.main import app

    return CliRunner().invoke(app, ["downscaler", "--once", *args, "--kubeconfig", "/nonexistent"], env=env)


@pytest.mark.parametrize(
    "args",
    [
        ["--api-server-timeout", "5"],
        ["--max-retries-on-conflict", "2"],
        ["--max-retries-on-throttling", "2"],
        ["--qps", "5", "--burst", "10"],
        ["-d"],
        ["--debug"],
        ["--admission-controller", ""],
    ],
)
def test_upstream_flags_are_accepted(args: list[str]) -> None:
    result = invoke(*args)
    # Accepted: the run gets as far as the kubeconfig (exit 2 for the missing file, not "No such option").
    assert result.exit_code == 2 and "kubeconfig /nonexistent" in result.output, result.output


@pytest.mark.parametrize(
    ("env", "shown"),
    [
        ({"QPS": "5", "BURST": "2"}, "--burst: burst 2 is below qps 5"),
        ({"QPS": "5"}, "--qps: qps 5 and burst 0 must both be positive"),
        ({"API_SERVER_TIMEOUT": "x"}, "API_SERVER_TIMEOUT"),
        ({"MAX_RETRIES_ON_CONFLICT": "-1"}, "max-retries-on"),
        ({"ADMISSION_CONTROLLER": "kyverno"}, "--admission-controller kyverno: not supported"),
    ],
)
def test_upstream_environment_variables_are_read(env: dict[str, str], shown: str) -> None:
    result = invoke(env=env)
    assert result.exit_code == 2 and shown in " ".join(result.output.split()), result.output


@pytest.mark.parametrize("value", ["gatekeeper", "kyverno", "opa"])
def test_admission_controller_is_refused_by_name(value: str) -> None:
    result = invoke("--admission-controller", value)
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and f"--admission-controller {value}" in text and "not supported" in text


def test_default_weekframe_is_read() -> None:
    # Upstream's DEFAULT_WEEKFRAME fills in the weekdays of "08:00-20:00 UTC"; without it, that spec is invalid.
    bare = invoke("--default-uptime", "08:00-20:00 UTC")
    assert bare.exit_code == 2 and "--default-uptime" in bare.output
    framed = invoke("--default-uptime", "08:00-20:00 UTC", env={"DEFAULT_WEEKFRAME": "Mon-Sun"})
    assert framed.exit_code == 2 and "kubeconfig /nonexistent" in framed.output, framed.output


@pytest.mark.parametrize(
    ("a", "b"), [("--upscale-period", "--default-uptime"), ("--downscale-period", "--default-downtime")]
)
def test_upscale_period_excludes_default_uptime_on_the_command_line(a: str, b: str) -> None:
    result = invoke(a, "never", b, "never")
    assert result.exit_code == 2 and "exclude each other" in result.output
    env = {"UPSCALE_PERIOD": "never", "DOWNSCALE_PERIOD": "never"}
    assert "kubeconfig /nonexistent" in invoke(b, "never", env=env).output  # env + flag: fine, as argparse


# --- the API adapter: rate limit and bounded retries -------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_token_bucket_burst_then_qps() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, 20, clock=clock, sleep=clock.sleep)
    assert bucket.take(50) == 20 and clock.slept == []  # the burst at once
    assert bucket.take(50) == 1 and clock.slept == [pytest.approx(0.1)]  # then one per 1/qps
    clock.now += 1.0
    assert bucket.take(50) == 10  # a second later: qps more
    assert token_bucket(0, 0) is None


def test_rate_limit_spaces_the_requests(kube: EmulatorThread) -> None:
    emu(kube).add_namespace("dev")
    for i in range(6):
        create(kube, "deployments", workload(name=f"w{i}", spec={"replicas": 1}))
    clock = FakeClock()
    api = api_for(kube, rate=TokenBucket(2, 2, clock=clock, sleep=clock.sleep))
    report = controller(kube, include="deployments", default_uptime="never", api=api, pod_force_uptime=False).run_pass(
        NOW
    )
    assert len(report.changes) == 6 and not report.errors
    # 1 namespace list + 1 deployments list + 6 patches = 8 requests: 2 from the burst, then 6 waits of 0.5 s.
    assert api.requests == 8 and clock.slept == [pytest.approx(0.5)] * 6


def test_no_retries_on_throttling_when_asked(kube: EmulatorThread) -> None:
    emu(kube).add_namespace("dev")
    create(kube, "deployments", workload(spec={"replicas": 1}))
    emu(kube).faults.append(Fault("PATCH", r".*/deployments/web", 429, times=100))
    api = api_for(kube, retry=RetryPolicy(throttle_retries=0))
    report = controller(kube, include="deployments", default_uptime="never", api=api).run_pass(NOW)
    assert [w for w, _ in report.errors] == ["Deployment dev/web"] and api.retries == 0


def test_no_retries_on_conflict_when_asked(kube: EmulatorThread) -> None:
    emu(kube).add_namespace("dev")
    create(kube, "deployments", workload(spec={"replicas": 1}))
    emu(kube).faults.append(Fault("PATCH", r".*/deployments/web", 409))
    report = controller(kube, include="deployments", default_uptime="never", conflict_retries=0).run_pass(NOW)
    assert len(report.errors) == 1 and "409" in report.errors[0][1]
    assert not any(m == "GET" and p.endswith("/deployments/web") for m, p in emu(kube).served)  # not re-read
    again = controller(kube, include="deployments", default_uptime="never", conflict_retries=0).run_pass(NOW)
    assert [c.action for c in again.changes] == ["down"]  # next pass, as upstream


def test_keda_active_level_is_above_any_target() -> None:
    assert KEDA_ACTIVE > 2**31 - 1  # Kubernetes' largest replica count


def test_namespace_flag_wins_over_exclude_namespaces(kube: EmulatorThread) -> None:
    emu(kube).add_namespace("kube-system")
    create(kube, "deployments", workload(name="dns", namespace="kube-system", spec={"replicas": 2}))
    everywhere = controller(kube, include="deployments", default_uptime="never").run_pass(NOW)
    assert everywhere.changes == []  # kube-system is excluded by default
    listed = controller(kube, include="deployments", default_uptime="never", namespaces=("kube-system",))
    assert [(c.name, c.action) for c in listed.run_pass(NOW).changes] == [("dns", "down")]


def test_job_owned_by_a_cronjob_is_left_to_it() -> None:
    job = workload("Job", spec={"suspend": False})
    assert step(job, "jobs", "never").action == "down"
    job["metadata"]["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "nightly"}]
    assert step(job, "jobs", "never").action == "skip"


def test_every_row_of_the_migration_table_names_tests_that_exist() -> None:
    import fnmatch
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    doc = (root / "docs" / "downscaler.md").read_text()
    section = doc.split("### Compared with py-kube-downscaler", 1)[1].split("\n\n", 2)[2].split("\n\n", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|") and not line.startswith("|---")][1:]
    defined = {
        m
        for path in (root / "tests").rglob("test_*.py")
        for m in re.findall(r"^def (test_\w+)", path.read_text(), re.M)
    }
    assert len(rows) >= 20
    for row in rows:
        cited = row.rstrip(" |").rsplit("|", 1)[1]
        names = re.findall(r"test_[\w*]+", cited.replace(".py", ""))
        files = [n for n in re.findall(r"tests/[\w/]+\.py", cited) if (root / n).is_file()]
        assert names or files, row
        for name in names:
            if name.startswith("test_") and (root / "tests" / "kube" / f"{name}.py").is_file():
                continue  # a file, e.g. test_force_uptime_pods
            if (root / "tests" / "schedule" / f"{name}.py").is_file():
                continue
            assert fnmatch.filter(defined, name), f"{name} (cited in docs/downscaler.md) is not a test"


def test_api_server_timeout_bounds_every_answer() -> None:
    import socket

    from kubernetes import client

    from zerowatt.kube.api import ApiError, KubeApi

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never answers
    try:
        cfg = client.Configuration()
        cfg.host = f"http://127.0.0.1:{silent.getsockname()[1]}"
        sleeps: list[float] = []
        api = KubeApi(client.ApiClient(cfg), timeout=0.2, retry=RetryPolicy(attempts=2), sleep=sleeps.append)
        with pytest.raises(ApiError) as info:
            api.get("/api/v1/namespaces")
        assert info.value.status == 0 and "timed out" in info.value.reason and len(sleeps) == 1
    finally:
        silent.close()


def test_savings_are_priced_only_when_asked(kube: EmulatorThread) -> None:
    emu(kube).add_namespace("dev")
    spec = {"replicas": 2, "template": {"spec": {"containers": [{"resources": {"requests": {"cpu": "1"}}}]}}}
    create(kube, "deployments", workload(spec=spec))
    priced = controller(kube, include="deployments", default_uptime="never", dry_run=True).run_pass(NOW)
    assert priced.released.replicas == 2 and dict(priced.down) == {("deployments", "dev"): 1}
    bare = controller(kube, include="deployments", default_uptime="never", dry_run=True, savings=False)
    report = bare.run_pass(NOW)
    assert report.released.replicas == 0 and dict(report.down) == {("deployments", "dev"): 1}
