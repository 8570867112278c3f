"""Issue 12 end to end: SpinApp → operator → Deployment/Services → test kubelet's pods → activator → 200.

Everything that runs in a cluster runs here for real, on one kmock (the operator's emulator subclass, so
server-side apply creates objects): the operator's watch loop in a thread (:meth:`Operator.run`), the
activator in-process (as ``tests/activator`` starts it), and the test kubelet (``tests/activator/kubelet.py``)
turning the Deployments the operator wrote into real ``zerowatt up`` processes. The only stand-ins are the
kubelet's: for the ``registry.example/…`` images the init container ``zerowatt pull IMAGE --to /app`` is
checked but not run (the image is mapped to a local example, :data:`tests.activator.kubelet.IMAGES`); for an
image in a loopback registry behind basic auth it runs for real, with the ``imagePullSecrets`` Secret
projected where the operator mounts it, into the pod's own directory. The runtime
container's command line is run with ``/app/spin.toml`` and the ``0.0.0.0`` listeners replaced by the pod's
manifest and loopback address (every other flag goes to the real CLI unchanged).

Checked: an autoscaled SpinApp (``enableAutoscaling: true``, the zerowatt policy annotations) idles to
zero, a request to the activator with the app's Host header scales it 0 → 1 and gets 200 from the pod,
and after the keep-alive it is back at zero with its public slice on the activator; a SpinApp with
``replicas: 1`` comes up and its public slice points at its pod. No process outlives a test.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client

from tests.activator.conftest import Cluster, start_cluster
from tests.activator.kubelet import Kubelet, pull_image, readiness, runtime_argv, runtime_env
from tests.conftest import EXAMPLES
from tests.oci.conftest import USER, needs_registry
from tests.oci.registry import start_registry, stop
from tests.oci.spinpush import lock_and_assemble, push
from tests.operator.emulator import CRDS, OperatorEmulatorThread
from tests.waiting import wait_until
from zerowatt.kube.api import KubeApi, RetryPolicy
from zerowatt.operator.children import Settings, deployment
from zerowatt.operator.controller import Operator, Options
from zerowatt.operator.model import parse_spinapp

NS = "apps"
IMAGE = "registry.example/hello-wat:1"  # the kubelet maps it to examples/hello-wat
VARIABLES_IMAGE = "registry.example/variables-c:1"  # and this to examples/variables-c
SPINAPPS = f"/apis/core.spinkube.dev/v1alpha1/namespaces/{NS}/spinapps"
EXECUTORS = f"/apis/core.spinkube.dev/v1alpha1/namespaces/{NS}/spinappexecutors"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NS}/deployments"
SERVICES = f"/api/v1/namespaces/{NS}/services"
SLICES = f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices"
KEEP_ALIVE = 1.0  # seconds: the keepalive policy's window, short so the test returns to zero quickly


@dataclass
class Stack:
    cluster: Cluster
    kubelet: Kubelet
    operator: Operator

    def get(self, path: str) -> dict[str, Any] | None:
        r = httpx.get(self.cluster.emulator.url + path, trust_env=False)
        if r.status_code == 404:
            return None
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    def create(self, path: str, obj: dict[str, Any]) -> None:
        r = httpx.post(self.cluster.emulator.url + path, json=obj, trust_env=False)
        assert r.status_code < 300, r.text

    def replicas(self, name: str) -> int | None:
        dep = self.get(f"{DEPLOYMENTS}/{name}")
        assert dep is not None
        value = dep["spec"].get("replicas")
        return None if value is None else int(value)

    def public(self, name: str) -> list[tuple[str, int]]:
        """The public slice ``NAME-zerowatt``'s (address, port) pairs (empty while it is missing)."""
        s = self.get(f"{SLICES}/{name}-zerowatt")
        if s is None:
            return []
        port = int(s["ports"][0]["port"])
        return sorted((a, port) for e in s["endpoints"] for a in e["addresses"])

    def ready_reason(self, name: str) -> tuple[str, str] | None:
        """The SpinApp's ``Ready`` condition as (status, reason)."""
        app = self.get(f"{SPINAPPS}/{name}")
        for c in ((app or {}).get("status") or {}).get("conditions") or []:
            if c["type"] == "Ready":
                return str(c["status"]), str(c["reason"])
        return None

    def history(self, resource: str, name: str) -> list[dict[str, Any] | None]:
        """Every version the emulator stored of an object (None: deleted), oldest first."""
        emu = self.cluster.emulator.emulator
        assert emu is not None
        versions = list(emu.objects[resource, NS, name].history)
        return [None if v is None else dict(v.raw) for v in versions]

    def replicas_history(self, name: str) -> list[int | None]:
        """``spec.replicas`` of each stored version of the Deployment, repeats folded (None: not set)."""
        out: list[int | None] = []
        for v in self.history("apps/v1/deployments", name):
            value = None if v is None else v.get("spec", {}).get("replicas")
            if not out or out[-1] != value:
                out.append(value)
        return out

    def public_history(self, name: str) -> list[list[tuple[str, int]]]:
        """The public slice's endpoints in each stored version, repeats folded."""
        out: list[list[tuple[str, int]]] = []
        for v in self.history("discovery.k8s.io/v1/endpointslices", f"{name}-zerowatt"):
            if v is None:
                continue
            port = int(v["ports"][0]["port"])
            pairs = sorted((a, port) for e in v["endpoints"] for a in e["addresses"])
            if not out or out[-1] != pairs:
                out.append(pairs)
        return out

    @property
    def activator(self) -> list[tuple[str, int]]:
        host, port = self.cluster.server.address
        return [(host, port)]


