"""``zerowatt up``: the supervisor process, its worker processes and their HTTP servers.

The supervisor starts ``workers`` worker processes first, from the lean entry point
:mod:`zerowatt.host.worker` (``python -m``, not multiprocessing's spawn, which re-imports the
parent's ``__main__``: the whole CLI). While they import their modules it validates everything
(manifests, modules compiled into the on-disk cache, free ports) and only then hands them their
settings on stdin; a validation error stops them before they bind anything. It then starts the admin
listener and prints the banner once every worker reports (on a pipe) that it listens. Each
worker binds the listen address with ``SO_REUSEPORT`` (the kernel spreads connections across them,
no accept-lock herd) and runs one HTTP server over a :class:`~zerowatt.host.asgi.HostApp`: by
default the native HTTP/1.1 server of :mod:`zerowatt.host.http` (asyncio + httptools, no ASGI
layer), or with ``--http uvicorn`` uvicorn (httptools parser, uvloop) over the host's ASGI
interface. The supervisor sleeps until a signal or a worker exit: a worker that dies is replaced,
SIGINT/SIGTERM stop all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import shutil
import signal
import socket
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType

from zerowatt.errors import UsageError, ZerowattError
from zerowatt.wasm import native
from zerowatt.wasm.cache import ModuleCache
from zerowatt.wasm.engine import EngineSettings, Runtime
from zerowatt.wasm.manifest import load_apps
from zerowatt.wasm.model import App, ExecutorKind
from zerowatt.wasm.router import Router
from zerowatt.wasm.stdio import InheritedStdout
from zerowatt.wasm.wagi import Offload

from .asgi import HostApp
from .pool import ComponentPool, executor_kinds
from .registry import ExecutorContext
from .settings import HostSettings
from .worker import Prestarted, WorkerProcess, prestart, worker_env

log = logging.getLogger(__name__)


def load(settings: HostSettings) -> list[App]:
    """Load and validate every manifest (raises :class:`ValidationError`: exit 2, nothing served)."""
    paths = [Path(m) for m in settings.manifests]
    for path in paths:
        if not path.is_file():
            raise UsageError(f"{path}: no such manifest (expected a spin.toml file)")
    return load_apps(paths, variable_values=settings.variables)


def make_cache(runtime: Runtime, settings: HostSettings) -> ModuleCache:
    directory = Path(settings.cache_dir) if settings.cache_dir else None
    return ModuleCache(runtime.engine, runtime.settings.fingerprint(), directory)


def precompile(apps: list[App], settings: HostSettings) -> int:
    """Compile every WAGI module into the cache so workers only ever ``mmap`` precompiled code."""
    runtime = Runtime(EngineSettings())
    try:
        cache = make_cache(runtime, settings)
        count = 0
        for app in apps:
            for component_id, kind in executor_kinds(app).items():
                if kind is ExecutorKind.WAGI:
                    component = app.components[component_id]
                    cache.load(component.source, component.source_digest)
                    count += 1
        return count
    finally:
        runtime.close()


def bind(host: str, port: int, *, reuse_port: bool = True) -> socket.socket:
    """A TCP socket bound to ``host:port``, with ``SO_REUSEPORT`` (shared by all workers) by default.

    The supervisor checks the port with ``reuse_port=False`` first: that bind fails if anything else
    listens there, even another ``zerowatt up`` whose workers would otherwise share the port silently.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


