"""The wasi:http executor against the real ``wasmtime serve`` and the real WAT components."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import SRC
from tests.waiting import await_until, cpu_seconds
from tests.wasm.wasihttp_support import HELLO, PROBE, make_component, pid_alive, request, running
from zerowatt.errors import UsageError, ValidationError
from zerowatt.wasm.executor import GuestResponse, GuestTimeout, GuestUnavailable
from zerowatt.wasm.model import Limits, Preopen
from zerowatt.wasm.wasihttp.executor import WasiHttpExecutor, find_wasmtime

pytestmark = pytest.mark.timeout(60)


async def _wait_dead(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        await asyncio.sleep(0.02)
    return False


async def _until_spinning(executor: WasiHttpExecutor, looping: asyncio.Future[GuestResponse]) -> None:
    """Until the guest's loop runs: its ready child burns 50 ms of CPU from now on (/proc), or it answered."""
    await await_until(lambda: looping.done() or executor.ready, "a child ready for the looping request")
    pid = executor.pid
    start = cpu_seconds(pid) if pid is not None else 0.0
    await await_until(
        lambda: looping.done() or (pid is not None and cpu_seconds(pid) >= start + 0.05), "the guest spins"
    )


async def test_hello_example_first_request_starts_the_process() -> None:
    app, component = make_component(HELLO, component_id="hello-wasi-http")
    async with running(app, component) as executor:
        assert not executor.loaded and executor.pid is None
        response = await executor.handle(request("/hello-http"))
        assert response.status == 200
        assert response.body == b"Hello from wasi:http\n"
        assert ("content-type", "text/plain") in response.headers
        assert response.cold_start_seconds is not None and response.cold_start_seconds > 0
        assert response.cpu_seconds > 0  # the start-up CPU is charged to the request that caused it
        assert executor.loaded and executor.pid is not None and pid_alive(executor.pid)
        again = await executor.handle(request("/hello-http"))
        assert again.status == 200 and again.cold_start_seconds is None
        assert executor.starts == 1


async def test_concurrent_requests_during_start_all_wait_and_succeed() -> None:
    app, component = make_component()
    async with running(app, component) as executor:
        responses = await asyncio.gather(*(executor.handle(request("/", request_id=f"r{i}")) for i in range(20)))
        assert [r.status for r in responses] == [200] * 20
        assert executor.starts == 1
        assert sum(r.cold_start_seconds is not None for r in responses) == 1


async def test_idle_timeout_stops_the_process_and_the_next_request_restarts_it() -> None:
    app, component = make_component()
    async with running(app, component, idle_timeout=0.3) as executor:
        await executor.handle(request())
        first_pid = executor.pid
        assert first_pid is not None
        assert await _wait_dead(first_pid), "the idle child was not stopped"
        assert not executor.loaded
        response = await executor.handle(request())
        assert response.status == 200 and response.cold_start_seconds is not None
        assert executor.pid != first_pid and executor.starts == 2
        assert executor.crashes == 0


async def test_unload_stops_the_process() -> None:
    app, component = make_component()
    async with running(app, component) as executor:
        await executor.handle(request())
        pid = executor.pid
        assert pid is not None
        await executor.unload()
        assert not executor.loaded and not pid_alive(pid)
        await executor.unload()  # idempotent


async def test_a_killed_child_is_restarted_by_the_next_request() -> None:
    app, component = make_component()
    async with running(app, component) as executor:
        await executor.handle(request())
        pid = executor.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert await _wait_dead(pid)
        await await_until(lambda: executor.crashes == 1, "the supervisor notices the killed child")
        response = await executor.handle(request())
        assert response.status == 200
        assert executor.pid not in (None, pid)
        assert executor.crashes == 1 and executor.starts == 2


async def test_a_crash_during_a_request_answers_503_and_the_host_keeps_serving() -> None:
    app, component = make_component()
    async with running(app, component) as executor:
        await executor.handle(request())
        pid = executor.pid
        assert pid is not None
        looping = asyncio.ensure_future(executor.handle(request("/loop")))
        await _until_spinning(executor, looping)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(GuestUnavailable) as caught:
            await looping
        assert caught.value.status == 503
        assert "exited" in str(caught.value)
        assert (await executor.handle(request())).status == 200


async def test_deadline_answers_504_while_other_requests_are_served() -> None:
    app, component = make_component()
    async with running(app, component, request_timeout=1.0) as executor:
        looping = asyncio.ensure_future(executor.handle(request("/loop", request_id="looper")))
        await _until_spinning(executor, looping)
        for _ in range(5):  # the looping guest does not block the others
            assert (await executor.handle(request())).status == 200
        with pytest.raises(GuestTimeout) as caught:
            await looping
        assert caught.value.status == 504 and caught.value.error_id == "looper"
        assert caught.value.cpu_seconds > 0  # the loop burnt CPU while it was the only request in flight
        assert (await executor.handle(request())).status == 200


