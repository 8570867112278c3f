"""Start-up of a real ``zerowatt up``: the banner means "listening", a failed start leaves no worker behind,
and a worker that dies is replaced (the workers are ``python -m zerowatt.host.worker`` processes).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from tests.conftest import EXAMPLES, cli_env, free_port
from tests.host.serving import wait_ready

ECHO = str(EXAMPLES / "echo-c" / "spin.toml")


def _marked_processes(marker: str) -> list[int]:
    """Processes (of this user) whose environment carries ``marker``: the server and anything it started."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _up(args: list[str], marker: str, **kwargs: object) -> subprocess.Popen[str]:
    env = cli_env() | {"ZEROWATT_TEST_MARKER": marker}
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "zerowatt", "up", *args], env=env, text=True, **kwargs
    )


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _ready(admin: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{admin}/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def test_the_banner_is_printed_once_every_worker_listens(tmp_path: Path) -> None:
    """Before, the routes were printed right after validation, seconds before any worker listened."""
    port, admin = free_port(), free_port()
    args = [ECHO, "--workers", "2", "--json", "--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}"]
    proc = _up([*args, "--cache-dir", str(tmp_path / "cache")], uuid.uuid4().hex, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        text, line = "", ""
        while line != "}\n":  # blocks until the supervisor prints the (indented) JSON banner
            line = proc.stdout.readline()
            assert line, "zerowatt up exited without a banner"
            text += line
        banner = json.loads(text)
        assert banner["routes"][0]["url"] == f"http://127.0.0.1:{port}/echo/..."
        # No retry: whatever answers now was listening when the banner came out.
        assert httpx.get(f"http://127.0.0.1:{admin}/readyz", timeout=10).status_code == 200
        for _ in range(4):  # both workers: a fresh connection each, the kernel spreads them
            assert httpx.get(f"http://127.0.0.1:{port}/echo/x", timeout=10, headers={"connection": "close"}).is_success
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0


def test_a_start_that_fails_validation_leaves_no_worker(tmp_path: Path) -> None:
    """Workers start before the supervisor validates; a taken port (exit 2) must stop them all."""
    marker = uuid.uuid4().hex
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _up(
            [ECHO, "--workers", "3", "--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{free_port()}"],
            marker,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert f"127.0.0.1:{port}" in err
    assert _marked_processes(marker) == []


def test_a_worker_that_dies_is_replaced(tmp_path: Path) -> None:
    port, admin = free_port(), free_port()
    log = tmp_path / "up.log"
    args = [ECHO, "--workers", "1", "--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}"]
    with log.open("w") as out:
        proc = _up([*args, "--cache-dir", str(tmp_path / "cache")], uuid.uuid4().hex, stdout=out, stderr=out)
    try:
        wait_ready(f"http://127.0.0.1:{admin}", proc, log)
        first = _children(proc.pid)
        assert len(first) == 1
        os.kill(first[0], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while True:  # polled with a deadline: the replacement imports its modules first
            second = _children(proc.pid)
            if second and second != first and _ready(admin):
                break
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        assert len(second) == 1
        assert httpx.get(f"http://127.0.0.1:{port}/echo/x", timeout=10).is_success
        assert "starting a new one" in log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
