"""Watch streams from the API server, one thread each, feeding one queue the controller drains.

A stream starts at the ``resourceVersion`` of the list the controller made (so nothing between the list
and the watch is missed) and reads JSON lines (``{"type": ..., "object": ...}``) through the official
client's urllib3 pool, authenticated as it is (tokens re-read for every connection). When a stream ends
at the server's timeout, the thread goes on from the last ``resourceVersion`` it saw (bookmarks keep it
fresh); when it breaks (a connection error, ``410 Gone``), the thread asks the controller for a fresh list
(``Relist``) instead of guessing what it missed: the controller is level-triggered, so a relist costs one
list and no writes. While nothing changes, a thread blocks in ``recv``: no CPU.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import socket
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import urllib3

log = logging.getLogger("zerowatt.operator")


@dataclass(frozen=True)
class Change:
    """One watch event for the collection ``path``."""

    path: str
    type: str  # ADDED | MODIFIED | DELETED
    obj: dict[str, Any]


@dataclass(frozen=True)
class Relist:
    """The stream of ``path`` ended: list it again and watch from there."""

    path: str


def auth_headers(api_client: Any) -> dict[str, str]:
    """The official client's default headers plus its authentication (a fresh token when it rotated)."""
    headers = dict(api_client.default_headers or {})
    api_client.update_params_for_auth(headers, [], ["BearerToken"], "", "GET", None)
    return {str(k): str(v) for k, v in headers.items()}


class Watch(threading.Thread):
    """Streams the changes of one collection into ``out`` until ``stop`` is set or the stream ends."""

    def __init__(
        self,
        api_client: Any,
        path: str,
        resource_version: str,
        out: queue.Queue[Change | Relist],
        stop: threading.Event,
        *,
        label_selector: str = "",
        timeout_seconds: int = 300,
    ) -> None:
        super().__init__(name=f"watch {path}", daemon=True)
        self._client = api_client
        self.path = path
        self._rv = resource_version
        self._out = out
        self._stop_event = stop
        self._selector = label_selector
        self._timeout = timeout_seconds
        self.response: Any = None

    def _url(self) -> str:
        query: dict[str, Any] = {"watch": "true", "allowWatchBookmarks": "true", "timeoutSeconds": self._timeout}
        if self._rv and self._rv != "...":  # kmock's lists carry "..."
            query["resourceVersion"] = self._rv
        if self._selector:
            query["labelSelector"] = self._selector
        host = self._client.configuration.host.rstrip("/")
        return f"{host}{self.path}?{urlencode(query)}"

    def run(self) -> None:
        """Stream; when the server ends a stream at its timeout, go on from the last version seen."""
        try:
            while not self._stop_event.is_set():
                self._stream()
        except Exception as exc:  # connection reset, 410 Gone, bad JSON: the controller relists
            if not self._stop_event.is_set():
                log.warning("watch ended", extra={"fields": {"path": self.path, "error": str(exc)}})
        finally:
            if not self._stop_event.is_set():
                self._out.put(Relist(self.path))

    def _stream(self) -> None:
        pool = self._client.rest_client.pool_manager
        headers = {**auth_headers(self._client), "Accept": "application/json"}
        url = self._url()
        timeout = urllib3.Timeout(connect=10.0, read=self._timeout + 30.0)
        self.response = pool.request("GET", url, headers=headers, preload_content=False, timeout=timeout, retries=False)
        if self.response.status != 200:
            path = urlsplit(url).path
            raise RuntimeError(f"GET {path}?watch: {self.response.status} {self.response.reason}")
        for line in self.response:
            if self._stop_event.is_set():
                return
            if not line.strip():
                continue
            event = json.loads(line)
            kind = event.get("type")
            obj = event.get("object") or {}
            if kind == "ERROR":  # 410 Gone and friends: start over from a list
                raise RuntimeError(f"watch error: {obj.get('message') or obj}")
            version = (obj.get("metadata") or {}).get("resourceVersion")
            if version:
                self._rv = str(version)
            if kind == "BOOKMARK":
                continue
            self._out.put(Change(self.path, str(kind), obj))

    def close(self) -> None:
        """Unblock the thread (its ``recv``) by shutting the stream's socket."""
        response = self.response
        if response is None:
            return
        with contextlib.suppress(OSError, AttributeError):
            sock = response.connection.sock if response.connection is not None else None
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(Exception):  # already closed
            response.release_conn()
