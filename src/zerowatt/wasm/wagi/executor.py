"""The WAGI executor: a fresh wasmtime instance per request, in-process, CGI over WASI preview 1.

Per request: a new ``Store`` (memory cap, epoch deadline), a WASI context (argv, the CGI
environment, the body on stdin, stdout to a scratch file (:mod:`zerowatt.wasm.wagi.stdio`), stderr to the
log, read-only preopens and nothing else), an instance from the component's ``InstancePre`` and a call of its entry
point; stdout is then parsed as CGI output (:mod:`zerowatt.wasm.wagi.cgi`).

The hot path is one call of the native module (``_wagi_native.c``, built and loaded by
:mod:`zerowatt.wasm.native`) that does the whole sequence in C: about half the cost of making the same
wasmtime C API calls one by one through ctypes (docs/benchmarks.md). Where the module cannot be built,
:meth:`WagiExecutor._run_ctypes` makes those calls through wasmtime-py's ``_ffi`` bindings (not its
convenience classes, which rebuild type information and string arrays on every call). Both return the
same raw result, classified once by :meth:`WagiExecutor._outcome`. Compiling and loading modules still
goes through the public wasmtime-py objects.

Where a guest runs: fast guests run inline on the event loop's thread with a short "inline budget"
deadline; a guest still running when the budget expires is interrupted and run again from scratch on
a thread pool with the rest of its real deadline (ctypes releases the GIL while wasm runs, so the
event loop keeps serving). Re-running is safe because a WAGI guest has no side effects outside its
instance: preopens are read-only and WASI preview 1 gives it no sockets. This keeps the common case
free of a thread hand-off and guarantees that an infinite loop stalls the loop for at most the budget.

Deadlines and aborts (issue 10): a request's deadline runs from its arrival (``GuestRequest.received``)
and is checked against the monotonic clock at every epoch tick by the native module's epoch-deadline
callback, so it holds however starved the ticker is, and an interrupt during instantiation (a start
function) can only mean that a deadline passed: it is re-run on the pool after the inline budget, or
answered 504, never 500. A guest on the pool is aborted when its client disconnects
(``GuestRequest.abort``): the callback sees the run's abort flag at the next tick (no cross-thread
store access). The ctypes fallback counts ticks of the Python ticker inline and installs the same
check as a ctypes callback for runs on the pool. One app holds at most ``slots.per_app`` pool threads
(:mod:`zerowatt.wasm.wagi.fairness`).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import math
import threading
import time
from array import array
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from ctypes import POINTER, byref, c_char, c_char_p, cast
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from itertools import accumulate
from typing import TYPE_CHECKING, Any, NamedTuple

import wasmtime
from wasmtime import _ffi as ffi

from zerowatt.units import Bytes, Seconds
from zerowatt.wasm import native
from zerowatt.wasm.compile_cache import ModuleCache
from zerowatt.wasm.engine import Runtime
from zerowatt.wasm.executor import (
    GuestAborted,
    GuestError,
    GuestMemoryExceeded,
    GuestRequest,
    GuestResponse,
    GuestTimeout,
    GuestTrap,
    GuestUnavailable,
    Scalable,
    new_error_id,
)
from zerowatt.wasm.model import App, Component, WagiOptions
from zerowatt.wasm.wagi import stdio
from zerowatt.wasm.wagi.cgi import CgiOutputError, CgiPlan, cgi_environment, parse_cgi_output
from zerowatt.wasm.wagi.fairness import AppSlots
from zerowatt.wasm.wagi.stdio import InheritedStdout, StderrSink, stderr_callback

log = logging.getLogger(__name__)

_PP_CHAR = POINTER(POINTER(c_char))
_P_BYTE = POINTER(ffi.wasm_byte_t)
_P_TRAP = POINTER(ffi.wasm_trap_t)
_PLUS_ONE = (1).__add__
_NO_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)()
#: Hybrid offload: after a run outlives the inline budget, the component's requests go straight to the pool
#: for this long (renewed while they keep outliving it), instead of stalling the event loop a budget each.
SLOW_MEMORY: Seconds = 1.0
#: Guest output (headers + body) above this is answered 500. While it runs, a guest's output is
#: bounded only by its deadline (it goes to a scratch file, truncated after the run).
DEFAULT_MAX_RESPONSE: Bytes = 128 << 20


def _raw(name: str, restype: Any, *argtypes: Any) -> Any:
    """A second prototype of a wasmtime C function whose pointer arguments are plain addresses.

    wasmtime-py's prototypes take ``char**`` objects; building those with ``ctypes.cast`` per call
    costs more than the call. These take ``int`` addresses (our ``array`` buffers) directly.
    """
    function = ffi.dll._FuncPtr((name, ffi.dll))
    function.restype = restype
    function.argtypes = argtypes
    return function


_set_argv = _raw("wasi_config_set_argv", ctypes.c_bool, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)
_set_env = _raw(
    "wasi_config_set_env", ctypes.c_bool, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p
)


_STDERR_CALLBACK = ctypes.cast(stderr_callback, ctypes.c_void_p).value

# The ctypes path's epoch-deadline callback (the native module's on_epoch, for runs on the pool).
_EPOCH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p, POINTER(ctypes.c_uint64), POINTER(ctypes.c_uint8)
)
_set_epoch_callback = _raw(
    "wasmtime_store_epoch_deadline_callback", None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p
)
_error_new = _raw("wasmtime_error_new", ctypes.c_size_t, ctypes.c_char_p)


#: The ctypes path's callback checks the abort flag at least every this many ticks (50 ms at 5 ms a tick).
WATCH_TICKS = 10


class _Watch:
    """A run's wall-clock deadline and abort flag, checked by an epoch-deadline callback (ctypes path)."""

    __slots__ = ("abort", "callback", "deadline", "tick", "why")

    def __init__(self, timeout: Seconds, abort: bytearray, tick: Seconds) -> None:
        self.deadline = time.perf_counter() + timeout
        self.abort = abort
        self.tick = tick
        self.why: RunKind | None = None
        self.callback = _EPOCH_CALLBACK(self._check)

    def _check(self, _ctx: Any, _data: Any, delta: Any, kind: Any) -> int:
        if self.abort[0]:
            self.why = RunKind.ABORTED
            return int(_error_new(b"zerowatt: the request was aborted"))
        left = self.deadline - time.perf_counter()
        if left <= 0:
            self.why = RunKind.INTERRUPT
            return int(_error_new(b"zerowatt: the request's deadline passed"))
        # Each check takes the GIL: wake up at the deadline, or after WATCH_TICKS for the abort flag.
        delta[0] = max(1, min(WATCH_TICKS, math.ceil(left / self.tick)))
        kind[0] = 0  # WASMTIME_UPDATE_DEADLINE_CONTINUE
        return 0


