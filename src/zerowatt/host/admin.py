"""The admin listener: ``/healthz``, ``/readyz`` and Prometheus ``/metrics``, on its own port.

It runs in the supervisor process (a small threaded stdlib server: a few scrapes a minute do not need
the data plane's event loop), so it answers even while every worker is busy, and in multiprocess
mode it aggregates all workers' samples from ``PROMETHEUS_MULTIPROC_DIR``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

log = logging.getLogger(__name__)


class AdminServer:
    """Serves the admin endpoints until :meth:`stop`; ``ready`` says whether all workers serve."""

    def __init__(self, host: str, port: int, ready: Callable[[], bool], multiproc_dir: str | None) -> None:
        registry = CollectorRegistry()
        if multiproc_dir:
            MultiProcessCollector(registry, path=multiproc_dir)  # type: ignore[no-untyped-call]
        self.registry = registry
        self.ready = ready
        admin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.partition("?")[0]
                if path == "/healthz":
                    self._reply(200, b"ok\n", "text/plain")
                elif path == "/readyz":
                    ok = admin.ready()
                    self._reply(200 if ok else 503, b"ready\n" if ok else b"starting\n", "text/plain")
                elif path == "/metrics":
                    self._reply(200, generate_latest(admin.registry), CONTENT_TYPE_LATEST)
                else:
                    self._reply(404, b"not found\n", "text/plain")

            def _reply(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("admin: " + format, *args)

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="zerowatt-admin", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.httpd.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
