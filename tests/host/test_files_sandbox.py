"""End to end: a manifest cannot hand a guest host files, and a symlink in a mount cannot lead out of it.

Real ``zerowatt up`` processes, real symlinks (to ``/etc/passwd``, ``/etc``, climbing out with ``..``),
made *after* the server is ready, read by real guests: the WAGI probe (``guests/probe.c``, in-process
wasmtime, WASI preview 1 preopens) and the wasi:http probe (``tests/wasm/components/probe.wat``, a
``wasmtime serve`` child that gets a private copy of its mounts when it starts).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import cli_env, free_port, invoke_cli
from tests.host.guestbuild import build_c
from tests.host.serving import stop, wait_ready

PROBE_WAT = Path(__file__).resolve().parents[1] / "wasm" / "components" / "probe.wat"
PASSWD = Path("/etc/passwd")
#: The first line of /etc/passwd: what must never reach a client.
SECRET = PASSWD.read_text().splitlines()[0]

pytestmark = pytest.mark.timeout(180)

MANIFEST = """\
spin_manifest_version = 2

[application]
name = "sandbox"

[[trigger.http]]
route = "/probe/..."
component = "probe"
executor = {{ type = "wagi" }}

[[trigger.http]]
route = "/fout/..."
component = "out"

[component.probe]
source = "probe.wasm"
files = [{{ source = "data", destination = "/data" }}]

[[trigger.http]]
route = "/fswap/..."
component = "swap"

[component.out]
source = "{wat}"
files = [{{ source = "www", destination = "/www" }}]

[component.swap]
source = "{wat}"
files = [{{ source = "swapped", destination = "/www" }}]
"""


@dataclass
class Up:
    url: str
    work: Path
    proc: subprocess.Popen[str]
    log: Path


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    work = tmp_path_factory.mktemp("sandbox")
    build_c("probe", work)
    (work / "data").mkdir()
    (work / "data" / "hello.txt").write_text("mounted file\n")
    (work / "www").mkdir()
    (work / "swapped").mkdir()
    (work / "spin.toml").write_text(MANIFEST.format(wat=PROBE_WAT))
    port, admin = free_port(), free_port()
    log = work / "up.log"
    env = dict(cli_env(), ZEROWATT_CACHE_DIR=str(work / "cache"))
    argv = [sys.executable, "-m", "zerowatt", "up", str(work / "spin.toml"), "--workers", "1"]
    argv += ["--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}"]
    with log.open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        wait_ready(f"http://127.0.0.1:{admin}", proc, log)
        # Every link below is made after `up` started: the load-time checks never saw them.
        os.symlink(PASSWD, work / "data" / "evil")
        os.symlink("../" * len(work.parts) + "etc/passwd", work / "data" / "climb")
        os.symlink("/etc", work / "data" / "etc")
        os.symlink("../spin.toml", work / "data" / "manifest")  # inside the app, outside the mount
        os.symlink("hello.txt", work / "data" / "alias")  # inside the mount: allowed
        os.symlink(PASSWD, work / "www" / "data.txt")
        yield Up(f"http://127.0.0.1:{port}", work, proc, log)
    finally:
        stop(proc)


@pytest.mark.parametrize("guest_path", ["/data/evil", "/data/climb", "/data/etc/passwd", "/data/manifest"])
def test_wagi_symlink_out_of_a_mount_is_refused_at_request_time(up: Up, guest_path: str) -> None:
    r = httpx.get(f"{up.url}/probe/file?{guest_path}", timeout=30)
    assert r.status_code == 404, r.text
    assert SECRET not in r.text and "spin_manifest_version" not in r.text


def test_wagi_symlink_inside_a_mount_still_works(up: Up) -> None:
    r = httpx.get(f"{up.url}/probe/file?/data/alias", timeout=30)
    assert r.status_code == 200, r.text
    assert r.text == "mounted file\n"


def test_wasi_http_copy_of_a_mount_drops_links_that_leave_it(up: Up) -> None:
    r = httpx.get(f"{up.url}/fout/file", timeout=60)
    assert r.status_code == 404, r.text
    assert SECRET not in r.text
    assert "leads outside the mounted directory" in up.log.read_text()


def test_wasi_http_refuses_to_start_on_a_swapped_mount(up: Up) -> None:
    (up.work / "swapped").rename(up.work / "swapped.old")
    os.symlink("/etc", up.work / "swapped")
    os.symlink("passwd", up.work / "swapped.old" / "data.txt")  # what /www/data.txt would be through the link
    r = httpx.get(f"{up.url}/fswap/file", timeout=60)
    assert r.status_code == 503 and SECRET not in r.text
    error_id = r.headers["x-error-id"]
    log = up.log.read_text()
    assert error_id in log and "now resolves to /etc" in log


# -- refused at load: `zerowatt up` (and `check`) exit 2 naming the key and the resolved path -------------


def _app(tmp_path: Path, files: str) -> Path:
    (tmp_path / "hello.wat").write_text('(module (func (export "_start")))\n')
    (tmp_path / "spin.toml").write_text(
        'spin_manifest_version = 2\n[application]\nname = "evil"\n'
        '[[trigger.http]]\nroute = "/..."\ncomponent = "x"\n'
        f'[component.x]\nsource = "hello.wat"\nfiles = [{files}]\n'
    )
    return tmp_path / "spin.toml"


@pytest.mark.parametrize(
    ("files", "key", "resolved"),
    [
        ('{ source = "' + "../" * 40 + 'etc", destination = "/etc" }', "component.x.files[0].source", "/etc"),
        ('{ source = "etc", destination = "/etc" }', "component.x.files[0].source", "/etc"),
        ('"assets/*.txt"', "component.x.files[0]", "/etc/passwd"),
        ('{ source = "secret.txt", destination = "/s.txt" }', "component.x.files[0].source", "/etc/passwd"),
    ],
    ids=["dot-dot", "directory-link", "glob-link", "file-link"],
)
def test_up_refuses_a_files_source_outside_the_app(tmp_path: Path, files: str, key: str, resolved: str) -> None:
    manifest = _app(tmp_path, files)
    os.symlink("/etc", tmp_path / "etc")
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "fine.txt").write_text("fine\n")
    os.symlink(PASSWD, tmp_path / "assets" / "evil.txt")
    os.symlink(PASSWD, tmp_path / "secret.txt")
    port, admin = free_port(), free_port()
    args = [str(manifest), "--workers", "1", "--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}"]
    for command in (["up", *args], ["check", str(manifest)]):
        result = invoke_cli(command)  # rejected before anything is served: in-process
        assert result.returncode == 2, result.stdout + result.stderr
        message = " ".join(result.stderr.split())  # Rich wraps long lines
        assert f"{manifest}: {key}" in message, message
        assert f"resolves to {resolved}" in message, message
        assert "outside the app directory" in message, message
