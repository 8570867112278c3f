"""The process tree and the graceful stop of ``zerowatt up``, with real signals and real load.

Each test starts ``python -m zerowatt up`` in a subprocess, reads its process tree from ``/proc``
(workers, multiprocessing's resource tracker, ``wasmtime serve`` children), signals it, then polls
``/proc`` (generous timeouts, no sleeps) until every process of that tree is gone. Requests go over
raw sockets so that a reset, a truncated body or a missing answer is seen as such.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import EXAMPLES, cli_env, free_port
from tests.host.guestbuild import build_c
from tests.host.serving import wait_ready

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process tree from /proc")

LINGER_MANIFEST = """\
spin_manifest_version = 2

[application]
name = "linger-app"

[[trigger.http]]
route = "/linger"
component = "linger"
executor = { type = "wagi" }

[component.linger]
source = "linger.wasm"
"""

#: How long the tests wait for something that should happen at once (a loaded CI machine is slow).
PATIENCE = 90.0


@dataclass(frozen=True)
class Proc:
    """One process, named by pid and start time (a pid may be reused once the process is gone)."""

    pid: int
    start: str
    cmdline: str


def _stat(pid: int) -> tuple[str, int, str] | None:
    """(state, ppid, start time) of ``pid``, or None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), fields[19]


def descendants(root: int) -> list[Proc]:
    """Every live process below ``root`` (children, grandchildren, ...)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None and stat[0] != "Z":
            parents.setdefault(stat[1], []).append(int(entry))
    found: list[Proc] = []
    todo = list(parents.get(root, []))
    while todo:
        pid = todo.pop()
        stat = _stat(pid)
        if stat is None:
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        found.append(Proc(pid, stat[2], cmdline))
        todo.extend(parents.get(pid, []))
    return found


def alive(proc: Proc) -> bool:
    stat = _stat(proc.pid)
    return stat is not None and stat[2] == proc.start and stat[0] != "Z"


def wait_for(condition: Callable[[], bool], what: str, timeout: float = PATIENCE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def port_is_free(port: int) -> bool:
    """What ``zerowatt up`` checks before serving: a plain bind (no SO_REUSEPORT) of the port."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class Up:
    proc: subprocess.Popen[str]
    port: int
    admin: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tree(self) -> list[Proc]:
        return descendants(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def start_up(tmp_path: Path) -> Iterator[Callable[..., Up]]:
    """Start ``zerowatt up`` on free ports with the linger app and the given extra arguments."""
    build_c("linger", tmp_path)
    (tmp_path / "spin.toml").write_text(LINGER_MANIFEST)
    started: list[Up] = []

    def start(*args: str) -> Up:
        port, admin = free_port(), free_port()
        log = tmp_path / f"up-{len(started)}.log"
        env = dict(cli_env(), ZEROWATT_CACHE_DIR=str(tmp_path / "cache"))
        command = [sys.executable, "-m", "zerowatt", "up", str(tmp_path / "spin.toml")]
        command += ["--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}", *args]
        with log.open("w") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, text=True, env=env)
        up = Up(proc, port, admin, log)
        started.append(up)
        wait_ready(f"http://127.0.0.1:{admin}", proc, log, timeout=PATIENCE)
        return up

    yield start
    for up in started:
        leftovers = up.tree()
        up.stop()
        for proc in leftovers:  # never leave a process behind, whatever the test found
            if alive(proc):
                os.kill(proc.pid, signal.SIGKILL)


def assert_tree_gone(tree: list[Proc], up: Up) -> None:
    wait_for(lambda: not [p for p in tree if alive(p)], f"every process of the tree to exit: {tree}")
    wait_for(lambda: port_is_free(up.port), f"port {up.port} to be free again")


def workers_of(up: Up, tree: list[Proc]) -> list[Proc]:
    """The supervisor's children but multiprocessing's resource tracker."""
    return [p for p in tree if parent_of(p) == up.proc.pid and "resource_tracker" not in p.cmdline]


def parent_of(proc: Proc) -> int | None:
    stat = _stat(proc.pid)
    return stat[1] if stat is not None else None