async def test_per_component_timeout_overrides_the_host_default() -> None:
    app, component = make_component(limits=Limits(request_timeout=0.5))
    async with running(app, component, request_timeout=30.0) as executor:
        assert executor.request_timeout == 0.5
        started = time.monotonic()
        with pytest.raises(GuestTimeout):
            await executor.handle(request("/loop"))
        assert time.monotonic() - started < 10


async def test_status_headers_and_body_pass_through() -> None:
    app, component = make_component()
    body = os.urandom(1 << 20)
    async with running(app, component) as executor:
        response = await executor.handle(
            request(
                "/echo",
                method="POST",
                query="a=1&b=2",
                headers=(("x-status", "418"), ("x-custom", "Value 1"), ("connection", "keep-alive")),
                body=body,
            )
        )
        assert response.status == 418
        assert response.body == body
        headers = dict(response.headers)
        assert headers["x-custom"] == "Value 1"
        assert headers["spin-path-info"] == "/echo"
        assert headers["spin-full-url"] == "http://example.test:3000/echo?a=1&b=2"
        assert "connection" not in headers and "transfer-encoding" not in headers
        empty = await executor.handle(request("/echo", headers=(("x-status", "204"),)))
        assert empty.status == 204 and empty.body == b""
        head = await executor.handle(request("/", method="HEAD"))
        assert head.status == 200 and head.body == b""


async def test_environment_and_variables_are_visible_to_the_guest_but_not_on_the_command_line() -> None:
    app, component = make_component(
        environment={"ZW_GREETING": "hello there", "ZW_OTHER": "2"}, variables={"api_key": "s3cret-value"}
    )
    async with running(app, component) as executor:
        response = await executor.handle(request("/vars"))
        headers = dict(response.headers)
        assert headers["zw_greeting"] == "hello there" and headers["zw_other"] == "2"
        assert headers["spin_variable_api_key"] == "s3cret-value"
        assert not any(name.lower() == "path" for name in headers)  # the host's environment is not inherited
        assert executor.pid is not None
        cmdline = Path(f"/proc/{executor.pid}/cmdline").read_bytes()
        assert b"s3cret-value" not in cmdline and b"ZW_GREETING" in cmdline


async def test_preopened_files_are_visible_and_host_files_are_never_written(tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "data.txt").write_text("mounted file\n")
    app, component = make_component(files=(Preopen(host_path=assets, guest_path="/"),))
    async with running(app, component) as executor:
        response = await executor.handle(request("/file"))
        assert response.status == 200 and response.body == b"mounted file\n"
        snapshots = list(Path(tempfile.gettempdir()).glob("zerowatt-probe-*"))
        assert snapshots
        copy = next(iter(snapshots[-1].glob("*/data.txt")))
        assert not os.stat(copy).st_mode & 0o222  # the guest's view is read-only
        await executor.unload()
        assert not any(s.exists() for s in snapshots if s == copy.parent.parent)
    no_files_app, no_files = make_component()
    async with running(no_files_app, no_files) as executor:
        assert (await executor.handle(request("/file"))).status == 404


async def test_memory_cap_makes_growth_fail_with_500(caplog: pytest.LogCaptureFixture) -> None:
    app, component = make_component()
    caplog.set_level(logging.INFO, logger="zerowatt.wasm.wasihttp.executor")
    async with running(app, component, memory_limit=64 << 20) as executor:
        assert (await executor.handle(request("/mem"))).status == 500
        await await_until(lambda: any("trap" in r.getMessage() for r in caplog.records), "the trap report logged")
    async with running(app, component, memory_limit=512 << 20) as executor:
        assert (await executor.handle(request("/mem"))).status == 200
    # the child's stderr (wasmtime's trap report) is logged under the component's name
    assert any("testapp/probe:" in r.getMessage() and "trap" in r.getMessage() for r in caplog.records)


def test_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    app, component = make_component()
    with pytest.raises(UsageError, match="does not exist"):
        WasiHttpExecutor(
            app,
            component,
            request_timeout=1,
            memory_limit=1 << 20,
            idle_timeout=1,
            wasmtime_path=str(tmp_path / "nope"),
        )


async def test_a_binary_that_fails_to_start_answers_503(tmp_path: Path) -> None:
    fake = tmp_path / "wasmtime"
    fake.write_text("#!/bin/sh\necho 'Error: no such thing' >&2\nexit 3\n")
    fake.chmod(0o755)
    app, component = make_component()
    async with running(app, component, wasmtime_path=str(fake)) as executor:
        with pytest.raises(GuestUnavailable, match=r"exited with code 3 at start: Error: no such thing"):
            await executor.handle(request())


