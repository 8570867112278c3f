"""The supervisor's precompile step: it compiles what the cache lacks and, when every module is
cached, creates no engine at all (start-up); a cached entry that is unusable is repaired by the
worker that loads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import EXAMPLES
from zerowatt.host import server
from zerowatt.host.settings import HostSettings
from zerowatt.wasm import engine
from zerowatt.wasm.compile_cache import entry_file
from zerowatt.wasm.engine import EngineSettings, Runtime


def _settings(tmp_path: Path) -> HostSettings:
    return HostSettings(manifests=(str(EXAMPLES / "echo-c" / "spin.toml"),), cache_dir=str(tmp_path / "cache"))


def test_precompile_fills_the_cache_then_needs_no_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(tmp_path)
    apps = server.load(settings)
    assert server.precompile(apps, settings) == 1
    component = next(iter(apps[0].components.values()))
    entry = entry_file(tmp_path / "cache", EngineSettings().fingerprint(), component.source_digest)
    assert entry.is_file()

    def no_engine(*args: object, **kwargs: object) -> Runtime:
        raise AssertionError("an engine was created although every module is cached")

    monkeypatch.setattr(engine, "Runtime", no_engine)
    assert server.precompile(apps, settings) == 1


def test_an_unusable_cached_entry_is_recompiled_by_the_worker(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    apps = server.load(settings)
    server.precompile(apps, settings)
    component = next(iter(apps[0].components.values()))
    entry = entry_file(tmp_path / "cache", EngineSettings().fingerprint(), component.source_digest)
    entry.write_bytes(b"not precompiled code")
    server.precompile(apps, settings)  # the entry exists: left for the worker
    runtime = Runtime(EngineSettings())
    try:
        module, cached = server.make_cache(runtime, settings).load(component.source, component.source_digest)
        assert not cached and module is not None
        assert entry.read_bytes() != b"not precompiled code"  # replaced by real precompiled code
    finally:
        runtime.close()
