"""Fixtures of the activator tests: kmock on loopback, an activator on it, a plain loopback backend."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.activator.kubelet import deployment, kube_api
from tests.kube.emulator import EmulatorThread
from zerowatt.activator.holding import HoldLimits
from zerowatt.activator.kubeio import ActivatorApi
from zerowatt.activator.server import ActivatorServer, ActivatorSettings
from zerowatt.kube.api import KubeApi


@dataclass
class Cluster:
    """kmock plus an activator on it; ``api`` is the test's own client."""

    emulator: EmulatorThread
    api: KubeApi
    server: ActivatorServer

    @property
    def url(self) -> str:
        host, port = self.server.address
        return f"http://{host}:{port}"

    @property
    def admin_url(self) -> str:
        host, port = self.server.admin.address
        return f"http://{host}:{port}"

    def add_app(self, name: str, namespace: str = "apps", **kwargs: Any) -> None:
        self.api.create(f"/apis/apps/v1/namespaces/{namespace}/deployments", deployment(name, namespace, **kwargs))

    def replicas(self, name: str, namespace: str = "apps") -> int:
        d = self.api.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
        assert "spec" in d, d
        return int(d["spec"]["replicas"])

    def public_slice(self, service: str, namespace: str = "apps") -> dict[str, Any] | None:
        try:
            return self.api.get(f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices/{service}-zerowatt")
        except Exception:
            return None

    def publish_pods(
        self,
        service: str,
        addresses: list[tuple[str, bool]],
        http: int,
        namespace: str = "apps",
        admin: int | None = None,
    ) -> None:
        """The ``SERVICE-pods`` slice, as the endpoint controller would write it."""
        endpoints = [{"addresses": [a], "conditions": {"ready": r}} for a, r in addresses]
        ports = [{"name": "http", "port": http}]
        if admin is not None:
            ports.append({"name": "admin", "port": admin})
        base = f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"
        try:
            self.api.patch(f"{base}/{service}-pods-test", {"endpoints": endpoints, "ports": ports})
        except Exception:
            labels = {"kubernetes.io/service-name": f"{service}-pods"}
            body = {"metadata": {"name": f"{service}-pods-test", "namespace": namespace, "labels": labels}}
            self.api.create(base, {**body, "addressType": "IPv4", "endpoints": endpoints, "ports": ports})

    def synced(self) -> bool:
        return bool(self.server.activator.synced)


def start_cluster(emulator: EmulatorThread, limits: HoldLimits | None = None, **settings: Any) -> Cluster:
    options: dict[str, Any] = {"sync": 0.05, "drain": 0.2, "fast_poll": 0.01}
    options.update(settings)
    s = ActivatorSettings(
        listen=("127.0.0.1", 0),
        admin=("127.0.0.1", 0),
        advertise="127.0.0.1",
        limits=limits or HoldLimits(per_app=50, total=100, deadline=60),
        **options,
    )
    server = ActivatorServer(s, ActivatorApi(kube_api(emulator.url)))
    server.start()
    return Cluster(emulator, kube_api(emulator.url), server)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with EmulatorThread() as et:
        c = start_cluster(et)
        try:
            yield c
        finally:
            c.server.stop()
            c.api.close()


START = time.monotonic()


class _Echo(http.server.BaseHTTPRequestHandler):
    """Answers every request with its method, path, Host and body (a stand-in pod)."""

    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        if self.path == "/metrics":
            # a pod that has been serving 30 requests at once since the server started (Little's law)
            busy = 30.0 * (time.monotonic() - START)
            text = f'zerowatt_request_duration_seconds_sum{{app="a"}} {busy}\n'
            text += f'zerowatt_request_duration_seconds_count{{app="a"}} {busy * 10}\n'
            data = text.encode()
            self.send_response(200)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        out = f"{self.command} {self.path} host={self.headers.get('host')} xff={self.headers.get('x-forwarded-for')}\n"
        data = out.encode() + body
        self.send_response(200)
        self.send_header("content-length", str(len(data)))
        self.send_header("x-backend", "echo")
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def backend() -> Iterator[int]:
    """A plain HTTP/1.1 server on 127.0.0.1 (its port): what a pod answers, without starting one."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()