def build_host(
    apps: list[App], settings: HostSettings, *, inherit_stdout: bool = False
) -> tuple[HostApp, Callable[[], None]]:
    """A worker's :class:`HostApp` (and a function that releases its engine and threads).

    ``inherit_stdout`` points this process's fd 1 and fd 2 at scratch files for guests' stdout and
    stderr (the fast path of :class:`InheritedStdout`); only worker processes, which own their fds
    1 and 2, ask for it.
    """
    # Both define Prometheus metrics: import them after PROMETHEUS_MULTIPROC_DIR is in the environment.
    from zerowatt.energy.request import LiveRate, start_live_rate

    from .energy import EnergyAccounting
    from .metrics import EnergyMetrics, HostMetrics, RequestObserver

    policy = settings.policy_config()
    runtime = Runtime(EngineSettings())
    stdout = InheritedStdout(stderr=True) if inherit_stdout else None
    threads = ThreadPoolExecutor(settings.guest_threads, thread_name_prefix="zerowatt-guest")
    ctx = ExecutorContext(
        runtime=runtime,
        cache=make_cache(runtime, settings),
        request_timeout=settings.request_timeout,
        memory_limit=settings.memory_limit,
        # With a policy, the autoscaler decides when wasi:http children stop (no idle timer of their own).
        idle_timeout=settings.idle_unload if settings.idle_unload is not None and policy is None else 365 * 86400.0,
        threads=threads,
        offload=Offload(settings.offload),
        stdout=stdout,
    )
    pool = ComponentPool(apps, ctx)
    observers: list[RequestObserver] = []
    live: LiveRate | None = None
    accounting: EnergyAccounting | None = None
    metrics = HostMetrics()
    if settings.energy_summary is not None:
        live = start_live_rate()  # one /proc/stat sample a second; prices guest CPU time in joules
        accounting = EnergyAccounting(
            rate=live.current, metrics=EnergyMetrics(metrics.registry), interval=settings.energy_summary
        )
        observers.append(accounting)
    autoscaler = None
    if policy is not None:
        from .autoscale import HostAutoscaler  # the policies (and numpy) only where a policy is asked for

        autoscaler = HostAutoscaler(pool, policy, metrics)
    host = HostApp(
        Router(apps).match, pool, settings, metrics, observers=observers, batch_observers=True, autoscaler=autoscaler
    )

    closed = False

    def close() -> None:
        nonlocal closed
        if closed:
            return
        closed = True
        if live is not None:
            live.stop()
        if accounting is not None:
            accounting.log_summary()
        threads.shutdown(wait=False, cancel_futures=True)
        runtime.close()
        if stdout is not None:
            stdout.close()

    return host, close


def asgi_from_env() -> HostApp:
    """ASGI factory for running the host under another ASGI server (the benchmark runs it under
    granian): settings come as ``HostSettings`` JSON in ``$ZEROWATT_HOST_SETTINGS``."""
    settings = HostSettings.from_json(os.environ["ZEROWATT_HOST_SETTINGS"])
    host, _close = build_host(load(settings), settings, inherit_stdout=True)
    return host


def worker_main(settings_json: str, ready_fd: int, apps: list[App] | None = None) -> None:
    """Serve as one worker process (see :mod:`zerowatt.host.worker`); ``ready_fd`` is the pipe on which
    it tells the supervisor that it listens; ``apps``: as the supervisor validated them (else loaded here)."""
    settings = HostSettings.from_json(settings_json)
    _configure_logging(settings.log_level)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides; it sends SIGTERM
    if apps is None:
        apps = load(settings)
    host, close = build_host(apps, settings, inherit_stdout=True)
    sock = bind(settings.listen_host, settings.listen_port)

    def ready() -> None:
        with contextlib.suppress(OSError):
            os.write(ready_fd, b"R")
            os.close(ready_fd)

    try:
        if settings.http == "uvicorn":
            _run_uvicorn(host, close, sock, ready, settings)
        else:
            _run_native(host, close, sock, ready, settings)
    finally:
        close()


def _run_native(
    host: HostApp, close: Callable[[], None], sock: socket.socket, ready: Callable[[], None], settings: HostSettings
) -> None:
    """The default front: :mod:`zerowatt.host.http` on uvloop; SIGTERM shuts it down gracefully."""
    import uvloop

    from .http import serve_native

    host.on_shutdown = close

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await serve_native(host, [sock], max_body=settings.max_body, ready=ready, stop=stop)

    uvloop.run(main())


