"""Watch streams against a real loopback HTTP server: resume after the server's timeout, relist on errors."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from kubernetes import client

from zerowatt.operator.watch import Change, Relist, Watch


class Script:
    """What the server answers to each successive watch request: (status, events)."""

    def __init__(self, answers: list[tuple[int, list[dict[str, Any]]]]) -> None:
        self.answers = answers
        self.queries: list[dict[str, list[str]]] = []


def server_for(script: Script) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            script.queries.append(parse_qs(urlsplit(self.path).query))
            status, events = script.answers.pop(0) if script.answers else (500, [])
            body = b"".join(json.dumps(e).encode() + b"\n" for e in events)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[ThreadingHTTPServer] = []

    def start(script: Script) -> str:
        srv = server_for(script)
        servers.append(srv)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{srv.server_address[1]}"

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def obj(name: str, rv: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "apps", "resourceVersion": rv}}


def watch(url: str, out: queue.Queue[Change | Relist], stop: threading.Event) -> Watch:
    cfg = client.Configuration()
    cfg.host = url
    return Watch(client.ApiClient(cfg), "/apis/x/v1/things", "10", out, stop, label_selector="a=b")


def test_a_stream_ended_by_the_server_resumes_from_the_last_version(serve: Any) -> None:
    script = Script(
        [
            (200, [{"type": "ADDED", "object": obj("a", "11")}, {"type": "BOOKMARK", "object": obj("", "15")}]),
            (200, [{"type": "MODIFIED", "object": obj("a", "16")}]),
            (410, []),
        ]
    )
    out: queue.Queue[Change | Relist] = queue.Queue()
    stop = threading.Event()
    w = watch(serve(script), out, stop)
    w.start()
    got = [out.get(timeout=30) for _ in range(3)]
    stop.set()
    w.join(10)
    assert [(type(g).__name__, getattr(g, "type", None)) for g in got] == [
        ("Change", "ADDED"),
        ("Change", "MODIFIED"),
        ("Relist", None),
    ]
    assert [q["resourceVersion"] for q in script.queries] == [["10"], ["15"], ["16"]]
    assert script.queries[0]["labelSelector"] == ["a=b"] and script.queries[0]["watch"] == ["true"]


def test_an_error_event_asks_for_a_relist(serve: Any) -> None:
    script = Script([(200, [{"type": "ERROR", "object": {"code": 410, "message": "too old resource version"}}])])
    out: queue.Queue[Change | Relist] = queue.Queue()
    stop = threading.Event()
    w = watch(serve(script), out, stop)
    w.start()
    assert out.get(timeout=30) == Relist("/apis/x/v1/things")
    w.join(10)
    assert not w.is_alive()
