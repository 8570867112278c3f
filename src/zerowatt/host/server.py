"""``zerowatt up``: the supervisor process, its worker processes and their HTTP servers.

The supervisor starts ``workers`` worker processes first, from the lean entry point
:mod:`zerowatt.host.worker` (``python -m``, not multiprocessing's spawn, which re-imports the
parent's ``__main__``: the whole CLI). While they import their modules it validates everything
(manifests, modules compiled into the on-disk cache, free ports) and only then hands them their
settings on stdin; a validation error stops them before they bind anything. It then starts the admin
listener and prints the banner once every worker reports (on a pipe) that it listens. Each
worker binds the listen address with ``SO_REUSEPORT`` (the kernel spreads connections across them,
no accept-lock herd) and runs one HTTP server over a :class:`~zerowatt.host.app.HostApp`: by
default the native HTTP/1.1 server of :mod:`zerowatt.host.http` (asyncio + httptools, no ASGI
layer), or with ``--http uvicorn`` uvicorn (httptools parser, uvloop) over the host's ASGI
adapter (:mod:`zerowatt.host.asgi`). The supervisor sleeps until a signal or a worker exit: a
worker that dies is replaced,
SIGINT/SIGTERM/SIGHUP stop all of them gracefully (docs/host.md, "Signals and lifecycle"), and a
worker whose supervisor is gone (even ``kill -9``) stops too (:func:`tie_to_supervisor`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import select
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from zerowatt.errors import UsageError, ZerowattError
from zerowatt.lifeline import watch_parent
from zerowatt.wasm.model import App, ExecutorKind
from zerowatt.wasm.router import Router

from .settings import HostSettings
from .spawn import Prestarted, WorkerProcess, prestart, worker_env

if TYPE_CHECKING:
    from zerowatt.energy.request import ActiveRate, LiveRate
    from zerowatt.wasm.compile_cache import ModuleCache
    from zerowatt.wasm.engine import Runtime

    from .admin import AdminServer
    from .app import HostApp
    from .asgi import AsgiApp

# What only a worker needs (asyncio, the executors, the ASGI app, prometheus-client) is imported in
# the functions that run in the worker: the supervisor validates and releases the workers without
# those imports on the critical path of start-up (docs/benchmarks.md, "Start-up").

log = logging.getLogger(__name__)

#: The signals that stop ``zerowatt up`` gracefully. SIGHUP too: ``up`` runs in the foreground, so a
#: hangup means its terminal (or ssh session) went away; a reload is a restart under a process manager.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: Seconds a stopping worker gets beyond the drain (its 503s, the lifespan end) before SIGKILL.
STOP_GRACE = 5.0


def load(settings: HostSettings) -> list[App]:
    """Load and validate every manifest (raises :class:`ValidationError`: exit 2, nothing served)."""
    from zerowatt.wasm.manifest.load import load_apps

    paths = [Path(m) for m in settings.manifests]
    for path in paths:
        if not path.is_file():
            raise UsageError(f"{path}: no such manifest (expected a spin.toml file)")
    return load_apps(paths, variable_values=settings.variables, components=settings.components)


def make_cache(runtime: Runtime, settings: HostSettings) -> ModuleCache:
    from zerowatt.wasm.compile_cache import ModuleCache

    directory = Path(settings.cache_dir) if settings.cache_dir else None
    return ModuleCache(runtime.engine, runtime.settings.fingerprint(), directory)


def precompile(apps: list[App], settings: HostSettings) -> int:
    """Compile every WAGI module into the cache so workers only ever ``mmap`` precompiled code.

    A module whose cache entry exists is not loaded here: creating the engine and its pooling
    allocator for that alone cost the supervisor ~0.1 s of start-up. An entry that turns out
    unusable is recompiled by the worker that loads it (:meth:`ModuleCache.load`).
    """
    from zerowatt.wasm.compile_cache import default_cache_dir, entry_file
    from zerowatt.wasm.engine import EngineSettings, Runtime

    fingerprint = EngineSettings().fingerprint()
    directory = Path(settings.cache_dir) if settings.cache_dir else default_cache_dir()
    wagi = [app.components[c] for app in apps for c, kind in _executor_kinds(app).items() if kind is ExecutorKind.WAGI]
    missing = [c for c in wagi if not entry_file(directory, fingerprint, c.source_digest).is_file()]
    if missing:
        runtime = Runtime(EngineSettings())
        try:
            cache = make_cache(runtime, settings)
            for component in missing:
                cache.load(component.source, component.source_digest)
        finally:
            runtime.close()
    return len(wagi)


def _executor_kinds(app: App) -> dict[str, ExecutorKind]:
    """Each component's executor kind; the manifest loader has resolved AUTO (the host's pool, which
    imports the executors and asyncio, only for apps built by hand)."""
    if any(trigger.executor is ExecutorKind.AUTO for trigger in app.triggers):
        from .pool import executor_kinds

        return executor_kinds(app)
    kinds: dict[str, ExecutorKind] = {}
    for trigger in app.triggers:
        kinds.setdefault(trigger.component_id, trigger.executor)
    return kinds


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


def bind_admin(settings: HostSettings) -> socket.socket:
    """The admin listener's socket, bound and listening (a taken port: exit 2 before anything serves)."""
    host = settings.admin_host
    try:
        return socket.create_server(
            (host, settings.admin_port), family=socket.AF_INET6 if ":" in host else socket.AF_INET, backlog=128
        )
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{settings.admin_port} (admin): {exc.strerror}") from None


