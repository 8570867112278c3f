"""The WAGI executor and the compile cache with the real wasmtime: CGI round trips, limits, faults.

Every executor test runs twice: through the native one-call module and through the ctypes path.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.host.guestbuild import GUESTS, app, build_c, component, digest
from tests.waiting import await_until
from zerowatt.wasm import native
from zerowatt.wasm.compile_cache import ModuleCache
from zerowatt.wasm.engine import EngineSettings, Runtime
from zerowatt.wasm.executor import GuestMemoryExceeded, GuestRequest, GuestTimeout, GuestTrap, GuestUnavailable
from zerowatt.wasm.model import Limits, Preopen
from zerowatt.wasm.wagi.executor import Offload, WagiExecutor
from zerowatt.wasm.wagi.stdio import InheritedStdout


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_c("probe", tmp_path_factory.mktemp("guests"))


@pytest.fixture(autouse=True, params=["native", "ctypes"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which WAGI path the executors made in the test use ("native" fails the test if it cannot be built)."""
    monkeypatch.setenv(native.BACKEND_ENV, request.param)
    return str(request.param)


@pytest.fixture
def cache(runtime: Runtime, tmp_path: Path) -> ModuleCache:
    return ModuleCache(runtime.engine, runtime.settings.fingerprint(), tmp_path / "cache")


@pytest.fixture(scope="module")
def threads() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(4)
    yield pool
    pool.shutdown(wait=False, cancel_futures=True)


def make_executor(
    probe: Path,
    runtime: Runtime,
    cache: ModuleCache,
    threads: ThreadPoolExecutor | None,
    *,
    timeout: float = 5.0,
    memory: int = 32 << 20,
    offload: Offload = Offload.HYBRID,
    limits: Limits | None = None,
    files: tuple[Preopen, ...] = (Preopen(GUESTS, "/data"),),
    environment: dict[str, str] | None = None,
) -> WagiExecutor:
    comp = component(
        probe,
        files=files,
        environment=environment or {"MODE": "test"},
        variables={"greeting": "hi"},
        limits=limits,
    )
    a = app([comp], {"/probe/...": "probe"})
    return WagiExecutor(
        a,
        comp,
        runtime=runtime,
        cache=cache,
        request_timeout=timeout,
        memory_limit=memory,
        options={"/probe/...": a.triggers[0].wagi},
        threads=threads,
        offload=offload,
        inline_budget=0.02,
    )


def req(path_info: str, query: str = "", body: bytes = b"", rid: str = "r1") -> GuestRequest:
    return GuestRequest(
        request_id=rid,
        method="POST",
        path="/probe" + path_info,
        query=query,
        headers=(("host", "localhost:3000"), ("x-foo", "bar")),
        body=body,
        matched_route="/probe/...",
        path_info=path_info,
    )


def env_lines(body: bytes) -> dict[str, str]:
    return dict(line.split("=", 1) for line in body.decode().splitlines() if "=" in line)


async def test_environment_argv_and_variables_reach_the_guest(
    probe: Path, runtime: Runtime, cache: ModuleCache
) -> None:
    ex = make_executor(probe, runtime, cache, None)
    resp = await ex.handle(req("/env", "a=1&b=x%20y", b"BODY"))
    env = env_lines(resp.body)
    assert resp.status == 200
    assert (env["ARGV0"], env["ARGV1"], env["ARGV2"]) == ("/probe", "a=1", "b=x y")
    assert env["PATH_INFO"] == "/env" and env["X_MATCHED_ROUTE"] == "/probe/..."
    assert env["CONTENT_LENGTH"] == "4" and env["HTTP_X_FOO"] == "bar"
    assert env["MODE"] == "test" and env["SPIN_VARIABLE_GREETING"] == "hi"
    assert resp.cold_start_seconds is not None and resp.cold_start_seconds > 0
    assert resp.cpu_seconds > 0
    again = await ex.handle(req("/env"))
    assert again.cold_start_seconds is None


async def test_the_executor_uses_the_backend_asked_for(
    probe: Path, runtime: Runtime, cache: ModuleCache, backend: str
) -> None:
    ex = make_executor(probe, runtime, cache, None)
    assert (ex._native is not None) == (backend == "native")
    assert (await ex.handle(req("/status"))).status == 418


async def test_a_component_variable_named_like_a_header_takes_the_general_path(
    probe: Path, runtime: Runtime, cache: ModuleCache
) -> None:
    environment = {"MODE": "test", "HTTP_X_FOO": "from-component", "HTTP_ONLY": "c"}
    ex = make_executor(probe, runtime, cache, None, environment=environment)
    request = req("/env", "q=1")
    env = env_lines((await ex.handle(request)).body)
    assert ex._route_plan("/probe/...").cgi.general
    expected = ex.environment(request)
    assert {k: v for k, v in env.items() if not k.startswith("ARGV")} == expected
    assert env["HTTP_ONLY"] == "c"


