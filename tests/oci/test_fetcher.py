"""The HTTP adapter against real loopback servers: redirects to blob storage never carry the registry's
credentials, bodies stop at their byte cap, connection failures exit 1."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import free_port
from zerowatt.errors import ValidationError
from zerowatt.oci.registry import FetchError, HttpFetcher

SEEN: list[tuple[str, str | None]] = []


class Handler(BaseHTTPRequestHandler):
    storage = ""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        SEEN.append((self.path, self.headers.get("Authorization")))
        if self.path == "/blob":  # the registry hands the blob to "object storage" on another host
            self.send_response(307)
            self.send_header("Location", f"{self.storage}/stored?sig=1")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"x" * (100_000 if self.path == "/big" else 10)
        self.send_response(200)
        if self.path != "/big":  # the big one streams without a length: the cap must count bytes
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def servers() -> Iterator[tuple[str, str]]:
    registry = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    storage = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Handler.storage = f"http://127.0.0.1:{storage.server_address[1]}"
    for server in (registry, storage):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    SEEN.clear()
    yield f"http://127.0.0.1:{registry.server_address[1]}", Handler.storage
    for server in (registry, storage):
        server.shutdown()
        server.server_close()


def test_redirects_to_another_host_drop_the_credentials(servers: tuple[str, str]) -> None:
    registry, _ = servers
    fetcher = HttpFetcher(timeout=10)
    status, _, body = fetcher.get(
        f"{registry}/blob", headers={"Authorization": "Bearer secret"}, max_bytes=100, what="layer"
    )
    fetcher.close()
    assert (status, body) == (200, b"x" * 10)
    assert SEEN == [("/blob", "Bearer secret"), ("/stored?sig=1", None)]


def test_caps_and_failures(servers: tuple[str, str]) -> None:
    registry, _ = servers
    fetcher = HttpFetcher(timeout=10)
    with pytest.raises(ValidationError, match="layer x: is more than 1000 bytes"):
        fetcher.get(f"{registry}/big", headers={}, max_bytes=1000, what="layer x")
    with pytest.raises(FetchError, match="more than 5 redirects"):
        fetcher.get(f"{registry}/loop", headers={}, max_bytes=1000, what="layer y")
    with pytest.raises(FetchError, match="layer z: cannot fetch") as info:
        fetcher.get(f"http://127.0.0.1:{free_port()}/x", headers={}, max_bytes=10, what="layer z")
    assert info.value.exit_code == 1
    fetcher.close()
