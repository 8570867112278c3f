"""The operator against kmock's Kubernetes emulator on loopback: real HTTP, real watch streams."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from kubernetes import client

from tests.kube.emulator import Fault
from tests.operator.emulator import CRDS, OperatorEmulator, OperatorEmulatorThread
from tests.operator.samples import executor, spinapp, wasmapp
from zerowatt.kube.api import KubeApi, RetryPolicy
from zerowatt.operator.children import Settings
from zerowatt.operator.controller import Operator, Options
from zerowatt.operator.model import Ref

NS = "apps"
SPINAPPS = "/apis/core.spinkube.dev/v1alpha1/namespaces/apps/spinapps"
EXECUTORS = "/apis/core.spinkube.dev/v1alpha1/namespaces/apps/spinappexecutors"
WASMAPPS = "/apis/zerowatt.dev/v1alpha1/namespaces/apps/wasmapps"
DEPLOYMENTS = "/apis/apps/v1/namespaces/apps/deployments"
SERVICES = "/api/v1/namespaces/apps/services"


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def kube() -> Iterator[OperatorEmulatorThread]:
    with OperatorEmulatorThread(custom_resources=CRDS) as et:
        yield et


def emu(kube: OperatorEmulatorThread) -> OperatorEmulator:
    assert isinstance(kube.emulator, OperatorEmulator)
    return kube.emulator


def operator(kube: OperatorEmulatorThread, sleeps: Sleeps | None = None, **kw: Any) -> Operator:
    cfg = client.Configuration()
    cfg.host = kube.url
    api_client = client.ApiClient(cfg)
    api = KubeApi(api_client, sleep=sleeps if sleeps is not None else Sleeps(), retry=RetryPolicy(attempts=4))
    options = Options(**{"backoff_base": 0.01, **kw})
    return Operator(api, api_client, Settings(runtime_image="runtime:test"), options)


def create(kube: OperatorEmulatorThread, path: str, obj: dict[str, Any]) -> None:
    r = httpx.post(kube.url + path, json=obj)
    assert r.status_code < 300, r.text


def get(kube: OperatorEmulatorThread, path: str) -> dict[str, Any] | None:
    r = httpx.get(kube.url + path)
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def items(kube: OperatorEmulatorThread, path: str) -> list[dict[str, Any]]:
    r = httpx.get(kube.url + path)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def events(kube: OperatorEmulatorThread) -> list[dict[str, Any]]:
    return items(kube, "/api/v1/namespaces/apps/events")


def condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    assert obj is not None
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c["type"] == kind:
            return dict(c)
    raise AssertionError(f"no {kind} condition in {obj.get('status')}")


def wait_for(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def seed(kube: OperatorEmulatorThread) -> None:
    create(kube, EXECUTORS, executor())
    create(kube, SPINAPPS, spinapp("good", uid="uid-good"))
    create(kube, SPINAPPS, spinapp("lost", uid="uid-lost", executor="wasmtime"))
    create(
        kube,
        SPINAPPS,
        spinapp("badvar", uid="uid-badvar", variables=[{"name": "a", "valueFrom": {"secretKeyRef": {"name": "s"}}}]),
    )
    create(kube, SPINAPPS, spinapp("llm", uid="uid-llm", runtimeConfig={"llmCompute": {"type": "remote_http"}}))
    create(kube, SPINAPPS, spinapp("noimage", uid="uid-noimage", image=None))
    create(kube, WASMAPPS, wasmapp("zw", uid="uid-zw", autoscaling={"enabled": True}))


def test_good_apps_reconcile_and_bad_ones_get_a_condition_and_event(kube: OperatorEmulatorThread) -> None:
    seed(kube)
    stats = operator(kube).run_once()
    assert stats.errors == 0
    for name in ("good", "zw"):
        assert get(kube, f"{DEPLOYMENTS}/{name}") is not None
        assert get(kube, f"{SERVICES}/{name}") is not None
        assert get(kube, f"{SERVICES}/{name}-pods") is not None
    good = get(kube, f"{SPINAPPS}/good")
    assert good is not None and good["metadata"]["finalizers"] == ["zerowatt.dev/operator"]
    assert condition(good, "Accepted")["status"] == "True"
    assert good["status"]["deploymentName"] == "good"
    dep = get(kube, f"{DEPLOYMENTS}/good")
    assert dep is not None and dep["spec"]["replicas"] == 2
    assert dep["metadata"]["ownerReferences"][0]["uid"] == "uid-good"
    writes = [p for m, p in emu(kube).served if m == "PATCH"]
    assert f"{DEPLOYMENTS}/good?fieldManager=zerowatt-operator&force=true" in writes  # server-side apply
    assert f"{SPINAPPS}/good/status" in writes  # the status subresource
    zw = get(kube, f"{DEPLOYMENTS}/zw")
    assert zw is not None and "replicas" not in zw["spec"]
    assert zw["metadata"]["annotations"]["zerowatt.dev/autoscaling"] == "true"
    expected = {
        "lost": ("UnknownExecutor", "spec.executor"),
        "badvar": ("InvalidSpec", "spec.variables[0].valueFrom.secretKeyRef.key"),
        "llm": ("UnsupportedField", "spec.runtimeConfig.llmCompute"),
        "noimage": ("InvalidSpec", "spec.image"),
    }
    recorded = {e["involvedObject"]["name"]: e for e in events(kube)}
    for name, (reason, where) in expected.items():
        assert get(kube, f"{DEPLOYMENTS}/{name}") is None
        accepted = condition(get(kube, f"{SPINAPPS}/{name}"), "Accepted")
        assert (accepted["status"], accepted["reason"]) == ("False", reason)
        assert where in accepted["message"]
        assert recorded[name]["reason"] == reason and where in recorded[name]["message"]
        assert recorded[name]["type"] == "Warning"
    assert set(recorded) == set(expected)


def test_a_second_pass_writes_nothing_and_repeats_no_event(kube: OperatorEmulatorThread) -> None:
    seed(kube)
    operator(kube).run_once()
    # one status write per app already describes the children just created
    assert condition(get(kube, f"{SPINAPPS}/good"), "Ready")["reason"] == "Progressing"
    before = len(events(kube))
    emu(kube).served.clear()
    operator(kube).run_once()
    assert [(m, p) for m, p in emu(kube).served if m != "GET"] == []
    assert len(events(kube)) == before


def test_conflicts_and_throttling_are_retried(kube: OperatorEmulatorThread) -> None:
    seed(kube)
    emu(kube).faults += [
        Fault("PATCH", f"{DEPLOYMENTS}/good", 409, times=2),
        Fault("PATCH", f"{SERVICES}/good", 429, times=2, retry_after="1"),
    ]
    sleeps = Sleeps()
    op = operator(kube, sleeps)
    stats = op.run_once()
    assert get(kube, f"{DEPLOYMENTS}/good") is not None
    assert get(kube, f"{SERVICES}/good") is not None
    assert stats.requeues >= 2  # the 409s: requeued with backoff, the app re-read
    assert 1.0 in sleeps  # the 429s: Retry-After honoured inside KubeApi
    assert emu(kube).faults[0].hits == 2 and emu(kube).faults[1].hits == 2


def test_a_persistent_failure_marks_the_app_and_spares_the_others(kube: OperatorEmulatorThread) -> None:
    seed(kube)
    emu(kube).faults.append(Fault("PATCH", f"{DEPLOYMENTS}/good", 422, times=1000))
    operator(kube).run_once(max_rounds=3)
    ready = condition(get(kube, f"{SPINAPPS}/good"), "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ApplyFailed")
    assert "422" in ready["message"]
    assert get(kube, f"{DEPLOYMENTS}/zw") is not None
    # one Event per failure message, not one per retry
    assert [e["involvedObject"]["name"] for e in events(kube) if e["reason"] == "ApplyFailed"] == ["good"]


def test_a_restart_mid_way_loses_nothing(kube: OperatorEmulatorThread) -> None:
    seed(kube)
    # The first operator dies after its first batch of writes went out (the API server stops answering it).
    emu(kube).faults.append(Fault("PATCH", r".*/status", 503, times=1000))
    operator(kube).run_once(max_rounds=1)
    assert get(kube, f"{DEPLOYMENTS}/good") is not None
    assert "status" not in (get(kube, f"{SPINAPPS}/good") or {})
    emu(kube).faults.clear()
    operator(kube).run_once()
    assert condition(get(kube, f"{SPINAPPS}/good"), "Accepted")["status"] == "True"
    assert condition(get(kube, f"{SPINAPPS}/lost"), "Accepted")["reason"] == "UnknownExecutor"


@pytest.fixture
def running(kube: OperatorEmulatorThread) -> Iterator[Operator]:
    seed(kube)
    op = operator(kube)
    thread = threading.Thread(target=op.run, daemon=True)
    thread.start()
    yield op
    op.stop.set()
    op.close()
    thread.join(10)
    assert not thread.is_alive()


def test_watch_mode_repairs_drift_and_reacts_to_new_apps(kube: OperatorEmulatorThread, running: Operator) -> None:
    wait_for(lambda: get(kube, f"{DEPLOYMENTS}/good") is not None)

    # drift: someone edits the Deployment's runtime image and deletes a Service
    def edit() -> None:
        for (res, _ns, name), obj in list(emu(kube).objects.items()):
            if res.plural == "deployments" and name == "good":
                obj.patch({"spec": {"template": {"spec": {"containers": [{"name": "runtime", "image": "evil:1"}]}}}})

    kube.call(edit)
    httpx.patch(
        kube.url + f"{DEPLOYMENTS}/good",
        json={"metadata": {"labels": {"touched": "yes"}}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    httpx.delete(kube.url + f"{SERVICES}/good-pods")

    def repaired() -> bool:
        dep = get(kube, f"{DEPLOYMENTS}/good")
        image = dep["spec"]["template"]["spec"]["containers"][0].get("image") if dep else None
        return image == "runtime:test" and get(kube, f"{SERVICES}/good-pods") is not None

    wait_for(repaired)
    create(kube, SPINAPPS, spinapp("late", uid="uid-late"))
    wait_for(lambda: get(kube, f"{DEPLOYMENTS}/late") is not None)
    # an executor created later makes the app that named it reconcile
    create(kube, EXECUTORS, executor("wasmtime"))
    wait_for(lambda: get(kube, f"{DEPLOYMENTS}/lost") is not None)


def test_watch_mode_delete_runs_the_finalizer(kube: OperatorEmulatorThread, running: Operator) -> None:
    wait_for(lambda: get(kube, f"{DEPLOYMENTS}/good") is not None and "status" in (get(kube, f"{SPINAPPS}/good") or {}))
    r = httpx.delete(kube.url + f"{SPINAPPS}/good")
    assert r.status_code < 300, r.text
    wait_for(lambda: get(kube, f"{SPINAPPS}/good") is None)
    assert get(kube, f"{DEPLOYMENTS}/good") is None
    assert get(kube, f"{SERVICES}/good") is None
    assert get(kube, f"{SERVICES}/good-pods") is None
    assert get(kube, f"{DEPLOYMENTS}/zw") is not None  # the others stay


def test_metrics_describe_the_pass(kube: OperatorEmulatorThread) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from zerowatt.operator.metrics import OperatorMetrics

    seed(kube)
    op = operator(kube)
    registry = CollectorRegistry()
    OperatorMetrics(op, registry)
    op.run_once()
    text = generate_latest(registry).decode()
    assert "zerowatt_operator_reconciles_total 6.0" in text
    assert 'zerowatt_operator_writes_total{kind="apply"} 6.0' in text  # good + zw, three children each
    assert 'zerowatt_operator_writes_total{kind="event"} 4.0' in text
    assert 'zerowatt_operator_apps{accepted="False",kind="SpinApp"} 4.0' in text
    assert 'zerowatt_operator_apps{accepted="True",kind="WasmApp"} 1.0' in text


def test_the_cache_holds_what_the_writes_returned(kube: OperatorEmulatorThread) -> None:
    seed(kube)
    op = operator(kube)
    op.run_once()
    service = op.children["apps"][("Service", "good")]
    assert service["kind"] == "Service" and service["spec"]["ports"][0]["name"] == "http"
    app = op.apps[Ref("SpinApp", "apps", "good")]
    assert app["metadata"]["finalizers"] == ["zerowatt.dev/operator"]
    assert condition(app, "Accepted")["status"] == "True"


def test_namespaced_operator_leaves_other_namespaces_alone(kube: OperatorEmulatorThread) -> None:
    seed(kube)
    create(kube, "/apis/core.spinkube.dev/v1alpha1/namespaces/other/spinappexecutors", executor(namespace="other"))
    create(kube, "/apis/core.spinkube.dev/v1alpha1/namespaces/other/spinapps", spinapp("web", "other", uid="uid-o"))
    op = operator(kube, namespaces=("other",))
    op.run_once()
    assert get(kube, "/apis/apps/v1/namespaces/other/deployments/web") is not None
    assert get(kube, f"{DEPLOYMENTS}/good") is None
    assert set(op.apps) == {Ref("SpinApp", "other", "web")}


def test_watch_mode_survives_a_failing_first_list(kube: OperatorEmulatorThread) -> None:
    seed(kube)
    emu(kube).faults.append(Fault("GET", DEPLOYMENTS.replace("/namespaces/apps", ""), 403, times=1))
    op = operator(kube)
    thread = threading.Thread(target=op.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: get(kube, f"{DEPLOYMENTS}/good") is not None and get(kube, f"{SERVICES}/zw") is not None)
        assert emu(kube).faults[0].hits == 1
    finally:
        op.close()
        thread.join(10)


def test_an_exception_while_writing_requeues_the_apps(kube: OperatorEmulatorThread) -> None:
    seed(kube)
    op = operator(kube)
    real = op.api.send_all
    calls: list[int] = []

    def flaky(requests: Any) -> Any:
        if requests[0].method != "GET":
            calls.append(len(requests))
            if len(calls) == 1:  # the first batch of writes
                raise ConnectionResetError("connection reset by peer")
        return real(requests)

    op.api.send_all = flaky  # type: ignore[method-assign]
    stats = op.run_once()
    assert stats.errors >= 6 and get(kube, f"{DEPLOYMENTS}/good") is not None
