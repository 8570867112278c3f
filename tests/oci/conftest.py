"""Fixtures of the pull tests: real registries on loopback (anonymous and basic-auth)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.oci.registry import BINARY, Registry, start_registry, stop
from tests.oci.tokenauth import TokenIssuer, TokenServer

needs_registry = pytest.mark.skipif(
    not os.access(BINARY, os.X_OK), reason="Debian's docker-registry is not installed (make setup installs it)"
)
USER = ("puller", "s3cret-pass")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    reg = start_registry(tmp_path_factory.mktemp("registry"))
    yield reg
    stop(reg)


@pytest.fixture(scope="module")
def private_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    reg = start_registry(tmp_path_factory.mktemp("private-registry"), auth=USER)
    yield reg
    stop(reg)


def docker_config(path: Path, host: str, user: str, password: str) -> Path:
    import base64
    import json

    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"auths": {host: {"auth": token}}}))
    return path


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, TokenServer]]:
    """A registry behind Bearer token authentication, and its token server (which knows :data:`USER`)."""
    root = tmp_path_factory.mktemp("token-registry")
    issuer = TokenIssuer(root)
    server = TokenServer(issuer, dict([USER]))
    reg = start_registry(root / "registry", token=(server.realm, issuer.cert))
    yield reg, server
    stop(reg)
    server.close()
