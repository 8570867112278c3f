"""Starting worker processes, from the supervisor's side: :class:`WorkerProcess` (the handle of one
``python -m zerowatt.host.worker``), :func:`prestart` and :func:`prestart_early` (workers started before
validation, even before option parsing) and the state directory they share.

The worker's own side is :mod:`zerowatt.host.worker`; keeping the two apart keeps the import graph
acyclic (the worker imports the server's worker functions, the server imports this module).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pickle
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zerowatt.host.settings import HostSettings
    from zerowatt.wasm.model import App


class WorkerProcess:
    """One worker: ``python -m zerowatt.host.worker`` with its settings on stdin and a readiness pipe.

    ``sentinel`` (a pidfd) becomes readable when the process has exited, ``ready_fd`` when it listens
    (one byte; EOF if it died first): the supervisor selects on both.
    """

    def __init__(self, env: dict[str, str]) -> None:
        ready_r, ready_w = os.pipe()
        # The lifeline: only this process holds the write end (pipes are not inherited unless passed), so
        # the worker reads end-of-file exactly when the supervisor is gone, however it died.
        life_r, self.lifeline = os.pipe()
        try:
            self.popen = subprocess.Popen(
                [*_python(), "-m", "zerowatt.host.worker", str(ready_w), str(life_r), str(os.getpid())],
                stdin=subprocess.PIPE,
                pass_fds=(ready_w, life_r),
                env=env,
            )
        except BaseException:
            os.close(ready_r)
            os.close(self.lifeline)
            raise
        finally:
            os.close(ready_w)
            os.close(life_r)
        self.pid: int = self.popen.pid
        self.ready_fd: int | None = ready_r
        try:
            self.sentinel: int = os.pidfd_open(self.pid)  # Linux ≥ 5.3
        except OSError:
            self.popen.kill()  # never leave a worker nobody watches
            self.popen.wait()
            os.close(ready_r)
            raise
        self.ever_ready = False

    def send_settings(self, settings_json: str, apps: list[App]) -> None:
        """Hand the worker its settings and the validated apps (it has been importing its modules
        meanwhile) and let it serve. The apps travel pickled over this private pipe, as
        multiprocessing would send them: a worker that parsed the manifests again and validated every
        module again (``wasm-tools`` for components) spent up to half a second on it."""
        assert self.popen.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # it died already: the supervisor sees its exit
            self.popen.stdin.write(pickle.dumps((settings_json, apps)))
        with contextlib.suppress(BrokenPipeError):
            self.popen.stdin.close()

    def read_ready(self) -> None:
        """Called when ``ready_fd`` is readable: one byte means "listening", EOF means it never will."""
        if self.ready_fd is None:
            return
        self.ever_ready = os.read(self.ready_fd, 1) == b"R" or self.ever_ready
        os.close(self.ready_fd)
        self.ready_fd = None

    def is_alive(self) -> bool:
        return self.popen.poll() is None

    @property
    def exitcode(self) -> int | None:
        return self.popen.poll()

    def join(self, timeout: float) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.popen.kill()

    def close(self) -> None:
        """Release the pipes and the pidfd (after the process has been reaped)."""
        if self.ready_fd is not None:
            os.close(self.ready_fd)
            self.ready_fd = None
        if self.popen.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.popen.stdin.close()
        if self.sentinel >= 0:
            os.close(self.sentinel)
            self.sentinel = -1
        if self.lifeline >= 0:
            os.close(self.lifeline)
            self.lifeline = -1


def _python() -> list[str]:
    """This interpreter; ``-P`` keeps the caller's working directory off a worker's ``sys.path``."""
    return [sys.executable, "-P"]


def worker_env() -> dict[str, str]:
    """The environment of a worker: ours, with the directory that holds this ``zerowatt`` package first
    on ``PYTHONPATH`` unless it is the interpreter's own site-packages (a worker must run the same code
    as its supervisor, from a source tree too; site-packages ahead of the standard library could shadow it)."""
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])  # the directory that holds ``zerowatt/``
    if package_root not in {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}:
        env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


@dataclass
class Prestarted:
    """Workers started ahead of validation, and the state directory they share with the supervisor."""

    state_dir: str
    processes: list[WorkerProcess]
    previous_metrics_dir: str | None = None  # PROMETHEUS_MULTIPROC_DIR before prestart set it

    @property
    def metrics_dir(self) -> Path:
        return Path(self.state_dir) / "metrics"

    @property
    def energy_board(self) -> Path:
        """Where the supervisor publishes each interval's process CPU sum (:mod:`zerowatt.energy.board`)."""
        return Path(self.state_dir) / "energy-seen"

    def release_environment(self) -> None:
        """Give ``PROMETHEUS_MULTIPROC_DIR`` back its value from before :func:`prestart` (the state directory is
        about to go: a process that serves more than once, or starts other programs after, must not inherit it)."""
        if self.previous_metrics_dir is None:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        else:
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = self.previous_metrics_dir


