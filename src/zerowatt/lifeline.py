"""Child processes that die with their parent: ``PR_SET_PDEATHSIG`` plus a liveness pipe.

Why two mechanisms (Linux, prctl(2)): the parent-death signal is sent when the *thread* that forked
the child exits, not the process, and it is set by the child after the fork, so a parent that dies
in between is missed (hence the ``getppid`` check after setting it). A pipe whose write end only the
parent holds has neither gap: the kernel closes it when the parent process is gone, however it died,
and the child's read end then reports end-of-file. ``zerowatt up`` uses both for its workers (the
signal for the start-up phase, the pipe once serving) and the signal alone for ``wasmtime serve``
children, which exec a foreign binary.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import threading
from collections.abc import Callable
from typing import Any

#: ``PR_SET_PDEATHSIG`` from ``<linux/prctl.h>``.
PR_SET_PDEATHSIG = 1

_prctl: Any = None


def load_prctl() -> Any:
    """libc's ``prctl`` (None off Linux). Resolve it before forking: ``dlsym`` in a forked child of a
    threaded process can deadlock on the loader's lock, so ``preexec_fn`` code must only call it."""
    global _prctl
    if _prctl is None:
        with contextlib.suppress(OSError, AttributeError):
            _prctl = ctypes.CDLL(None, use_errno=True).prctl
    return _prctl


def die_with_parent(signum: int, parent: int) -> bool:
    """Ask for ``signum`` when the parent goes; False when the parent is already gone (the child
    should exit now: it was re-parented before the request took effect)."""
    prctl = load_prctl()
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
    return os.getppid() == parent


def watch_parent(fd: int, on_gone: Callable[[], None]) -> threading.Thread:
    """Call ``on_gone`` (from a daemon thread) once ``fd``, a pipe or socket whose other end the
    parent holds, reports end-of-file or an error: the parent process has exited."""

    def wait() -> None:
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        while True:
            try:
                events = poller.poll()
            except InterruptedError:  # pragma: no cover - poll is restarted by Python (PEP 475)
                continue
            if not events:
                continue
            try:
                data = os.read(fd, 4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                on_gone()
                return

    thread = threading.Thread(target=wait, name="zerowatt-lifeline", daemon=True)
    thread.start()
    return thread