class RunKind(IntEnum):
    """How one guest run ended; the numbers are the native module's (``_wagi_native.c``)."""

    OK = 0  # returned, or exited with status 0
    EXIT = 1  # exited with a non-zero status
    TRAP = 2  # trapped, or failed in a host call
    INTERRUPT = 3  # hit its epoch deadline
    INSTANTIATE = 4  # could not be instantiated (a start-up trap, or its memory above the cap)
    SETUP = 5  # its WASI context could not be set up (stdout file, preopens)
    NO_EXPORT = 6  # the entry point is not exported
    ABORTED = 7  # stopped because the client went away


#: ``(kind, exit status, message, guest memory size or -1, thread CPU seconds)``: one run, either backend.
_RawRun = tuple[int, int, "str | None", int, float]


class Offload(StrEnum):
    """Where guests run (see the module docstring; chosen by ``benchmarks/bench_host.py``)."""

    INLINE = "inline"  # on the caller's thread, always (an infinite loop blocks the event loop!)
    THREAD = "thread"  # always on the thread pool (one hand-off per request)
    HYBRID = "hybrid"  # inline with a short budget, re-run on the pool when the budget expires


class _Strings:
    """NUL-terminated strings in one buffer plus the ``char*`` addresses of each (cheap to build).

    ctypes' ``(c_char_p * n)(*items)`` costs ~0.3 µs per item; one encode, one buffer and one
    ``array`` of addresses built by C-level iteration is several times cheaper, and the hot path
    builds one of these (argv, names, values) per request.
    """

    __slots__ = ("_buffer", "addresses")

    def __init__(self, items: Sequence[str]) -> None:
        text = "\0".join(items)
        data = text.encode()
        # ASCII-only (the usual case): byte lengths equal str lengths, no per-item encode needed.
        lengths = map(len, items) if len(data) == len(text) else map(len, [item.encode() for item in items])
        self._buffer = ctypes.create_string_buffer(data)  # appends the last NUL
        self.addresses = array("Q", accumulate(map(_PLUS_ONE, lengths), initial=ctypes.addressof(self._buffer)))

    def at(self, index: int) -> Any:
        """A ``char**`` to the strings from ``index`` on (argv, names and values share one block)."""
        return cast(self.addresses.buffer_info()[0] + 8 * index, _PP_CHAR)