#: The environment variable that tells a worker where its supervisor publishes (:mod:`zerowatt.energy.board`).
ENERGY_BOARD_ENV = "ZEROWATT_ENERGY_BOARD"


def default_workers() -> int:
    """Workers when ``--workers`` is not given: one per CPU core."""
    return os.cpu_count() or 1


#: Workers started by :func:`prestart_early` that :func:`prestart` has not claimed yet.
_early: Prestarted | None = None


def _start(count: int) -> Prestarted:
    """``count`` workers and a fresh state directory (removed again if starting them fails)."""
    state_dir = tempfile.mkdtemp(prefix="zerowatt-up-")
    started = Prestarted(state_dir, [], os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    started.metrics_dir.mkdir()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(started.metrics_dir)  # the admin listener reads it too
    env = worker_env()
    env[ENERGY_BOARD_ENV] = str(started.energy_board)  # the supervisor's /proc scan, shared (energy/board.py)
    try:
        for _ in range(count):
            started.processes.append(WorkerProcess(env))
    except BaseException:
        discard(started)
        raise
    return started


def stop_unreleased(processes: list[WorkerProcess]) -> None:
    """Kill workers that never got their settings (nothing to drain) and reap them."""
    for proc in processes:
        proc.kill()
    for proc in processes:
        proc.join(5.0)
        proc.close()


def discard(started: Prestarted) -> None:
    """Stop workers that never got their settings and remove their state directory."""
    stop_unreleased(started.processes)
    started.processes.clear()
    started.release_environment()
    shutil.rmtree(started.state_dir, ignore_errors=True)


def prestart_early(count: int) -> None:
    """Start ``count`` workers before the CLI has even parsed its options (``zerowatt up`` guesses
    ``count`` from its arguments, :func:`zerowatt.cli.main.early_workers`): typer's option parsing
    and validation (~0.35 s of CPU, pydantic included) then overlap the workers' own imports instead
    of delaying them. :func:`prestart` claims them; if it never does (a usage error, ``--help``
    after all), they are stopped at exit and their state directory is removed."""
    global _early
    if _early is None:
        _early = _start(count)
        atexit.register(_discard_unclaimed)


def _discard_unclaimed() -> None:
    global _early
    if _early is not None:
        started, _early = _early, None
        discard(started)


def prestart(settings: HostSettings) -> Prestarted:
    """Start ``settings.workers`` workers before the caller imports anything heavy (``zerowatt up`` calls
    this first); hand them to :func:`zerowatt.host.server.serve`, which validates and releases them.
    Workers :func:`prestart_early` started are taken over, as many as ``settings.workers`` asks for.

    prometheus-client reads ``PROMETHEUS_MULTIPROC_DIR`` when it is imported, which a worker does
    before it gets its settings: the directory is made here and set in the environment it inherits.
    """
    global _early
    started, _early = _early, None
    if started is None:
        return _start(settings.workers)
    stop_unreleased(started.processes[settings.workers :])  # the guess was too high
    del started.processes[settings.workers :]
    env = worker_env()
    try:
        while len(started.processes) < settings.workers:
            started.processes.append(WorkerProcess(env))
    except BaseException:
        discard(started)
        raise
    return started
