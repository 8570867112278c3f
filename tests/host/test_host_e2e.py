"""End to end: ``python -m zerowatt up`` in a subprocess on a free loopback port, real HTTP requests.

One server (two workers, so the admin endpoint aggregates processes) is shared by the module; the
test guest (``guests/probe.c``) picks its behaviour from PATH_INFO.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import EXAMPLES, cli_env, free_port, invoke_cli
from tests.host.guestbuild import build_c
from tests.host.serving import metric, stop, wait_ready
from tests.waiting import await_until, tree_cpu_seconds, wait_until

MANIFEST = """\
spin_manifest_version = 2

[application]
name = "probe-app"

[variables]
greeting = {{ default = "hi" }}

[[trigger.http]]
route = "/probe/..."
component = "probe"
executor = {{ type = "wagi" }}

[[trigger.http]]
route = "/probe/users/:id/posts/:post/..."
component = "probe"
executor = {{ type = "wagi" }}

[[trigger.http]]
route = "/exact"
component = "probe"
executor = {{ type = "wagi", argv = "${{SCRIPT_NAME}} --fixed ${{ARGS}}" }}

[component.probe]
source = "{source}"
environment = {{ MODE = "e2e" }}
files = [{{ source = "data", destination = "/data" }}]

[component.probe.variables]
greeting = "{{{{ greeting }}}}"

[component.probe.tool.zerowatt]
request_timeout = 1.5
memory_limit = "16Mi"
"""


@dataclass
class Server:
    url: str
    admin: str
    proc: subprocess.Popen[str]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text()


@pytest.fixture(scope="module", params=["native", "uvicorn"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The shared server, once per HTTP front (``--http native``, the default, and ``--http uvicorn``)."""
    work = tmp_path_factory.mktemp("e2e")
    build_c("probe", work)
    (work / "data").mkdir()
    (work / "data" / "hello.txt").write_text("mounted file\n")
    (work / "spin.toml").write_text(MANIFEST.format(source="probe.wasm"))
    port, admin = free_port(), free_port()
    log = work / "server.log"
    env = dict(cli_env(), ZEROWATT_CACHE_DIR=str(work / "cache"))
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "zerowatt",
                "up",
                str(work / "spin.toml"),
                str(EXAMPLES / "hello-wat" / "spin.toml"),
                str(EXAMPLES / "hello-wasi-http" / "spin.toml"),
                "--listen",
                f"127.0.0.1:{port}",
                "--admin",
                f"127.0.0.1:{admin}",
                "--workers",
                "2",
                "--idle-unload",
                "1",
                "--max-body",
                str(12 << 20),
                "--variable",
                "greeting=hey",
                "--http",
                request.param,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
    srv = Server(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin}", proc, log)
    try:
        wait_ready(srv.admin, proc, log)
        yield srv
    finally:
        stop(proc)


def env_of(response: httpx.Response) -> dict[str, str]:
    return dict(line.split("=", 1) for line in response.text.splitlines() if "=" in line)


def test_prints_route_urls(server: Server) -> None:
    text = server.log_text()  # /readyz answered (the fixture waited for it): the routes are printed by then
    assert f"{server.url}/probe/..." in text and f"{server.url}/exact" in text and f"{server.url}/hello" in text


def test_routing_cgi_variables_headers_and_argv(server: Server) -> None:
    r = httpx.get(f"{server.url}/probe/env?x=1&y=a%20b", headers={"X-Trace": "t1"})
    env = env_of(r)
    assert r.status_code == 200
    assert env["PATH_INFO"] == "/env" and env["X_MATCHED_ROUTE"] == "/probe/..."
    assert env["X_FULL_URL"] == f"{server.url}/probe/env?x=1&y=a%20b"
    assert env["QUERY_STRING"] == "x=1&y=a%20b" and env["REQUEST_METHOD"] == "GET"
    assert env["HTTP_X_TRACE"] == "t1" and env["REMOTE_ADDR"] == "127.0.0.1"
    assert (env["ARGV0"], env["ARGV1"], env["ARGV2"]) == ("/probe", "x=1", "y=a b")
    assert env["MODE"] == "e2e" and env["SPIN_VARIABLE_GREETING"] == "hey"  # --variable wins over the default
    assert httpx.get(f"{server.url}/hello").text == "Hello from WebAssembly (WAT)!\n"


