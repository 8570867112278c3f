"""The WAGI executor's native fast path: build, load and initialise ``_wagi_native.c``.

The per-request wasmtime sequence costs about half as much done in one C call as call by call through
ctypes (docs/benchmarks.md), so the executor prefers the native module and keeps the ctypes path as
the fallback. The module is a small CPython extension shipped as source: it is compiled once per
source, Python and platform with the system C compiler into the cache directory
(``$ZEROWATT_CACHE_DIR/native``), atomically, so concurrent workers never load a half-written file.
It does not link against wasmtime: :func:`load` hands it the addresses of the C API functions of
the libwasmtime that wasmtime-py has loaded.

``ZEROWATT_WAGI_BACKEND=ctypes`` turns the native path off; ``native`` makes its absence an error.
``python -m zerowatt.wasm.native`` builds it ahead of time (``make setup`` does).
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.machinery
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
from pathlib import Path
from types import ModuleType

from wasmtime import _ffi as ffi

from zerowatt.errors import UsageError
from zerowatt.wasm.compile_cache import default_cache_dir, wasmtime_version

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("_wagi_native.c")
BACKEND_ENV = "ZEROWATT_WAGI_BACKEND"

# The C API functions the module calls, in the order of its ``api`` struct.
_FUNCTIONS = (
    "wasmtime_store_new",
    "wasmtime_store_context",
    "wasmtime_store_limiter",
    "wasmtime_store_delete",
    "wasi_config_new",
    "wasi_config_delete",
    "wasi_config_set_argv",
    "wasi_config_set_env",
    "wasi_config_set_stdin_bytes",
    "wasi_config_inherit_stdout",
    "wasi_config_set_stdout_file",
    "wasi_config_inherit_stderr",
    "wasi_config_set_stderr_custom",
    "wasi_config_preopen_dir",
    "wasmtime_context_set_wasi",
    "wasmtime_context_set_epoch_deadline",
    "wasmtime_instance_pre_instantiate",
    "wasmtime_instance_export_get",
    "wasmtime_func_call",
    "wasmtime_memory_data_size",
    "wasm_byte_vec_new",
    "wasm_byte_vec_delete",
    "wasmtime_error_message",
    "wasmtime_error_exit_status",
    "wasmtime_error_delete",
    "wasm_trap_message",
    "wasmtime_trap_code",
    "wasm_trap_delete",
    "wasmtime_engine_increment_epoch",
    "wasmtime_store_epoch_deadline_callback",
    "wasmtime_error_new",
)


class NativeUnavailable(RuntimeError):
    """The native module cannot be built or loaded here (the message says why)."""


_lock = threading.Lock()
_loaded: ModuleType | None = None
_failure: str | None = None


def backend_choice() -> str:
    """``auto`` (native when it can be had, else ctypes), ``native`` or ``ctypes``, from the environment."""
    choice = os.environ.get(BACKEND_ENV, "auto").strip().lower() or "auto"
    if choice not in ("auto", "native", "ctypes"):
        raise UsageError(f"{BACKEND_ENV}={choice!r}: expected auto, native or ctypes")
    return choice


def module_path(directory: Path | None = None) -> Path:
    """Where the built module for this source, Python, platform and wasmtime release lives.

    The wasmtime release is in the key although nothing links against it: the module relies on the
    layout of a few of its C API structs, checked for the release pinned in pyproject.toml.
    """
    parts = (SOURCE.read_bytes(), sys.version, sysconfig.get_platform(), wasmtime_version(), *_FUNCTIONS)
    key = hashlib.sha256(b"\0".join(p if isinstance(p, bytes) else p.encode() for p in parts)).hexdigest()[:16]
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    return (directory or default_cache_dir() / "native") / f"_wagi_native-{key}{suffix}"


def compiler() -> str | None:
    """The C compiler to build with: ``$CC``, else Python's own, else ``cc``, ``gcc`` or ``clang``."""
    candidates = [os.environ.get("CC", ""), (sysconfig.get_config_var("CC") or "").split(" ")[0], "cc", "gcc", "clang"]
    for name in candidates:
        found = shutil.which(name) if name else None
        if found:
            return found
    return None


def build(directory: Path | None = None) -> Path:
    """Compile the module if it is not built yet; returns its path. Raises :class:`NativeUnavailable`."""
    target = module_path(directory)
    if target.is_file():
        return target
    cc = compiler()
    if cc is None:
        raise NativeUnavailable("no C compiler found (set CC, or install gcc)")
    include = sysconfig.get_paths()["include"]
    if not (Path(include) / "Python.h").is_file():
        raise NativeUnavailable(f"Python's headers are not installed ({include}/Python.h is missing)")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(prefix=target.name + ".", suffix=".partial", dir=target.parent)
    os.close(fd)
    command = [
        cc,
        "-O2",
        "-shared",
        "-fPIC",
        "-pthread",
        "-fvisibility=hidden",
        f"-I{include}",
        str(SOURCE),
        "-o",
        partial,
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise NativeUnavailable(f"{' '.join(command)} failed:\n{done.stderr.strip()}")
        os.replace(partial, target)  # atomic: a concurrent loader sees the whole file or none
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return target


def _import(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("_wagi_native", path)
    if spec is None or spec.loader is None:  # pragma: no cover - only for a path without a loader
        raise NativeUnavailable(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    addresses = tuple(ctypes.cast(getattr(ffi.dll, name), ctypes.c_void_p).value for name in _FUNCTIONS)
    module.init(addresses)
    return module


def load() -> ModuleType | None:
    """The initialised native module, or None where the ctypes path must be used (logged once, with why).

    Builds the module on first use when needed. With ``ZEROWATT_WAGI_BACKEND=native``, a module that
    cannot be had is a :class:`~zerowatt.errors.UsageError` instead of a fallback.
    """
    global _loaded, _failure
    choice = backend_choice()
    if choice == "ctypes":
        return None
    with _lock:
        if _loaded is None and _failure is None:
            try:
                _loaded = _import(build())
            except (NativeUnavailable, OSError, ImportError) as exc:
                _failure = str(exc)
                log.warning("WAGI native fast path unavailable, using the ctypes path: %s", _failure)
        if _loaded is None and choice == "native":
            raise UsageError(f"{BACKEND_ENV}=native, but the native module is unavailable: {_failure}")
        return _loaded


def describe() -> str:
    """Which WAGI path this process uses, for the log (loads the module if it was not yet)."""
    module = load()
    if module is not None:
        return f"native ({module.__file__})"
    reason = "turned off by " + BACKEND_ENV if backend_choice() == "ctypes" else _failure
    return f"ctypes ({reason})"


if __name__ == "__main__":  # pragma: no cover - `make setup` runs it; tests call build() directly
    print(build())
