"""``zerowatt up`` serving the wasi:http example through the real server and ``wasmtime serve``."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, cli_env, free_port
from tests.wasm.wasihttp_support import pid_alive

pytestmark = pytest.mark.timeout(60)


def _children(pid: int) -> list[int]:
    """Child pids of ``pid``, from /proc (no dependency on procps)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers.items()), exc.read()


def test_up_serves_the_wasi_http_example_and_stops_its_child() -> None:
    port, admin = free_port(), free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zerowatt",
            "up",
            str(EXAMPLES / "hello-wasi-http" / "spin.toml"),
            "--listen",
            f"127.0.0.1:{port}",
            "--admin",
            f"127.0.0.1:{admin}",
            "--workers",
            "1",
        ],
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _get(f"http://127.0.0.1:{admin}/readyz")[0] == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            assert time.monotonic() < deadline, "zerowatt up did not become ready"
            time.sleep(0.1)
        status, headers, body = _get(f"http://127.0.0.1:{port}/hello-http")
        assert (status, body) == (200, b"Hello from wasi:http\n")
        assert headers["content-type"] == "text/plain"
        wasmtimes = [
            pid
            for worker in [server.pid, *_children(server.pid)]
            for pid in _children(worker)
            if b"wasmtime" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        assert len(wasmtimes) == 1
        metrics = _get(f"http://127.0.0.1:{admin}/metrics")[2].decode()
        assert 'zerowatt_cold_starts_total{app="hello-wasi-http",component="hello-wasi-http"} 1.0' in metrics
        server.send_signal(signal.SIGINT)
        server.wait(timeout=20)
        deadline = time.monotonic() + 5
        while any(pid_alive(pid) for pid in wasmtimes) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(pid_alive(pid) for pid in wasmtimes), "wasmtime serve outlived zerowatt up"
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