class _RoutePlan:
    """A route's :class:`CgiPlan`, its entry point, and (for the ctypes path) its fixed strings in one
    buffer that lives as long as the executor."""

    __slots__ = (
        "_block",
        "argv_by_query",
        "argv_no_query",
        "cgi",
        "entry",
        "entrypoint",
        "names",
        "values",
    )

    def __init__(self, cgi: CgiPlan, entrypoint: str) -> None:
        self.cgi = cgi
        self.entrypoint = entrypoint
        self.entry = entrypoint.encode()
        self.argv_no_query = cgi.argv("")
        self.argv_by_query: dict[str, list[str]] = {}  # a bounded memo: clients repeat query strings
        self._block = _Strings([*cgi.names, *cgi.fixed_values])
        n = len(cgi.names)
        self.names = self._block.addresses[:n]  # fixed names, then DYNAMIC_NAMES
        self.values = self._block.addresses[n : n + len(cgi.fixed_values)]  # + each request's dynamic values

    def argv_for(self, query: str) -> list[str]:
        argv = self.cgi.argv(query)
        if len(self.argv_by_query) >= 256:
            self.argv_by_query.clear()
        self.argv_by_query[query] = argv
        return argv


class _GuestEnv(NamedTuple):
    """A run's environment as fixed names and values (the route's, in ``plan``) plus this request's."""

    names_fixed: tuple[str, ...]
    names_extra: list[str]
    values_fixed: tuple[str, ...]
    values_extra: list[str]
    plan: _RoutePlan | None  # None: everything is in the extras (the general case)


@dataclass(slots=True)
class _Outcome:
    """What one guest run produced (before CGI parsing)."""

    stdout: bytes
    stderr: bytes
    cpu_seconds: float
    error: GuestError | None = None
    interrupted: bool = False


