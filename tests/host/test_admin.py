"""The admin listener with real sockets: endpoints, a total deadline per connection, a cap on connections.

Its deadline is short here (0.5 s) so the server acts quickly; the clients wait with a generous bound
(30 s) and nothing asserts how long anything took.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from zerowatt.host.admin import AdminServer

pytestmark = pytest.mark.timeout(120)
BOUND = 30.0


@pytest.fixture
def admin() -> Iterator[AdminServer]:
    ready = threading.Event()
    server = AdminServer("127.0.0.1", 0, ready.is_set, None, timeout=0.5, max_connections=4)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def get(admin: AdminServer, request: bytes) -> bytes:
    with socket.create_connection(admin.address, timeout=BOUND) as sock:
        sock.sendall(request)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
        return reply


def test_endpoints(admin: AdminServer) -> None:
    assert get(admin, b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n").endswith(b"\r\n\r\nok\n")
    assert get(admin, b"GET /readyz HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 503")
    assert get(admin, b"GET /metrics?x=1 HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 200")
    assert get(admin, b"HEAD /healthz HTTP/1.1\r\n\r\n").endswith(b"content-length: 3\r\nconnection: close\r\n\r\n")
    assert get(admin, b"GET /nope HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 404")
    assert get(admin, b"POST /healthz HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 405")
    assert get(admin, b"GET /healthz\r\n\r\n").startswith(b"HTTP/1.1 400")  # no version
    assert get(admin, b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 431")


def test_a_trickling_client_is_cut_by_the_total_deadline(admin: AdminServer) -> None:
    with socket.create_connection(admin.address, timeout=BOUND) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        sock.settimeout(0.05)
        end = time.monotonic() + BOUND
        reply = b""
        closed = False
        while time.monotonic() < end and not closed:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                sock.sendall(b"X")  # one header byte every 50 ms, never the end of the head
                continue
            except ConnectionResetError:
                break
            reply += chunk
            closed = not chunk
        assert closed, "the admin port still served a trickling client after the bound"
        assert reply.startswith(b"HTTP/1.1 408"), reply[:100]


def test_half_open_connections_are_capped_and_cost_no_threads() -> None:
    # a deadline far beyond the test, so that nothing but the cap decides who is served
    admin = AdminServer("127.0.0.1", 0, lambda: True, None, timeout=10 * BOUND, max_connections=4)
    admin.start()
    threads = threading.active_count()
    idle = [socket.create_connection(admin.address, timeout=BOUND) for _ in range(4)]
    try:
        for sock in idle:
            sock.sendall(b"G")  # a request begun, never finished
        end = time.monotonic() + BOUND
        while admin.active < 4 and time.monotonic() < end:
            time.sleep(0.01)
        assert admin.active == 4
        # over the cap: closed at once (aborted: a reset, or an orderly end)
        with socket.create_connection(admin.address, timeout=BOUND) as extra, contextlib.suppress(ConnectionResetError):
            assert extra.recv(100) == b""
        assert admin.refused == 1
        assert threading.active_count() == threads  # an event loop, not a thread per connection
        for sock in idle:
            sock.close()
        end = time.monotonic() + BOUND
        while admin.active and time.monotonic() < end:
            time.sleep(0.01)
        assert get(admin, b"GET /healthz HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 200")  # served again
    finally:
        for sock in idle:
            sock.close()
        admin.stop()


def test_a_taken_port_fails_in_the_constructor(admin: AdminServer) -> None:
    with pytest.raises(OSError):
        AdminServer("127.0.0.1", admin.address[1], lambda: True, None)
