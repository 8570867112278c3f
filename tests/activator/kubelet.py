"""A test "kubelet": Deployments in kmock become real local ``zerowatt up`` processes on loopback.

What a cluster does for the activator, on one machine: a thread polls the Deployments in the emulator
(kmock has no reliable watch) and converges each one's pods to ``spec.replicas`` (1 when it is absent,
the API server's default). A pod is a real ``python -m zerowatt up`` process running the pod spec's own
``runtime`` command line (:func:`runtime_argv`) on the example app its image maps to (or, with
``pull_into``, on what its init container's real ``zerowatt pull`` fetched), on an address of its own
(``127.77.X.Y``: loopback answers the whole 127/8, so every pod of a Deployment listens on the same
ports, as container ports are), with the admin listener beside it. The pods' EndpointSlice
(``SERVICE-pods``, as Kubernetes' endpoint controller would publish it) lists every pod, ready only once
its readiness probe answers 200, and the Deployment's ``status`` counts them as the Deployment controller
would. Scaling down marks the pod terminating first (not ready) and stops it after a
grace period with SIGTERM (SIGKILL if it does not exit), as the kubelet's graceful termination does.

Every process is started in a session of its own with ``PR_SET_PDEATHSIG`` (SIGKILL when the thread
that forked it ends: the kubelet's thread, or the whole test process if it dies), and
:meth:`Kubelet.stop` kills whatever is left: no process outlives the test.

It records what the tests measure: each pod's spawn, ready and stop times (instance-seconds, the
runtime's own start).
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client

from tests.conftest import EXAMPLES, SRC, cli_env, free_port
from zerowatt.kube.api import KubeApi
from zerowatt.lifeline import die_with_parent, load_prctl

#: The pod layout the operator writes (OPERATOR_CONTRACT.md): the app pulled into /app, ports 8080 and 9090.
APP_DIR = "/app"
PULL_SECRETS_DIR = "/var/run/zerowatt/pull-secrets"
HTTP_PORT = 8080
ADMIN_PORT = 9090

#: Image → example app, for the images the tests' Deployments name. For these the init container ``pull``
#: is not run: its command line is checked (:func:`pull_image`) and the image mapped to a local example.
#: Other images are pulled for real when the kubelet has ``pull_into`` (else their Deployments are skipped).
IMAGES: dict[str, Path] = {
    "registry.example/hello-wat:1": EXAMPLES / "hello-wat" / "spin.toml",
    "registry.example/echo-c:1": EXAMPLES / "echo-c" / "spin.toml",
    "registry.example/variables-c:1": EXAMPLES / "variables-c" / "spin.toml",
}


@dataclass
class Pod:
    name: str
    ip: str
    process: subprocess.Popen[bytes]
    spawned: float
    argv: list[str] = field(default_factory=list)  # the ``zerowatt up`` arguments it runs
    ready_at: float | None = None
    terminating_at: float | None = None
    stopped_at: float | None = None

    @property
    def start_seconds(self) -> float | None:
        return None if self.ready_at is None else self.ready_at - self.spawned


@dataclass
class DeploymentPods:
    namespace: str
    name: str
    service: str
    manifest: Path | None  # None: each pod runs its init container's real ``zerowatt pull`` (``pull_into``)
    http: int
    admin: int
    deployment: dict[str, Any] = field(default_factory=dict)  # as last listed
    pods: list[Pod] = field(default_factory=list)
    published: bool = False
    reported: tuple[int, int, int] | None = None  # the Deployment status last written


def deployment(
    name: str,
    namespace: str = "apps",
    *,
    image: str = "registry.example/hello-wat:1",
    replicas: int = 0,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A Deployment shaped as the operator's (OPERATOR_CONTRACT.md): labels, init container ``pull``."""
    labels = {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/managed-by": "zerowatt-operator",
        "zerowatt.dev/app": name,
    }
    pod_spec = {
        "initContainers": [
            {"name": "pull", "image": "ghcr.io/zerowatt/runtime:0.1.0", "args": ["pull", image, "--to", "/app"]}
        ],
        "containers": [
            {
                "name": "runtime",
                "image": "ghcr.io/zerowatt/runtime:0.1.0",
                "args": ["up", "/app/spin.toml", "--listen", "0.0.0.0:8080", "--admin", "0.0.0.0:9090"],
                "ports": [{"name": "http", "containerPort": 8080}, {"name": "admin", "containerPort": 9090}],
            }
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": {"zerowatt.dev/service": name, **(annotations or {})},
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"zerowatt.dev/app": name}},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def kube_api(url: str) -> KubeApi:
    cfg = client.Configuration()
    cfg.host = url
    return KubeApi(client.ApiClient(cfg))