def _operator(url: str) -> Operator:
    cfg = client.Configuration()
    cfg.host = url
    api_client = client.ApiClient(cfg)
    api = KubeApi(api_client, retry=RetryPolicy(attempts=4))
    settings = Settings(runtime_image="ghcr.io/zerowatt/runtime:test")
    return Operator(api, api_client, settings, Options(backoff_base=0.05))


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with OperatorEmulatorThread(custom_resources=CRDS) as et:
        cluster = start_cluster(et, sync=0.05, drain=0.2)
        op = _operator(et.url)
        loop = threading.Thread(target=op.run, name="operator", daemon=True)
        loop.start()
        kubelet = Kubelet(et.url, grace=0.3, pull_into=tmp_path / "pods")
        try:
            with kubelet:
                yield Stack(cluster, kubelet, op)
        finally:
            op.close()
            loop.join(30)
            cluster.server.stop()
            cluster.api.close()
        assert not loop.is_alive(), "the operator's loop outlived the test"
        pods = kubelet.all_pods()
        assert all(p.process.poll() is not None for p in pods), "a pod outlived the test"


def spinapp(name: str, annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    """A SpinApp as SpinKube's quickstart writes it (``kubectl apply``: no uid; the server gives one)."""
    meta: dict[str, Any] = {"name": name, "namespace": NS}
    if annotations:
        meta["annotations"] = annotations
    body = {"image": IMAGE, "executor": "containerd-shim-spin"}
    body.update(spec)
    return {"apiVersion": "core.spinkube.dev/v1alpha1", "kind": "SpinApp", "metadata": meta, "spec": body}


def executor() -> dict[str, Any]:
    """SpinKube's default executor (its Helm chart's ``containerd-shim-spin``)."""
    return {
        "apiVersion": "core.spinkube.dev/v1alpha1",
        "kind": "SpinAppExecutor",
        "metadata": {"name": "containerd-shim-spin", "namespace": NS},
        "spec": {
            "createDeployment": True,
            "deploymentConfig": {"runtimeClassName": "wasmtime-spin-v2", "installDefaultCACerts": True},
        },
    }


def _children_carry_the_contract(stack: Stack, name: str) -> dict[str, Any]:
    dep = stack.get(f"{DEPLOYMENTS}/{name}")
    assert dep is not None
    labels = dep["metadata"]["labels"]
    assert labels["zerowatt.dev/app"] == name and labels["app.kubernetes.io/managed-by"] == "zerowatt-operator"
    assert dep["spec"]["selector"]["matchLabels"] == {"zerowatt.dev/app": name}
    assert dep["spec"]["template"]["metadata"]["labels"]["zerowatt.dev/app"] == name
    assert dep["metadata"]["annotations"]["zerowatt.dev/service"] == name
    public = stack.get(f"{SERVICES}/{name}")
    assert public is not None and "selector" not in public["spec"]
    assert [(p["name"], p["port"], p["targetPort"]) for p in public["spec"]["ports"]] == [("http", 80, 8080)]
    pods = stack.get(f"{SERVICES}/{name}-pods")
    assert pods is not None and pods["spec"]["selector"] == {"zerowatt.dev/app": name}
    assert {p["name"]: p["targetPort"] for p in pods["spec"]["ports"]} == {"http": 8080, "admin": 9090}
    return dep


def test_autoscaled_spinapp_scales_from_zero_on_a_request_and_back(stack: Stack) -> None:
    stack.create(EXECUTORS, executor())
    annotations = {
        "zerowatt.dev/policy": "keepalive",
        "zerowatt.dev/policy-params": f'{{"keep_alive": {KEEP_ALIVE}}}',
        "zerowatt.dev/min-scale": "0",
        "zerowatt.dev/max-scale": "3",
    }
    stack.create(SPINAPPS, spinapp("web", annotations, enableAutoscaling=True, components=["hello"]))
    wait_until(lambda: stack.get(f"{SERVICES}/web-pods") is not None, "the operator's children")
    dep = _children_carry_the_contract(stack, "web")
    ann = dep["metadata"]["annotations"]
    assert ann["zerowatt.dev/autoscaling"] == "true"
    assert (ann["zerowatt.dev/policy"], ann["zerowatt.dev/min-scale"], ann["zerowatt.dev/max-scale"]) == (
        "keepalive",
        "0",
        "3",
    )

    # Nobody asks for it: the activator takes it to zero (the API server's default of 1 replica, which
    # the kubelet plays, lasts one keep-alive) and points the public slice at itself.
    wait_until(lambda: stack.replicas("web") == 0, "the activator scales the idle app to zero")
    wait_until(lambda: stack.kubelet.live(NS, "web") == 0, "no pod at zero")
    wait_until(lambda: stack.public("web") == stack.activator, "the public slice on the activator at zero")
    before = len(stack.kubelet.all_pods())

    r = httpx.get(stack.cluster.url + "/hello", headers={"host": "web.apps.svc.cluster.local"}, timeout=60)
    assert r.status_code == 200, r.text
    assert "Hello from WebAssembly (WAT)!" in r.text  # from the pod's real zerowatt up
    pods = stack.kubelet.all_pods()
    assert len(pods) == before + 1, "one cold start for the request"
    started = pods[-1]
    assert started.ready_at is not None

    wait_until(lambda: stack.replicas("web") == 0, "back to zero after the keep-alive")
    wait_until(lambda: stack.kubelet.live(NS, "web") == 0, "the pod stopped")
    wait_until(lambda: stack.public("web") == stack.activator, "the public slice back on the activator")
    # The Deployment went 0 → 1 → 0 through the activator's scale writes; the operator (whose watch saw
    # every one of them) never applied spec.replicas, so it never fought the activator.
    history = stack.replicas_history("web")
    assert history[0] is None and history[-3:] == [0, 1, 0], history
    http_port = stack.kubelet.deployments[(NS, "web")].http
    public = stack.public_history("web")
    assert public[-3:] == [stack.activator, [(started.ip, http_port)], stack.activator], public
    # the SpinApp's status follows the Deployment's (the kubelet plays the Deployment controller)
    wait_until(lambda: stack.ready_reason("web") == ("True", "ScaledToZero"), "SpinApp web Ready/ScaledToZero")
    assert stack.operator.stats.errors == 0
    assert not stack.kubelet.errors, stack.kubelet.errors


def test_spinapp_with_fixed_replicas_comes_up_and_its_public_slice_points_at_its_pod(stack: Stack) -> None:
    stack.create(EXECUTORS, executor())
    variables = [{"name": "greeting", "value": "Howdy"}]  # → SPIN_VARIABLE_GREETING in the runtime's env
    stack.create(SPINAPPS, spinapp("fixed", replicas=1, image=VARIABLES_IMAGE, variables=variables))
    wait_until(lambda: stack.get(f"{SERVICES}/fixed-pods") is not None, "the operator's children")
    dep = _children_carry_the_contract(stack, "fixed")
    assert "zerowatt.dev/autoscaling" not in dep["metadata"]["annotations"]
    assert dep["spec"]["replicas"] == 1

    wait_until(lambda: any(p.ready_at for p in stack.kubelet.all_pods()), "the pod ready")
    (pod,) = stack.kubelet.all_pods()
    http_port = stack.kubelet.deployments[(NS, "fixed")].http
    wait_until(lambda: stack.public("fixed") == [(pod.ip, http_port)], "the public slice on the pod")
    assert pod.argv[pod.argv.index("--listen") + 1] == f"{pod.ip}:{http_port}"

    direct = httpx.get(f"http://{pod.ip}:{http_port}/variables", timeout=30)  # kube-proxy's path: the slice
    assert direct.status_code == 200 and "Howdy, world!" in direct.text, direct.text
    # the liveness probe the operator wrote answers on the pod too (the kubelet only plays readiness)
    live = dep["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]
    admin_port = stack.kubelet.deployments[(NS, "fixed")].admin
    assert live["port"] == "admin"
    assert httpx.get(f"http://{pod.ip}:{admin_port}{live['path']}", timeout=30).status_code == 200
    via = httpx.get(stack.cluster.url + "/variables", headers={"host": "fixed.apps"}, timeout=30)
    assert via.status_code == 200 and "Howdy, world!" in via.text, via.text
    assert stack.replicas("fixed") == 1 and stack.kubelet.live(NS, "fixed") == 1  # nobody scales it
    wait_until(lambda: stack.ready_reason("fixed") == ("True", "Ready"), "SpinApp fixed Ready")
    status = stack.get(f"{SPINAPPS}/fixed")
    assert status is not None
    assert status["status"]["readyReplicas"] == 1 and status["status"]["activeScheduler"] == "containerd-shim-spin"
    assert stack.operator.stats.errors == 0
    assert not stack.kubelet.errors, stack.kubelet.errors


def test_the_kubelet_reads_the_pod_spec_the_operator_writes() -> None:
    """The operator writes ``command`` (the runtime image's ENTRYPOINT overridden); the kubelet used to read
    only ``args`` and silently skipped every Deployment the operator made."""
    obj = spinapp("web", components=["hello"], variables=[{"name": "greeting", "value": "Hi"}])
    obj["metadata"]["uid"] = "uid-web"
    dep = deployment(parse_spinapp(obj), None, Settings())
    assert pull_image(dep) == IMAGE
    argv = runtime_argv(dep, Path("/m/spin.toml"), "127.77.0.2:1", "127.77.0.2:2")
    assert argv == ["/m/spin.toml", "--listen", "127.77.0.2:1", "--admin", "127.77.0.2:2", "--component", "hello"]
    assert runtime_env(dep) == {"SPIN_VARIABLE_GREETING": "Hi"}
    assert readiness(dep) == ("admin", "/readyz")

    broken = copy.deepcopy(dep)
    broken["spec"]["template"]["spec"]["initContainers"][0]["command"] = ["zerowatt", "pull", IMAGE]
    with pytest.raises(ValueError, match="init container 'pull' runs"):
        pull_image(broken)
    broken = copy.deepcopy(dep)
    broken["spec"]["template"]["spec"]["containers"][0]["command"][4] = "0.0.0.0:80"
    with pytest.raises(ValueError, match=r"--listen 0\.0\.0\.0:80, expected 0\.0\.0\.0:8080"):
        runtime_argv(broken, Path("/m/spin.toml"), "a:1", "a:2")


@needs_registry
def test_the_init_container_really_pulls_the_app_from_a_private_registry(stack: Stack, tmp_path: Path) -> None:
    """No mapping: the SpinApp's image is in a registry on loopback behind basic auth (as `spin registry
    push` writes it), its credentials in the Secret ``imagePullSecrets`` names. The kubelet mounts the
    Secret volume the operator wrote and runs the init container's own ``zerowatt pull IMAGE --to /app``
    into the pod's directory; the runtime container's ``zerowatt up /app/spin.toml`` serves what it pulled."""
    registry = start_registry(tmp_path / "registry", auth=USER)
    try:
        artifact = lock_and_assemble(EXAMPLES / "variables-c" / "spin.toml")
        push(registry.base, "apps/variables", "v1", artifact, auth=USER)
        image = f"{registry.host}/apps/variables:v1"
        token = base64.b64encode(":".join(USER).encode()).decode()
        config = json.dumps({"auths": {registry.host: {"auth": token}}}).encode()
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "regcred", "namespace": NS},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64.b64encode(config).decode()},
        }
        stack.create(f"/api/v1/namespaces/{NS}/secrets", secret)
        stack.create(EXECUTORS, executor())
        pull_secrets = [{"name": "regcred"}]
        stack.create(SPINAPPS, spinapp("pulled", replicas=1, image=image, imagePullSecrets=pull_secrets))
        pods = stack.kubelet.all_pods
        wait_until(lambda: any(p.ready_at for p in pods()) or stack.kubelet.errors, "the pulled pod ready", 120)
        assert not stack.kubelet.errors, stack.kubelet.errors  # e.g. the pull refused without the Secret
        (pod,) = stack.kubelet.all_pods()
        assert pod.argv[0] == str(tmp_path / "pods" / pod.name / "app" / "spin.toml")
        r = httpx.get(stack.cluster.url + "/variables", headers={"host": "pulled.apps"}, timeout=30)
        assert r.status_code == 200 and "Hello, world!" in r.text, r.text
        assert not stack.kubelet.errors, stack.kubelet.errors
    finally:
        stop(registry)


