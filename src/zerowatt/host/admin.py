"""The admin listener: ``/healthz``, ``/readyz`` and Prometheus ``/metrics``, on its own port.

It runs in the supervisor process, on an asyncio event loop in one thread of its own (a few scrapes a
minute do not need the data plane), so it answers even while every worker is busy, and in
multiprocess mode it aggregates all workers' samples from ``PROMETHEUS_MULTIPROC_DIR``.

Why not ``http.server.ThreadingHTTPServer`` (what it used before): one thread per connection and no
timeout, so 1,000 half-open connections held 1,000 threads forever. Here each connection costs a
coroutine, at most ``max_connections`` are served at once (more are closed at once), and each has a
total deadline (``timeout``) for reading its request and writing the answer, never reset by a
trickle of bytes. One request per connection (``connection: close``), heads up to :data:`MAX_HEAD`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

log = logging.getLogger(__name__)

#: Seconds a connection may take, from accept to the end of the answer.
ADMIN_TIMEOUT = 10.0
#: Connections served at once; more are closed as soon as they are accepted.
ADMIN_MAX_CONNECTIONS = 64
#: Largest request head (request line and headers) read; above it: 431.
MAX_HEAD = 8 * 1024
_TEXT = "text/plain; charset=utf-8"


class AdminServer:
    """Serves the admin endpoints until :meth:`stop`; ``ready`` says whether all workers serve.

    The socket is bound in the constructor, so a taken port fails there (``OSError``), unless ``sock``
    is one already listening (the supervisor binds it before it releases the workers).
    """

    def __init__(
        self,
        host: str,
        port: int,
        ready: Callable[[], bool],
        multiproc_dir: str | None,
        *,
        timeout: float = ADMIN_TIMEOUT,
        max_connections: int = ADMIN_MAX_CONNECTIONS,
        sock: socket.socket | None = None,
    ) -> None:
        registry = CollectorRegistry()
        if multiproc_dir:
            MultiProcessCollector(registry, path=multiproc_dir)  # type: ignore[no-untyped-call]
        self.registry = registry
        self.ready = ready
        self.timeout = timeout
        self.max_connections = max_connections
        self.active = 0  # connections being served
        self.refused = 0  # connections closed because max_connections were being served
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = sock if sock is not None else socket.create_server((host, port), family=family, backlog=128)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="zerowatt-admin", daemon=True)
        self._scrapes = ThreadPoolExecutor(1, thread_name_prefix="zerowatt-admin-metrics")
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.scrape_cpu = 0.0  # CPU seconds spent rendering /metrics (the host's "metrics" energy share)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()[:2]
        return str(host), int(port)

    def start(self) -> None:
        self.thread.start()
        self._started.wait(10)

    def stop(self) -> None:
        if self.thread.is_alive() and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
            self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()
        self.sock.close()
        self._scrapes.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except Exception:  # the admin port must never take the supervisor down
            log.exception("admin listener failed")
            self._started.set()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._connection, sock=self.sock, limit=MAX_HEAD)
        self._started.set()
        await self._stop.wait()
        server.close()
        for writer in list(self._writers):  # what is still being served (bounded by the timeout anyway)
            writer.transport.abort()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                await server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.active >= self.max_connections:
            self.refused += 1
            if self.refused == 1 or self.refused % 1000 == 0:
                log.warning("admin: %d connection(s) refused (%d being served)", self.refused, self.active)
            writer.transport.abort()
            return
        self.active += 1
        self._writers.add(writer)
        try:
            async with asyncio.timeout(self.timeout):
                status, body, content_type, head_only = await self._answer(reader)
                writer.write(_response(status, body, content_type, head_only))
                await writer.drain()
        except TimeoutError:
            with contextlib.suppress(Exception):
                writer.write(_response(408, b"request timeout\n", _TEXT, False))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away
        except Exception:
            log.exception("admin: request failed")
        finally:
            self.active -= 1
            self._writers.discard(writer)
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[int, bytes, str, bool]:
        """(status, body, content type, HEAD) for the request on ``reader``."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            return 431, b"request header fields too large\n", _TEXT, False
        parts = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return 400, b"malformed HTTP request\n", _TEXT, False
        method, target = parts[0], parts[1]
        if method not in ("GET", "HEAD"):
            return 405, b"method not allowed\n", _TEXT, False
        head_only = method == "HEAD"
        path = target.partition("?")[0]
        if path == "/healthz":
            return 200, b"ok\n", _TEXT, head_only
        if path == "/readyz":
            ok = self.ready()
            return (200, b"ready\n", _TEXT, head_only) if ok else (503, b"starting\n", _TEXT, head_only)
        if path == "/metrics":
            # reading every worker's samples is file I/O: off the loop, so probes stay prompt
            body = await asyncio.get_running_loop().run_in_executor(self._scrapes, self._render)
            return 200, body, CONTENT_TYPE_LATEST, head_only
        return 404, b"not found\n", _TEXT, head_only

    def _render(self) -> bytes:
        started = time.thread_time()
        try:
            return generate_latest(self.registry)
        finally:
            self.scrape_cpu += time.thread_time() - started


def _response(status: int, body: bytes, content_type: str, head_only: bool) -> bytes:
    reason = HTTPStatus(status).phrase
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + (b"" if head_only else body)
