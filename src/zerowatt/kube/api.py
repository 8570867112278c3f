"""Raw JSON access to the Kubernetes API: pipelined keep-alive requests, paging, bounded retries.

The controller works on plain dicts, so this adapter skips the official client's model (de)serialisation.
The official ``kubernetes`` client still loads the configuration (kubeconfig, exec plugins, in-cluster
service account) and supplies the authentication headers; the requests themselves go over
:mod:`zerowatt.kube.wire`, a lean pipelining HTTP/1.1 client (or the official client's urllib3 pool when a
proxy is configured, which the lean client does not speak). What this module adds is the part every
controller needs and the generated API does not give:

* lists paged with ``limit``/``continue``;
* batches of writes (:meth:`KubeApi.send_all`) pipelined over one connection;
* throttling (429) and server errors (5xx, connection failures) retried with bounded exponential backoff
  that honours ``Retry-After``; other errors (404, 409, 422...) returned or raised at once as
  :class:`ApiError`, so the caller decides (a 409 conflict is re-read and re-decided by the controller,
  never blindly retried).
"""

from __future__ import annotations

import json
import os
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from zerowatt.errors import SettingError, UsageError
from zerowatt.kube.ratelimit import TokenBucket
from zerowatt.kube.wire import Connection, Request, Response, endpoint_from

#: Server errors and "no answer": retried up to ``RetryPolicy.attempts``; 429 has its own bound.
RETRYABLE = frozenset({500, 502, 503, 504, 0})
THROTTLED = 429
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
#: Lists of metadata only (names, annotations, no spec or status): a fraction of the bytes to decode.
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
_OWN_HEADERS = frozenset({"accept", "content-type", "content-length", "host", "connection"})


class ApiError(Exception):
    """A non-2xx answer from the API server (``status`` 0: no answer at all)."""

    def __init__(self, method: str, path: str, status: int, reason: str, body: str = "") -> None:
        self.method, self.path, self.status, self.reason, self.body = method, path, status, reason, body
        super().__init__(f"{method} {path}: {status} {reason} {body[:300]}".rstrip())


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded backoff: delays ``base``·2^n capped at ``cap`` (or Retry-After).

    ``attempts``: tries in all for server errors and connection failures; ``throttle_retries``: retries of
    a request answered 429 (``--max-retries-on-throttling``; 0: a 429 is final, as in py-kube-downscaler).
    """

    attempts: int = 5
    base: float = 0.5
    cap: float = 30.0
    throttle_retries: int = 4

    def delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(self.cap, max(0.0, float(retry_after)))
            except ValueError:
                pass  # an HTTP date: fall back to our own backoff
        return float(min(self.cap, self.base * (2**attempt)))


def _proxied(configuration: Any) -> bool:
    """Whether the official client would reach the API server through a proxy."""
    if not getattr(configuration, "proxy", None):
        return False
    from kubernetes.client.rest import should_bypass_proxies

    return not should_bypass_proxies(configuration.host, configuration.no_proxy or "")


_ENCODER = json.JSONEncoder(separators=(",", ":"))  # one encoder: json.dumps(separators=...) builds one a call


def encode(body: Any) -> bytes:
    """A request body as compact JSON (what goes on the wire for every patch: no spaces to send or parse)."""
    return _ENCODER.encode(body).encode()


@dataclass(frozen=True)
class WatchTarget:
    """Where to open a long-lived watch outside :class:`KubeApi`'s request/response exchange: the lean
    transport's endpoint and TLS, and the current authentication headers."""

    url: str
    headers: dict[str, str]
    tls: ssl.SSLContext | None


