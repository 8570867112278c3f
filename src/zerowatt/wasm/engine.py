"""One configured ``wasmtime.Engine`` per process, and the epoch ticker that enforces deadlines.

Why one engine: compiled code, the pooling allocator's slots and the epoch counter all belong to an
engine, so every component of every app in a worker shares it. Settings are chosen for this workload
(many short-lived instances of small modules): the pooling allocator makes a fresh instance per
request cheap (slots are reused instead of ``mmap``-ed each time; measured in
``benchmarks/bench_host.py``), epoch interruption gives each request a wall-clock deadline at the cost
of one counter check per loop header, and Cranelift optimises for speed.

The epoch ticker increments the engine's epoch, but only while at least one request is in flight: an
idle host wakes up for nothing ("0 servers == 0 watts"). Where the native module is available
(:mod:`zerowatt.wasm.native`) it is a pthread inside it (:class:`NativeTicker`) that needs no GIL, and
each run checks its deadline against the monotonic clock at every tick; a Python thread starved of the
GIL or the CPU stretched a 2 s deadline to ~10 s under 16 spinning guests (issue 10). Without the
module, :class:`EpochTicker` is a Python thread that increments once per tick *elapsed* (a late
wake-up catches up), so the tick count still follows the clock as long as the thread runs at all.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import wasmtime
from wasmtime import _ffi as wasmtime_ffi

from zerowatt.units import MIB, Bytes, Seconds
from zerowatt.wasm.compile_cache import wasmtime_version
from zerowatt.wasm.limits import DEFAULT_MEMORY_LIMIT as DEFAULT_MEMORY_LIMIT
from zerowatt.wasm.limits import DEFAULT_REQUEST_TIMEOUT as DEFAULT_REQUEST_TIMEOUT


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """Everything that shapes an engine; its :meth:`fingerprint` keys the compile cache."""

    pooling: bool = True  # pooling instance allocator (reused slots) vs on-demand mmap per instance
    opt_level: str = "speed"  # Cranelift: "none" | "speed" | "speed_and_size"
    epoch_tick: Seconds = 0.005  # deadline granularity; the ticker only runs while requests are in flight
    max_instances: int = 256  # pooling: instances (and memories, tables) alive at once in this process
    max_memory: Bytes = 4096 * MIB  # pooling: the largest linear memory a slot can hold (per-store caps are lower)
    # pooling: bytes of a slot's linear memory (and table) that are zeroed with memset when an instance
    # ends instead of being given back with madvise: the next instance then takes no page faults on
    # them. Measured on the C echo app in pure C: 33 → 20 µs per fresh-instance request (docs/benchmarks.md).
    keep_resident: Bytes = 1 * MIB
    # Copy-on-write memory images pay off for big data segments; for small guests, copying the data at
    # instantiation measured faster: cold start −6%, warm request −2.5% (C echo app, same-process A/B).
    memory_init_cow: bool = False

    def fingerprint(self) -> str:
        """Hash of the settings that affect compiled code, plus the wasmtime version."""
        payload = json.dumps({**asdict(self), "wasmtime": wasmtime_version()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def make_config(settings: EngineSettings) -> wasmtime.Config:
    """A ``wasmtime.Config`` for ``settings`` (not yet consumed by an engine)."""
    config = wasmtime.Config()
    config.epoch_interruption = True
    config.cranelift_opt_level = settings.opt_level
    config.memory_init_cow = settings.memory_init_cow
    if settings.pooling:
        # wasmtime-py has no wrapper for the pooling allocator yet; its C API is exposed in _ffi.
        pool = wasmtime_ffi.wasmtime_pooling_allocation_config_new()
        try:
            wasmtime_ffi.wasmtime_pooling_allocation_config_total_core_instances_set(pool, settings.max_instances)
            wasmtime_ffi.wasmtime_pooling_allocation_config_total_memories_set(pool, settings.max_instances)
            wasmtime_ffi.wasmtime_pooling_allocation_config_total_tables_set(pool, settings.max_instances)
            wasmtime_ffi.wasmtime_pooling_allocation_config_total_stacks_set(pool, settings.max_instances)
            wasmtime_ffi.wasmtime_pooling_allocation_config_max_memory_size_set(
                pool, ctypes.c_size_t(settings.max_memory)
            )
            wasmtime_ffi.wasmtime_pooling_allocation_config_linear_memory_keep_resident_set(
                pool, ctypes.c_size_t(settings.keep_resident)
            )
            wasmtime_ffi.wasmtime_pooling_allocation_config_table_keep_resident_set(
                pool, ctypes.c_size_t(settings.keep_resident)
            )
            wasmtime_ffi.wasmtime_pooling_allocation_strategy_set(config.ptr(), pool)
        finally:
            wasmtime_ffi.wasmtime_pooling_allocation_config_delete(pool)
    return config


class EpochTicker:
    """Advances an engine's epoch every ``tick`` seconds while requests are in flight.

    ``enter()``/``leave()`` bracket each guest run. The thread keeps ticking while runs come and
    for ``linger`` seconds after the last one, then sleeps on a condition variable, so an idle host
    does not wake up, while a busy one pays no wake-up per request (waking the thread on every
    request measured ~7 µs of the C echo app's ~190 µs). Deadlines are relative to the epoch at ``enter``.
    """

    native = False  # the pure-Python ticker (the ctypes fallback's)

    def __init__(self, engine: wasmtime.Engine, tick: Seconds, linger: Seconds = 1.0) -> None:
        self._engine = engine
        self._tick = tick
        self._linger_ticks = max(1, math.ceil(linger / tick))
        self._active = 0
        self._entries = 0  # runs started so far: a tick that saw none in flight may still have had some
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)  # a plain lock: cheaper than the default RLock
        self._sleeping = True
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="zerowatt-epoch", daemon=True)
        self._thread.start()

    @property
    def tick(self) -> Seconds:
        return self._tick

    def ticks_for(self, timeout: Seconds) -> int:
        """Epoch ticks to allow for ``timeout``: the first tick may come at once, so one more than the quotient."""
        return max(1, math.ceil(timeout / self._tick)) + 1

    def enter(self) -> None:
        with self._lock:
            self._active += 1
            self._entries += 1
            if self._sleeping:
                self._sleeping = False
                self._cond.notify()

    def leave(self) -> None:
        with self._lock:
            self._active -= 1

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join(timeout=1.0)

    def _run(self) -> None:
        idle = 0  # consecutive ticks without a run
        seen = 0
        tick = self._tick
        due = 0.0  # when the next tick is due (monotonic), set when ticking starts
        while True:
            with self._cond:
                if self._active or self._entries != seen:
                    seen = self._entries
                    idle = 0
                else:
                    idle += 1
                if idle > self._linger_ticks:
                    self._sleeping = True
                if self._sleeping or not due:
                    while self._sleeping and not self._stopped:
                        self._cond.wait()
                        idle = 0
                    due = time.monotonic() + tick
                if self._stopped:
                    return
            # A plain sleep, not a condition wait: an ``enter`` must not shorten the current tick.
            time.sleep(max(0.0, due - time.monotonic()))
            late = time.monotonic() - due  # >= 0 unless the sleep ended early
            missed = min(int(late / tick), 1000) if late > 0 else 0  # ticks that passed while starved
            for _ in range(1 + missed):
                self._engine.increment_epoch()
            due = due + (1 + missed) * tick if late < 1000 * tick else time.monotonic() + tick


class NativeTicker:
    """The native module's epoch ticker thread (``_wagi_native.Ticker``), with :class:`EpochTicker`'s interface.

    ``enter``/``leave`` are the C methods themselves (no Python frame per request).
    """

    __slots__ = ("_ticker", "enter", "leave", "tick")
    native = True

    def __init__(self, module: Any, engine: wasmtime.Engine, tick: Seconds, linger: Seconds = 1.0) -> None:
        address = ctypes.cast(engine.ptr(), ctypes.c_void_p).value
        self._ticker = module.Ticker(engine, address, tick, linger)
        self.enter: Callable[[], None] = self._ticker.enter
        self.leave: Callable[[], None] = self._ticker.leave
        self.tick = tick

    def ticks_for(self, timeout: Seconds) -> int:
        return max(1, math.ceil(timeout / self.tick)) + 1

    @property
    def increments(self) -> int:
        """Epoch increments made so far (the thread counts them)."""
        return int(self._ticker.increments)

    @property
    def sleeping(self) -> bool:
        return bool(self._ticker.sleeping)

    def stop(self) -> None:
        self._ticker.stop()


def make_ticker(engine: wasmtime.Engine, tick: Seconds) -> EpochTicker | NativeTicker:
    """The native ticker where the native module loads (see :mod:`zerowatt.wasm.native`), else the Python one."""
    from zerowatt.wasm import native  # imports this module: not at the top

    module = native.load()
    if module is None:
        return EpochTicker(engine, tick)
    return NativeTicker(module, engine, tick)


class Runtime:
    """The process's engine, its ticker and the settings they were made from."""

    def __init__(self, settings: EngineSettings | None = None) -> None:
        self.settings = settings or EngineSettings()
        self.engine = wasmtime.Engine(make_config(self.settings))
        self.ticker = make_ticker(self.engine, self.settings.epoch_tick)
        self.linker = wasmtime.Linker(self.engine)
        self.linker.define_wasi()

    def close(self) -> None:
        self.ticker.stop()
