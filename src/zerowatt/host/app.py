"""The app core of the data plane, independent of any HTTP server: run the routed guest, answer, account.

:meth:`HostApp.respond` takes a routed request whose body is read and returns the reply (status,
headers, body); the native HTTP/1.1 front (:mod:`zerowatt.host.http`) and the ASGI adapter
(:mod:`zerowatt.host.asgi`) both call it. Every request goes through the component's scaler
(:mod:`zerowatt.host.autoscale`: ``--policy``, or the keep-alive window of ``--idle-unload``), which
holds it until an instance is ready, counts cold starts and owns ``in_flight``.

Kept deliberately flat: this is the per-request hot path, and every attribute lookup and allocation
shows up in the throughput benchmark (see docs/benchmarks.md for the breakdown).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from zerowatt.wasm.executor import AbortSignal, GuestAborted, GuestError, GuestRequest, GuestResponse, new_error_id
from zerowatt.wasm.model import App, Component, HttpTrigger

from .autoscale import HostAutoscaler, policy_for
from .metrics import HostMetrics, Observation, ObserverList
from .pool import ComponentPool
from .settings import HostSettings

if TYPE_CHECKING:
    from .energy import LoopCpu

log = logging.getLogger(__name__)


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
    @property
    def params(self) -> tuple[tuple[str, str], ...]: ...


Matcher = Callable[[str], RouteMatchLike | None]
#: What :meth:`HostApp.respond` answers: status, headers (lower-case names, no framing ones), body.
Reply = tuple[int, list[tuple[str, str]], bytes]

TEXT_PLAIN = [("content-type", "text/plain; charset=utf-8")]
#: Response headers the host sets itself (framing, RFC 9110 hop-by-hop fields); a guest's are dropped.
#: Statuses whose responses never have content, nor Content-Length (RFC 9110 8.6, 15.3.5, 15.4.5).
NO_CONTENT = frozenset({204, 304})
HOST_OWNED = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "te", "trailer", "upgrade", "proxy-connection"}
)


class HostApp:
    """One worker's app core over a :class:`ComponentPool` and its :class:`HostAutoscaler`.

    ``autoscaler``: None builds the worker's own from ``settings`` (:func:`policy_for`).
    """

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
        loop_cpu: LoopCpu | None = None,
    ) -> None:
        self.match = match
        # Energy accounting: each request's CPU is the loop thread's since the last checkpoint plus its
        # guest's CPU on other threads or processes (zerowatt.host.energy.LoopCpu).
        self.loop_cpu = loop_cpu
        self.pool = pool
        self.settings = settings
        self.metrics = metrics
        self.autoscaler = autoscaler or HostAutoscaler(pool, policy_for(settings), metrics)
        self._scalers = self.autoscaler.scalers
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
        if metrics is not None:
            pool.on_unload = lambda slot: metrics.set_loaded(slot.labels[0], slot.labels[1], False)
            for app, component in pool.slots:
                metrics.set_loaded(app, component, False)

    # -- lifetime: the front calls these once, before the first request and after the last -------
    async def startup(self) -> None:
        if self.loop_cpu is not None:
            self.loop_cpu.bind()
        if self.on_startup is not None:
            await self.on_startup()

    async def shutdown(self) -> None:
        self.flush_observations()
        self.autoscaler.close()
        self.autoscaler.log_summary()
        await self.pool.close()
        if self.on_shutdown is not None:
            self.on_shutdown()

    # -- requests --------------------------------------------------------------------------------
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

        Server-independent: the ASGI adapter (:mod:`zerowatt.host.asgi`) and the native HTTP/1.1 server
        (:mod:`zerowatt.host.http`) both call it. The reply's headers exclude the framing ones
        (``content-length`` etc.): the caller frames the body. ``started`` is ``time.perf_counter()``
        when the request arrived (the duration metric and the guest's deadline start there). ``abort``:
        set by the caller when the client disconnects (the guest is stopped, the reply is 499 and not sent).
        """
        app, component = match.app, match.component
        key = (app.name, component.id)
        slot = self.pool.slots[key]
        scaler = self._scalers[key]
        request = GuestRequest(
            request_id=self._id_prefix + format(next(self._ids), "x"),
            method=method,
            path=path,
            query=query,
            headers=tuple(headers),
            body=body,
            matched_route=match.trigger.route.pattern,
            path_info=match.path_info,
            path_params=match.params,
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
        loop_cpu = self.loop_cpu
        if loop_cpu is not None:
            loop_cpu.in_flight += 1
        try:
            # The activator: held until an instance is ready (a cold start), bounded by the deadline.
            if not scaler.try_admit():  # warm: admitted at once (no coroutine); in flight until done()
                await scaler.admit(executor.request_timeout)  # counts the cold start
        except TimeoutError:
            error_id = new_error_id()
            log.error(
                "%s/%s did not start in time [request %s, error %s]",
                app.name,
                component.id,
                request.request_id,
                error_id,
            )
            message = f"gateway timeout ({app.name}/{component.id} did not start in time; error id {error_id})\n"
            if loop_cpu is not None:
                loop_cpu.in_flight -= 1
            self._observe(app.name, component.id, 504, time.perf_counter() - started, self._request_cpu(0.0, 0.0))
            return (504, [*TEXT_PLAIN, ("x-error-id", error_id)], message.encode())
        except BaseException:  # cancelled while held: no longer in flight
            if loop_cpu is not None:
                loop_cpu.in_flight -= 1
            raise
        cpu = caller = 0.0
        reply: Reply
        try:
            response: GuestResponse = await executor.handle(request)
        except GuestError as exc:
            status, cpu, caller = exc.status, exc.cpu_seconds, exc.caller_cpu_seconds
            if isinstance(exc, GuestAborted) and self.metrics is not None:
                self.metrics.request_aborted(app.name, component.id)
            if not exc.error_id:  # every 5xx carries an id that is in the log; executors log their own
                exc.error_id = new_error_id()
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
            error_id = new_error_id()
            log.exception("host error serving %s [request %s, error %s]", path, request.request_id, error_id)
            status = 500
            reply = (
                500,
                [*TEXT_PLAIN, ("x-error-id", error_id)],
                f"internal server error (error id {error_id})\n".encode(),
            )
        else:
            status, cpu, caller = response.status, response.cpu_seconds, response.caller_cpu_seconds
            if status < 200:
                status, reply = 500, _refuse_interim(response.status, path, request.request_id)
            else:
                # The host frames the body: the caller's explicit Content-Length replaces whatever framing
                # or hop-by-hop headers the guest wrote. 204 and 304 never have content (RFC 9110 15.3.5,
                # 15.4.5): a guest's body is dropped so the connection stays in step (RFC 9112 6.3).
                body = b"" if status in NO_CONTENT else response.body
                reply = (status, [h for h in response.headers if h[0] not in HOST_OWNED], body)
        finally:
            scaler.done()
            if loop_cpu is not None:
                loop_cpu.in_flight -= 1
        slot.last_used = self.clock()
        slot.requests += 1
        self._observe(app.name, component.id, status, time.perf_counter() - started, self._request_cpu(cpu, caller))
        return reply

    def _request_cpu(self, guest: float, caller: float) -> float:
        """The CPU one request cost: without energy accounting the guest's; with it, the loop thread's since
        the last checkpoint (``caller`` of the guest's ran there) plus the guest's elsewhere."""
        loop_cpu = self.loop_cpu
        if loop_cpu is None:
            return guest
        return loop_cpu.take() + max(0.0, guest - caller)

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


def _refuse_interim(status: int, path: str, request_id: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """A guest's final answer was 1xx (101 Switching Protocols above all): 500 with a logged error id.

    The host neither upgrades connections nor relays interim responses; passing one on would leave the
    client waiting for the real response, or speaking another protocol, on this connection.
    """
    error_id = new_error_id()
    log.error(
        "guest answered %s with interim status %d (not a final response; refused) [request %s, error %s]",
        path,
        status,
        request_id,
        error_id,
    )
    return (500, [*TEXT_PLAIN, ("x-error-id", error_id)], f"internal server error (error id {error_id})\n".encode())