def _run_uvicorn(
    host: HostApp, close: Callable[[], None], sock: socket.socket, ready: Callable[[], None], settings: HostSettings
) -> None:
    """``--http uvicorn``: the host as an ASGI app under uvicorn (httptools parser, uvloop)."""
    import uvicorn

    config = uvicorn.Config(
        host,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        proxy_headers=False,  # no proxy in front by default; the middleware costs ~2% per request
        server_header=False,
        log_level=settings.log_level,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    tasks: list[asyncio.Task[None]] = []

    async def announce_ready() -> None:
        while not server.started:
            await asyncio.sleep(0.005)
        ready()

    async def on_startup() -> None:
        tasks.append(asyncio.create_task(announce_ready()))

    host.on_startup = on_startup
    # uvicorn re-raises SIGTERM once it has shut down, so `finally` may never run: release at lifespan end.
    host.on_shutdown = close
    server.run(sockets=[sock])


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format=f"%(asctime)s [{os.getpid()}] %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


class Supervisor:
    """Starts, watches and stops the worker processes."""

    def __init__(self, settings: HostSettings, state_dir: str, workers: list[WorkerProcess] | None = None) -> None:
        self.settings = settings
        self.state_dir = state_dir
        self.workers: list[WorkerProcess] = list(workers or [])  # started, waiting for release()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self.stopping = False
        self.announced = False
        self.apps: list[App] = []

    def release(self, apps: list[App]) -> None:
        """Everything is validated: send the workers their settings and apps (they bind and serve)."""
        self.apps = apps
        settings_json = self.settings.to_json()
        for proc in self.workers:
            proc.send_settings(settings_json, apps)

    def spawn(self) -> None:
        proc = WorkerProcess(worker_env())
        self.workers.append(proc)
        proc.send_settings(self.settings.to_json(), self.apps)

    def ready(self) -> bool:
        live = [p for p in self.workers if p.is_alive()]
        return bool(live) and len(live) == self.settings.workers and all(p.ever_ready for p in live)

    def ever_ready(self, proc: WorkerProcess) -> bool:
        if proc.ready_fd is not None:
            proc.read_ready()  # a worker that said "ready" and then died: the byte is still in the pipe
        return proc.ever_ready

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        del frame
        self.stopping = True
        with contextlib.suppress(OSError):
            os.write(self._wake_w, bytes([signum]))

    def run(self, on_ready: Callable[[], None] | None = None) -> None:
        """Block until told to stop; call ``on_ready`` once, when every worker first listens; replace
        workers that exit on their own."""
        from prometheus_client import multiprocess

        if not self.workers:
            for _ in range(self.settings.workers):
                self.spawn()
        while not self.stopping:
            waiting = {p.ready_fd: p for p in self.workers if p.ready_fd is not None}
            fired, _, _ = select.select([*(p.sentinel for p in self.workers), *waiting, self._wake_r], [], [])
            if self.stopping:
                break
            for fd in fired:
                if fd in waiting:
                    waiting[fd].read_ready()
            if not self.announced and self.ready():
                self.announced = True
                if on_ready is not None:
                    on_ready()
            for proc in [p for p in self.workers if not p.is_alive()]:
                if not self.ever_ready(proc):
                    # A worker that dies before serving (port, manifest, memory) would die again.
                    raise ZerowattError(f"worker {proc.pid} exited with status {proc.exitcode} before serving")
                log.error("worker %s exited with %s; starting a new one", proc.pid, proc.exitcode)
                multiprocess.mark_process_dead(proc.pid)  # type: ignore[no-untyped-call]
                proc.close()
                self.workers.remove(proc)
                self.spawn()

    def stop(self, timeout: float = 8.0) -> None:
        for proc in self.workers:
            if proc.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
        for proc in self.workers:
            proc.join(timeout)
            if proc.is_alive():
                proc.kill()
                proc.join(1.0)
            proc.close()
        os.close(self._wake_r)
        os.close(self._wake_w)


def route_urls(apps: list[App], settings: HostSettings) -> list[tuple[str, str, str]]:
    """``(app, component, url)`` for every routable trigger, as printed on start."""
    host = settings.listen_host if ":" not in settings.listen_host else f"[{settings.listen_host}]"
    return [
        (entry.app.name, entry.trigger.component_id, f"http://{host}:{settings.listen_port}{entry.pattern}")
        for entry in Router(apps)
    ]


def serve(
    settings: HostSettings,
    announce: Callable[[list[App], HostSettings], None],
    workers: Prestarted | None = None,
) -> int:
    """Run the host until SIGINT/SIGTERM; ``announce`` prints the routes once every worker listens.

    ``workers``: processes already started by :func:`zerowatt.host.worker.prestart` (this function
    owns them from now on and stops them on any error); by default it starts them itself, first.
    """
    _configure_logging(settings.log_level)
    started = workers if workers is not None else prestart(settings)
    state_dir, metrics_dir = started.state_dir, started.metrics_dir
    # The workers import their modules while this process validates; they serve after release().
    supervisor = Supervisor(settings, state_dir, started.processes)
    admin = None
    previous = {sig: signal.signal(sig, supervisor.request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        policy = settings.policy_config()  # exit 2 on a bad --policy/--policy-option before anything serves
        apps = load(settings)
        if policy is not None:
            log.info("autoscaling policy %s %s", policy.name, dict(policy.options) or "(defaults)")
        compiled = precompile(apps, settings)
        log.info("%d WAGI module(s) in the compile cache; guests run through the %s path", compiled, native.describe())
        bind(settings.listen_host, settings.listen_port, reuse_port=False).close()  # taken port: exit 2 now
        from .admin import AdminServer

        try:
            admin = AdminServer(settings.admin_host, settings.admin_port, supervisor.ready, str(metrics_dir))
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {settings.admin_host}:{settings.admin_port} (admin): {exc.strerror}"
            ) from None
        supervisor.release(apps)
        admin.start()
        supervisor.run(on_ready=lambda: announce(apps, settings))
    finally:
        supervisor.stop()
        if admin is not None:
            admin.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        shutil.rmtree(state_dir, ignore_errors=True)
    return 0
