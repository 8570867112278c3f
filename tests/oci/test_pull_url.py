"""``zerowatt pull URL#sha256=…``: an app archive from a real HTTP server on loopback."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import tarfile
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, run_cli
from zerowatt.errors import ValidationError
from zerowatt.oci.pull import PullSettings, pull


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    root = tmp_path / "www"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def app_archive(extra: list[tarfile.TarInfo] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in ("spin.toml", "files.wasm", "static/hello.txt", "static/index.html"):
            tar.add(EXAMPLES / "files-c" / path, arcname=f"./{path}")
        for info in extra or []:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return buf.getvalue()


def publish(root: Path, name: str, data: bytes) -> str:
    (root / name).write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def settings(tmp_path: Path) -> PullSettings:
    return PullSettings(pull_secrets=tmp_path / "none")


def test_a_digest_pinned_archive_is_unpacked_and_checked(served: tuple[Path, str], tmp_path: Path) -> None:
    root, base = served
    hexd = publish(root, "app.tar.gz", app_archive())
    done = run_cli(["pull", f"{base}/app.tar.gz#sha256={hexd}", "--to", str(tmp_path / "app"), "--json"])
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "app" / "static" / "hello.txt").read_bytes() == (
        EXAMPLES / "files-c" / "static" / "hello.txt"
    ).read_bytes()
    check = run_cli(["check", str(tmp_path / "app" / "spin.toml")])
    assert check.returncode == 0, check.stderr


def test_urls_without_or_with_a_wrong_digest_are_refused(served: tuple[Path, str], tmp_path: Path) -> None:
    root, base = served
    publish(root, "app.tar.gz", app_archive())
    done = run_cli(["pull", f"{base}/app.tar.gz", "--to", str(tmp_path / "a")])
    assert done.returncode == 2 and "#sha256=" in done.stderr
    wrong = "ab" * 32
    done = run_cli(["pull", f"{base}/app.tar.gz#sha256={wrong}", "--to", str(tmp_path / "b")])
    assert done.returncode == 2 and f"expected sha256:{wrong}" in done.stderr
    assert not (tmp_path / "b" / "spin.toml").exists()


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = 3 if kind == tarfile.REGTYPE else 0
    return info


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (_member("../escape.txt"), "unsafe file path"),
        (_member("/etc/passwd-copy"), "unsafe file path"),
        (_member("static/../../x"), "unsafe file path"),
        (_member("link", tarfile.SYMTYPE, "/etc/passwd"), "links, devices and FIFOs are refused"),
        (_member("hard", tarfile.LNKTYPE, "spin.toml"), "links, devices and FIFOs are refused"),
        (_member("fifo", tarfile.FIFOTYPE), "links, devices and FIFOs are refused"),
    ],
)
def test_hostile_archives_are_refused(
    served: tuple[Path, str], tmp_path: Path, member: tarfile.TarInfo, message: str
) -> None:
    root, base = served
    hexd = publish(root, "bad.tar.gz", app_archive([member]))
    with pytest.raises(ValidationError, match=message):
        pull(f"{base}/bad.tar.gz#sha256={hexd}", tmp_path / "app", settings(tmp_path))
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "app" / "spin.toml").exists()


def test_an_archive_without_a_manifest_or_over_the_limit(served: tuple[Path, str], tmp_path: Path) -> None:
    root, base = served
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = _member("big.bin")
        info.size = 10_000_000
        tar.addfile(info, io.BytesIO(bytes(info.size)))  # compresses to ~10 KB
    hexd = publish(root, "bomb.tar.gz", buf.getvalue())
    assert len(buf.getvalue()) < 100_000
    with pytest.raises(ValidationError, match="unpacks to more than 1000000 bytes"):
        pull(f"{base}/bomb.tar.gz#sha256={hexd}", tmp_path / "a", PullSettings(max_bytes=1_000_000))
    hexd = publish(root, "nomanifest.tar.gz", _tar_of({"readme.txt": b"hi"}))
    with pytest.raises(ValidationError, match=r"no spin\.toml at its root"):
        pull(f"{base}/nomanifest.tar.gz#sha256={hexd}", tmp_path / "b", settings(tmp_path))


def _tar_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_pull_imports_nothing_heavy(tmp_path: Path) -> None:
    """Every app pod runs ``zerowatt pull`` before it can serve: no NumPy, pyarrow, wasmtime or Kubernetes client."""
    from tests.test_imports import imported_by

    loaded = imported_by(
        "from zerowatt.cli.main import main\nmain()", "zerowatt", "pull", "nope nope", "--to", str(tmp_path), exits=(2,)
    )
    assert "zerowatt" in loaded and "httpx" in loaded
    assert not loaded & {"numpy", "pyarrow", "wasmtime", "kubernetes", "matplotlib", "prometheus_client"}


def test_destinations_that_are_files_or_doctored_records(served: tuple[Path, str], tmp_path: Path) -> None:
    root, base = served
    hexd = publish(root, "app.tar.gz", app_archive())
    ref = f"{base}/app.tar.gz#sha256={hexd}"
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValidationError, match="is not a directory"):
        pull(ref, tmp_path / "file", settings(tmp_path))
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    dest = tmp_path / "app"
    pull(ref, dest, settings(tmp_path))
    record = dest / ".zerowatt-pull.json"
    doc = json.loads(record.read_text())
    doc["entries"] += ["../victim.txt", ".."]
    record.write_text(json.dumps(doc))
    pull(ref, dest, settings(tmp_path))  # the earlier pull is replaced ...
    assert victim.read_text() == "keep"  # ... and nothing outside DIR is touched
    assert (dest / "spin.toml").is_file()
