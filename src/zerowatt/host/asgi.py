"""The ASGI application of the data plane: route, read the body, run the guest, answer, account.

Kept deliberately flat: this is the per-request hot path, and every attribute lookup and allocation
shows up in the throughput benchmark (see docs/benchmarks.md for the breakdown).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, Protocol

from zerowatt.wasm.executor import AbortSignal, GuestAborted, GuestError, GuestRequest, GuestResponse
from zerowatt.wasm.model import App, Component, HttpTrigger

from .metrics import HostMetrics, Observation, ObserverList
from .pool import ComponentPool
from .settings import HostSettings

if TYPE_CHECKING:  # the autoscaler (and the policies' numpy) is imported only when a --policy asks for it
    from .autoscale import HostAutoscaler

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class RouteMatchLike(Protocol):
    """What the host needs from :meth:`zerowatt.wasm.router.Router.match`."""

    @property
    def app(self) -> App: ...
    @property
    def trigger(self) -> HttpTrigger: ...
    @property
    def component(self) -> Component: ...
    @property
    def path_info(self) -> str: ...


Matcher = Callable[[str], RouteMatchLike | None]
#: What :meth:`HostApp.respond` answers: status, headers (lower-case names, no framing ones), body.
Reply = tuple[int, list[tuple[str, str]], bytes]

_TEXT = [(b"content-type", b"text/plain; charset=utf-8")]
TEXT_PLAIN = [("content-type", "text/plain; charset=utf-8")]
#: Response headers the host sets itself (framing, RFC 9110 hop-by-hop fields); a guest's are dropped.
#: Statuses whose responses never have content, nor Content-Length (RFC 9110 8.6, 15.3.5, 15.4.5).
NO_CONTENT = frozenset({204, 304})
HOST_OWNED = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "te", "trailer", "upgrade", "proxy-connection"}
)


class HostApp:
    """One worker's HTTP front: an ASGI callable over a :class:`ComponentPool`."""

    def __init__(
        self,
        match: Matcher,
        pool: ComponentPool,
        settings: HostSettings,
        metrics: HostMetrics | None = None,
        observers: ObserverList | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_startup: Callable[[], Awaitable[None]] | None = None,
        on_shutdown: Callable[[], None] | None = None,
        batch_observers: bool = False,
        autoscaler: HostAutoscaler | None = None,
    ) -> None:
        self.match = match
        self.autoscaler = autoscaler
        self.pool = pool
        self.settings = settings
        self.metrics = metrics
        self.observers: ObserverList = list(observers or [])
        if metrics is not None:
            self.observers.insert(0, metrics)
        self.clock = clock
        self.on_startup = on_startup
        self.on_shutdown = on_shutdown
        # Workers batch observations: observers run once per event-loop iteration with everything
        # answered in it (an observer with ``observe_many`` gets the whole batch).
        self.batch_observers = batch_observers
        self._batch: list[Observation] = []
        self._ids = itertools.count(1)
        self._id_prefix = f"{os.getpid():x}-"
        self._loaded_event: asyncio.Event | None = None
        self._reaper: asyncio.Task[None] | None = None
        if metrics is not None:
            pool.on_unload = lambda slot: metrics.set_loaded(slot.labels[0], slot.labels[1], False)
            for app, component in pool.slots:
                metrics.set_loaded(app, component, False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self.http(scope, receive, send)
        elif kind == "lifespan":
            await self.lifespan(receive, send)

    # -- lifespan: the idle reaper lives as long as the server ----------------------------------
    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        self._loaded_event = asyncio.Event()
        if self.settings.idle_unload is not None and self.autoscaler is None:
            self._reaper = asyncio.create_task(self._reap(self.settings.idle_unload))
        if self.on_startup is not None:
            await self.on_startup()

    async def shutdown(self) -> None:
        self.flush_observations()
        if self._reaper is not None:
            self._reaper.cancel()
        if self.autoscaler is not None:
            self.autoscaler.close()
            self.autoscaler.log_summary()
        await self.pool.close()
        if self.on_shutdown is not None:
            self.on_shutdown()

    async def _reap(self, idle_after: float) -> None:
        """Unload idle components; sleeps until the next possible expiry, or until something loads."""
        event = self._loaded_event
        assert event is not None
        while True:
            try:
                await self.pool.unload_idle(self.clock(), idle_after)
            except Exception:  # an executor failing to stop must not end the reaper
                log.exception("unloading idle components failed")
            expiry = self.pool.next_expiry(idle_after)
            if expiry is None:
                event.clear()
                await event.wait()
                continue
            await asyncio.sleep(max(expiry - self.clock(), 0.01))

    # -- requests --------------------------------------------------------------------------------
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI adapter: decode the scope, read the body, :meth:`respond`, send the reply."""
        started = time.perf_counter()
        raw = scope.get("raw_path")
        path = raw.decode("latin-1").partition("?")[0] if raw else scope["path"]
        match = self.match(path)
        if match is None:
            await _answer(send, 404, b"not found\n")
            return
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        body = await self._read_body(headers, receive)
        if body is None:
            await _answer(send, 413, b"request body too large\n")
            return
        server = scope.get("server") or ("127.0.0.1", 80)
        client = scope.get("client") or ("", 0)
        status, out, body = await self.respond(
            match,
            scope["method"],
            path,
            scope["query_string"].decode("latin-1"),
            headers,
            body,
            server,
            client,
            scope.get("scheme", "http"),
            started,
        )
        encoded = [(k.encode(), v.encode()) for k, v in out]
        if status not in NO_CONTENT:  # respond() already emptied their body; no Content-Length either
            encoded.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": encoded})
        await send({"type": "http.response.body", "body": body})

    async def respond(
        self,
        match: RouteMatchLike,
        method: str,
        path: str,
        query: str,
        headers: list[tuple[str, str]],
        body: bytes,
        server: tuple[str, int] | Any,
        client: tuple[str, int] | Any,
        scheme: str,
        started: float,
        abort: AbortSignal | None = None,
    ) -> Reply:
        """Run the matched component for one request (body already read); never raises.

        Server-independent: the ASGI adapter (:meth:`http`) and the native HTTP/1.1 server
        (:mod:`zerowatt.host.http`) both call it. The reply's headers exclude the framing ones
        (``content-length`` etc.): the caller frames the body. ``started`` is ``time.perf_counter()``
        when the request arrived (the duration metric and the guest's deadline start there). ``abort``:
        set by the caller when the client disconnects (the guest is stopped, the reply is 499 and not sent).
        """
        app, component = match.app, match.component
        slot = self.pool.slots[(app.name, component.id)]
        request = GuestRequest(
            request_id=self._id_prefix + format(next(self._ids), "x"),
            method=method,
            path=path,
            query=query,
            headers=tuple(headers),
            body=body,
            matched_route=match.trigger.route.pattern,
            path_info=match.path_info,
            scheme=scheme,
            host=str(server[0]),
            port=int(server[1] or 80),
            client_addr=str(client[0]),
            client_port=int(client[1] or 0),
            app=app.name,
            component=component.id,
            received=started,
            abort=abort,
        )
        executor = slot.executor
        cold = not executor.loaded
        if cold and self._loaded_event is not None:
            self._loaded_event.set()
        scaler = self.autoscaler.get((app.name, component.id)) if self.autoscaler is not None else None
        if scaler is None:
            slot.in_flight += 1
        else:
            # The activator: held until an instance is ready (a cold start), bounded by the deadline.
            deadline = getattr(executor, "request_timeout", self.settings.request_timeout)
            try:
                if await scaler.admit(deadline):  # admitted: counted in slot.in_flight by the scaler
                    slot.cold_starts += 1
            except TimeoutError:
                error_id = uuid.uuid4().hex[:12]
                log.error(
                    "%s/%s did not start in time [request %s, error %s]",
                    app.name,
                    component.id,
                    request.request_id,
                    error_id,
                )
                message = f"gateway timeout ({app.name}/{component.id} did not start in time; error id {error_id})\n"
                self._observe(app.name, component.id, 504, time.perf_counter() - started, 0.0)
                return (504, [*TEXT_PLAIN, ("x-error-id", error_id)], message.encode())
            cold = False  # counted by the scaler
        cpu = 0.0
        reply: Reply
        try:
            response: GuestResponse = await executor.handle(request)
        except GuestError as exc:
            status, cpu = exc.status, exc.cpu_seconds
            if cold and executor.loaded:  # loaded, then the guest failed: still a cold start (duration unknown)
                slot.cold_starts += 1
                if self.metrics is not None:
                    self.metrics.cold_start(app.name, component.id, None)
            if isinstance(exc, GuestAborted) and self.metrics is not None:
                self.metrics.request_aborted(app.name, component.id)
            if not exc.error_id:  # every 5xx carries an id that is in the log; executors log their own
                exc.error_id = uuid.uuid4().hex[:12]
                log.error(
                    "guest %s/%s failed [request %s, error %s, %s]: %s",
                    app.name,
                    component.id,
                    request.request_id,
                    exc.error_id,
                    type(exc).__name__,
                    exc,
                )
            message = {504: "gateway timeout", 503: "service unavailable", 499: "client closed request"}.get(
                status, "internal server error"
            )
            reply = (
                status,
                [*TEXT_PLAIN, ("x-error-id", exc.error_id)],
                f"{message} (error id {exc.error_id})\n".encode(),
            )
        except Exception:
            error_id = uuid.uuid4().hex[:12]
            log.exception("host error serving %s [request %s, error %s]", path, request.request_id, error_id)
            status = 500
            reply = (
                500,
                [*TEXT_PLAIN, ("x-error-id", error_id)],
                f"internal server error (error id {error_id})\n".encode(),
            )
        else:
            status, cpu = response.status, response.cpu_seconds
            if status < 200:
                status, reply = 500, _refuse_interim(response.status, path, request.request_id)
            else:
                # The host frames the body: the caller's explicit Content-Length replaces whatever framing
                # or hop-by-hop headers the guest wrote. 204 and 304 never have content (RFC 9110 15.3.5,
                # 15.4.5): a guest's body is dropped so the connection stays in step (RFC 9112 6.3).
                body = b"" if status in NO_CONTENT else response.body
                reply = (status, [h for h in response.headers if h[0] not in HOST_OWNED], body)
            if response.cold_start_seconds is not None and scaler is None:
                slot.cold_starts += 1
                log.info("cold start %s/%s: %.3f ms", app.name, component.id, response.cold_start_seconds * 1e3)
                if self.metrics is not None:
                    self.metrics.cold_start(app.name, component.id, response.cold_start_seconds)
        finally:
            slot.in_flight -= 1
            if scaler is not None:
                scaler.done()
        slot.last_used = self.clock()
        slot.requests += 1
        self._observe(app.name, component.id, status, time.perf_counter() - started, cpu)
        return reply

    def _observe(self, app: str, component: str, status: int, duration: float, cpu: float) -> None:
        """Hand one answered request to the observers: at once, or batched per event-loop iteration."""
        if self.batch_observers:
            if not self._batch:
                asyncio.get_running_loop().call_soon(self.flush_observations)
            self._batch.append((app, component, status, duration, cpu))
            return
        for observer in self.observers:
            try:
                observer(app, component, status, duration, cpu)
            except Exception:
                log.exception("request observer %r failed", observer)

    def flush_observations(self) -> None:
        """Hand the batched observations to every observer (batched mode; also at shutdown)."""
        batch, self._batch = self._batch, []
        if not batch:
            return
        for observer in self.observers:
            try:
                many = getattr(observer, "observe_many", None)
                if many is not None:
                    many(batch)
                else:
                    for item in batch:
                        observer(*item)
            except Exception:
                log.exception("request observer %r failed", observer)

    async def _read_body(self, headers: list[tuple[str, str]], receive: Receive) -> bytes | None:
        """The whole body, or None when it exceeds ``max_body`` (announced or actual)."""
        limit = self.settings.max_body
        for name, value in headers:
            if name == "content-length" and value.isdigit() and int(value) > limit:
                return None
        message = await receive()
        body = message.get("body", b"")
        if not message.get("more_body", False):
            return body if len(body) <= limit else None
        parts = [body]
        size = len(body)
        while message.get("more_body", False):
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            parts.append(chunk)
        return b"".join(parts)


def _refuse_interim(status: int, path: str, request_id: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """A guest's final answer was 1xx (101 Switching Protocols above all): 500 with a logged error id.

    The host neither upgrades connections nor relays interim responses; passing one on would leave the
    client waiting for the real response, or speaking another protocol, on this connection.
    """
    error_id = uuid.uuid4().hex[:12]
    log.error(
        "guest answered %s with interim status %d (not a final response; refused) [request %s, error %s]",
        path,
        status,
        request_id,
        error_id,
    )
    return (500, [*TEXT_PLAIN, ("x-error-id", error_id)], f"internal server error (error id {error_id})\n".encode())


async def _answer(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [*_TEXT, (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