def workers_and_children(up: Up) -> tuple[list[Proc], list[Proc]]:
    tree = up.tree()
    workers = workers_of(up, tree)
    serve = [p for p in tree if "wasmtime" in p.cmdline and " serve " in p.cmdline]
    return workers, serve


def start_with_wasmtime_children(start_up: Callable[..., Up]) -> tuple[Up, list[Proc]]:
    """A server with two workers and at least one ``wasmtime serve`` child (a wasi:http request made)."""
    up = start_up(str(EXAMPLES / "hello-wasi-http" / "spin.toml"), "--workers", "2", "--idle-unload", "0")
    assert httpx.get(f"{up.url}/hello-http", timeout=PATIENCE).text == "Hello from wasi:http\n"
    tree = up.tree()
    workers, serve = workers_and_children(up)
    assert len(workers) == 2 and serve, tree
    return up, tree


def test_sigkill_of_the_supervisor_takes_the_whole_tree_down(start_up: Callable[..., Up]) -> None:
    up, tree = start_with_wasmtime_children(start_up)
    up.proc.send_signal(signal.SIGKILL)
    up.proc.wait()
    assert_tree_gone(tree, up)


def test_sigkill_of_a_worker_takes_its_wasmtime_children_down(start_up: Callable[..., Up]) -> None:
    up, _tree = start_with_wasmtime_children(start_up)
    workers, serve = workers_and_children(up)
    child = serve[0]
    owner = next(w for w in workers if parent_of(child) == w.pid)
    os.kill(owner.pid, signal.SIGKILL)
    wait_for(lambda: not alive(child), f"wasmtime serve {child.pid} to die with its worker {owner.pid}")
    wait_for(lambda: len(workers_and_children(up)[0]) == 2, "the supervisor to replace the worker")
    assert up.proc.poll() is None


def test_sighup_stops_gracefully_and_takes_the_whole_tree_down(start_up: Callable[..., Up]) -> None:
    up, tree = start_with_wasmtime_children(start_up)
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(request, up.port, b"GET /linger?1500 HTTP/1.1\r\nHost: t\r\n\r\n")
        wait_for(lambda: in_flight(up) >= 1, "the slow request to reach a worker")
        up.proc.send_signal(signal.SIGHUP)
        status, headers, body = slow.result(PATIENCE)
    assert status == 200 and body == b"slept 1500 ms, read 0 bytes\n" and headers["connection"] == "close"
    assert up.proc.wait(PATIENCE) == 0
    assert_tree_gone(tree, up)


# -- graceful stop under load -------------------------------------------------------------------------


