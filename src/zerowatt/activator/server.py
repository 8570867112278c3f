"""``zerowatt activator``: the proxy (uvicorn), the admin listener and the control loop, wired (adapter).

:class:`ActivatorServer` binds both sockets in its constructor (a taken port fails at once), then runs
the proxy and the control loop on one asyncio loop, either in the calling thread (:meth:`serve`, the
CLI: SIGTERM/SIGINT stop it) or in a thread of its own (:meth:`start`/:meth:`stop`, tests and benchmarks).
The admin listener is the host's (:class:`zerowatt.host.admin.AdminServer`): ``/healthz``, ``/readyz``
(ready once the first sync is done) and ``/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn

from zerowatt.activator.controller import DEFAULT_DRAIN, DEFAULT_FAST_POLL, DEFAULT_SYNC, Activator
from zerowatt.activator.holding import HoldLimits
from zerowatt.activator.kubeio import ActivatorApi
from zerowatt.activator.metrics import ActivatorMetrics
from zerowatt.activator.proxy import ProxyApp
from zerowatt.activator.slices import Endpoint
from zerowatt.errors import SettingError
from zerowatt.host.admin import AdminServer

log = logging.getLogger(__name__)

#: Largest ``/metrics`` answer read from a pod (a pod's own is a few KiB).
MAX_SCRAPE = 1 << 20


@dataclass(frozen=True)
class ActivatorSettings:
    listen: tuple[str, int] = ("0.0.0.0", 8080)
    admin: tuple[str, int] = ("0.0.0.0", 9090)
    advertise: str | None = None  # the address written into NAME-zerowatt (default: $POD_IP)
    limits: HoldLimits = field(default_factory=HoldLimits)
    sync: float = DEFAULT_SYNC
    fast_poll: float = DEFAULT_FAST_POLL
    drain: float = DEFAULT_DRAIN
    cluster_domain: str = "cluster.local"
    max_connections: int = 10000
    backend_timeout: float = 300.0
    scrape_timeout: float = 1.0
    watch: bool = True  # watch EndpointSlices while requests wait (else poll every fast_poll)


class _Server(uvicorn.Server):
    """uvicorn's server, stopping on SIGTERM/SIGINT without re-raising the signal afterwards (uvicorn's
    default, which would make a clean shutdown exit with -15 instead of 0)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def stop(signum: int, frame: object) -> None:
            self.should_exit = True

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=1024)


class ActivatorServer:
    """The activator's sockets, loop and parts (see the module docstring)."""

    def __init__(self, settings: ActivatorSettings, api: ActivatorApi) -> None:
        self.settings = settings
        self.sock = _bind(*settings.listen)
        port = int(self.sock.getsockname()[1])
        advertise = settings.advertise or os.environ.get("POD_IP")
        if not advertise:
            self.sock.close()
            raise SettingError("advertise", "the activator's own address is needed (set it, or $POD_IP)")
        self.admin = AdminServer(*settings.admin, ready=lambda: self.activator.synced, multiproc_dir=None)
        self.metrics = ActivatorMetrics(self.admin.registry)
        self.activator = Activator(
            api,
            Endpoint(advertise, port),
            metrics=self.metrics,
            limits=settings.limits,
            sync=settings.sync,
            fast_poll=settings.fast_poll,
            drain=settings.drain,
            cluster_domain=settings.cluster_domain,
            scrape=self._scrape,
            watch=settings.watch,
        )
        self._client: httpx.AsyncClient | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()[:2]
        return str(host), int(port)

    async def _scrape(self, endpoint: Endpoint) -> str | None:
        assert self._client is not None and endpoint.admin_url is not None
        timeout = self.settings.scrape_timeout
        async with self._client.stream("GET", endpoint.admin_url + "/metrics", timeout=timeout) as resp:
            if resp.status_code != 200:
                return None
            data = bytearray()
            async for chunk in resp.aiter_bytes():
                data += chunk
                if len(data) > MAX_SCRAPE:
                    return None
            return data.decode("utf-8", "replace")

    async def _main(self) -> None:
        s = self.settings
        limits = httpx.Limits(max_connections=s.max_connections, max_keepalive_connections=256)
        timeout = httpx.Timeout(s.backend_timeout, connect=2.0)
        self._client = httpx.AsyncClient(limits=limits, timeout=timeout, follow_redirects=False, trust_env=False)
        app = ProxyApp(self.activator, self._client, deadline=s.limits.deadline)
        config = uvicorn.Config(
            app,
            lifespan="off",
            access_log=False,
            server_header=False,
            date_header=False,
            proxy_headers=False,
            limit_concurrency=s.max_connections,
            timeout_keep_alive=30,
            log_level="warning",
        )
        self._server = _Server(config)
        control = asyncio.get_running_loop().create_task(self.activator.run())
        try:
            await self._server.serve(sockets=[self.sock])
        finally:
            self.activator.stop()
            control.cancel()
            await asyncio.gather(control, return_exceptions=True)
            await self._client.aclose()
            await self.activator.aclose()
            self.activator.close()

    def serve(self) -> None:
        """Serve in this thread until SIGTERM/SIGINT."""
        self.admin.start()
        try:
            asyncio.run(self._main())
        finally:
            self.admin.stop()

    def start(self) -> None:
        """Serve in a thread of its own (tests, benchmarks); :meth:`stop` ends it."""
        self.admin.start()
        started = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            started.set()
            try:
                loop.run_until_complete(self._main())
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="zerowatt-activator", daemon=True)
        self._thread.start()
        started.wait(10)

    def stop(self) -> None:
        if self._server is not None and self._loop is not None and not self._loop.is_closed():
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(15)
        self.admin.stop()
        self.sock.close()

    def call(self, fn: Any) -> Any:
        """Run ``fn()`` on the activator's loop and return its result (tests read state safely)."""
        assert self._loop is not None

        async def wrapper() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(10)
