"""The controller against kmock's Kubernetes emulator on loopback, through the official client."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

import httpx
import pytest
from kubernetes import client

from tests.kube.conftest import NOW, OLD, real_matcher, workload
from tests.kube.emulator import Emulator, EmulatorThread, Fault
from zerowatt.kube import annotations as ann
from zerowatt.kube import argocd
from zerowatt.kube.api import KubeApi, RetryPolicy
from zerowatt.kube.controller import Downscaler, Options
from zerowatt.kube.kinds import KINDS
from zerowatt.kube.settings import make_settings

ALL = "deployments,statefulsets,cronjobs,horizontalpodautoscalers"


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def api_for(kube: EmulatorThread, sleeps: Sleeps | None = None, **kw: Any) -> KubeApi:
    cfg = client.Configuration()
    cfg.host = kube.url
    return KubeApi(client.ApiClient(cfg), sleep=sleeps if sleeps is not None else Sleeps(), **kw)


def emu(kube: EmulatorThread) -> Emulator:
    assert kube.emulator is not None
    return kube.emulator


def create(kube: EmulatorThread, plural: str, obj: dict[str, Any]) -> None:
    k = KINDS[plural]
    obj.setdefault("apiVersion", k.api_version)
    r = httpx.post(kube.url + k.collection_path(obj["metadata"]["namespace"]), json=obj)
    assert r.status_code < 300, r.text


def get(kube: EmulatorThread, plural: str, ns: str, name: str) -> dict[str, Any]:
    r = httpx.get(kube.url + KINDS[plural].object_path(ns, name))
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def controller(kube: EmulatorThread, include: str = ALL, api: KubeApi | None = None, **kw: Any) -> Downscaler:
    settings_kw = {k: kw.pop(k) for k in list(kw) if k not in Options.__dataclass_fields__}
    settings = make_settings(include_resources=include, **settings_kw)
    return Downscaler(api or api_for(kube), settings, real_matcher(), Options(**kw))


def patches(kube: EmulatorThread) -> list[str]:
    return [path for method, path in emu(kube).served if method == "PATCH"]


@pytest.fixture
def cluster(kube: EmulatorThread) -> EmulatorThread:
    e = emu(kube)
    e.add_namespace("dev", {ann.UPTIME: "never"})
    e.add_namespace("prod")
    e.add_namespace("kube-system", {ann.UPTIME: "never"})
    web = workload(
        spec={
            "replicas": 3,
            "template": {"spec": {"containers": [{"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}]}},
        }
    )
    create(kube, "deployments", web)
    create(kube, "deployments", workload(name="api", namespace="prod", spec={"replicas": 2}))
    create(kube, "deployments", workload(name="dns", namespace="kube-system", spec={"replicas": 2}))
    create(kube, "deployments", workload(name="downscaler", spec={"replicas": 1}))
    create(kube, "statefulsets", workload("StatefulSet", name="db", spec={"replicas": 1}))
    create(kube, "cronjobs", workload("CronJob", name="report", spec={"schedule": "0 * * * *", "suspend": False}))
    create(kube, "cronjobs", workload("CronJob", name="manual", spec={"schedule": "0 * * * *", "suspend": True}))
    create(
        kube,
        "horizontalpodautoscalers",
        workload("HorizontalPodAutoscaler", name="web", spec={"minReplicas": 2, "maxReplicas": 5}),
    )
    emu(kube).served.clear()
    return kube


def test_once_down_then_no_writes_then_up(cluster: EmulatorThread) -> None:
    report = controller(cluster).run_pass(NOW)
    assert report.errors == []
    assert get(cluster, "deployments", "dev", "web")["spec"]["replicas"] == 0
    assert get(cluster, "deployments", "dev", "web")["metadata"]["annotations"][ann.ORIGINAL_REPLICAS] == "3"
    assert get(cluster, "deployments", "prod", "api")["spec"]["replicas"] == 2
    assert get(cluster, "deployments", "kube-system", "dns")["spec"]["replicas"] == 2  # --exclude-namespaces default
    assert get(cluster, "deployments", "dev", "downscaler")["spec"]["replicas"] == 1  # --exclude-deployments default
    assert get(cluster, "statefulsets", "dev", "db")["spec"]["replicas"] == 0
    assert get(cluster, "cronjobs", "dev", "report")["spec"]["suspend"] is True
    assert get(cluster, "horizontalpodautoscalers", "dev", "web")["spec"]["minReplicas"] == 1
    assert sorted((c.kind, c.name) for c in report.changes) == [
        ("cronjobs", "report"), ("deployments", "web"), ("horizontalpodautoscalers", "web"), ("statefulsets", "db"),
    ]  # fmt: skip
    assert report.released.replicas == 4 and report.released.cores == pytest.approx(1.5)
    assert report.released.memory == pytest.approx(3 * 2**30)
    assert len(patches(cluster)) == 4
    assert "horizontalpodautoscalers/web" in patches(cluster)[0]  # the HPA is lowered before its workload

    emu(cluster).served.clear()
    again = controller(cluster).run_pass(NOW + timedelta(minutes=1))
    assert again.changes == [] and patches(cluster) == []  # no needless updates
    assert sum(again.down.values()) == 4

    emu(cluster).namespaces["dev"]["metadata"]["annotations"][ann.UPTIME] = "always"
    controller(cluster).run_pass(NOW + timedelta(hours=1))
    web = get(cluster, "deployments", "dev", "web")
    assert web["spec"]["replicas"] == 3 and ann.ORIGINAL_REPLICAS not in web["metadata"].get("annotations", {})
    assert get(cluster, "horizontalpodautoscalers", "dev", "web")["spec"]["minReplicas"] == 2
    assert get(cluster, "cronjobs", "dev", "report")["spec"]["suspend"] is False
    assert get(cluster, "cronjobs", "dev", "manual")["spec"]["suspend"] is True  # suspended by hand: stays


def test_dry_run_writes_nothing(cluster: EmulatorThread) -> None:
    report = controller(cluster, dry_run=True, enable_events=True).run_pass(NOW)
    assert len(report.changes) == 4 and not any(c.applied for c in report.changes)
    assert [(m, p) for m, p in emu(cluster).served if m != "GET"] == []
    assert get(cluster, "deployments", "dev", "web")["spec"]["replicas"] == 3


def test_namespace_flag_restricts_the_pass(cluster: EmulatorThread) -> None:
    report = controller(cluster, namespaces=("prod",), default_uptime="never").run_pass(NOW)
    assert [(c.namespace, c.name) for c in report.changes] == [("prod", "api")]
    assert get(cluster, "deployments", "dev", "web")["spec"]["replicas"] == 3


def events(kube: EmulatorThread, ns: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = httpx.get(f"{kube.url}/api/v1/namespaces/{ns}/events").json()["items"]
    return items


def test_events_on_changes_and_invalid_annotation(cluster: EmulatorThread, caplog: pytest.LogCaptureFixture) -> None:
    create(
        cluster, "deployments", workload(name="broken", annotations={ann.UPTIME: "Mon-Fri 9-5"}, spec={"replicas": 2})
    )
    caplog.set_level(logging.INFO, logger="zerowatt.kube")
    logging.getLogger("zerowatt.kube").propagate = True
    ctl = controller(cluster, include="deployments", enable_events=True)
    report = ctl.run_pass(NOW)
    assert [w for w, _ in report.errors] == ["Deployment dev/broken"]
    assert get(cluster, "deployments", "dev", "broken")["spec"]["replicas"] == 2
    assert get(cluster, "deployments", "dev", "web")["spec"]["replicas"] == 0  # the others still handled
    by_reason = {(e["reason"], e["involvedObject"]["name"]): e for e in events(cluster, "dev")}
    assert set(by_reason) == {("ScaleDown", "web"), ("InvalidAnnotation", "broken")}
    warning = by_reason[("InvalidAnnotation", "broken")]
    assert warning["type"] == "Warning" and "Mon-Fri 9-5" in warning["message"]
    assert by_reason[("ScaleDown", "web")]["involvedObject"]["kind"] == "Deployment"
    assert "from 3 to 0" in by_reason[("ScaleDown", "web")]["message"]
    assert any(
        "invalid configuration" in r.getMessage() and "broken" in str(getattr(r, "fields", "")) for r in caplog.records
    )
    # the next pass logs it again but does not repeat the Event
    caplog.clear()
    ctl.run_pass(NOW + timedelta(minutes=1))
    assert [e["reason"] for e in events(cluster, "dev")].count("InvalidAnnotation") == 1
    assert any("invalid configuration" in r.getMessage() for r in caplog.records)


def test_conflict_is_reread_and_neither_update_is_lost(cluster: EmulatorThread) -> None:
    def other_writer(e: Emulator) -> None:  # someone scales dev/web to 5 and labels it while we decide
        obj = e.objects["apps/v1/deployments", "dev", "web"]
        obj.patch({"spec": {"replicas": 5}, "metadata": {"labels": {"owner": "team-a"}, "resourceVersion": "2"}})

    emu(cluster).faults.append(Fault("PATCH", r".*/deployments/web", 409, before=other_writer))
    report = controller(cluster, include="deployments").run_pass(NOW)
    served = [m for m, p in emu(cluster).served if "/deployments/web" in p]
    assert served == ["PATCH", "GET", "PATCH"]
    web = get(cluster, "deployments", "dev", "web")
    assert web["spec"]["replicas"] == 0
    assert web["metadata"]["annotations"][ann.ORIGINAL_REPLICAS] == "5"  # the other writer's count is the one kept
    assert web["metadata"]["labels"] == {"owner": "team-a"}
    assert [c.level for c in report.changes if c.name == "web"] == [5]


def test_conflict_retries_are_bounded(cluster: EmulatorThread) -> None:
    emu(cluster).faults.append(Fault("PATCH", r".*/deployments/web", 409, times=100))
    report = controller(cluster, include="deployments").run_pass(NOW)
    assert [w for w, _ in report.errors] == ["Deployment dev/web"]
    assert get(cluster, "statefulsets", "dev", "db")["spec"]["replicas"] == 1  # not included
    assert len([p for p in patches(cluster) if p.endswith("/web")]) == 4


def test_throttling_honours_retry_after_and_loses_nothing(cluster: EmulatorThread) -> None:
    sleeps = Sleeps()
    emu(cluster).faults += [
        Fault("PATCH", r".*/deployments/web", 429, times=2, retry_after="3"),
        Fault("GET", r"/apis/apps/v1/statefulsets", 503, times=1),
    ]
    api = api_for(cluster, sleeps, retry=RetryPolicy(attempts=5, base=0.25, cap=10))
    report = controller(cluster, api=api).run_pass(NOW)
    assert report.errors == []
    assert sleeps == [0.25, 3.0, 3.0]  # 503 on the list: own backoff; 429: the server's Retry-After
    assert get(cluster, "deployments", "dev", "web")["spec"]["replicas"] == 0
    assert get(cluster, "statefulsets", "dev", "db")["spec"]["replicas"] == 0


def test_throttling_gives_up_after_the_bound(cluster: EmulatorThread) -> None:
    sleeps = Sleeps()
    emu(cluster).faults.append(Fault("PATCH", r".*/deployments/web", 429, times=100, retry_after="1000"))
    api = api_for(cluster, sleeps, retry=RetryPolicy(base=0.1, cap=5, throttle_retries=2))
    report = controller(cluster, include="deployments,statefulsets", api=api).run_pass(NOW)
    assert sleeps == [5, 5] and [w for w, _ in report.errors] == ["Deployment dev/web"]
    assert dict(report.down) == {("statefulsets", "dev"): 1}  # the failed one is not counted as down
    assert get(cluster, "statefulsets", "dev", "db")["spec"]["replicas"] == 0


def test_custom_resource_kind_and_a_missing_crd(kube: EmulatorThread) -> None:
    emu(kube).add_namespace("apps", {ann.DOWNTIME: "always"})
    create(
        kube,
        "wasmapps",
        workload("WasmApp", name="hello", namespace="apps", spec={"replicas": 2, "component": "hello.wasm"}),
    )
    emu(kube).faults.append(Fault("GET", r"/apis/kubevirt.io/v1/virtualmachines", 404))
    report = controller(kube, include="wasmapps,virtualmachines").run_pass(NOW)
    app = get(kube, "wasmapps", "apps", "hello")
    assert app["spec"]["replicas"] == 0 and app["metadata"]["annotations"][ann.ORIGINAL_REPLICAS] == "2"
    assert [c.kind for c in report.changes] == ["wasmapps"]


def test_paged_lists_follow_continue(kube: EmulatorThread) -> None:
    items = [workload(name=f"w{i}") for i in range(5)]
    seen: list[dict[str, str]] = []

    def page(request: Any) -> dict[str, Any]:
        params = dict(request.params)
        seen.append(params)
        start, limit = int(params.get("continue") or 0), int(params["limit"])
        nxt = start + limit
        return {"items": items[start:nxt], "metadata": {"continue": str(nxt) if nxt < len(items) else ""}}

    kube.call(lambda: emu(kube)["get /apis/apps/v1/deployments"] << page)
    got = list(api_for(kube, page_size=2).list("/apis/apps/v1/deployments"))
    assert [o["metadata"]["name"] for o in got] == [f"w{i}" for i in range(5)]
    assert [p.get("continue") for p in seen] == [None, "2", "4"] and {p["limit"] for p in seen} == {"2"}


def test_argocd_self_heal_paused_while_down_and_restored(kube: EmulatorThread) -> None:
    e = emu(kube)
    e.add_namespace("dev", {ann.UPTIME: "never"})
    e.add_namespace("argocd")
    app = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "shop", "namespace": "argocd"},
    }
    app["spec"] = {"syncPolicy": {"automated": {"prune": True, "selfHeal": True}}}
    assert (
        httpx.post(kube.url + "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications", json=app).status_code < 300
    )
    other = {
        **app,
        "metadata": {"name": "blog", "namespace": "argocd"},
        "spec": {"syncPolicy": {"automated": {"selfHeal": True}}},
    }
    assert (
        httpx.post(kube.url + "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications", json=other).status_code < 300
    )
    create(kube, "deployments", workload(name="cart", labels={argocd.DEFAULT_INSTANCE_LABEL: "shop"}))
    tracked = {argocd.TRACKING_ID: "shop:apps/Deployment:dev/front"}
    create(kube, "deployments", workload(name="front", annotations=tracked))

    def application(name: str) -> dict[str, Any]:
        result: dict[str, Any] = httpx.get(
            f"{kube.url}/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/{name}"
        ).json()
        return result

    report = controller(kube, include="deployments", argocd_pause_self_heal=True).run_pass(NOW)
    shop = application("shop")
    assert report.argocd_paused == ["argocd/shop"]
    assert shop["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": False}
    assert shop["metadata"]["annotations"][ann.ARGOCD_SELF_HEAL_PAUSED] == "true"
    assert application("blog")["spec"]["syncPolicy"]["automated"]["selfHeal"] is True  # owns nothing down
    pause_at = next(i for i, (m, p) in enumerate(e.served) if m == "PATCH" and p.endswith("/applications/shop"))
    first_down = next(i for i, (m, p) in enumerate(e.served) if m == "PATCH" and "/deployments/" in p)
    assert pause_at < first_down  # self-heal is off before the first replica is taken away

    assert controller(kube, include="deployments", argocd_pause_self_heal=True).run_pass(NOW).argocd_paused == []
    e.namespaces["dev"]["metadata"]["annotations"][ann.UPTIME] = "always"
    report = controller(kube, include="deployments", argocd_pause_self_heal=True).run_pass(NOW)
    assert report.argocd_restored == ["argocd/shop"]
    shop = application("shop")
    assert shop["spec"]["syncPolicy"]["automated"]["selfHeal"] is True
    assert ann.ARGOCD_SELF_HEAL_PAUSED not in shop["metadata"].get("annotations", {})


def test_argocd_untouched_without_the_flag(kube: EmulatorThread) -> None:
    emu(kube).add_namespace("dev", {ann.UPTIME: "never"})
    create(kube, "deployments", workload(name="cart", labels={argocd.DEFAULT_INSTANCE_LABEL: "shop"}))
    controller(kube, include="deployments").run_pass(NOW)
    assert not any("argoproj.io" in p for _, p in emu(kube).served)


def test_cli_once_against_kmock(cluster: EmulatorThread, tmp_path: Any) -> None:
    from tests.conftest import run_cli

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "kmock",
            "clusters": [{"name": "kmock", "cluster": {"server": cluster.url}}],
            "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "u"}}],
            "users": [{"name": "u", "user": {"token": "t"}}],
        })
    )  # fmt: skip
    created = (NOW - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert created > OLD
    args = ["downscaler", "--once", "--json", "--json-logs", "--include-resources", "deployments", "--enable-events"]
    result = run_cli([*args, "--kubeconfig", str(kubeconfig)], timeout=60)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [(c["namespace"], c["name"], c["action"]) for c in report["changes"]] == [("dev", "web", "down")]
    logs = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert any(line.get("object") == "Deployment dev/web" and line.get("action") == "down" for line in logs)
    assert get(cluster, "deployments", "dev", "web")["spec"]["replicas"] == 0
    assert [e["reason"] for e in events(cluster, "dev")] == ["ScaleDown"]


def test_cli_bad_spec_exits_2() -> None:
    from tests.conftest import run_cli

    result = run_cli(["downscaler", "--once", "--default-downtime", "Mon-Fry 08:00-09:00"], timeout=60)
    assert result.returncode == 2 and "Mon-Fry" in result.stderr and "--default-downtime" in result.stderr


def test_cli_loop_serves_metrics_and_stops_on_sigterm(cluster: EmulatorThread, tmp_path: Any) -> None:
    import subprocess
    import sys
    import time

    from tests.conftest import cli_env, free_port

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "k",
            "clusters": [{"name": "k", "cluster": {"server": cluster.url}}],
            "contexts": [{"name": "k", "context": {"cluster": "k", "user": "u"}}],
            "users": [{"name": "u", "user": {}}],
        })
    )  # fmt: skip
    port = free_port()
    args = ["downscaler", "--interval", "1", "--metrics-listen", f"127.0.0.1:{port}", "--kubeconfig", str(kubeconfig)]
    proc = subprocess.Popen([sys.executable, "-m", "zerowatt", *args], env=cli_env(), stderr=subprocess.PIPE, text=True)
    try:
        text = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "zerowatt_downscaler_objects_seen 4.0" not in text:
            time.sleep(0.2)
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except httpx.HTTPError:
                continue
        assert "zerowatt_downscaler_released_cpu_cores 1.5" in text
        assert 'zerowatt_downscaler_objects_down{kind="deployments",namespace="dev"} 1.0' in text
        assert "zerowatt_downscaler_saved_watts" in text
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert err.count("pass done") >= 1
