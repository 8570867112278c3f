"""The activator's data plane: an ASGI app that routes by Host, holds, and proxies to a ready pod (adapter).

Served by uvicorn (HTTP/1.1 parsing, header limits, keep-alive to clients); the backend side is one
``httpx.AsyncClient`` with a keep-alive pool, so a burst of held requests released together reuses
connections. Bodies stream both ways: the request body is read from the client only as the pod takes it,
the response is forwarded chunk by chunk as it arrives. Hop-by-hop fields are dropped both ways
(:func:`zerowatt.wasm.hopbyhop.end_to_end`, RFC 9110 §7.6.1); ``Host`` is kept (``zerowatt up`` routes by
path, the app may read it) and ``X-Forwarded-For`` gets the client's address.

A pod that refuses the connection (it was stopped between the endpoint read and the request) costs a
retry, not the request: the endpoint is dropped from the app's ready list and the request goes back to
holding, within its deadline. This is safe only while none of the request body was sent, which is
the case for a connection failure.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import httpx

from zerowatt.activator.controller import Activator, AppState, ColdStart
from zerowatt.activator.holding import Refused
from zerowatt.activator.hosts import Miss
from zerowatt.activator.slices import Endpoint
from zerowatt.wasm.hopbyhop import end_to_end

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: First and longest pause after a refused connection (a stopped pod whose endpoint is still listed):
#: the request is held again and retried, doubling the pause, until its deadline.
RETRY_FIRST = 0.02
RETRY_MAX = 1.0


class _Body:
    """The client's request body as an async iterator, read only as the backend takes it."""

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self.started = False
        self.done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.started = True
        while not self.done:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ConnectionError("client went away while sending its body")
            self.done = not message.get("more_body", False)
            chunk = message.get("body", b"")
            if chunk:
                yield chunk


async def _next(receive: Receive) -> Message:
    return await receive()


async def _plain(send: Send, status: int, text: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = (text + "\n").encode()
    head = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": head + (headers or [])})
    await send({"type": "http.response.body", "body": body})


class ProxyApp:
    """ASGI application: Host → app → (hold) → pod."""

    def __init__(self, activator: Activator, client: httpx.AsyncClient, *, deadline: float) -> None:
        self.activator = activator
        self.client = client
        self.deadline = deadline

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return  # websockets are not proxied (uvicorn answers 403)
        act = self.activator
        started = act.clock()
        headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope.get("headers") or []]
        host = next((v for k, v in headers if k == "host"), "")
        found = act.route(host)
        if isinstance(found, Miss):
            act.metrics.refused.labels("route").inc()
            await _plain(send, found.status, found.reason)
            return
        state = found
        code = 502
        try:
            code = await self._forward(state, scope, headers, receive, send, started)
        finally:
            act.metrics.requests.labels(state.label, str(code)).inc()

    async def _forward(
        self,
        state: AppState,
        scope: Scope,
        headers: list[tuple[str, str]],
        receive: Receive,
        send: Send,
        started: float,
    ) -> int:
        deadline = started + self.deadline
        body = _Body(receive)
        forwarded = end_to_end(headers)
        client = scope.get("client")
        if client:
            xff = next((v for k, v in forwarded if k == "x-forwarded-for"), None)
            forwarded = [(k, v) for k, v in forwarded if k != "x-forwarded-for"]
            forwarded.append(("x-forwarded-for", f"{xff}, {client[0]}" if xff else str(client[0])))
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        has_body = any(k in ("content-length", "transfer-encoding") for k, _ in headers)
        gone: asyncio.Task[Message] | None = None
        if not has_body:
            # No body: the request's one message is read now, and the next one can only be the client
            # going away, which frees the request's holding place at once instead of at its deadline.
            await receive()
            gone = asyncio.get_running_loop().create_task(_next(receive))
        try:
            return await self._attempts(state, body, gone, forwarded, target, has_body, deadline, scope, send)
        finally:
            if gone is not None:
                gone.cancel()

    async def _hold(
        self, state: AppState, deadline: float, gone: asyncio.Task[Message] | None
    ) -> tuple[Endpoint, ColdStart | None] | Refused | None:
        """:meth:`Activator.endpoint`, or None when the client went away while it waited."""
        if gone is None or state.ready:
            return await self.activator.endpoint(state, deadline)
        waiting = asyncio.get_running_loop().create_task(self.activator.endpoint(state, deadline))
        done, _ = await asyncio.wait({waiting, gone}, return_when=asyncio.FIRST_COMPLETED)
        if waiting in done:
            return waiting.result()
        waiting.cancel()  # its finally releases the holding place
        await asyncio.gather(waiting, return_exceptions=True)
        return None

    async def _attempts(
        self,
        state: AppState,
        body: _Body,
        gone: asyncio.Task[Message] | None,
        forwarded: list[tuple[str, str]],
        target: bytes,
        has_body: bool,
        deadline: float,
        scope: Scope,
        send: Send,
    ) -> int:
        act = self.activator
        pause = RETRY_FIRST
        while True:
            got = await self._hold(state, deadline, gone)
            if got is None:
                return 499  # the client closed the connection while its request was held (nginx's code)
            if isinstance(got, Refused):
                retry = [(b"retry-after", b"1")] if got.status == 503 else []
                await _plain(send, got.status, got.reason, retry)
                return got.status
            endpoint, cold = got
            request = self.client.build_request(
                scope["method"],
                endpoint.http_url + target.decode("latin-1"),
                headers=forwarded,
                content=body if has_body else None,
            )
            answered = False  # the response head went to the client: an error can only cut the connection
            state.proxying += 1
            act.metrics.proxying.labels(state.label).set(state.proxying)
            try:
                try:
                    response = await self.client.send(request, stream=True)
                except httpx.ConnectError as exc:
                    if body.started:
                        raise
                    log.info("%s: %s refused the connection (%s); holding again", state.key, endpoint.address, exc)
                    act.metrics.backend_refused.labels(state.label).inc()
                    _drop(act, state, endpoint)
                    await asyncio.sleep(min(pause, max(0.0, deadline - act.clock())))
                    pause = min(RETRY_MAX, pause * 2)
                    continue
                try:
                    act.first_byte(state, cold)
                    answered = True
                    out = [
                        (k.encode("latin-1"), v.encode("latin-1"))
                        for k, v in end_to_end((k.lower(), v) for k, v in response.headers.multi_items())
                    ]
                    await send({"type": "http.response.start", "status": response.status_code, "headers": out})
                    async for chunk in response.aiter_raw():
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    await send({"type": "http.response.body", "body": b""})
                    return response.status_code
                finally:
                    await response.aclose()
            except (httpx.HTTPError, ConnectionError) as exc:
                log.info("%s: proxying to %s failed: %s", state.key, endpoint.address, exc)
                if answered:
                    raise  # uvicorn closes the connection: the client sees a cut response, not a wrong one
                await _plain(send, 502, f"the app {state.key} failed to answer: {type(exc).__name__}")
                return 502
            finally:
                state.proxying -= 1
                act.metrics.proxying.labels(state.label).set(state.proxying)


def _drop(act: Activator, state: AppState, endpoint: Endpoint) -> None:
    """Forget an endpoint that refused a connection until the next read of the pod slices lists it."""
    act.set_ready(state, [e for e in state.ready if e.address != endpoint.address])
