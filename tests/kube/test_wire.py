"""The lean HTTP/1.1 transport: framing, pipelining, connection loss, TLS and auth, on real sockets."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.kube.conftest import NOW, workload
from tests.kube.emulator import EmulatorThread, Fault
from zerowatt.errors import UsageError
from zerowatt.kube.api import MERGE_PATCH, ApiError, KubeApi, RetryPolicy, encode
from zerowatt.kube.wire import Connection, Endpoint, Request, endpoint_from, tls_context

Answer = Callable[[bytes, dict[str, str], bytes], bytes]


class Scripted:
    """A loopback HTTP server that reads requests (Content-Length framed) and writes scripted raw answers.

    ``script`` is one function per connection, called per request; it returns the raw bytes to send (which
    may be b"" to close the connection without answering).
    """

    def __init__(self, answer: Answer, tls: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self.tls = tls
        self.seen: list[tuple[bytes, dict[str, str], bytes]] = []
        self.connections = 0
        self._srv = socket.create_server(("127.0.0.1", 0))
        self.port = self._srv.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self._srv.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._conn, args=(raw,), daemon=True).start()

    def _conn(self, sock: socket.socket) -> None:
        try:
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_side=True)
            buf = b""
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
                n = int(headers.get("content-length", "0"))
                while len(buf) < n:
                    buf += sock.recv(65536)
                body, buf = buf[:n], buf[n:]
                self.seen.append((lines[0].encode(), headers, body))
                out = self.answer(lines[0].encode(), headers, body)
                if not out:
                    return
                sock.sendall(out)
        except (OSError, ssl.SSLError):
            return
        finally:
            sock.close()

    def close(self) -> None:
        self._srv.close()

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint("http", "127.0.0.1", self.port)


def ok(body: bytes, extra: str = "") -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


@pytest.fixture
def scripted() -> Iterator[Callable[..., Scripted]]:
    servers: list[Scripted] = []

    def make(answer: Answer, tls: ssl.SSLContext | None = None) -> Scripted:
        servers.append(Scripted(answer, tls))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def test_framing_chunked_interim_and_no_content(scripted: Callable[..., Scripted]) -> None:
    def answer(line: bytes, headers: dict[str, str], body: bytes) -> bytes:
        if b"/chunked" in line:
            return (
                b"HTTP/1.1 100 Continue\r\n\r\n"
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b'5;ext=1\r\n{"a":\r\n3\r\n 1}\r\n0\r\nX-Trailer: t\r\n\r\n'
            )
        if b"/empty" in line:
            return b"HTTP/1.1 204 No Content\r\n\r\n"
        return ok(body or b"{}")

    srv = scripted(answer)
    conn = Connection(srv.endpoint)
    got = conn.exchange(
        [Request("GET", "/chunked"), Request("DELETE", "/empty"), Request("PATCH", "/x", b'{"b":2}', MERGE_PATCH)]
    )
    assert [r.status for r in got] == [200, 204, 200]
    assert json.loads(got[0].body) == {"a": 1} and got[1].body == b"" and got[2].body == b'{"b":2}'
    assert srv.connections == 1 and conn.connects == 1  # pipelined over one kept-alive connection
    assert srv.seen[2][1]["content-type"] == MERGE_PATCH and srv.seen[2][1]["content-length"] == "7"


def test_connection_close_leaves_the_rest_unanswered_then_reconnects(scripted: Callable[..., Scripted]) -> None:
    def answer(line: bytes, headers: dict[str, str], body: bytes) -> bytes:
        return ok(b"{}", "Connection: close\r\n")

    srv = scripted(answer)
    conn = Connection(srv.endpoint)
    got = conn.exchange([Request("GET", "/a"), Request("GET", "/b"), Request("GET", "/c")])
    assert [r.status for r in got] == [200, 0, 0] and "closed" in got[1].reason
    assert conn.exchange([Request("GET", "/d")])[0].status == 200
    assert srv.connections == 2


def test_kubeapi_resends_unanswered_requests(scripted: Callable[..., Scripted]) -> None:
    def answer(line: bytes, headers: dict[str, str], body: bytes) -> bytes:
        return ok(b'{"n":1}', "Connection: close\r\n")

    srv = scripted(answer)
    sleeps: list[float] = []
    cfg = client.Configuration()
    cfg.host = f"http://127.0.0.1:{srv.port}"
    api = KubeApi(client.ApiClient(cfg), sleep=sleeps.append, retry=RetryPolicy(attempts=5, base=0.01))
    results = api.send_all([Request("GET", f"/o/{i}") for i in range(3)])
    assert results == [{"n": 1}] * 3
    assert sleeps == [0.01, 0.02] and api.requests == 3 + 2 + 1


def test_server_dropping_the_connection_is_status_zero(scripted: Callable[..., Scripted]) -> None:
    srv = scripted(lambda line, headers, body: b"")
    got = Connection(srv.endpoint).exchange([Request("GET", "/a")])
    assert got[0].status == 0 and got[0].reason


def test_auth_headers_come_from_the_official_client_every_batch(scripted: Callable[..., Scripted]) -> None:
    srv = scripted(lambda line, headers, body: ok(b"{}"))
    cfg = client.Configuration()
    cfg.host = f"http://127.0.0.1:{srv.port}/prefix/"
    cfg.api_key = {"authorization": "token-1"}
    cfg.api_key_prefix = {"authorization": "Bearer"}
    refreshed: list[int] = []

    def refresh(c: Any) -> None:  # what the kubeconfig loader installs for exec plugins and rotated tokens
        refreshed.append(1)
        c.api_key["authorization"] = f"token-{len(refreshed)}"

    cfg.refresh_api_key_hook = refresh
    api = KubeApi(client.ApiClient(cfg))
    api.get("/api/v1/namespaces")
    api.send_all([Request("GET", "/a"), Request("GET", "/b")])
    assert [s[1]["authorization"] for s in srv.seen] == ["Bearer token-1", "Bearer token-2", "Bearer token-2"]
    assert srv.seen[0][0] == b"GET /prefix/api/v1/namespaces HTTP/1.1"
    assert srv.seen[0][1]["host"] == f"127.0.0.1:{srv.port}" and "user-agent" in srv.seen[0][1]


def test_proxy_configuration_keeps_urllib3() -> None:
    cfg = client.Configuration()
    cfg.host = "http://10.0.0.1:6443"
    assert KubeApi(client.ApiClient(cfg)).transport == "lean"
    cfg.proxy = "http://proxy.example:3128"
    assert KubeApi(client.ApiClient(cfg)).transport == "urllib3"
    cfg.no_proxy = "10.0.0.0/8"
    assert KubeApi(client.ApiClient(cfg)).transport == "lean"
    with pytest.raises(UsageError, match="transport"):
        KubeApi(client.ApiClient(cfg), transport="h2")


def test_endpoint_from_configuration() -> None:
    cfg = client.Configuration()
    cfg.host = "https://[::1]:8443/k8s/"
    cfg.verify_ssl = False
    cfg.tls_server_name = "kube.internal"
    ep = endpoint_from(cfg)
    assert (ep.scheme, ep.host, ep.port, ep.prefix) == ("https", "::1", 8443, "/k8s")
    assert ep.server_hostname == "kube.internal"
    assert ep.host_header == "[::1]:8443" and ep.tls is not None and ep.tls.verify_mode == ssl.CERT_NONE
    cfg.host = "https://kube.example"
    cfg.verify_ssl, cfg.tls_server_name = True, None
    ep = endpoint_from(cfg)
    assert (ep.port, ep.host_header, ep.server_hostname) == (443, "kube.example", "kube.example")
    assert ep.tls is not None and ep.tls.verify_mode == ssl.CERT_REQUIRED and ep.tls.check_hostname
    cfg.host = "ftp://x"
    with pytest.raises(UsageError, match="ftp://x"):
        endpoint_from(cfg)


def test_tls_context_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "ca.crt"
    bad.write_text("not a certificate")
    with pytest.raises(UsageError, match=r"ca\.crt"):
        tls_context(ca_file=str(bad))
    with pytest.raises(UsageError, match=r"client\.crt"):
        tls_context(cert_file=str(tmp_path / "client.crt"), key_file=str(tmp_path / "client.key"))


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for DNS kube.internal only, and a client certificate (openssl CLI)."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=test-ca", cwd=d)  # fmt: skip
    for name, ext in (("server", "subjectAltName=DNS:kube.internal"), ("client", "extendedKeyUsage=clientAuth")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=d)  # fmt: skip
        (d / f"{name}.ext").write_text(ext + "\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext", cwd=d)  # fmt: skip
    return d


def test_tls_with_cluster_ca_client_certificate_and_server_name(pki: Path, scripted: Callable[..., Scripted]) -> None:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(pki / "server.crt", pki / "server.key")
    server_ctx.load_verify_locations(pki / "ca.crt")
    server_ctx.verify_mode = ssl.CERT_REQUIRED  # mutual TLS, as with a kubeconfig client certificate
    srv = scripted(lambda line, headers, body: ok(b'{"kind":"NamespaceList","items":[]}'), server_ctx)

    cfg = client.Configuration()
    cfg.host = f"https://127.0.0.1:{srv.port}"
    cfg.ssl_ca_cert, cfg.cert_file, cfg.key_file = str(pki / "ca.crt"), str(pki / "client.crt"), str(pki / "client.key")
    cfg.tls_server_name = "kube.internal"  # the certificate does not name 127.0.0.1
    retry = RetryPolicy(attempts=1)
    assert KubeApi(client.ApiClient(cfg), retry=retry).get("/api/v1/namespaces")["items"] == []

    cfg.tls_server_name = None  # now the name checked is 127.0.0.1: refused
    with pytest.raises(ApiError, match=r"CERTIFICATE_VERIFY_FAILED|match") as err:
        KubeApi(client.ApiClient(cfg), retry=retry).get("/api/v1/namespaces")
    assert err.value.status == 0

    cfg.tls_server_name, cfg.cert_file, cfg.key_file = "kube.internal", None, None  # no client certificate
    with pytest.raises(ApiError) as err:
        KubeApi(client.ApiClient(cfg), retry=retry).get("/api/v1/namespaces")
    assert err.value.status == 0


def test_pipelined_batch_against_kmock_with_conflict_and_throttling(kube: EmulatorThread) -> None:
    e = kube.emulator
    assert e is not None
    e.add_namespace("dev")
    for i in range(150):
        obj = workload(name=f"w{i}", spec={"replicas": 2})
        obj["apiVersion"] = "apps/v1"
        kube.call(lambda o=obj: e.objects.__setitem__(("apps/v1/deployments", "dev", o["metadata"]["name"]), o))
    e.faults += [
        Fault("PATCH", r".*/deployments/w7", 409),
        Fault("PATCH", r".*/deployments/w100", 429, times=2, retry_after="2"),
    ]
    sleeps: list[float] = []
    cfg = client.Configuration()
    cfg.host = kube.url
    api = KubeApi(client.ApiClient(cfg), sleep=sleeps.append)
    body = encode({"spec": {"replicas": 0}})
    reqs = [Request("PATCH", f"/apis/apps/v1/namespaces/dev/deployments/w{i}", body, MERGE_PATCH) for i in range(150)]
    results = api.send_all(reqs)
    assert isinstance(results[7], ApiError) and results[7].status == 409  # returned, not retried
    assert all(r["spec"]["replicas"] == 0 for i, r in enumerate(results) if i != 7)
    assert sleeps == [2.0, 2.0] and api.requests == 150 + 1 + 1 and api.retries == 2
    assert [p for m, p in e.served if m == "PATCH"].count("/apis/apps/v1/namespaces/dev/deployments/w100") == 3


def test_large_requests_and_answers_are_split_and_never_deadlock(scripted: Callable[..., Scripted]) -> None:
    big_answer = b'{"pad":"' + b"x" * 200_000 + b'"}'  # 64 of these would overflow every socket buffer
    srv = scripted(lambda line, headers, body: ok(big_answer if body.startswith(b"{") else b"{}"))
    conn = Connection(srv.endpoint)
    body = b'{"p":"' + b"y" * 5000 + b'"}'
    got = conn.exchange([Request("PATCH", f"/o/{i}", body, MERGE_PATCH) for i in range(40)])
    assert [r.status for r in got] == [200] * 40 and all(len(r.body) == len(big_answer) for r in got)
    assert [s[2] for s in srv.seen] == [body] * 40 and conn.connects == 1


def test_urllib3_transport_runs_a_pass_against_kmock(kube: EmulatorThread) -> None:
    from tests.kube.test_controller_kmock import controller, create, get

    assert kube.emulator is not None
    kube.emulator.add_namespace("dev", {"downscaler/uptime": "never"})
    create(kube, "deployments", workload(spec={"replicas": 2}))
    cfg = client.Configuration()
    cfg.host = kube.url
    api = KubeApi(client.ApiClient(cfg), transport="urllib3")
    report = controller(kube, include="deployments", api=api).run_pass(NOW)
    assert [c.name for c in report.changes] == ["web"] and api.transport == "urllib3"
    assert get(kube, "deployments", "dev", "web")["spec"]["replicas"] == 0
