"""Building, loading and choosing the WAGI executor's native module (``zerowatt.wasm.native``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from zerowatt.errors import UsageError
from zerowatt.wasm import native


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty cache directory and a process that has not loaded (or failed to load) the module yet."""
    monkeypatch.setenv("ZEROWATT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(native, "_loaded", None)
    monkeypatch.setattr(native, "_failure", None)
    return tmp_path


def test_build_compiles_once_into_the_cache_directory(fresh: Path) -> None:
    path = native.build()
    assert path.parent == fresh / "native" and path.is_file()
    assert path.name.startswith("_wagi_native-") and path.name.endswith(".so")
    stamp = path.stat().st_mtime_ns
    assert native.build() == path and path.stat().st_mtime_ns == stamp  # not rebuilt
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no partial files left behind


def test_load_initialises_the_module_and_describe_names_it(fresh: Path) -> None:
    module = native.load()
    assert module is not None and native.load() is module
    assert native.describe().startswith("native (") and str(fresh) in native.describe()


def test_a_failing_compiler_is_reported_and_the_ctypes_path_is_used(
    fresh: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CC", "false")  # exits 1: the build fails
    with pytest.raises(native.NativeUnavailable, match=r"false .* failed"):
        native.build()
    assert not list((fresh / "native").iterdir())  # the partial output was removed
    assert native.load() is None
    assert "using the ctypes path" in caplog.text
    assert native.describe().startswith("ctypes (") and "failed" in native.describe()


def test_no_compiler_at_all(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setenv("PATH", str(fresh))  # nothing to run here
    with pytest.raises(native.NativeUnavailable, match="no C compiler"):
        native.build()


def test_forcing_native_when_it_cannot_be_built_is_a_usage_error(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC", "false")
    monkeypatch.setenv(native.BACKEND_ENV, "native")
    with pytest.raises(UsageError, match="ZEROWATT_WAGI_BACKEND=native, but"):
        native.load()


def test_backend_choice(monkeypatch: pytest.MonkeyPatch, fresh: Path) -> None:
    monkeypatch.setenv(native.BACKEND_ENV, "ctypes")
    assert native.load() is None
    assert native.describe() == f"ctypes (turned off by {native.BACKEND_ENV})"
    monkeypatch.setenv(native.BACKEND_ENV, " Native ")
    assert native.backend_choice() == "native"
    monkeypatch.setenv(native.BACKEND_ENV, "fast")
    with pytest.raises(UsageError, match="ZEROWATT_WAGI_BACKEND='fast': expected auto, native or ctypes"):
        native.load()


def test_run_rejects_arguments_of_the_wrong_shape(fresh: Path) -> None:
    module = native.load()
    assert module is not None
    good: list[object] = [0, 0, 1 << 20, 1.0, [], (), [], (), [], b"", None, None, None, (), b"_start", None]
    with pytest.raises(TypeError, match="16 arguments"):
        module.run(*good[:-1])
    with pytest.raises(TypeError, match="abort is None or a non-empty bytearray"):
        module.run(*good[:-1], b"x")
    for index, bad in ((4, "argv"), (9, "body"), (13, [(b"/", b"/")]), (14, "_start")):
        args = list(good)
        args[index] = bad
        with pytest.raises(TypeError, match="wrong type"):
            module.run(*args)
    uneven = list(good)
    uneven[6] = ["NAME"]  # a name without a value
    with pytest.raises(ValueError, match="as many environment values as names"):
        module.run(*uneven)
    pairs = list(good)
    pairs[13] = ((b"/",),)
    with pytest.raises(TypeError, match="preopens"):
        module.run(*pairs)
    with pytest.raises(ValueError, match="engine and the InstancePre"):
        module.run(*good)  # address 0: refused before wasmtime sees it
    with pytest.raises(TypeError, match="tuple of"):
        module.init(())
