"""A lean, keep-alive, pipelining HTTP/1.1 client for the API server: the downscaler's hot write path.

Why not the official client's urllib3 pool for every request: a pass that scales 10,000 Deployments sends
10,000 PATCHes, and through urllib3 + ``http.client`` each costs ≈0.3–0.4 ms of client CPU (header parsing
with the ``email`` package, two ``sendall`` per request, per-request bookkeeping) — 4 s per pass. Here a
batch of requests is written with one ``sendall`` (HTTP/1.1 pipelining, RFC 9112 §9.3: the server answers
in order), and the answers are parsed from one receive buffer by :class:`zerowatt.http1.ResponseParser`.

The connection settings are the ones the official client resolved from the kubeconfig or the in-cluster
service account (see :func:`endpoint_from`): host and port, TLS with the cluster's CA, client certificate
and key, ``insecure-skip-tls-verify``, ``tls-server-name``. Authentication headers are asked of the official
client for every batch, so its token refresh (exec plugins, a rotated service-account token) still works.
A proxy is not spoken here: :class:`zerowatt.kube.api.KubeApi` keeps urllib3 for a configured proxy.

A request that got no answer (connection refused, reset, closed by a ``Connection: close``) comes back with
status 0 and is retried by the caller: writes carry ``metadata.resourceVersion``, so a PATCH that did land
before the connection broke answers 409 when resent and is re-read, never applied twice.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from zerowatt.errors import UsageError
from zerowatt.http1 import ProtocolError, ResponseParser

if TYPE_CHECKING:
    import ssl  # imported when a TLS context is made: a plain-HTTP endpoint never needs it

#: Requests written per ``sendall`` (and answers awaited before the next batch). Large enough that the
#: per-syscall and per-segment costs vanish, small enough to stay well inside socket buffers.
WINDOW = 64
#: And at most this many bytes per write. The whole write must fit in the server's receive buffer (Linux's
#: default is 128 KiB) so that ``sendall`` returns even while the server, which answers pipelined requests
#: one after another, is blocked writing answers we have not started reading: no deadlock whatever the
#: size of the answers.
WINDOW_BYTES = 48 * 1024


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # path and query, already escaped, without the endpoint's prefix
    body: bytes | None = None
    content_type: str = "application/json"
    accept: str = "application/json"


@dataclass(frozen=True)
class Response:
    status: int  # 0: no answer (connection failure)
    reason: str
    body: bytes = b""
    retry_after: str | None = None


@dataclass(frozen=True)
class Endpoint:
    """Where and how to connect: what the official client's ``Configuration`` resolved."""

    scheme: str
    host: str
    port: int
    prefix: str = ""
    tls: ssl.SSLContext | None = None
    server_hostname: str | None = None

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def tls_context(
    *,
    verify: bool = True,
    ca_file: str | None = None,
    ca_data: str | bytes | None = None,
    cert_file: str | None = None,
    key_file: str | None = None,
    check_hostname: bool = True,
) -> ssl.SSLContext:
    """A client TLS context as urllib3 builds it for the official client (CERT_REQUIRED unless told not to)."""
    import ssl

    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.check_hostname = check_hostname
        if ca_file or ca_data:
            try:
                ctx.load_verify_locations(
                    cafile=ca_file or None,
                    cadata=(ca_data.decode() if isinstance(ca_data, bytes) else ca_data) if ca_data else None,
                )
            except (OSError, ssl.SSLError) as exc:
                raise UsageError(f"certificate authority {ca_file or '(inline data)'}: {exc}") from None
    if cert_file:
        try:
            ctx.load_cert_chain(cert_file, key_file or None)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"client certificate {cert_file} / key {key_file}: {exc}") from None
    return ctx