def test_route_parameters_reach_the_guest_as_spin_passes_them(server: Server) -> None:
    r = httpx.get(f"{server.url}/probe/users/ada/posts/7/env", headers={"X-Path-Match-Id": "forged"})
    env = env_of(r)
    assert r.status_code == 200 and "X_MATCHED_ROUTE" in env, r.text
    assert env["X_MATCHED_ROUTE"] == "/probe/users/:id/posts/:post/..." and env["PATH_INFO"] == "/env"
    assert (env["X_PATH_MATCH_ID"], env["X_PATH_MATCH_POST"]) == ("ada", "7")
    assert env["HTTP_X_PATH_MATCH_ID"] == "forged"  # a client's header stays a header
    other = env_of(httpx.get(f"{server.url}/probe/env?users/ada/posts/7"))  # not the parameter route: the wildcard
    assert other["X_MATCHED_ROUTE"] == "/probe/..." and "X_PATH_MATCH_ID" not in other


def test_wasi_http_component_is_served_through_wasmtime_serve(server: Server) -> None:
    r = httpx.get(f"{server.url}/hello-http", timeout=30)
    assert r.status_code == 200 and r.text == "Hello from wasi:http\n"


def test_exact_route_and_custom_argv(server: Server) -> None:
    r = httpx.get(f"{server.url}/exact?q")
    # PATH_INFO is empty, so the probe answers its default greeting.
    assert r.status_code == 200 and r.text == "hello from probe\n"


@pytest.mark.parametrize("size", [0, 1, 1 << 20, 10 << 20])
def test_bodies_round_trip(server: Server, size: int) -> None:
    body = os.urandom(size)
    r = httpx.post(f"{server.url}/probe/echo", content=body, timeout=60)
    assert r.status_code == 200 and r.headers["x-echo"] == "yes"
    assert r.content == body


def test_body_over_the_limit_is_413(server: Server) -> None:
    r = httpx.post(f"{server.url}/probe/echo", content=b"x" * (13 << 20), timeout=60)
    assert r.status_code == 413


def _exchange(server: Server, data: bytes, until: bytes, *, expect_close: bool = False) -> bytes:
    """Send raw bytes, read until ``until`` occurs (or the server closes when ``expect_close``)."""
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        reply = b""
        while until not in reply or expect_close:
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
        return reply


def test_pipelined_requests_are_answered_in_order(server: Server) -> None:
    one = b"GET /probe/status HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"POST /probe/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\nConnection: close\r\n\r\npayload"
    reply = _exchange(server, one * 3 + last, b"payload", expect_close=True)
    assert reply.count(b"HTTP/1.1 418") == 3
    assert reply.index(b"HTTP/1.1 200") > reply.rindex(b"HTTP/1.1 418") and reply.endswith(b"payload")


def test_chunked_bodies_expect_continue_and_http_1_0(server: Server) -> None:
    chunked = b"POST /probe/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    chunked += b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    reply = _exchange(server, chunked, b"hello world", expect_close=True)
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"hello world")
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /probe/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 100")
        sock.sendall(b"body")
        reply = b""
        while not reply.endswith(b"body"):
            reply += sock.recv(65536)
        assert reply.startswith(b"HTTP/1.1 200")
    old = _exchange(server, b"GET /probe/status HTTP/1.0\r\n\r\n", b"", expect_close=True)
    assert re.match(rb"HTTP/1\.[01] 418", old)  # and then the server closed the connection


def test_status_redirect_files_and_404(server: Server) -> None:
    teapot = httpx.get(f"{server.url}/probe/status")
    assert teapot.status_code == 418 and teapot.headers["x-custom"] == "a b c"
    redirect = httpx.get(f"{server.url}/probe/redirect", follow_redirects=False)
    assert redirect.status_code == 302 and redirect.headers["location"] == "/elsewhere"
    assert httpx.get(f"{server.url}/probe/file?/data/hello.txt").text == "mounted file\n"
    assert httpx.get(f"{server.url}/probe/write?/data/new.txt").text == "refused\n"
    assert httpx.get(f"{server.url}/probe/ls?/").text == "(unreadable)\n"
    assert httpx.get(f"{server.url}/nothing/here").status_code == 404


