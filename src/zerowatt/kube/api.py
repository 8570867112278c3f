"""A thin adapter over the official ``kubernetes`` client: raw JSON requests, paging, bounded retries.

The controller works on plain dicts, so this adapter skips the client's model (de)serialisation and uses
its configured REST client (kubeconfig or in-cluster credentials, TLS, proxies) for raw requests. What it
adds is the part every controller needs and the generated API does not give:

* lists paged with ``limit``/``continue``;
* throttling (429) and server errors (5xx, connection failures) retried with bounded exponential backoff
  that honours ``Retry-After``; other errors (404, 409, 422...) raised at once as :class:`ApiError`, so
  the caller decides (a 409 conflict is re-read and re-decided by the controller, never blindly retried).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import urllib3

from zerowatt.errors import UsageError

RETRYABLE = frozenset({429, 500, 502, 503, 504, 0})
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


class ApiError(Exception):
    """A non-2xx answer from the API server (``status`` 0: no answer at all)."""

    def __init__(self, method: str, path: str, status: int, reason: str, body: str = "") -> None:
        self.method, self.path, self.status, self.reason, self.body = method, path, status, reason, body
        super().__init__(f"{method} {path}: {status} {reason} {body[:300]}".rstrip())


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded backoff: ``attempts`` tries in all, delays ``base``·2^n capped at ``cap`` (or Retry-After)."""

    attempts: int = 5
    base: float = 0.5
    cap: float = 30.0

    def delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(self.cap, max(0.0, float(retry_after)))
            except ValueError:
                pass  # an HTTP date: fall back to our own backoff
        return float(min(self.cap, self.base * (2**attempt)))


class KubeApi:
    """Raw JSON access to the Kubernetes API through a configured ``kubernetes.client.ApiClient``."""

    def __init__(
        self,
        api_client: Any,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        page_size: int = 500,
        timeout: float = 30.0,
    ) -> None:
        self._client = api_client
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._page_size = page_size
        self._timeout = timeout
        self._timeout_obj = urllib3.Timeout(total=timeout)
        self._pool_cache: Any = None
        self._prefix = ""
        self.requests = 0
        self.retries = 0

    def _pool(self) -> Any:
        """The official client's own urllib3 pool for the API server (its TLS, proxy and pool settings).

        Requests go to this pool directly rather than through ``rest_client.request``, which re-parses the
        URL, rebuilds a timeout and routes through the pool manager on every call: a quarter of a write's
        client CPU, and a pass may write 10,000 objects.
        """
        if self._pool_cache is None:
            host = self._client.configuration.host
            self._pool_cache = self._client.rest_client.pool_manager.connection_from_url(host)
            self._prefix = urlsplit(host).path.rstrip("/")
        return self._pool_cache

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        """One request with retries; returns the decoded JSON body."""
        pool = self._pool()
        url = self._prefix + path + ("?" + urlencode(query) if query else "")
        headers = {**(self._client.default_headers or {}), "Accept": "application/json", "Content-Type": content_type}
        self._client.update_params_for_auth(headers, [], ["BearerToken"], path, method, body)
        payload = None if body is None else json.dumps(body)
        last: ApiError | None = None
        for attempt in range(self._retry.attempts):
            self.requests += 1
            try:
                resp = pool.urlopen(
                    method, url, body=payload, headers=headers, retries=False, timeout=self._timeout_obj
                )
                status, reason, data = int(resp.status), str(resp.reason or ""), resp.data
                retry_after = resp.headers.get("Retry-After")
            except Exception as exc:  # urllib3 connection errors, timeouts
                status, reason, data, retry_after = 0, f"{type(exc).__name__}: {exc}", b"", None
            if 200 <= status < 300:
                return json.loads(data) if data else None
            text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
            last = ApiError(method, path, status, reason, text)
            if status not in RETRYABLE or attempt + 1 >= self._retry.attempts:
                raise last
            self.retries += 1
            self._sleep(self._retry.delay(attempt, retry_after))
        raise last or ApiError(method, path, 0, "no attempt made")

    def list(self, path: str) -> Iterator[dict[str, Any]]:
        """All items of a collection, fetched a page at a time."""
        token: str | None = None
        while True:
            query: dict[str, Any] = {"limit": self._page_size}
            if token:
                query["continue"] = token
            page = self.request("GET", path, query=query)
            yield from page.get("items") or []
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return

    def get(self, path: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", path)
        return result

    def patch(self, path: str, body: Any, *, content_type: str = MERGE_PATCH) -> dict[str, Any]:
        result: dict[str, Any] = self.request("PATCH", path, body=body, content_type=content_type)
        return result

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", path, body=body)
        return result


def path_segment(value: str) -> str:
    return quote(value, safe="")


def load_api_client(kubeconfig: str | None = None, context: str | None = None) -> Any:
    """An ``ApiClient`` from ``kubeconfig`` (or ``$KUBECONFIG``, ``~/.kube/config``), else in-cluster."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    path = kubeconfig or os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    if kubeconfig or Path(path.split(os.pathsep)[0]).is_file():
        try:
            return config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=path, context=context, persist_config=False
            )
        except (ConfigException, OSError) as exc:
            raise UsageError(f"kubeconfig {path}: {exc}") from None
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except ConfigException as exc:
        raise UsageError(f"no kubeconfig at {path} and not running in a cluster ({exc}); pass --kubeconfig") from None
    return client.ApiClient(configuration)
