"""The ASGI adapter of the app core (``--http uvicorn``, or any ASGI server): protocol glue only.

Lifespan messages start and stop the :class:`~zerowatt.host.app.HostApp`; an ``http`` scope is decoded,
its body read (bounded by ``max_body``), handed to :meth:`HostApp.respond` and the reply sent with its
Content-Length. Everything a request means to the host (the scaler, the guest, errors, accounting) is
in :mod:`zerowatt.host.app`, shared with the native front (:mod:`zerowatt.host.http`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .app import NO_CONTENT, HostApp

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_TEXT = [(b"content-type", b"text/plain; charset=utf-8")]


class AsgiApp:
    """An ASGI 3 callable over one :class:`HostApp`."""

    def __init__(self, host: HostApp) -> None:
        self.host = host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self.http(scope, receive, send)
        elif kind == "lifespan":
            await self.lifespan(receive, send)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        """The host lives as long as the server: started at ``lifespan.startup``, stopped at shutdown."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.host.startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.host.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Decode the scope, read the body, :meth:`HostApp.respond`, send the reply."""
        started = time.perf_counter()
        host = self.host
        raw = scope.get("raw_path")
        path = raw.decode("latin-1").partition("?")[0] if raw else scope["path"]
        match = host.match(path)
        if match is None:
            await _answer(send, 404, b"not found\n")
            return
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        body = await read_body(headers, receive, host.settings.max_body)
        if body is None:
            await _answer(send, 413, b"request body too large\n")
            return
        server = scope.get("server") or ("127.0.0.1", 80)
        client = scope.get("client") or ("", 0)
        status, out, body = await host.respond(
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


async def read_body(headers: list[tuple[str, str]], receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None when it exceeds ``limit`` bytes (announced or actual)."""
    for name, value in headers:
        if name == "content-length" and value.isascii() and value.isdigit() and int(value) > limit:
            return None
    message = await receive()
    body: bytes = message.get("body", b"")
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


async def _answer(send: Send, status: int, body: bytes) -> None:
    headers = [*_TEXT, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
