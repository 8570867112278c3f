"""Fixtures for the manifest, router and CLI tests: tiny real modules and a manifest writer."""

from __future__ import annotations

import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES

#: A WAGI guest (core module exporting _start) in WAT.
CORE_WAT = """(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")))
"""
#: A core module with no _start: a library, not a command.
LIBRARY_WAT = '(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))\n'
#: A component whose world exports wasi:http/incoming-handler (an empty instance is enough to inspect).
HTTP_COMPONENT_WAT = """(component
  (instance $handler)
  (export "wasi:http/incoming-handler@0.2.0" (instance $handler)))
"""
#: A component that exports nothing an HTTP host could call.
OTHER_COMPONENT_WAT = '(component (core module $m (func (export "f"))))\n'

HEADER = """spin_manifest_version = 2

[application]
name = "test-app"
version = "1.0.0"
"""

WriteManifest = Callable[..., Path]


@pytest.fixture
def write_manifest(tmp_path: Path) -> WriteManifest:
    """Write ``spin.toml`` (with the standard header unless ``header=False``) plus extra files."""

    def write(body: str, *, header: bool = True, files: dict[str, str | bytes] | None = None) -> Path:
        for name, content in (files or {}).items():
            target = tmp_path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)
        manifest = tmp_path / "spin.toml"
        manifest.write_text((HEADER if header else "") + textwrap.dedent(body))
        return manifest

    return write


@pytest.fixture(scope="session")
def built_examples() -> Path:
    """The examples directory with its C guests built (``make -C examples``; a no-op when up to date)."""
    result = subprocess.run(["make", "-C", str(EXAMPLES)], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return EXAMPLES