def _spec(dep: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = ((dep.get("spec") or {}).get("template") or {}).get("spec") or {}
    return spec


def _container(dep: dict[str, Any], name: str, init: bool = False) -> dict[str, Any] | None:
    for c in _spec(dep).get("initContainers" if init else "containers") or []:
        if c.get("name") == name:
            return dict(c)
    return None


def container_argv(container: dict[str, Any]) -> list[str]:
    """What a container runs: ``command`` + ``args``, or the runtime image's ``ENTRYPOINT ["zerowatt"]``
    (deploy/runtime/Containerfile) followed by ``args`` when there is no ``command``."""
    command = [str(a) for a in container.get("command") or []]
    args = [str(a) for a in container.get("args") or []]
    return [*(command or ["zerowatt"]), *args]


def pull_image(dep: dict[str, Any]) -> str:
    """The app image of a Deployment: its init container ``pull`` must run ``zerowatt pull IMAGE --to /app``
    (OPERATOR_CONTRACT.md); raises ValueError naming what differs."""
    where = f"Deployment {dep['metadata'].get('namespace')}/{dep['metadata'].get('name')}"
    pull = _container(dep, "pull", init=True)
    if pull is None:
        raise ValueError(f"{where}: no init container 'pull'")
    argv = container_argv(pull)
    if len(argv) < 3 or Path(argv[0]).name != "zerowatt" or argv[1] != "pull" or argv[3:5] != ["--to", APP_DIR]:
        raise ValueError(f"{where}: init container 'pull' runs {argv}, not `zerowatt pull IMAGE --to {APP_DIR}`")
    return argv[2]


def runtime_argv(dep: dict[str, Any], manifest: Path, listen: str, admin: str) -> list[str]:
    """The ``zerowatt up`` command line of container ``runtime``, as this machine runs it: ``/app/spin.toml``
    becomes the local example's manifest and the ``0.0.0.0:8080``/``0.0.0.0:9090`` listeners the pod's own
    loopback address; every other flag (``--component``, ``--variable``…) is passed through unchanged, so
    the real CLI parses what the operator wrote."""
    where = f"Deployment {dep['metadata'].get('namespace')}/{dep['metadata'].get('name')}"
    runtime = _container(dep, "runtime")
    if runtime is None:
        raise ValueError(f"{where}: no container 'runtime'")
    argv = container_argv(runtime)
    if len(argv) < 3 or Path(argv[0]).name != "zerowatt" or argv[1] != "up" or argv[2] != f"{APP_DIR}/spin.toml":
        raise ValueError(f"{where}: container 'runtime' runs {argv}, not `zerowatt up {APP_DIR}/spin.toml ...`")
    out = [str(manifest)]
    rest = argv[3:]
    replaced = {"--listen": (f"0.0.0.0:{HTTP_PORT}", listen), "--admin": (f"0.0.0.0:{ADMIN_PORT}", admin)}
    seen = set()
    i = 0
    while i < len(rest):
        flag = rest[i]
        if flag in replaced and i + 1 < len(rest):
            expected, local = replaced[flag]
            if rest[i + 1] != expected:
                raise ValueError(f"{where}: container 'runtime' has {flag} {rest[i + 1]}, expected {expected}")
            out += [flag, local]
            seen.add(flag)
            i += 2
            continue
        out.append(flag)
        i += 1
    if seen != set(replaced):
        raise ValueError(f"{where}: container 'runtime' lacks {sorted(set(replaced) - seen)}: {argv}")
    return out


def runtime_env(dep: dict[str, Any]) -> dict[str, str]:
    """The runtime container's ``env`` entries with a literal ``value`` (those from Secrets or ConfigMaps
    need a cluster; none of the tests' apps have them)."""
    env = (_container(dep, "runtime") or {}).get("env") or []
    return {str(e["name"]): str(e["value"]) for e in env if "value" in e}


def readiness(dep: dict[str, Any]) -> tuple[str, str]:
    """The runtime container's readiness probe as (port name, path); ``admin`` and ``/readyz`` without one."""
    probe = ((_container(dep, "runtime") or {}).get("readinessProbe") or {}).get("httpGet") or {}
    return str(probe.get("port") or "admin"), str(probe.get("path") or "/readyz")


def _preexec(parent: int) -> None:
    os.setsid()
    if not die_with_parent(signal.SIGKILL, parent):
        os._exit(1)


class Kubelet:
    """Converges Deployments to local processes (see the module docstring). A context manager."""

    def __init__(
        self, url: str, *, poll: float = 0.02, grace: float = 0.3, workers: int = 1, pull_into: Path | None = None
    ) -> None:
        self.api = kube_api(url)
        #: Where pods of images not in :data:`IMAGES` get their ``/app``: with it, such a pod's init
        #: container really runs (``zerowatt pull IMAGE --to PULL_INTO/POD/app``); without, they are skipped.
        self.pull_into = pull_into
        self.poll = poll
        self.grace = grace
        self.workers = workers
        self.deployments: dict[tuple[str, str], DeploymentPods] = {}
        self.finished: list[Pod] = []
        self.errors: list[str] = []
        self.rejected: set[tuple[str, str]] = set()  # Deployments whose pod spec breaks the contract
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-kubelet", daemon=True)
        self._next_ip = 1
        self._http = httpx.Client(timeout=0.5, trust_env=False)
        self._lock = threading.Lock()
        load_prctl()

    def __enter__(self) -> Kubelet:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        for dp in self.deployments.values():
            for pod in dp.pods:
                self._kill(pod, graceful=False)
                self.finished.append(pod)
            dp.pods = []
        self._http.close()
        self.api.close()

    # -- bookkeeping the tests read -------------------------------------------------------------
    def all_pods(self) -> list[Pod]:
        with self._lock:
            return [*self.finished, *(p for dp in self.deployments.values() for p in dp.pods)]

    def live(self, namespace: str, name: str) -> int:
        with self._lock:
            dp = self.deployments.get((namespace, name))
            return 0 if dp is None else sum(1 for p in dp.pods if p.terminating_at is None)

    def instance_seconds(self, until: float | None = None) -> float:
        """Seconds pods existed (spawn → stop; a running pod up to ``until`` or now)."""
        end = until if until is not None else time.monotonic()
        return sum(((p.stopped_at or end) - p.spawned) for p in self.all_pods())

    # -- the loop --------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._converge()
            except Exception as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
            self._stop.wait(self.poll)

    def _converge(self) -> None:
        seen = set()
        for dep in self.api.list("/apis/apps/v1/deployments"):
            meta = dep["metadata"]
            key = (meta["namespace"], meta["name"])
            seen.add(key)
            dp = self.deployments.get(key)
            if dp is None:
                if key in self.rejected:
                    continue
                try:
                    manifest = IMAGES.get(pull_image(dep))
                    runtime_argv(dep, Path("spin.toml"), "", "")
                except ValueError as exc:
                    self.rejected.add(key)
                    self.errors.append(str(exc))
                    continue
                if manifest is None and self.pull_into is None:
                    continue
                service = (meta.get("annotations") or {}).get("zerowatt.dev/service") or meta["name"]
                dp = DeploymentPods(key[0], key[1], service, manifest, free_port(), free_port())
                with self._lock:
                    self.deployments[key] = dp
            dp.deployment = dep
            replicas = (dep.get("spec") or {}).get("replicas")
            self._scale(dp, 1 if replicas is None else int(replicas))
        for dp in list(self.deployments.values()):
            if self._observe(dp) or not dp.published:
                self._publish(dp)
                dp.published = True
            self._report(dp)

    def _scale(self, dp: DeploymentPods, replicas: int) -> None:
        live = [p for p in dp.pods if p.terminating_at is None]
        now = time.monotonic()
        while len(live) < replicas:
            pod = self._spawn(dp)
            with self._lock:
                dp.pods.append(pod)
            live.append(pod)
            self._publish(dp)
        if len(live) > replicas:
            # Kubernetes removes not-ready pods first, then the newest (ReplicaSet's ActivePods order).
            live.sort(key=lambda p: (p.ready_at is not None, -p.spawned))
            for pod in live[: len(live) - replicas]:
                pod.terminating_at = now
            self._publish(dp)

    def _spawn(self, dp: DeploymentPods) -> Pod:
        ip = f"127.77.{self._next_ip // 250}.{self._next_ip % 250 + 2}"
        name = f"{dp.name}-{self._next_ip}"
        self._next_ip += 1
        manifest = dp.manifest or self._pull(dp, name)
        argv = runtime_argv(dp.deployment, manifest, f"{ip}:{dp.http}", f"{ip}:{dp.admin}")
        argv += ["--workers", str(self.workers), "--idle-unload", "0"]
        args = [sys.executable, "-m", "zerowatt", "up", *argv]
        env = cli_env()
        env["PYTHONPATH"] = str(SRC)
        env.update(runtime_env(dp.deployment))
        parent = os.getpid()
        proc = subprocess.Popen(
            args,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=lambda: _preexec(parent),
        )
        return Pod(name, ip, proc, time.monotonic(), argv)

    def _pull(self, dp: DeploymentPods, pod: str) -> Path:
        """The init container ``pull``, for real: its command line with ``/app`` → ``PULL_INTO/POD/app``."""
        assert self.pull_into is not None
        app = self.pull_into / pod / "app"
        pull = _container(dp.deployment, "pull", init=True) or {}
        argv = [str(app) if a == APP_DIR else a for a in container_argv(pull)]
        env = cli_env()
        env["PYTHONPATH"] = str(SRC)
        env["ZEROWATT_PULL_SECRETS"] = str(self._mount_pull_secrets(dp, pull, self.pull_into / pod / "pull-secrets"))
        parent = os.getpid()
        done = subprocess.run(
            [sys.executable, "-m", "zerowatt", *argv[1:]],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            preexec_fn=lambda: _preexec(parent),
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"pod {pod}: init container pull exited {done.returncode}: {done.stderr[-500:]}")
        return app / "spin.toml"

    def _mount_pull_secrets(self, dp: DeploymentPods, pull: dict[str, Any], root: Path) -> Path:
        """The init container's Secret volumes under ``/var/run/zerowatt/pull-secrets`` (where ``zerowatt pull``
        looks), written below ``root`` as the kubelet would project them (each item's key to its path)."""
        volumes = {v.get("name"): v for v in _spec(dp.deployment).get("volumes") or []}
        root.mkdir(parents=True, exist_ok=True)
        for mount in pull.get("volumeMounts") or []:
            inside = str(mount.get("mountPath") or "")
            if not inside.startswith(PULL_SECRETS_DIR + "/"):
                continue
            secret = (volumes.get(mount.get("name")) or {}).get("secret") or {}
            path = f"/api/v1/namespaces/{dp.namespace}/secrets/{secret.get('secretName')}"
            data = self.api.get(path).get("data") or {}
            target = root / inside.removeprefix(PULL_SECRETS_DIR + "/")
            target.mkdir(parents=True, exist_ok=True)
            items = secret.get("items") or [{"key": k, "path": k} for k in data]
            for item in items:
                (target / item["path"]).write_bytes(base64.b64decode(data[item["key"]]))
        return root

    def _observe(self, dp: DeploymentPods) -> bool:
        """Readiness probes and terminations; returns whether the slice must be republished."""
        changed = False
        now = time.monotonic()
        for pod in list(dp.pods):
            if pod.terminating_at is not None:
                if now - pod.terminating_at >= self.grace:
                    self._kill(pod, graceful=True)
                    with self._lock:
                        dp.pods.remove(pod)
                        self.finished.append(pod)
                    changed = True
                continue
            if pod.process.poll() is not None:
                pod.stopped_at = now
                self.errors.append(f"pod {pod.name} exited with {pod.process.returncode}")
                with self._lock:
                    dp.pods.remove(pod)
                    self.finished.append(pod)
                changed = True
                continue
            if pod.ready_at is None:
                port_name, path = readiness(dp.deployment)
                port = {"http": dp.http, "admin": dp.admin}.get(port_name)
                if port is None:
                    raise ValueError(f"{dp.namespace}/{dp.name}: readiness probe on unknown port {port_name!r}")
                try:
                    ok = self._http.get(f"http://{pod.ip}:{port}{path}").status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    pod.ready_at = time.monotonic()
                    changed = True
        return changed

    def _kill(self, pod: Pod, *, graceful: bool) -> None:
        if pod.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pod.process.pid, signal.SIGTERM if graceful else signal.SIGKILL)
            try:
                pod.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(pod.process.pid, signal.SIGKILL)
                pod.process.wait(10)
        if pod.stopped_at is None:
            pod.stopped_at = time.monotonic()

    def _report(self, dp: DeploymentPods) -> None:
        """The Deployment's ``status`` as the Deployment controller keeps it (the operator's ``Ready``
        condition and ``readyReplicas`` are read from it): pods not terminating, and of those the ready."""
        live = [p for p in dp.pods if p.terminating_at is None]
        ready = sum(1 for p in live if p.ready_at is not None)
        generation = int((dp.deployment.get("metadata") or {}).get("generation") or 1)
        now = (len(live), ready, generation)
        if now == dp.reported:
            return
        status = {
            "observedGeneration": generation,
            "replicas": len(live),
            "updatedReplicas": len(live),
            "readyReplicas": ready,
            "availableReplicas": ready,
        }
        path = f"/apis/apps/v1/namespaces/{dp.namespace}/deployments/{dp.name}/status"
        self.api.patch(path, {"status": status})
        dp.reported = now

    def _publish(self, dp: DeploymentPods) -> None:
        endpoints = [
            {
                "addresses": [p.ip],
                "conditions": {
                    "ready": p.ready_at is not None and p.terminating_at is None,
                    "terminating": p.terminating_at is not None,
                },
                "targetRef": {"kind": "Pod", "name": p.name, "namespace": dp.namespace},
            }
            for p in dp.pods
        ]
        body = {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{dp.service}-pods-kubelet",
                "namespace": dp.namespace,
                "labels": {
                    "kubernetes.io/service-name": f"{dp.service}-pods",
                    "endpointslice.kubernetes.io/managed-by": "test-kubelet",
                },
            },
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": [{"name": "http", "port": dp.http}, {"name": "admin", "port": dp.admin}],
        }
        base = f"/apis/discovery.k8s.io/v1/namespaces/{dp.namespace}/endpointslices"
        try:
            self.api.patch(f"{base}/{dp.service}-pods-kubelet", {"endpoints": endpoints, "ports": body["ports"]})
        except Exception:
            self.api.create(base, body)
