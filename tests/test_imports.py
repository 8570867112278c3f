"""Import weight: what ``zerowatt --help`` and a host worker may load (issue 11 #1, issue 10 start-up).

``zerowatt --help`` used to import every subsystem (647 modules: numpy, pyarrow, httpx, wasmtime,
prometheus-client) and every worker of ``zerowatt up`` mapped numpy and pyarrow. These tests run the
real entry points in fresh interpreters and read what they imported: ``sys.modules`` where the
process can report it, ``/proc/<pid>/maps`` for the workers of a real ``zerowatt up``.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import EXAMPLES, cli_env, free_port, run_cli
from tests.host.serving import wait_ready

#: Libraries no worker serving the examples and no ``zerowatt --help`` may import.
HEAVY = ("numpy", "pyarrow", "httpx", "matplotlib", "kubernetes", "holidays")
#: The examples a worker serves here, and one path of each (``hello-wasi-http`` needs ``wasmtime serve``).
EXAMPLE_ROUTES = {
    "echo-c": "/echo/x",
    "files-c": "/files/hello.txt",
    "hello-wat": "/hello",
    "variables-c": "/variables",
    "hello-wasi-http": "/hello-http",
}


def imported_by(code: str, *args: str, exits: tuple[int, ...] = (0,)) -> set[str]:
    """The top-level packages a fresh interpreter has imported after running ``code`` (with ``sys.argv``
    set to ``args``); it must exit with one of ``exits`` (an import that fails is no result)."""
    probe = (
        "import atexit, json, sys\n"
        "atexit.register(lambda: sys.__stderr__.write('\\nMODULES ' + json.dumps(sorted(sys.modules)) + '\\n'))\n"
        f"sys.argv = {list(args)!r}\n" + code
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=cli_env(), check=False
    )
    assert result.returncode in exits, result.stderr
    line = [x for x in result.stderr.splitlines() if x.startswith("MODULES ")]
    assert line, result.stderr
    return {name.split(".")[0] for name in json.loads(line[-1][len("MODULES ") :])}


@pytest.mark.parametrize("args", [["--help"], ["--version"]])
def test_the_cli_imports_no_capability_for_help_or_version(args: list[str]) -> None:
    loaded = imported_by("from zerowatt.cli.main import main\nmain()", "zerowatt", *args)
    assert not loaded & {*HEAVY, "wasmtime", "prometheus_client"}, sorted(loaded & {*HEAVY, "wasmtime"})


def test_a_command_imports_only_its_own_capability() -> None:
    loaded = imported_by("from zerowatt.cli.main import main\nmain()", "zerowatt", "up", "--help")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_importing_a_pure_core_imports_no_adapter() -> None:
    """Package ``__init__``s re-export pure names only; the online policies are plain Python."""
    loaded = imported_by("import zerowatt.energy, zerowatt.scaling")
    assert not loaded & {*HEAVY, "prometheus_client", "wasmtime"}, sorted(loaded & {*HEAVY, "prometheus_client"})
    loaded = imported_by("import zerowatt.scaling.online, zerowatt.scaling.policies.kpa, zerowatt.scaling.options")
    assert not loaded & {*HEAVY, "prometheus_client", "wasmtime"}, sorted(loaded & {*HEAVY, "prometheus_client"})


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def _mapped_libraries(pid: int) -> set[str]:
    """The shared objects a process maps, as paths."""
    return {line.split()[-1] for line in Path(f"/proc/{pid}/maps").read_text().splitlines() if ".so" in line}


def test_workers_of_zerowatt_up_map_no_heavy_library(tmp_path: Path) -> None:
    """A real ``zerowatt up`` over the examples: after one request per route, no worker maps the
    native parts of numpy or pyarrow (what made each worker ~110 MB)."""
    manifests = [str(EXAMPLES / name / "spin.toml") for name in EXAMPLE_ROUTES if name != "hello-wasi-http"]
    port, admin = free_port(), free_port()
    address = ["--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}", "--cache-dir", str(tmp_path / "c")]
    log = tmp_path / "up.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "zerowatt", "up", *manifests, "--workers", "2", *address],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=cli_env(),
        )
    try:
        wait_ready(f"http://127.0.0.1:{admin}", proc, log)
        for name, path in EXAMPLE_ROUTES.items():
            if name != "hello-wasi-http":
                assert httpx.get(f"http://127.0.0.1:{port}{path}", timeout=30).status_code == 200, name
        workers = _children(proc.pid)
        assert len(workers) == 2
        for pid in workers:
            libraries = _mapped_libraries(pid)
            heavy = {lib for lib in libraries if any(f"/{name}/" in lib or f"/{name}.libs/" in lib for name in HEAVY)}
            assert not heavy, heavy
            assert any("wasmtime" in lib for lib in libraries)  # the check can see a library it maps
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_a_worker_serving_the_examples_imports_no_heavy_module(tmp_path: Path) -> None:
    """The worker entry point exactly as the supervisor starts it (``python -m zerowatt.host.worker``,
    settings and validated apps on stdin), serving one request per example route including a wasi:http component."""
    from zerowatt.host.server import load
    from zerowatt.host.settings import HostSettings

    port = free_port()
    settings = HostSettings(
        manifests=tuple(str(EXAMPLES / name / "spin.toml") for name in EXAMPLE_ROUTES),
        listen_port=port,
        workers=1,
        cache_dir=str(tmp_path / "cache"),
        log_level="warning",
    )
    report = tmp_path / "modules.json"
    ready_r, ready_w = os.pipe()
    life_r, life_w = os.pipe()  # the lifeline: this test process plays the supervisor
    probe = (
        "import atexit, json, runpy, sys\n"
        f"atexit.register(lambda: open({str(report)!r}, 'w').write(json.dumps(sorted(sys.modules))))\n"
        f"sys.argv = ['worker', '{ready_w}', '{life_r}', '{os.getpid()}']\n"
        "runpy.run_module('zerowatt.host.worker', run_name='__main__', alter_sys=True)\n"
    )
    worker = subprocess.Popen(
        [sys.executable, "-c", probe], stdin=subprocess.PIPE, pass_fds=(ready_w, life_r), env=cli_env(), cwd=tmp_path
    )
    os.close(ready_w)
    os.close(life_r)
    try:
        assert worker.stdin is not None
        worker.stdin.write(pickle.dumps((settings.to_json(), load(settings))))
        worker.stdin.close()
        assert os.read(ready_r, 1) == b"R", "the worker never said it listens"
        for name, path in EXAMPLE_ROUTES.items():
            if name == "hello-wasi-http" and not _has_wasmtime_cli():
                continue
            assert httpx.get(f"http://127.0.0.1:{port}{path}", timeout=60).status_code == 200, name
    finally:
        os.close(ready_r)
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        os.close(life_w)
    assert worker.returncode == 0 and report.exists()  # SIGTERM is a graceful stop: atexit ran
    loaded = {name.split(".")[0] for name in json.loads(report.read_text())}
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    assert {"wasmtime", "zerowatt"} <= loaded
    assert not {"typer", "click", "rich"} & loaded  # the worker never imports the CLI


def _has_wasmtime_cli() -> bool:
    import shutil

    return shutil.which("wasmtime") is not None or (Path(sys.executable).parent / "wasmtime").exists()


def test_version_flag_prints_the_installed_version() -> None:
    from importlib.metadata import version

    result = run_cli(["--version"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == version("zerowatt")