def test_trap_and_bad_output_are_500_with_a_logged_error_id(server: Server) -> None:
    for path in ("trap", "bad", "exit3"):
        r = httpx.get(f"{server.url}/probe/{path}")
        assert r.status_code == 500
        error_id = r.headers["x-error-id"]
        assert error_id in r.text
        deadline = time.monotonic() + 5
        while error_id not in server.log_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert error_id in server.log_text()


def test_memory_cap_is_500(server: Server) -> None:
    r = httpx.get(f"{server.url}/probe/mem", timeout=30)
    assert r.status_code == 500
    assert "GuestMemoryExceeded" in server.log_text() or r.headers["x-error-id"] in server.log_text()


def test_infinite_loop_is_504_while_other_requests_are_served(server: Server) -> None:
    async def scenario() -> tuple[int, list[int], float, float]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            started = time.monotonic()
            spent = tree_cpu_seconds(server.proc.pid)
            loop = asyncio.create_task(client.get("/probe/loop"))
            await await_until(  # the guest spins in a worker: the host's processes burn CPU (/proc)
                lambda: loop.done() or tree_cpu_seconds(server.proc.pid) >= spent + 0.1, "the looping guest runs"
            )
            statuses = []
            for _ in range(20):
                statuses.append((await client.get("/probe/status")).status_code)
            others_done = time.monotonic() - started
            looped = await loop
            return looped.status_code, statuses, others_done, time.monotonic() - started

    looped, statuses, others_done, total = asyncio.run(scenario())
    assert looped == 504
    assert statuses == [418] * 20
    assert others_done < total and total >= 1.4  # the others finished while the loop was still running


def test_malformed_http_gets_a_4xx_and_the_host_keeps_serving(server: Server) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    for garbage in (b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(garbage)
            reply = sock.recv(1024)
        assert re.match(rb"HTTP/1\.[01] 4\d\d", reply), reply
    assert httpx.get(f"{server.url}/probe/status").status_code == 418


def test_scale_to_zero_and_reload_are_counted(server: Server) -> None:
    assert httpx.get(f"{server.url}/probe/status").status_code == 418

    def loaded() -> float:
        text = httpx.get(f"{server.admin}/metrics").text
        return metric(text, "zerowatt_loaded_components", app="probe-app", component="probe")

    wait_until(lambda: loaded() == 0, "--idle-unload 1: every worker unloads the component")
    before = httpx.get(f"{server.admin}/metrics").text
    assert metric(before, "zerowatt_loaded_components", app="probe-app", component="probe") == 0
    cold_before = metric(before, "zerowatt_cold_starts_total", app="probe-app", component="probe")
    assert httpx.get(f"{server.url}/probe/status").status_code == 418
    after = httpx.get(f"{server.admin}/metrics").text
    assert metric(after, "zerowatt_cold_starts_total", app="probe-app", component="probe") == cold_before + 1
    assert metric(after, "zerowatt_loaded_components", app="probe-app", component="probe") == 1
    assert "cold start probe-app/probe" in server.log_text()


def test_admin_endpoints_aggregate_workers(server: Server) -> None:
    seen: dict[str, str] = {}
    assert httpx.get(f"{server.admin}/healthz").text == "ok\n"
    assert httpx.get(f"{server.admin}/readyz").status_code == 200
    for _ in range(10):
        httpx.get(f"{server.url}/hello")
    text = httpx.get(f"{server.admin}/metrics").text
    assert metric(text, "zerowatt_requests_total", app="hello-wat", component="hello", code="200") >= 10
    assert metric(text, "zerowatt_request_duration_seconds_count", app="hello-wat", component="hello") >= 10
    assert metric(text, "zerowatt_request_cpu_seconds_total", app="hello-wat", component="hello") > 0
    assert metric(text, "zerowatt_requests_total", app="probe-app", component="probe", code="504") >= 0
    assert "zerowatt_cold_start_duration_seconds_bucket" in text
    # Per-request energy (issue 3): request CPU time priced by the node's power model, on the admin endpoint,
    # once the interval the requests ended in has closed (each worker prices its intervals once a second).
    wait_until(
        lambda: (
            metric(
                text := httpx.get(f"{server.admin}/metrics").text,
                "zerowatt_request_joules_count",
                app="hello-wat",
                component="hello",
            )
            >= 10
            and bool(seen.update(text=text) or True)
        ),
        "the requests' interval priced",
    )
    text = seen["text"]
    cpu = metric(text, "zerowatt_request_cpu_seconds_total", app="hello-wat", component="hello")
    joules = metric(text, "zerowatt_app_joules_total", app="hello-wat", component="hello")
    assert 0 < joules < cpu * 1000  # no CPU of this machine draws a kilowatt per busy core
    assert metric(text, "zerowatt_request_joules_count", app="hello-wat", component="hello") >= 10
    assert httpx.get(f"{server.admin}/nope").status_code == 404


def test_sigterm_stops_everything(tmp_path: Path) -> None:
    port, admin = free_port(), free_port()
    env = dict(cli_env(), ZEROWATT_CACHE_DIR=str(tmp_path / "cache"))
    log, stdout = tmp_path / "log", tmp_path / "stdout"
    with log.open("w") as err, stdout.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "zerowatt",
                "up",
                str(EXAMPLES / "hello-wat" / "spin.toml"),
                "--listen",
                f"127.0.0.1:{port}",
                "--admin",
                f"127.0.0.1:{admin}",
                "--workers",
                "1",
                "--json",
            ],
            stdout=out,
            stderr=err,
            env=env,
            text=True,
        )
    wait_ready(f"http://127.0.0.1:{admin}", proc, log)
    assert httpx.get(f"http://127.0.0.1:{port}/hello").status_code == 200
    announced = json.loads(stdout.read_text())  # --json: stdout is exactly one JSON document
    assert announced["routes"] == [{"app": "hello-wat", "component": "hello", "url": f"http://127.0.0.1:{port}/hello"}]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    summary = r"energy hello-wat/hello: 1 requests, [0-9.]+ ms CPU, .* J \(.* µJ/request\)"
    assert re.search(summary, log.read_text())  # the joules-per-request summary at shutdown
    with socket.socket() as s:  # the workers are gone: the port is free again
        s.bind(("127.0.0.1", port))


