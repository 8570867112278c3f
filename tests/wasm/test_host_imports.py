"""Modules built for Spin's own host interfaces are refused at load, naming the import; two ABIs get a note.

Each test module is real WebAssembly written in WAT: what a Spin 1 SDK build imports and exports
(``spin-config``, ``wasi_experimental_http``, the ``handle-http-request`` export) or a component that
imports ``fermyon:spin/*``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import invoke_cli
from tests.wasm.conftest import WriteManifest
from zerowatt.errors import ValidationError
from zerowatt.wasm.manifest.load import load_app
from zerowatt.wasm.modules import core_imports, wasm_bytes

SPIN_CONFIG_WAT = """(module
  (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
  (import "spin-config" "get-config" (func (param i32 i32 i32)))
  (memory (export "memory") 1)
  (func (export "_start")))
"""
EXPERIMENTAL_HTTP_WAT = """(module
  (import "wasi_experimental_http" "req" (func (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_experimental_http" "close" (func (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")))
"""
SPIN_HTTP_ONLY_WAT = """(module
  (memory (export "memory") 1)
  (func (export "canonical_abi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 0)
  (func (export "handle-http-request") (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32) i32.const 0))
"""
BOTH_ABIS_WAT = """(module
  (memory (export "memory") 1)
  (func (export "_start"))
  (func (export "handle-http-request") (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32) i32.const 0))
"""
SPIN_COMPONENT_WAT = """(component
  (import "fermyon:spin/config@2.0.0" (instance
    (export "get-config" (func (param "key" string) (result string)))))
  (instance $handler)
  (export "wasi:http/incoming-handler@0.2.0" (instance $handler)))
"""
#: Every import kind, to check the import section reader against wasmtime's own view.
ALL_KINDS_WAT = """(module
  (import "a" "f" (func (param i32)))
  (import "b" "t" (table 1 2 funcref))
  (import "c" "m" (memory 1 3))
  (import "d" "g" (global (mut i64)))
  (import "e" "h" (func)))
"""
FILES: dict[str, str | bytes] = {
    "config.wat": SPIN_CONFIG_WAT,
    "xhttp.wat": EXPERIMENTAL_HTTP_WAT,
    "spinhttp.wat": SPIN_HTTP_ONLY_WAT,
    "both.wat": BOTH_ABIS_WAT,
    "spin-component.wat": SPIN_COMPONENT_WAT,
}


def body(source: str, executor: str = "") -> str:
    return f'[[trigger.http]]\nroute = "/x"\ncomponent = "c"\n{executor}\n\n[component.c]\nsource = "{source}"\n'


def test_import_section_reader_matches_wasmtime() -> None:
    import wasmtime

    binary = wasm_bytes(ALL_KINDS_WAT.encode())
    module = wasmtime.Module(wasmtime.Engine(), binary)
    assert [(m, n) for m, n, _k in core_imports(binary)] == [(i.module, i.name) for i in module.imports]
    assert [k for *_, k in core_imports(binary)] == ["func", "table", "memory", "global", "func"]


@pytest.mark.parametrize(
    ("source", "imports", "hint"),
    [
        ("config.wat", ["'spin-config' 'get-config'"], "SPIN_VARIABLE_"),
        ("xhttp.wat", ["'wasi_experimental_http' 'req'", "'wasi_experimental_http' 'close'"], "no network"),
    ],
)
def test_spin_core_imports_are_refused_naming_module_and_name(
    write_manifest: WriteManifest, source: str, imports: list[str], hint: str
) -> None:
    path = write_manifest(body(source), files=FILES)
    with pytest.raises(ValidationError) as info:
        load_app(path, env={})
    assert info.value.where == f"{path}: component.c.source"
    for name in imports:
        assert name in info.value.message
    assert hint in info.value.message and "wasi_snapshot_preview1" in info.value.message


def test_spin_http_abi_without_start_is_refused(write_manifest: WriteManifest) -> None:
    path = write_manifest(body("spinhttp.wat"), files=FILES)
    with pytest.raises(ValidationError) as info:
        load_app(path, env={})
    assert "'handle-http-request'" in info.value.message and "does" in info.value.message
    assert "'_start'" in info.value.message


def test_spin_component_imports_are_refused(write_manifest: WriteManifest) -> None:
    path = write_manifest(body("spin-component.wat"), files=FILES)
    with pytest.raises(ValidationError) as info:
        load_app(path, env={})
    assert info.value.where == f"{path}: component.c.source"
    assert "fermyon:spin/config" in info.value.message and "wasmtime serve" in info.value.message


def test_two_abis_say_which_executor_and_why(write_manifest: WriteManifest) -> None:
    path = write_manifest(body("both.wat"), files=FILES)
    app = load_app(path, env={})
    assert app.triggers[0].executor.value == "wagi"
    (note,) = app.notes
    assert note.startswith(f"{path}: component.c: ")
    assert "WAGI executor" in note and "handle-http-request" in note and "does not implement" in note
    explicit = write_manifest(body("both.wat", 'executor = { type = "wagi" }'), files=FILES)
    assert load_app(explicit, env={}).notes == ()


def test_check_exits_2_naming_the_import_and_prints_the_note(write_manifest: WriteManifest) -> None:
    path = write_manifest(body("config.wat"), files=FILES)
    result = invoke_cli(["check", str(path)])
    assert result.returncode == 2, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    assert "component.c.source" in message and "'spin-config' 'get-config'" in message
    both = write_manifest(body("both.wat"), files=FILES)
    result = invoke_cli(["check", str(both)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WAGI executor" in " ".join(result.stdout.split())
    result = invoke_cli(["check", "--json", str(both)])
    assert "WAGI executor" in json.loads(result.stdout)["apps"][0]["notes"][0]


def test_up_exits_2_for_a_spin_import(write_manifest: WriteManifest, tmp_path: Path) -> None:
    from tests.conftest import free_port

    path = write_manifest(body("xhttp.wat"), files=FILES)
    port, admin = free_port(), free_port()
    result = invoke_cli(
        ["up", str(path), "--workers", "1", "--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}"]
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "'wasi_experimental_http' 'req'" in " ".join(result.stderr.split())


async def test_a_wasi_http_start_failure_gets_one_logged_id_per_request(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``wasmtime serve`` cannot start a component importing fermyon:spin/*: each waiting request gets its own id."""
    import asyncio
    import logging

    from tests.wasm.wasihttp_support import make_component, request, running
    from zerowatt.wasm.executor import GuestUnavailable

    source = tmp_path / "spin-component.wat"
    source.write_text(SPIN_COMPONENT_WAT)
    app, component = make_component(source)
    caplog.set_level(logging.ERROR)
    async with running(app, component) as executor:
        results = await asyncio.gather(
            executor.handle(request(request_id="req-a")),
            executor.handle(request(request_id="req-b")),
            return_exceptions=True,
        )
    assert all(isinstance(r, GuestUnavailable) for r in results), results
    assert sorted(r.error_id for r in results if isinstance(r, GuestUnavailable)) == ["req-a", "req-b"]
    for rid in ("req-a", "req-b"):
        assert any(rid in r.getMessage() and "exited" in r.getMessage() for r in caplog.records), rid