class KubeApi:
    """Raw JSON access to the Kubernetes API, configured by a ``kubernetes.client.ApiClient``."""

    def __init__(
        self,
        api_client: Any,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        page_size: int = 500,
        timeout: float = 10.0,
        transport: str = "auto",
        rate: TokenBucket | None = None,
    ) -> None:
        """``transport``: ``auto`` (lean unless a proxy is configured), ``lean`` or ``urllib3``.

        ``timeout``: seconds to connect and for each answer (``--api-server-timeout``, upstream's 10 s);
        ``rate``: the ``--qps``/``--burst`` bucket every request takes a token from.
        """
        if transport not in ("auto", "lean", "urllib3"):
            raise UsageError(f"transport: expected auto, lean or urllib3, got {transport!r}")
        self._client = api_client
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._page_size = page_size
        self._timeout = timeout
        self._rate = rate
        cfg = api_client.configuration
        lean = transport == "lean" or (transport == "auto" and not _proxied(cfg))
        self._conn = Connection(endpoint_from(cfg), timeout) if lean else None
        self._pool_cache: Any = None
        self._prefix = ""
        self.requests = 0
        self.retries = 0

    @property
    def transport(self) -> str:
        return "lean" if self._conn is not None else "urllib3"

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    def watch_target(self, path: str) -> WatchTarget | None:
        """Where to stream ``path`` (a ``?watch=true`` list) from, or None when requests go through a proxy
        (the official client's pool: only the lean transport's settings can be handed out)."""
        if self._conn is None:
            return None
        ep = self._conn.endpoint
        host = f"[{ep.host}]" if ":" in ep.host else ep.host
        headers = {**self._auth_headers(), "Accept": "application/json"}
        return WatchTarget(f"{ep.scheme}://{host}:{ep.port}{ep.prefix}{path}", headers, ep.tls)

    def _auth_headers(self) -> dict[str, str]:
        """The client's default headers plus its authentication (re-asked every batch: tokens rotate)."""
        headers = dict(self._client.default_headers or {})
        self._client.update_params_for_auth(headers, [], ["BearerToken"], "", "GET", None)
        return {k: str(v) for k, v in headers.items() if k.lower() not in _OWN_HEADERS}

    def _pool(self) -> Any:
        """The official client's own urllib3 pool (its proxy settings), for the ``urllib3`` transport."""
        if self._pool_cache is None:
            host = self._client.configuration.host
            self._pool_cache = self._client.rest_client.pool_manager.connection_from_url(host)
            self._prefix = urlsplit(host).path.rstrip("/")
        return self._pool_cache

    def _exchange(self, requests: Sequence[Request]) -> list[Response]:
        """Send ``requests``; with a rate limit, in runs of as many as the token bucket grants."""
        if self._rate is None:
            return self._send(requests)
        out: list[Response] = []
        while len(out) < len(requests):
            n = self._rate.take(len(requests) - len(out))
            out.extend(self._send(requests[len(out) : len(out) + n]))
        return out

    def _send(self, requests: Sequence[Request]) -> list[Response]:
        headers = self._auth_headers()
        self.requests += len(requests)
        if self._conn is not None:
            return self._conn.exchange(requests, "".join(f"{k}: {v}\r\n" for k, v in headers.items()))
        import urllib3  # only for the proxied transport

        pool, out = self._pool(), []
        timeout = urllib3.Timeout(total=self._timeout)
        for r in requests:
            h = {**headers, "Accept": r.accept}
            if r.body is not None:
                h["Content-Type"] = r.content_type
            try:
                resp = pool.urlopen(
                    r.method, self._prefix + r.target, body=r.body, headers=h, retries=False, timeout=timeout
                )
                out.append(
                    Response(int(resp.status), str(resp.reason or ""), resp.data, resp.headers.get("Retry-After"))
                )
            except Exception as exc:  # urllib3 connection errors, timeouts
                out.append(Response(0, f"{type(exc).__name__}: {exc}"))
        return out

    def send_all(self, requests: Sequence[Request], *, decode: bool = True) -> list[Any]:
        """Send ``requests`` (pipelined); each result is the decoded JSON answer or an :class:`ApiError`
        (``decode=False``: ``None`` for every success, the body left undecoded).

        429 (up to ``throttle_retries`` times), 5xx and unanswered requests (up to ``attempts`` tries) are
        resent together after one backoff per round (the longest ``Retry-After`` asked for); the others are
        final at once.
        """
        policy = self._retry
        results: list[Any] = [None] * len(requests)
        pending = list(range(len(requests)))
        throttled = [0] * len(requests)
        failed = [0] * len(requests)
        for attempt in range(policy.attempts + policy.throttle_retries):
            answers = self._exchange([requests[i] for i in pending])
            again: list[int] = []
            delay = 0.0
            for i, resp in zip(pending, answers, strict=True):
                status = resp.status
                if 200 <= status < 300:
                    results[i] = json.loads(resp.body) if resp.body and decode else None
                    continue
                req = requests[i]
                path = req.target.split("?", 1)[0]
                error = ApiError(req.method, path, status, resp.reason, resp.body.decode("utf-8", "replace"))
                results[i] = error
                if status == THROTTLED:
                    throttled[i] += 1
                    retry = throttled[i] <= policy.throttle_retries
                else:
                    failed[i] += 1
                    retry = status in RETRYABLE and failed[i] < policy.attempts
                if retry:
                    again.append(i)
                    delay = max(delay, policy.delay(attempt, resp.retry_after))
            if not again:
                break
            self.retries += len(again)
            self._sleep(delay)
            pending = again
        return results

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> Any:
        """One request with retries; returns the decoded JSON body or raises :class:`ApiError`."""
        target = path + ("?" + urlencode(query) if query else "")
        payload = None if body is None else encode(body)
        (result,) = self.send_all([Request(method, target, payload, content_type, accept)])
        if isinstance(result, ApiError):
            raise result
        return result

    def list(self, path: str, *, accept: str = "application/json", **params: str) -> Iterator[dict[str, Any]]:
        """All items of a collection, fetched a page at a time (``params``: ``fieldSelector``...)."""
        token: str | None = None
        while True:
            query: dict[str, Any] = {"limit": self._page_size, **params}
            if token:
                query["continue"] = token
            page = self.request("GET", path, query=query, accept=accept)
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
    """An ``ApiClient`` from ``kubeconfig`` (or ``$KUBECONFIG``, ``~/.kube/config``), else in-cluster.

    The common cases are read by :mod:`zerowatt.kube.kubeconfig` without importing the official client;
    the official client loads the rest (exec and auth-provider plugins, proxies, merged files).
    """
    from zerowatt.kube.kubeconfig import from_kubeconfig, in_cluster

    path = kubeconfig or os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    exists = Path(path.split(os.pathsep)[0]).is_file()
    if (kubeconfig or exists) and os.pathsep not in path and exists:
        lean = from_kubeconfig(path, context)
        if lean is not None:
            return lean
    elif not kubeconfig and not exists and (lean := in_cluster(os.environ)) is not None:
        return lean
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

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
        raise SettingError("kubeconfig", f"no kubeconfig at {path} and not running in a cluster ({exc})") from None
    return client.ApiClient(configuration)