class WagiExecutor:
    """Runs one WAGI component of one app; implements :class:`zerowatt.wasm.executor.Scalable`.

    Its one instance is the loaded module: :meth:`scale_to` loads it (synchronously) or parks it.
    """

    def __init__(
        self,
        app: App,
        component: Component,
        *,
        runtime: Runtime,
        cache: ModuleCache,
        request_timeout: Seconds,
        memory_limit: Bytes,
        options: Mapping[str, WagiOptions] | None = None,
        threads: ThreadPoolExecutor | None = None,
        offload: Offload = Offload.HYBRID,
        inline_budget: Seconds = 0.02,
        stdout: InheritedStdout | None = None,
        max_response: Bytes = DEFAULT_MAX_RESPONSE,
        slots: AppSlots | None = None,
    ) -> None:
        self.app = app
        self.component = component
        self.runtime = runtime
        self.cache = cache
        self.request_timeout = component.limits.request_timeout or request_timeout
        self.memory_limit = component.limits.memory_limit or memory_limit
        self.options = dict(options or {})  # route pattern → WAGI options of the trigger
        self.threads = threads
        self.offload = offload if threads is not None else Offload.INLINE
        self.inline_budget = inline_budget
        self.stdout = stdout
        self.max_response = max_response
        self.slots = slots  # the per-app cap on pool threads (None: no cap)
        self._pool_until = 0.0  # hybrid: until then (perf_counter), requests skip the inline try (recently slow)
        self._pre: wasmtime.InstancePre | None = None  # set while loaded: what handle() instantiates
        self._parked: wasmtime.InstancePre | None = None  # kept across unload: see unload_now()
        self._checked = False
        self._static_env = component.guest_environment()  # variables as SPIN_VARIABLE_<NAME> + environment
        self._preopens = tuple((str(p.host_path).encode(), p.guest_path.encode()) for p in component.files)
        self._label = f"{app.name}/{component.id}"
        self._plans: dict[str, _RoutePlan] = {}  # matched route → its CGI plan and fixed strings
        self._native = native.load()  # the one-call fast path, or None for the ctypes path
        engine_address = ctypes.cast(runtime.engine.ptr(), ctypes.c_void_p).value
        assert engine_address is not None
        self._engine_address = engine_address
        self._pre_addresses: tuple[wasmtime.InstancePre, int] | None = None
        self._ticks: dict[Seconds, int] = {}  # timeout → epoch ticks
        self.starts = 0  # loads (cold starts)
        self.failures = 0  # loads that failed (the module cannot be read or linked)
        self.last_start_seconds: Seconds | None = None
        #: Called when the module is loaded or parked (the autoscaler listens).
        self.on_change: Callable[[], None] | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._pre is not None

    def load(self) -> Seconds:
        """Bring the component into memory; returns the seconds it took.

        The first load deserialises the module from the compile cache (``mmap`` + checks, ~0.4 ms)
        and links it; a load after :meth:`unload_now` takes back the parked ``InstancePre`` (~1 µs).
        """
        start = time.perf_counter()
        try:
            self._load()
        except Exception:
            self.failures += 1
            raise
        seconds = self.last_start_seconds = time.perf_counter() - start
        self.starts += 1
        self._changed()
        return seconds

    def _load(self) -> None:
        if self._parked is not None:
            self._pre, self._parked = self._parked, None
            return
        module, _cached = self.cache.load(self.component.source, self.component.source_digest)
        if not self._checked:  # listing exports costs ~0.1 ms in wasmtime-py: once per executor is enough
            entrypoints = {o.entrypoint for o in self.options.values()} or {WagiOptions().entrypoint}
            exports = {e.name for e in module.exports}
            for entry in sorted(entrypoints - exports):
                raise GuestUnavailable(f"{self._label}: the module exports no function {entry!r} (WAGI entry point)")
            self._checked = True
        try:
            pre = self.runtime.linker.instantiate_pre(module)
        except wasmtime.WasmtimeError as exc:
            raise GuestUnavailable(f"{self._label}: cannot link the module (WASI preview 1 only): {exc}") from None
        self._pre = pre

    async def unload(self) -> None:
        self.unload_now()

    @property
    def ready(self) -> int:
        return 0 if self._pre is None else 1

    def scale_to(self, n: int) -> None:
        """Load the module for ``n > 0`` (~0.1–0.4 ms, or ~1 µs from parked), park it for 0.

        A load that fails is counted in :attr:`failures` and logged; the request that wanted it loads
        again in :meth:`handle` and answers the error (503) with its id.
        """
        if n > 0 and self._pre is None:
            try:
                self.load()
            except Exception as exc:
                log.warning("%s: load failed: %s", self._label, exc)
        elif n <= 0:
            self.unload_now()

    def _changed(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change()
            except Exception:
                log.exception("%s: on_change callback failed", self._label)

    def unload_now(self) -> None:
        """Scale to zero: the component stops being loaded; its compiled code stays mapped.

        What a loaded WAGI component holds between requests is no instance (each request gets its
        own, gone when it ends), no thread and no timer, so idle it costs no CPU either way. What
        dropping the module would give back is its code mapping: clean, file-backed pages of the
        compile cache that the kernel reclaims under memory pressure anyway, plus the ``InstancePre``
        (a few KiB). Dropping it cost every first request after idle a deserialise and a link
        (+1.7 ms over HTTP against ``wasmtime serve``), so it is parked instead (measured in
        ``benchmarks/bench_startup.py``, docs/benchmarks.md). Requests in flight keep their own reference.
        """
        if self._pre is not None:
            self._parked, self._pre = self._pre, None
            self._changed()

    # -- requests --------------------------------------------------------------------------------
    async def handle(self, request: GuestRequest) -> GuestResponse:
        cold: Seconds | None = None
        if self._pre is None:
            try:
                cold = self.load()
            except GuestError as error:  # the module cannot be loaded: say so in the log, with the answer's id
                error.error_id = error.error_id or new_error_id()
                log.error(
                    "guest %s cannot be loaded [request %s, error %s]: %s",
                    self._label,
                    request.request_id,
                    error.error_id,
                    error,
                )
                raise
        pre = self._pre
        assert pre is not None
        now = time.perf_counter()
        # The deadline runs from the request's arrival: time spent queued behind others counts.
        left = self.request_timeout - (now - request.received if request.received else 0.0)
        caller = 0.0  # guest CPU spent on this (the event loop's) thread
        if self.offload is Offload.THREAD or (self.offload is Offload.HYBRID and now < self._pool_until):
            outcome = await self._run_in_thread(pre, request, left)
            if self.offload is Offload.HYBRID and time.perf_counter() - now > self.inline_budget:
                self._pool_until = time.perf_counter() + SLOW_MEMORY  # still slow: keep it off the loop
        else:
            budget = left
            if self.offload is Offload.HYBRID:
                budget = min(self.inline_budget, left)
            outcome = self.run(pre, request, budget)
            caller = outcome.cpu_seconds
            if outcome.interrupted and budget < left:
                # Slow: re-run on the pool, and send this component's next requests there directly for a
                # while, so that a burst of runaway guests does not stall the event loop one budget each.
                self._pool_until = time.perf_counter() + SLOW_MEMORY
                left -= time.perf_counter() - now
                spent = outcome.cpu_seconds
                outcome = await self._run_in_thread(pre, request, left)
                outcome.cpu_seconds += spent
        try:
            response = self._respond(request, outcome)
        except GuestError as error:
            error.caller_cpu_seconds = caller
            raise
        response.cold_start_seconds = cold
        response.caller_cpu_seconds = caller
        return response

    async def _run_in_thread(self, pre: wasmtime.InstancePre, request: GuestRequest, timeout: Seconds) -> _Outcome:
        """Run on the pool: within the app's share of it, abortable by the client, until ``timeout``."""
        slots, app = self.slots, self.app.name
        if slots is not None:
            start = time.perf_counter()
            if not await slots.acquire(app, timeout):  # the app's share is busy past this request's deadline
                return self._outcome(RunKind.INTERRUPT, 0, None, -1, "")
            timeout -= time.perf_counter() - start
        try:
            signal = request.abort
            if signal is not None and signal.aborted:  # the client left while it waited for a thread
                return self._outcome(RunKind.ABORTED, 0, None, -1, "")
            flag = bytearray(1)  # the run's abort flag: set here, read by the guest's thread at each tick

            def abort() -> None:
                flag[0] = 1

            if signal is not None:
                signal.add(abort)
            try:
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(
                    self.threads, self.run, pre, request, max(timeout, self.runtime.ticker.tick), flag
                )
            finally:
                if signal is not None:
                    signal.discard(abort)
        finally:
            if slots is not None:
                slots.release(app)

    def _respond(self, request: GuestRequest, outcome: _Outcome) -> GuestResponse:
        if outcome.stderr:
            for line in outcome.stderr.decode("utf-8", "replace").splitlines():
                log.info("guest %s stderr [request %s]: %s", self._label, request.request_id, line)
        error = outcome.error
        if error is None:
            try:
                cgi = parse_cgi_output(outcome.stdout)
            except CgiOutputError as exc:
                error = GuestTrap(f"{self._label}: {exc}", cpu_seconds=outcome.cpu_seconds)
            else:
                return GuestResponse(cgi.status, cgi.headers, cgi.body, cpu_seconds=outcome.cpu_seconds)
        error.error_id = error.error_id or new_error_id()
        error.cpu_seconds = outcome.cpu_seconds
        # A client that left is not a server error (nginx logs its 499 in the access log, not the error log).
        log.log(
            logging.INFO if isinstance(error, GuestAborted) else logging.ERROR,
            "guest %s failed [request %s, error %s, %s]: %s",
            self._label,
            request.request_id,
            error.error_id,
            type(error).__name__,
            error,
        )
        raise error

    def environment(self, request: GuestRequest) -> dict[str, str]:
        """The guest's full environment for ``request`` (component variables, then CGI's)."""
        return cgi_environment(request, base=self.app.base, extra=self._static_env)

    def _route_plan(self, route: str) -> _RoutePlan:
        plan = self._plans.get(route)
        if plan is None:
            options = self.options.get(route) or WagiOptions()
            cgi = CgiPlan.build(
                base=self.app.base, matched_route=route, extra=self._static_env, argv_template=options.argv
            )
            plan = self._plans[route] = _RoutePlan(cgi, options.entrypoint)
        return plan

    def run(
        self, pre: wasmtime.InstancePre, request: GuestRequest, timeout: Seconds, abort: bytearray | None = None
    ) -> _Outcome:
        """Run the guest once for ``request`` on the current thread (blocking); never raises for guest faults.

        ``abort``: a flag another thread sets (its first byte) to stop the run at the next epoch tick.
        """
        plan = self._plans.get(request.matched_route) or self._route_plan(request.matched_route)
        query = request.query
        argv = (plan.argv_by_query.get(query) or plan.argv_for(query)) if query else plan.argv_no_query
        cgi = plan.cgi
        if cgi.general:  # a component variable named HTTP_*: the plain dict semantics
            env = self.environment(request)
            guest_env = _GuestEnv((), list(env), (), list(env.values()), None)
        else:  # the route's fixed names and values, then this request's
            header_names, dynamic = cgi.values(request)
            guest_env = _GuestEnv(cgi.names, header_names, cgi.fixed_values, dynamic, plan)
        inherited = self.stdout if self.stdout is not None and self.stdout.owner == threading.get_ident() else None
        scratch = stdio.scratch if inherited is None else None
        if inherited is not None:
            inherited.begin()
        stderr: list[bytes] = []
        # stderr: the inherited fd 2 where the process set one up (free), else a callback (~35 µs a request).
        sink = StderrSink(stderr) if inherited is None or inherited.err_fd is None else None
        ticker = self.runtime.ticker
        ticker.enter()
        try:
            if self._native is not None:
                kind, code, message, memory_size, cpu = self._native.run(
                    self._engine_address,
                    self._pre_address(pre),
                    self.memory_limit,
                    float(timeout),
                    argv,
                    guest_env.names_fixed,
                    guest_env.names_extra,
                    guest_env.values_fixed,
                    guest_env.values_extra,
                    request.body,
                    None if scratch is None else scratch.path,
                    None if sink is None else _STDERR_CALLBACK,
                    None if sink is None else sink.handle,
                    self._preopens,
                    plan.entry,
                    abort,
                )
            else:
                deadline = self._ticks.get(timeout)
                if deadline is None:
                    deadline = ticker.ticks_for(timeout)
                    if len(self._ticks) < 8:  # the budget and the deadline; re-runs' remainders vary
                        self._ticks[timeout] = deadline
                watch = None if abort is None else _Watch(timeout, abort, ticker.tick)
                kind, code, message, memory_size, cpu = self._run_ctypes(
                    pre, deadline, argv, guest_env, request.body, scratch, sink, plan.entry, watch
                )
        finally:
            ticker.leave()
            if sink is not None:
                sink.close()
        if kind:
            outcome = self._outcome(RunKind(kind), code, message, memory_size, plan.entrypoint)
            outcome.cpu_seconds = cpu
        else:
            outcome = _Outcome(b"", b"", cpu)
        limit = None if outcome.error is not None else self.max_response
        if inherited is not None:
            stdout, outcome.stderr = inherited.collect(limit)
        else:
            stdout = stdio.scratch.collect(limit)
        if sink is not None:
            outcome.stderr = b"".join(stderr)
        if stdout is not None:
            outcome.stdout = stdout
        elif limit is not None:
            outcome.error = GuestTrap(f"{self._label}: the response is larger than {self.max_response} bytes")
        return outcome

    def _pre_address(self, pre: wasmtime.InstancePre) -> int:
        known = self._pre_addresses
        if known is not None and known[0] is pre:
            return known[1]
        address = ctypes.cast(pre.ptr(), ctypes.c_void_p).value
        assert address is not None
        self._pre_addresses = (pre, address)
        return address

    def _run_ctypes(
        self,
        pre: wasmtime.InstancePre,
        deadline: int,
        argv: list[str],
        env: _GuestEnv,
        body: bytes,
        scratch: stdio.Scratch | None,
        sink: StderrSink | None,
        entry: bytes,
        watch: _Watch | None = None,
    ) -> _RawRun:
        """The native module's ``run`` call by call through ctypes: the fallback where it cannot be built."""
        argc, k = len(argv), len(env.names_extra)
        strings = _Strings([*argv, *env.names_extra, *env.values_extra])  # this request's block
        addresses = strings.addresses
        names = addresses[argc : argc + k]
        values = addresses[argc + k : argc + k + len(env.values_extra)]
        if env.plan is not None:  # the route's fixed names and values first, from its own block
            names = env.plan.names + names
            values = env.plan.values + values
        envc = len(names)
        store = ffi.wasmtime_store_new(self.runtime.engine.ptr(), None, _NO_FINALIZER)
        cpu_start = time.thread_time()
        try:
            ctx = ffi.wasmtime_store_context(store)
            ffi.wasmtime_store_limiter(store, self.memory_limit, -1, -1, -1, -1)
            wasi = ffi.wasi_config_new()
            _set_argv(wasi, argc, addresses.buffer_info()[0])
            _set_env(wasi, envc, names.buffer_info()[0], values.buffer_info()[0])
            if body:  # without it, stdin is empty (EOF at once)
                vec = ffi.wasm_byte_vec_t()
                ffi.wasm_byte_vec_new(byref(vec), len(body), cast(c_char_p(body), _P_BYTE))
                ffi.wasi_config_set_stdin_bytes(wasi, byref(vec))  # takes ownership of the vector
            if scratch is None:
                ffi.wasi_config_inherit_stdout(wasi)
            elif not ffi.wasi_config_set_stdout_file(wasi, scratch.path):
                ffi.wasi_config_delete(wasi)
                return RunKind.SETUP, 0, "cannot open the stdout scratch file", -1, 0.0
            if sink is None:
                ffi.wasi_config_inherit_stderr(wasi)
            else:
                ffi.wasi_config_set_stderr_custom(wasi, stderr_callback, sink.handle, _NO_FINALIZER)
            for host_path, guest_path in self._preopens:
                if not ffi.wasi_config_preopen_dir(wasi, host_path, guest_path, False):
                    ffi.wasi_config_delete(wasi)
                    return RunKind.SETUP, 0, "cannot preopen a directory of the component's files", -1, 0.0
            error = ffi.wasmtime_context_set_wasi(ctx, wasi)  # consumes the config
            if error:
                return RunKind.SETUP, 0, _error_text(error), -1, 0.0
            if watch is None:
                ffi.wasmtime_context_set_epoch_deadline(ctx, deadline)
            else:  # checked at every tick against the clock and the abort flag
                _set_epoch_callback(store, ctypes.cast(watch.callback, ctypes.c_void_p), None, None)
                ffi.wasmtime_context_set_epoch_deadline(ctx, 1)
            kind, code, message, memory_size = self._instantiate_and_call(pre, ctx, entry)
            if watch is not None and watch.why is not None and kind is not RunKind.OK:
                kind, code, message, memory_size = watch.why, 0, None, -1
            return kind, code, message, memory_size, time.thread_time() - cpu_start
        finally:
            ffi.wasmtime_store_delete(store)

    def _instantiate_and_call(
        self, pre: wasmtime.InstancePre, ctx: Any, name: bytes
    ) -> tuple[RunKind, int, str | None, int]:
        instance = ffi.wasmtime_instance_t()
        trap = _P_TRAP()
        error = ffi.wasmtime_instance_pre_instantiate(pre.ptr(), ctx, byref(instance), byref(trap))
        if error:
            return RunKind.INSTANTIATE, 0, _error_text(error), -1
        if trap:
            start_trap = wasmtime.Trap._from_ptr(trap)
            if start_trap.trap_code is wasmtime.TrapCode.INTERRUPT:
                # A start function ran past the deadline: a timeout (re-run on the pool after the inline budget).
                return RunKind.INTERRUPT, 0, None, -1
            return RunKind.INSTANTIATE, 0, start_trap.message, -1
        extern = ffi.wasmtime_extern_t()
        if not ffi.wasmtime_instance_export_get(ctx, byref(instance), name, len(name), byref(extern)):
            return RunKind.NO_EXPORT, 0, None, -1
        error = ffi.wasmtime_func_call(ctx, byref(extern.of.func), None, 0, None, 0, byref(trap))
        if not error and not trap:
            return RunKind.OK, 0, None, -1
        if error:
            exc = wasmtime.WasmtimeError._from_ptr(error)
            if isinstance(exc, wasmtime.ExitTrap):
                if exc.code == 0:
                    return RunKind.OK, 0, None, -1
                return RunKind.EXIT, exc.code, None, _memory_size(ctx, instance)
            return RunKind.TRAP, 0, str(exc), _memory_size(ctx, instance)
        trap_obj = wasmtime.Trap._from_ptr(trap)
        if trap_obj.trap_code is wasmtime.TrapCode.INTERRUPT:
            return RunKind.INTERRUPT, 0, None, -1
        return RunKind.TRAP, 0, trap_obj.message, _memory_size(ctx, instance)

    def _outcome(self, kind: RunKind, code: int, message: str | None, memory_size: int, entrypoint: str) -> _Outcome:
        """What a run's result means for the request (the same for both backends)."""
        label = self._label
        error: GuestError | None = None
        interrupted = False
        if kind is RunKind.OK:
            pass
        elif kind is RunKind.INTERRUPT:
            error = GuestTimeout(f"{label}: the request ran past its {self.request_timeout:g} s deadline")
            interrupted = True
        elif kind is RunKind.INSTANTIATE:
            text = message or ""
            if "memory" in text and ("limit" in text or "exceed" in text):
                error = GuestMemoryExceeded(f"{label}: instantiation: {text}")
            else:
                error = GuestTrap(f"{label}: instantiation failed: {text}")
        elif kind is RunKind.SETUP:
            error = GuestUnavailable(f"{label}: {message}")
        elif kind is RunKind.NO_EXPORT:
            error = GuestUnavailable(f"{label}: no export {entrypoint!r}")
        elif kind is RunKind.ABORTED:
            error = GuestAborted(f"{label}: the client went away; the guest was stopped")
        else:
            reason = message if kind is RunKind.TRAP else f"the guest exited with status {code}"
            error = self._failure(reason, memory_size)
        outcome = _Outcome(b"", b"", 0.0, error)
        outcome.interrupted = interrupted
        return outcome

    def _failure(self, message: str | None, memory_size: int) -> GuestError:
        """A trap or non-zero exit; classified as memory exhaustion when the guest's memory is at its cap.

        wasmtime answers a ``memory.grow`` past the store's limit with -1 rather than a trap, so the
        guest fails later (``abort()`` after ``malloc`` returns NULL). A failure with less than one
        sixteenth of the cap (at least 1 MiB) left unallocated is reported as the cap being hit.
        """
        if memory_size >= 0 and self.memory_limit - memory_size < max(1 << 20, self.memory_limit // 16):
            return GuestMemoryExceeded(f"{self._label}: memory cap of {self.memory_limit} bytes reached ({message})")
        return GuestTrap(f"{self._label}: {message}")


def _error_text(error: Any) -> str:
    return str(wasmtime.WasmtimeError._from_ptr(error))


def _memory_size(ctx: Any, instance: Any) -> int:
    """The size of the instance's exported ``memory`` in bytes, or -1 where it exports none."""
    extern = ffi.wasmtime_extern_t()
    if ffi.wasmtime_instance_export_get(ctx, byref(instance), b"memory", 6, byref(extern)) and (
        int(extern.kind) == ffi.WASMTIME_EXTERN_MEMORY.value
    ):
        return int(ffi.wasmtime_memory_data_size(ctx, byref(extern.of.memory)))
    return -1


if TYPE_CHECKING:  # mypy checks here that the class implements the host's side of it
    _SCALABLE: type[Scalable] = WagiExecutor