def in_flight(up: Up) -> int:
    """Connections of the server that a worker has accepted (from /proc/net/tcp: established sockets
    whose local port is the server's, owned by a worker's pid: read via its fds)."""
    workers = workers_of(up, up.tree())
    inodes: set[str] = set()
    for worker in workers:
        try:
            for fd in os.listdir(f"/proc/{worker.pid}/fd"):
                target = os.readlink(f"/proc/{worker.pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state, inode = fields[1], fields[3], fields[9]
        if state == "01" and int(local.split(":")[1], 16) == up.port and inode in inodes:
            count += 1
    return count


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One complete HTTP/1.1 response (Content-Length framing); AssertionError if it is cut short."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed before a complete head: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers["content-length"])
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, f"the body was cut short: {len(body)} of {length} bytes"
        body += chunk
    assert len(body) == length, "more bytes than Content-Length"
    return status, headers, body


def request(port: int, data: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=PATIENCE) as sock:
        sock.sendall(data)
        return read_response(sock)


def upload_after(port: int, size: int, sent: Future[None], go_on: Future[None]) -> tuple[int, dict[str, str], bytes]:
    """An upload whose body is half sent when ``sent`` resolves; the rest follows once ``go_on`` does."""
    with socket.create_connection(("127.0.0.1", port), timeout=PATIENCE) as sock:
        sock.sendall(f"POST /linger?0 HTTP/1.1\r\nHost: t\r\nContent-Length: {size}\r\n\r\n".encode())
        sock.sendall(b"u" * (size // 2))
        sent.set_result(None)
        go_on.result(PATIENCE)
        sock.sendall(b"u" * (size - size // 2))
        return read_response(sock)


@pytest.mark.parametrize("drain", ["default", "short"])
def test_sigterm_under_load_answers_every_request_in_flight(start_up: Callable[..., Up], drain: str) -> None:
    """16 slow requests, 2 idle keep-alive connections and an upload cut in half are in flight when
    SIGTERM arrives: every request gets a complete answer (200, or 503 once a short drain is over),
    the idle connections are closed without a reset, and the exit status is 0."""
    linger_ms = 2000 if drain == "default" else 60000
    extra = ["--request-timeout", "120"] if drain == "default" else ["--request-timeout", "120", "--drain", "1"]
    up = start_up("--workers", "2", *extra)
    tree = up.tree()
    slow = f"GET /linger?{linger_ms} HTTP/1.1\r\nHost: t\r\n\r\n".encode()
    size = 4 << 20
    idle = [socket.create_connection(("127.0.0.1", up.port), timeout=PATIENCE) for _ in range(2)]
    try:
        for sock in idle:  # keep-alive connections that have answered a request and now wait
            sock.sendall(b"GET /linger?0 HTTP/1.1\r\nHost: t\r\n\r\n")
            assert read_response(sock)[0] == 200
        with ThreadPoolExecutor(20) as pool:
            sent: Future[None] = Future()
            go_on: Future[None] = Future()
            upload = pool.submit(upload_after, up.port, size, sent, go_on)
            answers = [pool.submit(request, up.port, slow) for _ in range(16)]
            sent.result(PATIENCE)
            wait_for(lambda: in_flight(up) >= 19, "the 16 requests, the upload and the idle connections to be accepted")
            up.proc.send_signal(signal.SIGTERM)
            # Every worker has closed its listener (a plain bind succeeds): both are draining now.
            wait_for(lambda: port_is_free(up.port), "the workers to stop accepting")
            for sock in idle:  # closed cleanly: end of file, not a reset
                assert sock.recv(1) == b""
            go_on.set_result(None)
            results = [a.result(PATIENCE) for a in answers]
            uploaded = upload.result(PATIENCE)
    finally:
        for sock in idle:
            sock.close()
    if drain == "default" or uploaded[0] == 200:  # a short drain may be over before the upload is
        assert uploaded[0] == 200 and uploaded[2] == f"slept 0 ms, read {size} bytes\n".encode()
    else:
        assert uploaded[0] == 503
    statuses = sorted(status for status, _, _ in results)
    if drain == "default":
        assert statuses == [200] * 16
        assert {body for _, _, body in results} == {f"slept {linger_ms} ms, read 0 bytes\n".encode()}
    else:
        assert statuses == [503] * 16
        log = up.log.read_text()
        for _, headers, body in results:
            assert headers["x-error-id"] in body.decode() and headers["x-error-id"] in log
    assert all(headers["connection"] == "close" for _, headers, _ in [*results, uploaded])
    assert up.proc.wait(PATIENCE) == 0
    assert_tree_gone(tree, up)


def test_readyz_fails_during_the_drain_and_a_second_signal_kills_at_once(start_up: Callable[..., Up]) -> None:
    up = start_up("--workers", "1", "--request-timeout", "600")  # the drain would last 600 s
    tree = up.tree()
    admin = f"http://127.0.0.1:{up.admin}"
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(request, up.port, b"GET /linger?590000 HTTP/1.1\r\nHost: t\r\n\r\n")
        wait_for(lambda: in_flight(up) >= 1, "the slow request to reach the worker")
        up.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: port_is_free(up.port), "the worker to stop accepting")
        assert httpx.get(f"{admin}/readyz", timeout=PATIENCE).status_code == 503  # draining: not ready
        assert httpx.get(f"{admin}/healthz", timeout=PATIENCE).status_code == 200
        up.proc.send_signal(signal.SIGINT)  # the impatient operator's second Ctrl-C
        assert up.proc.wait(PATIENCE) == 0  # long before the 600 s drain
        assert_tree_gone(tree, up)
        with pytest.raises((AssertionError, OSError)):  # the request was abandoned: no answer
            slow.result(PATIENCE)
    assert "second stop signal: killing the workers now" in up.log.read_text()