def lower_thread_priority(nice: int) -> None:
    """Add ``nice`` to the calling thread's nice value (Linux: a thread's own; needs no privilege)."""
    if nice <= 0:
        return
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except OSError as exc:  # pragma: no cover - a sandbox that forbids it: run at the same priority
        log.warning("cannot lower the guest threads' priority: %s", exc)


def prepare_worker() -> Runtime:
    """What a worker does before it has its settings (while the supervisor validates): import the
    serving modules and create the engine, which depends on no setting (:class:`EngineSettings`
    defaults). ``PROMETHEUS_MULTIPROC_DIR`` is already in the environment (:func:`prestart`)."""
    import uvloop  # noqa: F401 - imported now, used once the settings come

    from zerowatt.energy import request  # noqa: F401
    from zerowatt.wasm import native
    from zerowatt.wasm.engine import EngineSettings, Runtime

    from . import asgi, http, metrics, pool, registry  # noqa: F401

    if native.module_path().is_file():  # else the supervisor builds it (once, not once per worker)
        with contextlib.suppress(UsageError):  # the supervisor reports it (exit 2) and stops this worker
            native.load()
    return Runtime(EngineSettings())


def build_host(
    apps: list[App], settings: HostSettings, *, inherit_stdout: bool = False, runtime: Runtime | None = None
) -> tuple[HostApp, Callable[[], None]]:
    """A worker's :class:`HostApp` (and a function that releases its engine and threads).

    ``inherit_stdout`` points this process's fd 1 and fd 2 at scratch files for guests' stdout and
    stderr (the fast path of :class:`InheritedStdout`); only worker processes, which own their fds
    1 and 2, ask for it. ``runtime``: the engine made ahead by :func:`prepare_worker` (this host
    owns it from now on); by default one is made here.
    """
    from concurrent.futures import ThreadPoolExecutor

    from zerowatt.energy.board import SeenBoard
    from zerowatt.energy.procfs import tree_cpu_seconds

    # Both define Prometheus metrics: import them after PROMETHEUS_MULTIPROC_DIR is in the environment.
    from zerowatt.energy.request import start_live_rate
    from zerowatt.wasm.engine import EngineSettings, Runtime
    from zerowatt.wasm.wagi.executor import Offload
    from zerowatt.wasm.wagi.fairness import AppSlots, default_per_app
    from zerowatt.wasm.wagi.stdio import InheritedStdout

    from .app import HostApp
    from .energy import EnergyAccounting, LoopCpu
    from .metrics import EnergyMetrics, HostMetrics, RequestObserver
    from .pool import ComponentPool
    from .registry import ExecutorContext
    from .spawn import ENERGY_BOARD_ENV

    runtime = runtime if runtime is not None else Runtime(EngineSettings())
    stdout = InheritedStdout(stderr=True) if inherit_stdout else None
    threads = ThreadPoolExecutor(
        settings.guest_threads,
        thread_name_prefix="zerowatt-guest",
        initializer=lower_thread_priority,
        initargs=(settings.guest_nice,),
    )
    per_app = settings.guest_threads_per_app or default_per_app(settings.guest_threads)
    ctx = ExecutorContext(
        runtime=runtime,
        cache=make_cache(runtime, settings),
        request_timeout=settings.request_timeout,
        memory_limit=settings.memory_limit,
        # The host's autoscaler decides when wasi:http children stop (no idle timer of their own).
        idle_timeout=365 * 86400.0,
        threads=threads,
        offload=Offload(settings.offload),
        stdout=stdout,
        slots=AppSlots(min(per_app, settings.guest_threads)),
    )
    pool = ComponentPool(apps, ctx)
    observers: list[RequestObserver] = []
    live: LiveRate | None = None
    accounting: EnergyAccounting | None = None
    metrics = HostMetrics()
    loop_cpu: LoopCpu | None = None
    if settings.energy_summary is not None:
        # Every CPU-second of this worker and its children goes to a request or to the host's share, priced
        # once a second at that second's rate (zerowatt.energy.ledger; docs/energy.md).
        loop_cpu = LoopCpu()
        accounting = EnergyAccounting(
            metrics=EnergyMetrics(metrics.registry),
            interval=settings.energy_summary,
            tree_cpu=tree_cpu_seconds,
            loop=loop_cpu,
        )
        board_path = os.environ.get(ENERGY_BOARD_ENV)  # a worker of `zerowatt up`: its supervisor scans /proc
        live = start_live_rate(
            interval=settings.energy_interval,
            listeners=[accounting.close_interval],
            board=SeenBoard(board_path) if board_path else None,
        )
        accounting.rate = live.current
        observers.append(accounting)
    # The autoscaler: --policy, or the keep-alive window of --idle-unload (zerowatt.host.autoscale.policy_for).
    host = HostApp(
        Router(apps).match, pool, settings, metrics, observers=observers, batch_observers=True, loop_cpu=loop_cpu
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
            accounting.close_interval()  # the last partial interval, at the last rate
            accounting.log_summary()
        threads.shutdown(wait=False, cancel_futures=True)
        runtime.close()
        if stdout is not None:
            stdout.close()

    return host, close


def asgi_from_env() -> AsgiApp:
    """ASGI factory for running the host under another ASGI server (the benchmark runs it under
    granian): settings come as ``HostSettings`` JSON in ``$ZEROWATT_HOST_SETTINGS``."""
    from .asgi import AsgiApp

    settings = HostSettings.from_json(os.environ["ZEROWATT_HOST_SETTINGS"])
    host, _close = build_host(load(settings), settings, inherit_stdout=True)
    return AsgiApp(host)


def worker_main(
    settings_json: str,
    ready_fd: int,
    apps: list[App] | None = None,
    lifeline: tuple[int, int] | None = None,
    runtime: Runtime | None = None,
) -> None:
    """Serve as one worker process (see :mod:`zerowatt.host.worker`, which has already set the parent-death
    signal and ignores the terminal's SIGINT and SIGHUP: the supervisor decides); ``ready_fd`` is the pipe on which
    it tells the supervisor that it listens; ``apps``: as the supervisor validated them (else loaded here);
    ``lifeline``: (supervisor pid, read end of a pipe only the supervisor writes), see :func:`tie_to_supervisor`."""
    settings = HostSettings.from_json(settings_json)
    if lifeline is not None:
        tie_to_supervisor(*lifeline, settings.drain_timeout)
    _configure_logging(settings.log_level)
    if apps is None:
        apps = load(settings)
    host, close = build_host(apps, settings, inherit_stdout=True, runtime=runtime)
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


def tie_to_supervisor(supervisor: int, lifeline: int, drain: float) -> None:
    """Stop this worker when its supervisor (pid ``supervisor``) is gone, however it died
    (:mod:`zerowatt.lifeline`); ``lifeline`` is a pipe's read end whose write end only the
    supervisor holds (:class:`~zerowatt.host.spawn.WorkerProcess` makes it).

    Both the parent-death signal and the end-of-file on the lifeline start the same graceful stop as
    the supervisor's own SIGTERM, so requests in flight are still answered; ``alarm`` bounds that
    stop from the kernel side (SIGALRM's default action ends the process, no Python code needed).
    ``wasmtime serve`` children die with the worker (their own parent-death signal). The parent-death
    signal itself was asked for by the entry point (:mod:`zerowatt.host.worker`) before any import.
    """

    def gone() -> None:
        log.warning("the supervisor (pid %d) is gone: stopping", supervisor)
        signal.alarm(math.ceil(drain + STOP_GRACE))
        os.kill(os.getpid(), signal.SIGTERM)

    watch_parent(lifeline, gone)


def _run_native(
    host: HostApp, close: Callable[[], None], sock: socket.socket, ready: Callable[[], None], settings: HostSettings
) -> None:
    """The default front: :mod:`zerowatt.host.http` on uvloop; SIGTERM shuts it down gracefully."""
    import asyncio

    import uvloop

    from .http import serve_native

    host.on_shutdown = close

    async def main() -> bool:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        return await serve_native(
            host, [sock], max_body=settings.max_body, ready=ready, stop=stop, drain=settings.drain_timeout
        )

    if not uvloop.run(main()):
        # Guests cut short by the drain still run on the pool until their own deadline, and the
        # interpreter would wait for those threads at exit: everything is answered, so leave now.
        close()
        logging.shutdown()
        os._exit(0)


def _run_uvicorn(
    host: HostApp, close: Callable[[], None], sock: socket.socket, ready: Callable[[], None], settings: HostSettings
) -> None:
    """``--http uvicorn``: the host as an ASGI app under uvicorn (httptools parser, uvloop)."""
    import asyncio

    import uvicorn

    from .asgi import AsgiApp

    config = uvicorn.Config(
        AsgiApp(host),
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        proxy_headers=False,  # no proxy in front by default; the middleware costs ~2% per request
        server_header=False,
        log_level=settings.log_level,
        timeout_graceful_shutdown=math.ceil(settings.drain_timeout),
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

    def __init__(self, settings: HostSettings, workers: list[WorkerProcess] | None = None) -> None:
        self.settings = settings
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
        """What ``/readyz`` answers: every worker listens, and the routes have been announced (so a script that
        waits for ``/readyz`` finds them printed)."""
        return self.announced and self.workers_ready()

    def workers_ready(self) -> bool:
        live = [p for p in self.workers if p.is_alive()]
        return (
            not self.stopping  # draining: /readyz says 503 so that load balancers stop sending
            and bool(live)
            and len(live) == self.settings.workers
            and all(p.ever_ready for p in live)
        )

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
            if not self.announced and self.workers_ready():
                if on_ready is not None:
                    on_ready()
                self.announced = True  # after the routes are out: /readyz (ready()) says 200 from here on
            for proc in [p for p in self.workers if not p.is_alive()]:
                if not self.ever_ready(proc):
                    # A worker that dies before serving (port, manifest, memory) would die again.
                    raise ZerowattError(f"worker {proc.pid} exited with status {proc.exitcode} before serving")
                log.error("worker %s exited with %s; starting a new one", proc.pid, proc.exitcode)
                multiprocess.mark_process_dead(proc.pid)  # type: ignore[no-untyped-call]
                proc.close()
                self.workers.remove(proc)
                self.spawn()

    def stop(self) -> None:
        """SIGTERM every worker (each drains, up to ``--drain``) and wait for them; SIGKILL what is
        left after the drain plus :data:`STOP_GRACE`, or at once on a second stop signal."""
        self.stopping = True
        os.set_blocking(self._wake_r, False)
        with contextlib.suppress(OSError):  # signals that arrived before this stop are not a second one
            while os.read(self._wake_r, 64):
                pass
        for proc in self.workers:
            if proc.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.settings.drain_timeout + STOP_GRACE
        while (live := [p for p in self.workers if p.is_alive()]) and (left := deadline - time.monotonic()) > 0:
            woke, _, _ = select.select([*(p.sentinel for p in live), self._wake_r], [], [], left)
            if self._wake_r in woke:
                log.warning("second stop signal: killing the workers now")
                break
        for proc in self.workers:
            if proc.is_alive():
                log.warning("worker %s did not stop in time: killed", proc.pid)
                proc.kill()
            proc.join(5.0)
            proc.close()
        os.close(self._wake_r)
        os.close(self._wake_w)


def _supervisor_energy(settings: HostSettings, admin: AdminServer, board_path: Path) -> LiveRate:
    """The supervisor's own CPU is host work (start-up, validation, the admin listener's scrapes): charge it
    to the host share, once a second at that second's rate, as the workers charge theirs. Its counters go
    to the multiprocess directory beside the workers' (prometheus-client was imported after it was set). It
    is the one process of the host that scans ``/proc`` each interval: it publishes the processes' CPU sum
    at ``board_path`` for the workers (:mod:`zerowatt.energy.board`)."""
    from prometheus_client import CollectorRegistry

    from zerowatt.energy.board import SeenBoard
    from zerowatt.energy.procfs import self_cpu_seconds
    from zerowatt.energy.request import start_live_rate

    from .energy import EnergyAccounting
    from .metrics import EnergyMetrics

    def own_cpu() -> float:  # the workers charge their own CPU (and their children's)
        return self_cpu_seconds(reaped=False)

    accounting = EnergyAccounting(
        metrics=EnergyMetrics(CollectorRegistry()), interval=settings.energy_summary or 60.0, tree_cpu=own_cpu
    )
    seen = 0.0

    def close(rate: ActiveRate) -> None:
        nonlocal seen
        scrapes = admin.scrape_cpu
        accounting.host_work("metrics", scrapes - seen)
        seen = scrapes
        accounting.close_interval(rate)

    return start_live_rate(
        interval=settings.energy_interval, listeners=[close], board=SeenBoard(board_path), publish=True
    )


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

    ``workers``: processes already started by :func:`zerowatt.host.spawn.prestart` (this function
    owns them from now on and stops them on any error); by default it starts them itself, first.
    """
    _configure_logging(settings.log_level)
    started = workers if workers is not None else prestart(settings)
    state_dir, metrics_dir = started.state_dir, started.metrics_dir
    # The workers import their modules while this process validates; they serve after release().
    supervisor = Supervisor(settings, started.processes)
    admin = None
    energy: list[LiveRate] = []
    energy_start: threading.Thread | None = None
    admin_sock: socket.socket | None = None
    previous = {sig: signal.signal(sig, supervisor.request_stop) for sig in STOP_SIGNALS}
    try:
        policy = settings.policy_config()  # exit 2 on a bad --policy/--policy-option before anything serves
        apps = load(settings)
        if policy is not None:
            log.info("autoscaling policy %s %s", policy.name, dict(policy.options) or "(defaults)")
        compiled = precompile(apps, settings)
        from zerowatt.wasm import native

        log.info("%d WAGI module(s) in the compile cache; guests run through the %s path", compiled, native.describe())
        bind(settings.listen_host, settings.listen_port, reuse_port=False).close()  # taken port: exit 2 now
        admin_sock = bind_admin(settings)
        # Everything is validated: the workers bind and serve while this process starts the admin
        # listener (its asyncio loop and prometheus-client imports are off the path to the first 200).
        supervisor.release(apps)
        from .admin import AdminServer

        admin = AdminServer(
            settings.admin_host, settings.admin_port, supervisor.ready, str(metrics_dir), sock=admin_sock
        )
        admin_sock = None
        admin.start()
        if settings.energy_summary is not None:  # off the path to "ready": detecting the source takes ~50 ms
            server = admin

            def start_energy() -> None:
                try:
                    energy.append(_supervisor_energy(settings, server, started.energy_board))
                except Exception:  # the supervisor's share is missing from the figures, nothing else
                    log.exception("energy accounting of the supervisor not started")

            energy_start = threading.Thread(target=start_energy, name="zerowatt-energy", daemon=True)
            energy_start.start()
        supervisor.run(on_ready=lambda: announce(apps, settings))
    finally:
        supervisor.stop()
        if energy_start is not None:
            energy_start.join(5)
        for live in energy:
            live.stop()
        if admin is not None:
            admin.stop()
        if admin_sock is not None:
            admin_sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        started.release_environment()
        shutil.rmtree(state_dir, ignore_errors=True)
    return 0
