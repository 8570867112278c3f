"""deploy/runtime: the image definition's parts that run in seconds. The scripts parse; the package list is
shared by build.sh and the Containerfile; the dry run names every step (wheels, mmdebstrap with the
packages and install.sh, umoci, skopeo); and the umoci/skopeo half really packages a root file system into an
oci-archive whose config runs ``zerowatt`` as user 65532 (the full Debian build takes minutes and the network;
docs/operator-install.md records a run)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

RUNTIME = ROOT / "deploy" / "runtime"
BUILD = RUNTIME / "build.sh"


def lines(name: str) -> list[str]:
    return [x for x in (RUNTIME / name).read_text().splitlines() if x and not x.startswith("#")]


def test_scripts_parse_and_the_package_lists_are_shared() -> None:
    subprocess.run(["bash", "-n", str(BUILD)], check=True)
    subprocess.run(["sh", "-n", str(RUNTIME / "install.sh")], check=True)
    assert {"python3", "python3-venv", "ca-certificates"} <= set(lines("packages.txt"))
    assert set(lines("build-packages.txt")) == {"gcc", "libc6-dev", "python3-dev"}
    containerfile = (RUNTIME / "Containerfile").read_text()
    assert "/tmp/packages.txt /tmp/build-packages.txt" in containerfile  # the same lists, not a copy
    assert 'ENTRYPOINT ["zerowatt"]' in containerfile and "USER 65532:65532" in containerfile


def test_the_dry_run_names_every_step() -> None:
    done = subprocess.run(
        ["bash", str(BUILD), "--dry-run", "--tag", "9.9.9", "--work", "/nonexistent/work"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    out = done.stdout
    assert "pip wheel" in out and "--no-deps" in out
    mmdebstrap = next(x for x in out.splitlines() if x.startswith("mmdebstrap "))
    for package in lines("packages.txt") + lines("build-packages.txt"):
        assert package in mmdebstrap
    assert "install.sh" in mmdebstrap and "bookworm" in mmdebstrap
    assert "umoci raw add-layer" in out and "--config.user 65532:65532" in out
    assert "/nonexistent/work/oci" in out and "oci-archive:" in out and "ghcr.io/zerowatt/runtime:9.9.9" in out
    bad = subprocess.run(["bash", str(BUILD), "--nope"], capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 2 and "unknown argument --nope" in bad.stderr


@pytest.mark.skipif(
    not (shutil.which("umoci") and shutil.which("skopeo")) or os.geteuid() != 0,
    reason="umoci and skopeo (Debian packages) and root are needed to package a root file system",
)
def test_a_root_file_system_becomes_an_oci_archive(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs.tar"
    payload = b"#!/bin/sh\necho zerowatt\n"
    with tarfile.open(rootfs, "w") as tar:
        info = tarfile.TarInfo("opt/zerowatt/bin/zerowatt")
        info.size, info.mode = len(payload), 0o755
        tar.addfile(info, io.BytesIO(payload))
    out = tmp_path / "image.tar"
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    subprocess.run(
        ["bash", str(BUILD), "--rootfs-tar", str(rootfs), "--tag", "test", "--out", str(out), "--work", str(tmp_path)],
        check=True,
        timeout=120,
        env=env,
        capture_output=True,
    )
    with tarfile.open(out) as archive:

        def blob(digest: str) -> bytes:
            member = archive.extractfile(f"blobs/sha256/{digest.removeprefix('sha256:')}")
            assert member is not None
            data = member.read()
            assert "sha256:" + hashlib.sha256(data).hexdigest() == digest  # content-addressed, verified
            return data

        index = json.loads(archive.extractfile("index.json").read())  # type: ignore[union-attr]
        manifest_desc = index["manifests"][0]
        assert manifest_desc["annotations"]["org.opencontainers.image.ref.name"].endswith("runtime:test")
        manifest = json.loads(blob(manifest_desc["digest"]))
        config = json.loads(blob(manifest["config"]["digest"]))
        assert config["config"]["Entrypoint"] == ["zerowatt"]
        assert config["config"]["User"] == "65532:65532"
        assert "ZEROWATT_CACHE_DIR=/var/cache/zerowatt" in config["config"]["Env"]
        assert config["architecture"] == "amd64" and config["os"] == "linux"
        (layer,) = manifest["layers"]
        with tarfile.open(fileobj=io.BytesIO(blob(layer["digest"]))) as fs:
            names = {m.name.lstrip("./") for m in fs.getmembers()}
            assert "opt/zerowatt/bin/zerowatt" in names