def test_a_bad_wagi_backend_choice_exits_2_before_serving() -> None:
    manifest = EXAMPLES / "hello-wat" / "spin.toml"
    listen, admin = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    result = subprocess.run(
        [sys.executable, "-m", "zerowatt", "up", str(manifest), "--listen", listen, "--admin", admin],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(cli_env(), ZEROWATT_WAGI_BACKEND="bogus"),
    )
    assert result.returncode == 2
    assert "ZEROWATT_WAGI_BACKEND='bogus': expected auto, native or ctypes" in result.stderr


def test_bad_manifest_exits_2_before_serving(tmp_path: Path) -> None:
    bad = tmp_path / "spin.toml"
    bad.write_text('spin_manifest_version = 2\n[application]\nname = "x"\n[[trigger.http]]\nroute = 5\n')
    port = free_port()
    before = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    result = invoke_cli(["up", str(bad), "--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{free_port()}"])
    assert result.returncode == 2
    assert "spin.toml" in result.stderr
    # the metrics directory of that run is gone: nothing started later in this process may inherit it
    assert os.environ.get("PROMETHEUS_MULTIPROC_DIR") == before
    missing = invoke_cli(["up", str(tmp_path / "nope.toml")])
    assert missing.returncode == 2 and "nope.toml" in missing.stderr
    bad_flag = invoke_cli(["up", str(bad), "--listen", "nowhere"])
    assert bad_flag.returncode == 2 and "--listen" in bad_flag.stderr
    bad_http = invoke_cli(["up", str(bad), "--http", "h3"])
    assert bad_http.returncode == 2 and "--http 'h3'" in bad_http.stderr and "native" in bad_http.stderr


@pytest.mark.parametrize("value", ["0.01", "0", "-1", "soon"])
def test_a_bad_energy_interval_exits_2(value: str) -> None:
    result = invoke_cli(["up", str(EXAMPLES / "hello-wat" / "spin.toml"), "--energy-interval", value])
    assert result.returncode == 2
    assert "--energy-interval" in result.stderr
