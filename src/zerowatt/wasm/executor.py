"""The contract between the HTTP host and the executors that run guests.

The host turns an HTTP request into a :class:`GuestRequest`, hands it to the component's
:class:`Executor` and turns the :class:`GuestResponse` (or one of the :class:`GuestError` subclasses)
into an HTTP response. Executors own their guest's lifecycle (compile/load, per-request instances,
child processes) and report what each request cost, so the host can account CPU time and joules.
Every executor is also :class:`Scalable`: the host's autoscaler (:mod:`zerowatt.host.autoscale`) reads
how many instances are ready and sets how many it wants, through that protocol and nothing else.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from zerowatt.units import Seconds


class AbortSignal:
    """Set by the HTTP front when the client of a request goes away; executors hook what stops the work.

    Why callbacks instead of cancelling the request's task: a guest on the thread pool cannot be
    cancelled by asyncio (its thread runs on); the WAGI executor registers a callback that raises the
    run's abort flag, which the guest's own thread checks at the next epoch tick.
    """

    __slots__ = ("_callbacks", "aborted")

    def __init__(self) -> None:
        self.aborted = False
        self._callbacks: list[Callable[[], None]] = []

    def add(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` on :meth:`abort` (at once if it already happened)."""
        if self.aborted:
            callback()
        else:
            self._callbacks.append(callback)

    def discard(self, callback: Callable[[], None]) -> None:
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def abort(self) -> None:
        """The client is gone: run every callback once (idempotent)."""
        if self.aborted:
            return
        self.aborted = True
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()


@dataclass(slots=True)
class GuestRequest:
    """An HTTP request as the guest will see it (already routed). Read-only by convention.

    Not a frozen dataclass on purpose: frozen ``__init__`` sets each field through
    ``object.__setattr__``, which measured ~2.6 µs per request against ~0.7 µs, on a path whose
    whole budget is ~60 µs (docs/benchmarks.md).
    """

    request_id: str
    method: str
    path: str  # the raw path without the query string, e.g. "/api/items/7"
    query: str  # the raw query string without "?", possibly ""
    headers: tuple[tuple[str, str], ...]  # header names lower-case, in arrival order
    body: bytes
    matched_route: str  # the route pattern that matched, e.g. "/api/..."
    path_info: str  # the part of the path after the route's fixed prefix ("" for exact routes)
    #: ``:name`` route parameters and the raw segments they matched (Spin's ``spin-path-match-<name>``).
    path_params: tuple[tuple[str, str], ...] = ()
    scheme: str = "http"
    host: str = "127.0.0.1"  # the Host header's host (or the listener's address)
    port: int = 80
    client_addr: str = "127.0.0.1"
    client_port: int = 0
    app: str = ""
    component: str = ""
    #: ``time.perf_counter()`` when the request arrived (0: when the executor got it); deadlines run from it.
    received: float = 0.0
    #: Set when the client disconnects (None: the front cannot tell, e.g. under an ASGI server).
    abort: AbortSignal | None = None


@dataclass(slots=True)
class GuestResponse:
    """What the guest answered, plus what it cost."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    cpu_seconds: float = 0.0  # guest CPU time spent on this request (thread/process CPU clock)
    caller_cpu_seconds: float = 0.0  # the part of cpu_seconds spent on the caller's thread (a guest run inline)
    cold_start_seconds: float | None = None  # set when this request had to load the component first


def new_error_id() -> str:
    """A fresh id for one failed request: sent to the client (``x-error-id``, the body) and logged with it."""
    return uuid.uuid4().hex[:12]


class GuestError(Exception):
    """A guest failed; ``status`` is the HTTP status the host answers, ``error_id`` is in the log."""

    status = 500

    def __init__(self, message: str, error_id: str = "", cpu_seconds: float = 0.0) -> None:
        super().__init__(message)
        self.error_id = error_id
        self.cpu_seconds = cpu_seconds
        self.caller_cpu_seconds = 0.0  # the part of cpu_seconds spent on the caller's thread


class GuestTimeout(GuestError):
    """The request's wall-clock deadline passed (epoch interruption or proxy timeout): 504."""

    status = 504


class GuestMemoryExceeded(GuestError):
    """The instance tried to grow its memory past the cap: 500."""


class GuestTrap(GuestError):
    """The guest trapped (unreachable, out-of-bounds, bad CGI output ...): 500."""


class GuestAborted(GuestError):
    """The client went away while the guest ran, and the guest was stopped (nginx's 499; never sent)."""

    status = 499


class GuestUnavailable(GuestError):
    """The guest could not be started or reached (e.g. ``wasmtime serve`` failed): 503."""

    status = 503


class Executor(Protocol):
    """Runs one component. Implementations: WAGI (in-process wasmtime), wasi:http (``wasmtime serve``)."""

    @property
    def loaded(self) -> bool:
        """Whether the component is in memory / its process is running (False after :meth:`unload`)."""
        ...

    async def handle(self, request: GuestRequest) -> GuestResponse:
        """Serve one request, loading the component first if it is not loaded (a cold start)."""
        ...

    async def unload(self) -> None:
        """Drop the component from memory / stop its process (scale to zero). Idempotent."""
        ...


class Scalable(Executor, Protocol):
    """An executor whose instances the host's autoscaler counts and sets (both executors implement it).

    An *instance* is what serves requests: WAGI's is the loaded module (at most one, in-process; each
    request still gets a fresh wasm instance), wasi:http's is a ``wasmtime serve`` child (0 to N).
    """

    #: The per-request deadline (seconds); the activator holds a request at most this long.
    request_timeout: Seconds
    #: Called whenever :attr:`ready` may have changed (an instance became ready, stopped, crashed or
    #: failed to start); set by the autoscaler. Never raises into the executor.
    on_change: Callable[[], None] | None

    @property
    def ready(self) -> int:
        """Instances ready to serve now."""
        ...

    @property
    def starts(self) -> int:
        """Instances started so far (each a cold start of the component)."""
        ...

    @property
    def failures(self) -> int:
        """Starts that failed so far (the activator then lets held requests through to get the error)."""
        ...

    @property
    def last_start_seconds(self) -> Seconds | None:
        """How long the latest start took (None: nothing started yet)."""
        ...

    def scale_to(self, n: int) -> None:
        """Converge to ``n`` instances: start missing ones (synchronously or in the background, then
        :attr:`on_change` fires) and stop surplus ones that serve no request."""
        ...