async def test_a_child_that_never_gets_ready_is_bounded_by_start_timeout(tmp_path: Path) -> None:
    fake = tmp_path / "wasmtime"
    fake.write_text("#!/bin/sh\nexec sleep 30\n")
    fake.chmod(0o755)
    app, component = make_component()
    async with running(app, component, wasmtime_path=str(fake), start_timeout=0.5) as executor:
        with pytest.raises(GuestUnavailable, match=r"not ready within 0\.5s"):
            await executor.handle(request())


def test_find_wasmtime_prefers_the_native_binary() -> None:
    found = find_wasmtime()
    with open(found, "rb") as f:
        assert f.read(4) == b"\x7fELF"


def test_outgoing_http_needs_allowed_outbound_hosts(tmp_path: Path) -> None:
    source = tmp_path / "outbound.wat"
    text = HELLO.read_text()
    marker = '  (import "wasi:io/error@0.2.0"'
    source.write_text(text.replace(marker, '  (import "wasi:http/outgoing-handler@0.2.0" (instance))\n' + marker, 1))
    app, component = make_component(source)
    with pytest.raises(ValidationError, match="allowed_outbound_hosts"):
        WasiHttpExecutor(app, component, request_timeout=1, memory_limit=1 << 20, idle_timeout=1)
    app, allowed = make_component(source, allowed_outbound_hosts=("https://example.com",))
    WasiHttpExecutor(app, allowed, request_timeout=1, memory_limit=1 << 20, idle_timeout=1)


def test_the_child_dies_with_the_host(tmp_path: Path) -> None:
    """SIGKILL the host process: PR_SET_PDEATHSIG takes its wasmtime serve child down too."""
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        sys.path[:0] = [{str(SRC)!r}, {str(Path(__file__).parents[2])!r}]
        from tests.wasm.wasihttp_support import make_component, request
        from zerowatt.wasm.wasihttp.executor import WasiHttpExecutor
        async def main():
            app, component = make_component()
            ex = WasiHttpExecutor(app, component, request_timeout=5, memory_limit=1 << 26, idle_timeout=60)
            await ex.handle(request())
            print(ex.pid, flush=True)
            await asyncio.sleep(60)
        asyncio.run(main())
        """
    )
    host = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert host.stdout is not None
        child = int(host.stdout.readline())
        assert pid_alive(child)
        host.kill()
        host.wait()
        deadline = time.monotonic() + 5
        while pid_alive(child) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not pid_alive(child), "wasmtime serve outlived its host"
    finally:
        host.kill()
        host.wait()


def test_probe_component_is_a_valid_wasi_http_component() -> None:
    from zerowatt.wasm.wasihttp.executor import component_imports

    _app, component = make_component(PROBE)
    assert "wasi:http/types@0.2.0" in component_imports(component)


async def test_the_hello_example_manifest_loads_and_serves(tmp_path: Path) -> None:
    from tests.conftest import EXAMPLES
    from zerowatt.wasm.manifest.load import load_app
    from zerowatt.wasm.model import ExecutorKind

    app = load_app(EXAMPLES / "hello-wasi-http" / "spin.toml", env={}, cache_dir=tmp_path)
    (trigger,) = app.triggers
    assert trigger.route.pattern == "/hello-http" and trigger.executor is ExecutorKind.WASI_HTTP
    async with running(app, app.components[trigger.component_id]) as executor:
        response = await executor.handle(request("/hello-http"))
        assert (response.status, response.body) == (200, b"Hello from wasi:http\n")


async def test_requests_that_find_the_child_dead_restart_it_and_the_crash_is_still_counted() -> None:
    app, component = make_component()
    async with running(app, component) as executor:
        await executor.handle(request())
        pid = executor.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert await _wait_dead(pid)
        await asyncio.sleep(0.05)  # the loop sees the pooled connection close; the reaping may come later
        responses = await asyncio.gather(*(executor.handle(request()) for _ in range(3)), return_exceptions=True)
        assert all(not isinstance(r, BaseException) and r.status == 200 for r in responses), responses
        await await_until(lambda: executor.crashes >= 1, "the supervisor counts the crash")
        assert executor.crashes == 1 and executor.starts == 2


async def test_missing_files_directory_answers_503_with_the_reason(tmp_path: Path) -> None:
    app, component = make_component(files=(Preopen(host_path=tmp_path / "gone", guest_path="/"),))
    async with running(app, component) as executor:
        with pytest.raises(GuestUnavailable, match="cannot copy the component's files"):
            await executor.handle(request("/file"))
        assert not executor.loaded
