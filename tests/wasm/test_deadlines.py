"""Deadlines that hold (issue 10): the native epoch ticker needs no GIL, and an interrupt that lands
during instantiation (a start function) is a timeout or a re-run, never a 500.

Mechanism tests, not timing checks: the deadline benchmark (benchmarks/bench_deadline.py) measures
how close to the requested deadline the 504 comes.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.host.guestbuild import app, build_c, component
from tests.waiting import await_until, wait_until
from zerowatt.host.server import lower_thread_priority
from zerowatt.wasm import native
from zerowatt.wasm.compile_cache import ModuleCache
from zerowatt.wasm.engine import EngineSettings, EpochTicker, NativeTicker, Runtime
from zerowatt.wasm.executor import AbortSignal, GuestRequest, GuestTimeout
from zerowatt.wasm.wagi import executor as wagi
from zerowatt.wasm.wagi.executor import Offload, WagiExecutor, _Outcome
from zerowatt.wasm.wagi.fairness import AppSlots

#: A WAGI guest whose start function (run at instantiation) loops ``ITERATIONS`` times before ``_start``.
START_WAT = """(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "Content-Type: text/plain\\n\\nstarted\\n")
  (global $n (mut i32) (i32.const 0))
  (func $init
    (loop $again
      (global.set $n (i32.add (global.get $n) (i32.const 1)))
      (br_if $again (i32.lt_u (global.get $n) (i32.const ITERATIONS)))))
  (start $init)
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 34))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"""


@pytest.fixture(autouse=True, params=["native", "ctypes"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(native.BACKEND_ENV, request.param)
    return str(request.param)


@pytest.fixture(scope="module")
def threads() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(4)
    yield pool
    pool.shutdown(wait=False, cancel_futures=True)


@pytest.fixture
def cache(runtime: Runtime, tmp_path: Path) -> ModuleCache:
    return ModuleCache(runtime.engine, runtime.settings.fingerprint(), tmp_path / "cache")


def executor(
    source: Path,
    runtime: Runtime,
    cache: ModuleCache,
    threads: ThreadPoolExecutor | None,
    *,
    timeout: float,
    inline_budget: float = 0.02,
) -> WagiExecutor:
    comp = component(source, "guest")
    a = app([comp], {"/g/...": "guest"})
    return WagiExecutor(
        a,
        comp,
        runtime=runtime,
        cache=cache,
        request_timeout=timeout,
        memory_limit=32 << 20,
        options={"/g/...": a.triggers[0].wagi},
        threads=threads,
        offload=Offload.HYBRID,
        inline_budget=inline_budget,
        slots=AppSlots(2),
    )


def req(path_info: str = "/") -> GuestRequest:
    return GuestRequest("r1", "GET", "/g" + path_info, "", (("host", "t"),), b"", "/g/...", path_info)


def start_guest(tmp_path: Path, iterations: int) -> Path:
    source = tmp_path / "start.wat"
    source.write_text(START_WAT.replace("ITERATIONS", str(iterations)))
    return source


async def test_a_start_function_that_outlives_the_inline_budget_is_rerun_not_a_500(
    runtime: Runtime, cache: ModuleCache, threads: ThreadPoolExecutor, tmp_path: Path
) -> None:
    # ~10^8 iterations take far longer than the 1 ms inline budget: the interrupt lands during
    # instantiation. It used to be answered 500 "instantiation failed: wasm trap: interrupt".
    ex = executor(start_guest(tmp_path, 100_000_000), runtime, cache, threads, timeout=120.0, inline_budget=0.001)
    response = await ex.handle(req())
    assert (response.status, response.body) == (200, b"started\n")


async def test_a_start_function_that_never_ends_is_a_timeout(
    runtime: Runtime, cache: ModuleCache, threads: ThreadPoolExecutor, tmp_path: Path
) -> None:
    ex = executor(start_guest(tmp_path, -1), runtime, cache, threads, timeout=0.3)  # -1: 2^32-1 as unsigned
    with pytest.raises(GuestTimeout) as info:
        await ex.handle(req())
    assert info.value.status == 504 and info.value.error_id


def test_the_native_ticker_interrupts_a_guest_while_python_holds_the_gil(
    backend: str, probe: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    if backend != "native":
        pytest.skip("the ctypes fallback's Python ticker needs the GIL (documented)")
    runtime = Runtime(EngineSettings())
    try:
        assert isinstance(runtime.ticker, NativeTicker)
        cache = ModuleCache(runtime.engine, runtime.settings.fingerprint(), tmp_path_factory.mktemp("cache"))
        ex = executor(probe, runtime, cache, None, timeout=1.0)
        comp_app = ex.app
        pre = runtime.linker.instantiate_pre(cache.load(ex.component.source, ex.component.source_digest)[0])
        request = GuestRequest("r1", "GET", "/g/loop", "", (), b"", "/g/...", "/loop", app=comp_app.name)
        outcome: list[_Outcome] = []
        guest = threading.Thread(target=lambda: outcome.append(ex.run(pre, request, 1.0)))
        guest.start()
        clock = time.pthread_getcpuclockid(guest.ident or 0)
        wait_until(lambda: outcome or time.clock_gettime(clock) >= 0.02, "the guest spins in wasm", interval=0.005)
        assert not outcome, "the guest ended before the GIL was taken"
        # Hold the GIL: no forced switch for 100 s, and a loop of calls that never release it. The guest's
        # thread runs wasm without the GIL; only a ticker that needs no GIL can bring its deadline. Once
        # interrupted, the guest's thread waits for the GIL: its CPU clock stops.
        interval = sys.getswitchinterval()
        sys.setswitchinterval(100.0)
        stopped = False
        try:
            until = time.monotonic() + 30.0  # generous: the deadline is 1 s
            cpu, since = time.clock_gettime(clock), time.monotonic()
            while (now := time.monotonic()) < until:
                used = time.clock_gettime(clock)
                if used != cpu:
                    cpu, since = used, now
                elif now - since > 0.5:  # no CPU for half a second: off the CPU, waiting for the GIL
                    stopped = True
                    break
        finally:
            sys.setswitchinterval(interval)
        guest.join(timeout=60)
        assert stopped, "the guest kept running while Python held the GIL"
        assert outcome and outcome[0].interrupted and isinstance(outcome[0].error, GuestTimeout)
    finally:
        runtime.close()


class CountingEngine:
    """Stands in for the engine in the Python ticker: counts epoch increments."""

    def __init__(self) -> None:
        self.epochs = 0

    def increment_epoch(self) -> None:
        self.epochs += 1


def test_the_python_ticker_counts_the_ticks_it_missed_while_starved() -> None:
    engine = CountingEngine()
    ticker = EpochTicker(engine, 0.005)  # type: ignore[arg-type]
    try:
        ticker.enter()
        wait_until(lambda: engine.epochs >= 2, "the ticker ticks", interval=0.005)
        with ticker._cond:  # starve the ticker for 0.5 s (100 ticks): it cannot increment meanwhile
            before = engine.epochs
            time.sleep(0.5)
        # (one increment may have been under way when the lock was taken)
        wait_until(lambda: engine.epochs >= before + 2, "the ticker wakes after the starvation", interval=0.001)
        # One wake-up after the starvation increments once per tick that passed, not once.
        assert engine.epochs - before >= 50
        ticker.leave()
    finally:
        ticker.stop()


async def test_the_app_cap_on_pool_threads() -> None:
    slots = AppSlots(1)
    assert await slots.acquire("a", 10.0) and slots.held("a") == 1
    assert not await slots.acquire("a", 0.0)  # a's share is taken: no slot for a second one
    assert await slots.acquire("b", 10.0)  # another app still gets one
    waiting = asyncio.ensure_future(slots.acquire("a", 60.0))
    await asyncio.sleep(0)
    slots.release("a")
    assert await waiting and slots.held("a") == 1
    with pytest.raises(ValueError, match="at least 1"):
        AppSlots(0)


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_c("probe", tmp_path_factory.mktemp("guests"))


async def test_a_component_that_outlived_the_inline_budget_goes_straight_to_the_pool(
    probe: Path, runtime: Runtime, cache: ModuleCache, threads: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wagi, "SLOW_MEMORY", 600.0)  # the memory outlasts the test however slow the machine

    async def runs_inline(ex: WagiExecutor) -> bool:
        # An inline run completes in the task's first step; a pool run is still awaiting its thread then.
        task = asyncio.ensure_future(ex.handle(req("/status")))
        await asyncio.sleep(0)
        done = task.done()
        assert (await task).status == 418
        return done

    ex = executor(probe, runtime, cache, threads, timeout=0.3)
    assert await runs_inline(ex)
    with pytest.raises(GuestTimeout):
        await ex.handle(req("/loop"))  # outlives the inline budget: re-run on the pool, then 504
    assert not await runs_inline(ex)  # the burst of a runaway component no longer stalls the event loop


async def test_an_epoch_deadline_reached_before_instantiation_is_rerun_not_a_500(
    backend: str,
    probe: Path,
    runtime: Runtime,
    cache: ModuleCache,
    threads: ThreadPoolExecutor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # wasmtime checks the epoch when it instantiates, even without a start function: a budget whose ticks
    # passed before instantiation (the thread was preempted) trapped there, and the soak saw 500s
    # "instantiation failed: wasm trap: interrupt". A deadline of 0 ticks is that case, every time.
    # (The native path checks the clock in a callback instead of counting ticks: it cannot happen there.)
    if backend != "ctypes":
        pytest.skip("the tick-counted inline deadline is the ctypes path's")
    monkeypatch.setattr(type(runtime.ticker), "ticks_for", lambda self, timeout: 0)
    ex = executor(probe, runtime, cache, threads, timeout=60.0)
    response = await ex.handle(req("/status"))  # inline: interrupted at once; on the pool: served
    assert response.status == 418


async def test_one_apps_runaway_guests_leave_pool_threads_to_another_app(
    probe: Path, runtime: Runtime, cache: ModuleCache
) -> None:
    pool = ThreadPoolExecutor(2)
    slots = AppSlots(1)  # each app may hold one of the two threads
    try:
        executors = {}
        for name in ("tenant", "other"):
            comp = component(probe, "guest")
            a = app([comp], {"/g/...": "guest"}, name=name)
            executors[name] = WagiExecutor(
                a,
                comp,
                runtime=runtime,
                cache=cache,
                request_timeout=120.0 if name == "tenant" else 0.3,
                memory_limit=32 << 20,
                options={"/g/...": a.triggers[0].wagi},
                threads=pool,
                offload=Offload.THREAD,
                slots=slots,
            )
        signals = [AbortSignal() for _ in range(3)]
        runaways = []
        for signal in signals:  # more runaway guests than the pool has threads
            request = req("/loop")
            request.abort = signal
            runaways.append(asyncio.ensure_future(executors["tenant"].handle(request)))
        await await_until(lambda: slots.held("tenant") >= 1, "a runaway guest holds a tenant slot")
        # The other app still gets a thread: its own guest runs (to its own 0.3 s deadline), long before
        # the tenant's 120 s deadline would free one.
        with pytest.raises(GuestTimeout):
            await asyncio.wait_for(executors["other"].handle(req("/loop")), 60)
        assert slots.held("tenant") == 1 and not any(task.done() for task in runaways)
        for signal in signals:
            signal.abort()
        results = await asyncio.gather(*runaways, return_exceptions=True)
        assert {type(r).__name__ for r in results} <= {"GuestAborted", "GuestTimeout"}
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def test_guest_threads_run_at_a_lower_priority() -> None:
    seen: list[tuple[int, int]] = []

    def thread() -> None:
        tid = threading.get_native_id()
        before = os.getpriority(os.PRIO_PROCESS, tid)
        lower_thread_priority(5)
        seen.append((before, os.getpriority(os.PRIO_PROCESS, tid)))

    worker = threading.Thread(target=thread)
    worker.start()
    worker.join(timeout=30)
    before, after = seen[0]
    assert after == min(19, before + 5)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before  # only that thread


def test_the_native_ticker_ticks_only_while_runs_are_in_flight(backend: str) -> None:
    if backend != "native":
        pytest.skip("the native ticker")
    runtime = Runtime(EngineSettings())
    try:
        ticker = runtime.ticker
        assert isinstance(ticker, NativeTicker) and ticker.sleeping  # nothing ran yet: no wake-ups
        ticker.enter()
        first = ticker.increments
        until = time.monotonic() + 30
        while ticker.increments < first + 3 and time.monotonic() < until:
            time.sleep(0.005)
        assert ticker.increments >= first + 3 and not ticker.sleeping
        ticker.leave()
        while not ticker.sleeping and time.monotonic() < until:  # after the 1 s linger
            time.sleep(0.01)
        assert ticker.sleeping
        idle = ticker.increments
        time.sleep(0.05)
        assert ticker.increments == idle  # asleep: the epoch no longer moves
    finally:
        runtime.close()