async def test_a_percent_encoded_nul_ends_the_c_string_in_argv_and_the_environment(
    probe: Path, runtime: Runtime, cache: ModuleCache
) -> None:
    ex = make_executor(probe, runtime, cache, None)
    resp = await ex.handle(req("/env%00x", "a=%00b&c=d"))
    env = env_lines(resp.body)
    assert (env["ARGV1"], env["ARGV2"]) == ("a=", "c=d")  # decoded "a=\0b" ends at the NUL
    assert env["QUERY_STRING"] == "a=%00b&c=d" and env["PATH_INFO"] == "/env"


async def test_no_request_sees_what_an_earlier_one_left_in_memory(
    probe: Path, runtime: Runtime, cache: ModuleCache
) -> None:
    # The pooling allocator reuses a slot's pages (1 MiB kept resident and zeroed between instances).
    assert runtime.settings.pooling and runtime.settings.keep_resident > 0
    ex = make_executor(probe, runtime, cache, None)
    for secret in ("first-secret", "second-secret", "third"):
        resp = await ex.handle(req("/remember", secret))
        assert resp.body == b"note=\nmarked=0\n", resp.body


async def test_body_round_trips_through_stdin_and_stdout(probe: Path, runtime: Runtime, cache: ModuleCache) -> None:
    ex = make_executor(probe, runtime, cache, None)
    for size in (0, 1, 65537, 3 << 20):
        body = bytes(i % 251 for i in range(size))
        resp = await ex.handle(req("/echo", body=body))
        assert resp.status == 200
        assert ("x-echo", "yes") in resp.headers
        assert resp.body == body


async def test_inline_guests_can_write_through_an_inherited_fd_1(
    probe: Path, runtime: Runtime, cache: ModuleCache
) -> None:
    before = os.fstat(1)
    stdout = InheritedStdout()
    try:
        ex = make_executor(probe, runtime, cache, None)
        ex.stdout = stdout
        for size in (3 << 20, 5, 0):  # a large response first: later, shorter ones must not see its tail
            body = bytes(i % 253 for i in range(size))
            assert (await ex.handle(req("/echo", body=body))).body == body
        assert os.fstat(1).st_ino != before.st_ino  # fd 1 is the scratch file meanwhile
    finally:
        stdout.close()
    assert os.fstat(1).st_ino == before.st_ino


async def test_inline_guests_can_write_stderr_through_an_inherited_fd_2(
    probe: Path, runtime: Runtime, cache: ModuleCache, caplog: pytest.LogCaptureFixture
) -> None:
    before = os.fstat(2)
    caplog.set_level(logging.INFO)
    stdout = InheritedStdout(stderr=True)
    try:
        ex = make_executor(probe, runtime, cache, None)
        ex.stdout = stdout
        assert os.fstat(2).st_ino != before.st_ino  # fd 2 is the stderr scratch file meanwhile
        resp = await ex.handle(req("/stderr", rid="req-fd2"))
        assert resp.body == b"logged\n"
        assert "guest says hello on stderr" in caplog.text and "req-fd2" in caplog.text
        caplog.clear()
        assert (await ex.handle(req("/status", rid="req-quiet"))).status == 418
        assert "req-quiet" not in caplog.text  # nothing left over from the previous guest's stderr
    finally:
        stdout.close()
    assert os.fstat(2).st_ino == before.st_ino


async def test_status_redirect_and_files(probe: Path, runtime: Runtime, cache: ModuleCache) -> None:
    ex = make_executor(probe, runtime, cache, None)
    teapot = await ex.handle(req("/status"))
    assert teapot.status == 418 and ("x-custom", "a b c") in teapot.headers
    redirect = await ex.handle(req("/redirect"))
    assert redirect.status == 302 and ("location", "/elsewhere") in redirect.headers
    mounted = await ex.handle(req("/file", "/data/hello.wat"))
    assert mounted.body == (GUESTS / "hello.wat").read_bytes()
    listing = await ex.handle(req("/ls", "/data"))
    assert "probe.c" in listing.body.decode().split()
    root = await ex.handle(req("/ls", "/"))  # nothing outside the preopens exists for the guest
    assert root.body == b"(unreadable)\n"
    outside = await ex.handle(req("/file", "/etc/passwd"))
    assert outside.status == 404
    write = await ex.handle(req("/write", "/data/new.txt"))  # preopens are read-only
    assert write.body == b"refused\n"
    assert not (GUESTS / "new.txt").exists()


