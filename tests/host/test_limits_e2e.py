"""The request limits through a real ``zerowatt up`` (its flags reach the workers): slowloris, httpoxy, 413.

The in-process versions, with every case, are in tests/host/test_http_limits.py and test_admin.py.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.conftest import cli_env, free_port
from tests.host.guestbuild import build_c
from tests.host.serving import stop, wait_ready

pytestmark = pytest.mark.timeout(180)
BOUND = 30.0
MANIFEST = """spin_manifest_version = 2

[application]
name = "limits"

[[trigger.http]]
route = "/probe/..."
component = "probe"
executor = { type = "wagi" }

[component.probe]
source = "probe.wasm"
"""


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    work = tmp_path_factory.mktemp("limits")
    build_c("probe", work)
    (work / "spin.toml").write_text(MANIFEST)
    port, admin = free_port(), free_port()
    log = work / "server.log"
    argv = [sys.executable, "-m", "zerowatt", "up", str(work / "spin.toml"), "--workers", "1"]
    argv += ["--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}"]
    argv += ["--head-timeout", "0.5", "--max-body", "1000"]
    env = dict(cli_env(), ZEROWATT_CACHE_DIR=str(work / "cache"))
    with log.open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        wait_ready(f"http://127.0.0.1:{admin}", proc, log)
        yield port
    finally:
        stop(proc)


def read_all(sock: socket.socket) -> bytes:
    reply = b""
    try:
        while chunk := sock.recv(65536):
            reply += chunk
    except ConnectionResetError:
        pass
    return reply


def test_slowloris_is_answered_408_by_the_head_deadline(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=BOUND) as sock:
        sock.sendall(b"GET /probe/env HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        sock.settimeout(0.05)
        end = time.monotonic() + BOUND
        reply = b""
        while time.monotonic() < end:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                sock.sendall(b"a")  # one byte every 50 ms, never the end of the head
                continue
            except ConnectionResetError:
                break
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]


def test_a_2_gib_content_length_is_answered_413_at_once(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=BOUND) as sock:
        sock.sendall(b"POST /probe/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2147483648\r\n\r\n")
        assert read_all(sock).startswith(b"HTTP/1.1 413")


def test_proxy_header_does_not_become_http_proxy(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=BOUND) as sock:
        sock.sendall(
            b"GET /probe/env HTTP/1.1\r\nHost: t\r\nProxy: http://attacker.example:1\r\n"
            b"Proxy-Authorization: Basic eA==\r\nX-Kept: 1\r\nConnection: close\r\n\r\n"
        )
        reply = read_all(sock)
    assert reply.startswith(b"HTTP/1.1 200") and b"\nHTTP_X_KEPT=1\n" in reply, reply[:300]
    assert b"HTTP_PROXY" not in reply
