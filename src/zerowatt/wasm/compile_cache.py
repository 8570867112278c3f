"""The on-disk cache of precompiled modules: compile once, ``mmap`` the machine code ever after.

A cold start (component unloaded → first response) must cost well under a millisecond, which rules
out compiling; deserialising precompiled code is an ``mmap`` plus relocation. Entries are keyed by the
source's sha256, the wasmtime version and the engine settings (:meth:`EngineSettings.fingerprint`), so
a changed module, an upgraded wasmtime or other engine flags never load stale code. Writes are atomic
(temporary file + ``os.replace``) so concurrent workers never see a half-written entry; an entry that
fails to load (truncated, corrupted, from another build) is recompiled and replaced, never fatal.
"""

from __future__ import annotations

import logging
import os
import tempfile
from functools import cache
from pathlib import Path

import wasmtime

from zerowatt.errors import ValidationError

log = logging.getLogger(__name__)

CACHE_ENV = "ZEROWATT_CACHE_DIR"


@cache
def wasmtime_version() -> str:
    """The installed wasmtime package version (precompiled code is only valid for the same one).

    Read from the ``wasmtime-<version>.dist-info`` directory beside the package: one directory
    listing, where ``importlib.metadata`` costs every worker ~50 ms of imports at start-up.
    """
    site = Path(wasmtime.__file__).resolve().parent.parent
    for entry in site.glob("wasmtime-*.dist-info"):
        return entry.name.removeprefix("wasmtime-").removesuffix(".dist-info")
    from importlib.metadata import PackageNotFoundError, version  # pragma: no cover - other layouts

    try:  # pragma: no cover
        return version("wasmtime")
    except PackageNotFoundError:  # pragma: no cover - running from a source checkout of wasmtime-py
        return "unknown"


def default_cache_dir() -> Path:
    """``$ZEROWATT_CACHE_DIR``, else ``$XDG_CACHE_HOME/zerowatt``, else ``~/.cache/zerowatt``."""
    if env := os.environ.get(CACHE_ENV):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "zerowatt"


def entry_file(directory: Path, fingerprint: str, digest: str) -> Path:
    """Where the precompiled code of the module with ``digest`` ("sha256:<hex>") lives, for engines
    with ``fingerprint`` (:meth:`EngineSettings.fingerprint`): known without creating an engine."""
    return directory / f"{digest.split(':', 1)[-1]}-{fingerprint}.cwasm"


def read_wasm(source: Path) -> bytes:
    """The binary module in ``source`` (``.wat`` text is assembled); a clear error names the file."""
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise ValidationError(str(source), f"cannot read the module: {exc.strerror}") from None
    if source.suffix == ".wat" or not data.startswith(b"\0asm"):
        try:
            return bytes(wasmtime.wat2wasm(data.decode("utf-8")))
        except (UnicodeDecodeError, wasmtime.WasmtimeError) as exc:
            raise ValidationError(str(source), f"not a WebAssembly module (binary or text): {exc}") from None
    return data


class ModuleCache:
    """Loads modules for one engine, compiling on a miss and storing the precompiled code."""

    def __init__(self, engine: wasmtime.Engine, fingerprint: str, directory: Path | None = None) -> None:
        self.engine = engine
        self.fingerprint = fingerprint
        self.directory = directory or default_cache_dir()

    def entry_path(self, digest: str) -> Path:
        """Where the precompiled code of the module with ``digest`` ("sha256:<hex>") lives."""
        return entry_file(self.directory, self.fingerprint, digest)

    def load(self, source: Path, digest: str) -> tuple[wasmtime.Module, bool]:
        """The module for ``source``, and whether it came from the cache (False: it was compiled now)."""
        entry = self.entry_path(digest)
        try:
            return wasmtime.Module.deserialize_file(self.engine, str(entry)), True
        except wasmtime.WasmtimeError as exc:
            if entry.exists():  # a miss is normal; an entry that exists but fails to load is worth a line
                log.warning("recompiling %s: cache entry %s is unusable (%s)", source, entry, exc)
        return self.compile(source, entry), False

    def compile(self, source: Path, entry: Path) -> wasmtime.Module:
        """Compile ``source`` and store its precompiled code at ``entry`` (best effort: a read-only
        cache directory only costs speed)."""
        wasm = read_wasm(source)
        try:
            module = wasmtime.Module(self.engine, wasm)
        except wasmtime.WasmtimeError as exc:
            raise ValidationError(str(source), f"invalid WebAssembly module: {exc}") from None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".cwasm")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(module.serialize())
                os.replace(tmp, entry)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            log.warning("cannot write the compile cache %s: %s", self.directory, exc)
        return module