async def test_faults_become_guest_errors_with_logged_ids(
    probe: Path, runtime: Runtime, cache: ModuleCache, caplog: pytest.LogCaptureFixture
) -> None:
    ex = make_executor(probe, runtime, cache, None)
    caplog.set_level(logging.INFO)
    for path, kind in (("/trap", GuestTrap), ("/exit3", GuestTrap), ("/bad", GuestTrap)):
        with pytest.raises(kind) as info:
            await ex.handle(req(path, rid=f"req-{path[1:]}"))
        assert info.value.status == 500 and info.value.error_id
        assert info.value.error_id in caplog.text and f"req-{path[1:]}" in caplog.text
    resp = await ex.handle(req("/stderr", rid="req-stderr"))
    assert resp.body == b"logged\n"
    assert "guest says hello on stderr" in caplog.text and "req-stderr" in caplog.text


async def test_response_larger_than_the_cap_is_a_500(probe: Path, runtime: Runtime, cache: ModuleCache) -> None:
    ex = make_executor(probe, runtime, cache, None)
    ex.max_response = 1 << 20
    with pytest.raises(GuestTrap, match="larger than"):
        await ex.handle(req("/echo", body=b"z" * (2 << 20)))
    assert (await ex.handle(req("/echo", body=b"small"))).body == b"small"


async def test_memory_cap(probe: Path, runtime: Runtime, cache: ModuleCache) -> None:
    ex = make_executor(probe, runtime, cache, None, memory=16 << 20)
    with pytest.raises(GuestMemoryExceeded) as info:
        await ex.handle(req("/mem"))
    assert info.value.status == 500
    per_component = make_executor(probe, runtime, cache, None, memory=1 << 30, limits=Limits(memory_limit=8 << 20))
    assert per_component.memory_limit == 8 << 20
    with pytest.raises(GuestMemoryExceeded):
        await per_component.handle(req("/mem"))
    assert (await ex.handle(req("/status"))).status == 418  # the executor still serves


async def test_a_memory_cap_below_the_initial_memory_fails_instantiation(
    probe: Path, runtime: Runtime, cache: ModuleCache
) -> None:
    ex = make_executor(probe, runtime, cache, None, limits=Limits(memory_limit=64 << 10))
    with pytest.raises(GuestMemoryExceeded, match="instantiation"):
        await ex.handle(req("/status"))


async def test_a_preopen_that_vanished_is_a_503_and_the_executor_recovers(
    probe: Path, runtime: Runtime, cache: ModuleCache, tmp_path: Path
) -> None:
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    ex = make_executor(probe, runtime, cache, None, files=(Preopen(mounted, "/data"),))
    assert (await ex.handle(req("/status"))).status == 418
    mounted.rmdir()
    with pytest.raises(GuestUnavailable, match="preopen") as info:
        await ex.handle(req("/status"))
    assert info.value.status == 503
    mounted.mkdir()
    assert (await ex.handle(req("/status"))).status == 418


