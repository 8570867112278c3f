"""Where a WAGI guest's stdout and stderr go, chosen by measurement (docs/benchmarks.md).

- stdout, guests run inline on the thread that owns :class:`InheritedStdout`: the process's fd 1,
  pointed once at an unlinked scratch file, so wasmtime opens nothing per request;
- stdout, guests on other threads: a per-thread unlinked scratch file that wasmtime opens through
  ``/proc/self/fd`` (:data:`scratch`);
- stderr: a callback into Python, which costs only when a guest actually writes to stderr.

Output is read back with ``pread``; a scratch file that held a large response is truncated after the run.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import sys
import tempfile
import threading
from ctypes import POINTER
from typing import Any, TextIO

from zerowatt.units import Bytes

KEEP_SCRATCH: Bytes = 1 << 20  # a stdout scratch file larger than this is truncated after the run
STDERR_LIMIT: Bytes = 64 * 1024  # what is kept of one run's stderr


class Scratch(threading.local):
    """A per-thread scratch file that receives a guest's stdout (wasmtime writes it, we ``pread`` it).

    Measured cheaper than wasmtime's custom-stdout callback, which re-enters Python per write.
    """

    def __init__(self) -> None:
        # The temp dir, not /dev/shm: containers often cap /dev/shm at 64 MiB. Unlinked files that are
        # rewritten in place live in the page cache either way.
        fd, path = tempfile.mkstemp(prefix="zerowatt-stdout-")
        os.unlink(path)  # wasmtime reopens it by /proc/self/fd, so it needs no name on disk
        self.fd = fd
        self.path = f"/proc/self/fd/{fd}".encode()

    def collect(self, limit: Bytes | None) -> bytes | None:
        """The guest's output (None when it is larger than ``limit``, or not wanted: ``limit`` None).

        Also gives back what a large response left behind, so call it once after every run.
        """
        size = os.fstat(self.fd).st_size
        data = None if limit is None or size > limit else os.pread(self.fd, size, 0) if size else b""
        if size > KEEP_SCRATCH:
            os.ftruncate(self.fd, 0)
        return data


scratch = Scratch()


class InheritedStdout:
    """Process-wide fast path for guest output: file descriptor 1 (and 2) *is* a scratch file.

    Opening a stdout file per request (``wasi_config_set_stdout_file``) costs an ``open``/``close``
    pair inside wasmtime; a guest that inherits the process's stdout needs neither, which measured
    13% off the C echo app's warm request (docs/benchmarks.md). So a worker process that serves
    guests points fd 1 at an unlinked scratch file once (on construction), keeps Python's own
    ``sys.stdout`` on the original stdout, and guests that run inline on the constructing thread
    inherit fd 1 (wasmtime's stdout is a stream: the guest cannot seek it); we rewind it before and
    ``pread`` it after each run. Guests on other threads use :class:`Scratch`.

    With ``stderr=True`` fd 2 gets the same treatment: wasmtime's custom-stderr callback measured
    ~35 µs per request even for guests that never write to stderr, a stderr file ~22 µs, an inherited
    fd nothing. Python's ``sys.stderr`` and the logging handlers that wrote to it move to a duplicate of
    the original fd 2. Bytes that something else in the process writes to fd 2 itself (C libraries)
    between guest runs are forwarded to the original stderr at the next run; during an inline run
    they would be logged as that guest's stderr.
    Only for processes whose own output goes through ``sys.stdout``/``sys.stderr``/logging, like the
    host's workers.
    """

    def __init__(self, *, stderr: bool = False) -> None:
        self.owner = threading.get_ident()
        self.python_stdout = sys.stdout
        self.fd, self.saved, sys.stdout = _redirect(1, "zerowatt-stdout-", sys.stdout)
        self.err_fd: int | None = None
        self.saved_err = -1
        self.python_stderr = sys.stderr
        if stderr:
            self.err_fd, self.saved_err, sys.stderr = _redirect(2, "zerowatt-stderr-", sys.stderr)
            _rebind_handlers(self.python_stderr, sys.stderr)

    def begin(self) -> None:
        # Rewind only: the guest's output is [0, offset after the run); stale bytes past it are never
        # read, and not truncating every time saves freeing and re-allocating page-cache pages.
        os.lseek(self.fd, 0, os.SEEK_SET)  # shared with fd 1: they are one open file description
        if self.err_fd is not None and os.lseek(self.err_fd, 0, os.SEEK_CUR):
            self._forward_stderr()  # the process wrote to fd 2 since the last run

    def collect(self, limit: Bytes | None, stderr_limit: Bytes = STDERR_LIMIT) -> tuple[bytes | None, bytes]:
        """``(stdout, stderr)`` of the run since :meth:`begin`; stdout is None when it is larger than
        ``limit`` or not wanted (``limit`` None), stderr is its first ``stderr_limit`` bytes (b"" when fd 2
        is not redirected). Rewinds fd 2 and gives back what a large output left behind.
        """
        end = os.lseek(self.fd, 0, os.SEEK_CUR)
        stdout = None if limit is None or end > limit else os.pread(self.fd, end, 0) if end else b""
        if end > KEEP_SCRATCH:
            os.ftruncate(self.fd, 0)
        stderr = b""
        if self.err_fd is not None:
            err_end = os.lseek(self.err_fd, 0, os.SEEK_CUR)
            if err_end:
                stderr = os.pread(self.err_fd, min(err_end, stderr_limit), 0)
                if err_end > KEEP_SCRATCH:
                    os.ftruncate(self.err_fd, 0)
                os.lseek(self.err_fd, 0, os.SEEK_SET)
        return stdout, stderr

    def _forward_stderr(self) -> None:
        assert self.err_fd is not None
        end = os.lseek(self.err_fd, 0, os.SEEK_CUR)
        done = 0
        while done < end:
            chunk = os.pread(self.err_fd, min(end - done, 1 << 20), done)
            if not chunk:
                break
            os.write(self.saved_err, chunk)
            done += len(chunk)
        os.ftruncate(self.err_fd, 0)
        os.lseek(self.err_fd, 0, os.SEEK_SET)

    def close(self) -> None:
        """Give fd 1 (and fd 2) back to the original stdout (and stderr)."""
        os.dup2(self.saved, 1)
        os.close(self.saved)
        os.close(self.fd)
        sys.stdout.flush()
        sys.stdout.close()
        sys.stdout = self.python_stdout
        if self.err_fd is not None:
            self._forward_stderr()
            os.dup2(self.saved_err, 2)
            os.close(self.saved_err)
            os.close(self.err_fd)
            self.err_fd = None
            ours = sys.stderr
            ours.flush()
            sys.stderr = self.python_stderr
            _rebind_handlers(ours, self.python_stderr)
            ours.close()


def _redirect(target: int, prefix: str, stream: TextIO) -> tuple[int, int, TextIO]:
    """Point fd ``target`` at a new unlinked scratch file: (the scratch fd, a duplicate of the original
    fd, a line-buffered Python stream on the original for the process's own output)."""
    fd, path = tempfile.mkstemp(prefix=prefix)
    os.unlink(path)
    stream.flush()
    saved = os.dup(target)
    moved = os.fdopen(os.dup(saved), "w", buffering=1, encoding="utf-8", errors="replace")
    os.dup2(fd, target)
    return fd, saved, moved


def _rebind_handlers(old: Any, new: Any) -> None:
    """Point every logging stream handler that writes to ``old`` at ``new``."""
    import logging

    loggers = [
        logging.getLogger(),
        *(v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger)),
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is old:
                handler.setStream(new)


# Guests rarely write to stderr, so a callback (which re-enters Python per write) costs nothing in the
# common case and avoids opening a second scratch file per request.
_STDERR_SINKS: dict[int, list[bytes]] = {}


_SINK_HANDLES = itertools.count(1)  # next() on a count is atomic under the GIL


class StderrSink:
    """Collects one run's stderr (up to 64 KiB); ``handle`` is the callback's ``data`` argument."""

    __slots__ = ("handle",)

    def __init__(self, into: list[bytes]) -> None:
        self.handle = next(_SINK_HANDLES)
        _STDERR_SINKS[self.handle] = into

    def close(self) -> None:
        _STDERR_SINKS.pop(self.handle, None)


def _on_stderr(handle: int | None, data: Any, size: int) -> int:
    sink = _STDERR_SINKS.get(handle or 0)
    if sink is not None and sum(map(len, sink)) < STDERR_LIMIT:
        sink.append(ctypes.string_at(data, size))
    return size


stderr_callback = ctypes.CFUNCTYPE(ctypes.c_ssize_t, ctypes.c_void_p, POINTER(ctypes.c_ubyte), ctypes.c_size_t)(
    _on_stderr
)