def test_autoscaled_wasmapp_is_served_from_zero_like_a_spinapp(stack: Stack) -> None:
    """zerowatt's own kind: ``spec.autoscaling`` instead of the SpinApp's annotations, no executor."""
    wasmapp = {
        "apiVersion": "zerowatt.dev/v1alpha1",
        "kind": "WasmApp",
        "metadata": {"name": "zw", "namespace": NS},
        "spec": {
            "component": IMAGE,
            "autoscaling": {"enabled": True, "policy": "keepalive", "params": {"keep_alive": KEEP_ALIVE}},
        },
    }
    stack.create(f"/apis/zerowatt.dev/v1alpha1/namespaces/{NS}/wasmapps", wasmapp)
    wait_until(lambda: stack.get(f"{SERVICES}/zw-pods") is not None, "the operator's children")
    dep = _children_carry_the_contract(stack, "zw")
    assert dep["metadata"]["annotations"]["zerowatt.dev/autoscaling"] == "true"
    assert dep["metadata"]["annotations"]["zerowatt.dev/policy-params"] == '{"keep_alive":1.0}'
    wait_until(lambda: stack.replicas("zw") == 0 and stack.kubelet.live(NS, "zw") == 0, "idle at zero")
    r = httpx.get(stack.cluster.url + "/hello", headers={"host": "zw"}, timeout=60)
    assert r.status_code == 200 and "Hello from WebAssembly (WAT)!" in r.text, r.text
    wait_until(lambda: stack.replicas("zw") == 0 and stack.kubelet.live(NS, "zw") == 0, "back to zero")
    assert stack.replicas_history("zw")[-3:] == [0, 1, 0]
    assert stack.operator.stats.errors == 0
    assert not stack.kubelet.errors, stack.kubelet.errors