def endpoint_from(configuration: Any) -> Endpoint:
    """The :class:`Endpoint` of a ``kubernetes.client.Configuration`` (kubeconfig or in-cluster)."""
    url = urlsplit(configuration.host)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise UsageError(f"API server {configuration.host!r}: expected http(s)://HOST[:PORT][/PATH]")
    tls = None
    if url.scheme == "https":
        ca_data = getattr(configuration, "ca_cert_data", None)
        tls = tls_context(
            verify=bool(configuration.verify_ssl),
            ca_file=configuration.ssl_ca_cert,
            ca_data=ca_data,
            cert_file=configuration.cert_file,
            key_file=configuration.key_file,
            check_hostname=configuration.assert_hostname is not False,
        )
    server_hostname = getattr(configuration, "tls_server_name", None) or url.hostname
    return Endpoint(
        url.scheme,
        url.hostname,
        url.port or (443 if url.scheme == "https" else 80),
        url.path.rstrip("/"),
        tls,
        server_hostname,
    )


class _Closed(Exception):
    """The server closed the connection (or it broke) before a whole answer arrived."""


class Connection:
    """One keep-alive connection to the API server, reopened on demand; not thread-safe."""

    def __init__(self, endpoint: Endpoint, timeout: float = 30.0) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._parser = ResponseParser()
        self.connects = 0
        self._start = f" HTTP/1.1\r\nHost: {endpoint.host_header}\r\n"

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
        self._parser = ResponseParser()

    def _connect(self) -> socket.socket:
        ep = self.endpoint
        sock = socket.create_connection((ep.host, ep.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ep.tls is not None:
            try:
                sock = ep.tls.wrap_socket(sock, server_hostname=ep.server_hostname)
            except BaseException:
                sock.close()
                raise
        self.connects += 1
        self._sock = sock
        return sock

    def _encode(self, req: Request, headers: str) -> bytes:
        body = req.body
        head = f"{req.method} {self.endpoint.prefix}{req.target}{self._start}Accept: {req.accept}\r\n{headers}"
        if body is None:
            return (head + "\r\n").encode("latin-1")
        head += f"Content-Type: {req.content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        return head.encode("latin-1") + body

    def exchange(self, requests: Sequence[Request], headers: str = "") -> list[Response]:
        """Send ``requests`` pipelined, ``WINDOW`` at a time; one answer each, in order.

        ``headers`` is extra header lines (``"Name: value\\r\\n"``...), e.g. ``Authorization``.
        """
        out: list[Response] = []
        batch: list[Request] = []
        wire: list[bytes] = []
        size = 0
        for req in requests:
            data = self._encode(req, headers)
            if batch and (len(batch) >= WINDOW or size + len(data) > WINDOW_BYTES):
                out.extend(self._batch(batch, b"".join(wire)))
                batch, wire, size = [], [], 0
            batch.append(req)
            wire.append(data)
            size += len(data)
        if batch:
            out.extend(self._batch(batch, b"".join(wire)))
        return out

    def _batch(self, batch: Sequence[Request], wire: bytes) -> list[Response]:
        answers: list[Response] = []
        try:
            sock = self._sock or self._connect()
            sock.sendall(wire)
            for req in batch:
                resp, keep = self._read(req.method)
                answers.append(resp)
                if not keep:
                    self.close()
                    break
        except (OSError, _Closed) as exc:
            self.close()
            why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            answers.extend(Response(0, why) for _ in range(len(answers), len(batch)))
            return answers
        # After a "Connection: close" the rest got no answer: the caller retries them.
        answers.extend(Response(0, "connection closed by the server") for _ in range(len(answers), len(batch)))
        return answers

    # --- reading: the bytes go through the shared sans-I/O parser (zerowatt.http1) --------------------------

    def _read(self, method: str) -> tuple[Response, bool]:
        """One answer: (response, whether the connection stays open)."""
        parser = self._parser
        head_request = method == "HEAD"
        try:
            while (resp := parser.next_response(head_request=head_request)) is None:
                assert self._sock is not None
                chunk = self._sock.recv(1 << 18)
                if chunk:
                    parser.feed(chunk)
                else:
                    parser.feed_eof()
        except ProtocolError as exc:
            raise _Closed(str(exc)) from None
        return Response(resp.status, resp.reason, resp.body, resp.header("retry-after")), resp.keep_alive