async def test_deadline_interrupts_a_loop_without_stalling_others(
    probe: Path, runtime: Runtime, cache: ModuleCache, threads: ThreadPoolExecutor
) -> None:
    ex = make_executor(probe, runtime, cache, threads, timeout=1.0)
    ex.load()
    offloaded: list[object] = []
    submit = threads.submit

    def counting_submit(fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        offloaded.append(fn)
        return submit(fn, *args, **kwargs)

    threads.submit = counting_submit  # type: ignore[method-assign]
    started = time.monotonic()
    looping = asyncio.ensure_future(ex.handle(req("/loop")))
    # The loop has left the inline budget and runs on a thread now.
    await await_until(lambda: offloaded or looping.done(), "the looping guest handed to the thread pool")
    quick = [await ex.handle(req("/status")) for _ in range(20)]
    quick_done = time.monotonic() - started
    with pytest.raises(GuestTimeout) as info:
        await looping
    assert info.value.status == 504
    assert all(r.status == 418 for r in quick)
    assert quick_done < 0.9, "fast requests waited for the looping guest"
    assert time.monotonic() - started >= 0.95


async def test_per_component_timeout_overrides_the_host_default(
    probe: Path, runtime: Runtime, cache: ModuleCache, threads: ThreadPoolExecutor
) -> None:
    ex = make_executor(probe, runtime, cache, threads, timeout=30.0, limits=Limits(request_timeout=0.3))
    started = time.monotonic()
    with pytest.raises(GuestTimeout):
        await ex.handle(req("/loop"))
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("offload", [Offload.INLINE, Offload.THREAD])
async def test_every_offload_mode_serves(
    probe: Path, runtime: Runtime, cache: ModuleCache, threads: ThreadPoolExecutor, offload: Offload
) -> None:
    ex = make_executor(probe, runtime, cache, threads, timeout=0.3, offload=offload)
    assert (await ex.handle(req("/echo", body=b"x"))).body == b"x"
    with pytest.raises(GuestTimeout):
        await ex.handle(req("/loop"))


async def test_unload_then_reload_from_the_cache(probe: Path, runtime: Runtime, cache: ModuleCache) -> None:
    ex = make_executor(probe, runtime, cache, None)
    first = await ex.handle(req("/status"))
    assert first.cold_start_seconds is not None and ex.loaded
    assert cache.entry_path(digest(probe)).is_file()
    await ex.unload()
    assert not ex.loaded
    second = await ex.handle(req("/status"))
    assert second.cold_start_seconds is not None and second.status == 418


async def test_reload_after_unload_keeps_the_compiled_code(probe: Path, runtime: Runtime, cache: ModuleCache) -> None:
    """Unloading parks the linked module: the first request after idle neither reads nor rebuilds
    the compile cache (before, it deserialised and linked again: +1.7 ms over HTTP)."""
    ex = make_executor(probe, runtime, cache, None)
    assert (await ex.handle(req("/status"))).status == 418
    entry = cache.entry_path(digest(probe))
    entry.unlink()  # a reload that went to the cache would now have to compile and write it again
    await ex.unload()
    assert not ex.loaded
    again = await ex.handle(req("/status"))
    assert again.status == 418 and again.cold_start_seconds is not None and ex.loaded
    assert not entry.exists()


def test_cache_recompiles_a_corrupt_entry(probe: Path, runtime: Runtime, cache: ModuleCache) -> None:
    d = digest(probe)
    assert not cache.load(probe, d)[1]
    assert cache.load(probe, d)[1]
    # Replaced, not truncated in place: loaded modules map their entry, as the cache's own writes assume.
    garbage = cache.entry_path(d).with_suffix(".tmp")
    garbage.write_bytes(b"garbage")
    garbage.replace(cache.entry_path(d))
    module, cached = cache.load(probe, d)
    assert not cached and "_start" in {e.name for e in module.exports}
    assert cache.load(probe, d)[1]


def test_cache_key_depends_on_engine_settings(runtime: Runtime, tmp_path: Path) -> None:
    other = EngineSettings(opt_level="none")
    assert other.fingerprint() != runtime.settings.fingerprint()
    a = ModuleCache(runtime.engine, runtime.settings.fingerprint(), tmp_path)
    b = ModuleCache(runtime.engine, other.fingerprint(), tmp_path)
    assert a.entry_path("sha256:ab") != b.entry_path("sha256:ab")


def test_cache_loads_wat_sources_and_rejects_garbage(runtime: Runtime, cache: ModuleCache, tmp_path: Path) -> None:
    hello = GUESTS / "hello.wat"
    module, _ = cache.load(hello, digest(hello))
    assert "_start" in {e.name for e in module.exports}
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(b"\0asm\x01\0\0\0garbage")
    from zerowatt.errors import ValidationError

    with pytest.raises(ValidationError, match=r"bad\.wasm"):
        cache.load(bad, digest(bad))


async def test_scalable_one_instance_loaded_by_scale_to_and_parked_at_zero(
    probe: Path, runtime: Runtime, cache: ModuleCache, threads: ThreadPoolExecutor
) -> None:
    """The autoscaler's side of the executor (:class:`zerowatt.wasm.executor.Scalable`): ready, starts,
    the last start's duration, and ``on_change`` at each load and park, whoever caused it."""
    ex = make_executor(probe, runtime, cache, threads)
    seen: list[int] = []
    ex.on_change = lambda: seen.append(ex.ready)
    assert (ex.ready, ex.starts, ex.failures, ex.last_start_seconds) == (0, 0, 0, None)
    ex.scale_to(1)
    assert ex.ready == 1 and ex.loaded and ex.starts == 1
    assert ex.last_start_seconds is not None and ex.last_start_seconds >= 0
    ex.scale_to(1)  # already loaded: nothing happens
    ex.scale_to(0)
    assert ex.ready == 0 and not ex.loaded
    ex.scale_to(0)
    response = await ex.handle(req("/status"))  # a request loads it again: a start too
    assert response.cold_start_seconds is not None and ex.starts == 2
    assert seen == [1, 0, 1] and ex.failures == 0


async def test_scalable_a_load_that_fails_is_counted_and_the_request_gets_the_error(
    runtime: Runtime, cache: ModuleCache, threads: ThreadPoolExecutor, tmp_path: Path
) -> None:
    source = tmp_path / "noentry.wat"
    source.write_text('(module (func (export "main")))')  # no _start: WAGI's entry point is missing
    comp = component(source, "noentry")
    a = app([comp], {"/probe/...": "noentry"})
    ex = WagiExecutor(a, comp, runtime=runtime, cache=cache, request_timeout=2.0, memory_limit=32 << 20)
    ex.scale_to(1)
    assert ex.ready == 0 and ex.failures == 1 and ex.starts == 0
    with pytest.raises(GuestUnavailable, match="_start"):
        await ex.handle(req("/x"))
    assert ex.failures == 2 and ex.ready == 0
