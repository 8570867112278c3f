"""A real registry on loopback: Debian's ``docker-registry`` (the CNCF distribution project, the registry
Docker Hub and most others run), started per test module with its own storage, anonymous or behind
htpasswd basic authentication (bcrypt hashes from the C library's ``crypt``)."""

from __future__ import annotations

import shutil
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import free_port

BINARY = shutil.which("docker-registry") or "/usr/bin/docker-registry"


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT
    auth: tuple[str, str] | None
    process: subprocess.Popen[bytes]

    @property
    def base(self) -> str:
        return f"http://{self.host}"


def bcrypt_hash(password: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))


def start_registry(
    root: Path, *, auth: tuple[str, str] | None = None, token: tuple[str, Path] | None = None
) -> Registry:
    """A registry storing under ``root``: anonymous, htpasswd ``auth``, or ``token`` (realm, trusted cert)."""
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    auth_block = ""
    if auth is not None:
        (root / "htpasswd").write_text(f"{auth[0]}:{bcrypt_hash(auth[1])}\n")
        auth_block = f"auth:\n  htpasswd:\n    realm: zerowatt-test\n    path: {root / 'htpasswd'}\n"
    if token is not None:
        from tests.oci.tokenauth import ISSUER, SERVICE

        auth_block = (
            f"auth:\n  token:\n    realm: {token[0]}\n    service: {SERVICE}\n    issuer: {ISSUER}\n"
            f"    rootcertbundle: {token[1]}\n"
        )
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n" + auth_block
    )
    log = (root / "registry.log").open("wb")
    process = subprocess.Popen([BINARY, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"docker-registry exited: {(root / 'registry.log').read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code in (200, 401):
                return Registry(host=f"127.0.0.1:{port}", auth=auth, process=process)
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    process.kill()
    raise AssertionError("docker-registry did not answer within 60 s")


def stop(registry: Registry) -> None:
    registry.process.terminate()
    try:
        registry.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        registry.process.kill()
        registry.process.wait()
