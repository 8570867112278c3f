"""The API server's address and credentials from a kubeconfig or the in-cluster service account, read
without the official ``kubernetes`` client (importing it costs ≈0.3 s of CPU at every start).

What almost every kubeconfig uses is read here: the current (or a named) context; the cluster's
``server``, ``certificate-authority``/``-data``, ``insecure-skip-tls-verify``, ``tls-server-name``; the
user's ``token``/``tokenFile``, ``client-certificate``/``-data`` with ``client-key``/``-data``, or
``username``/``password``. Anything else (``exec`` and ``auth-provider`` plugins, ``proxy-url``,
impersonation, several files in ``$KUBECONFIG`` to merge) makes :func:`lean_client` answer ``None``, and
the caller loads the official client, which handles all of it (see :func:`zerowatt.kube.api.load_api_client`).

The result is duck-typed like ``kubernetes.client.ApiClient`` as far as :class:`zerowatt.kube.api.KubeApi`
uses it: ``configuration`` (the attributes :func:`zerowatt.kube.wire.endpoint_from` reads),
``default_headers`` and ``update_params_for_auth``.
"""

from __future__ import annotations

import atexit
import base64
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zerowatt.errors import UsageError

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
_USER_KEYS = frozenset(
    {"token", "tokenFile", "client-certificate", "client-certificate-data", "client-key", "client-key-data"}
    | {"username", "password"}
)
_CLUSTER_KEYS = frozenset(
    {"server", "certificate-authority", "certificate-authority-data", "insecure-skip-tls-verify", "tls-server-name"}
)


@dataclass
class LeanConfiguration:
    """The fields of ``kubernetes.client.Configuration`` that the lean transport reads."""

    host: str
    verify_ssl: bool = True
    ssl_ca_cert: str | None = None
    ca_cert_data: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    assert_hostname: bool | None = None
    tls_server_name: str | None = None
    proxy: str | None = None
    no_proxy: str | None = None


@dataclass
class LeanClient:
    """Credentials for :class:`~zerowatt.kube.api.KubeApi`; a token file is re-read for every batch (rotation)."""

    configuration: LeanConfiguration
    token: str | None = None
    token_file: str | None = None
    basic: str | None = None
    default_headers: dict[str, str] = field(default_factory=dict)

    def update_params_for_auth(self, headers: dict[str, Any], *_: Any) -> None:
        """Add ``Authorization`` (the official client's method name and first argument)."""
        token = self.token
        if self.token_file:
            try:
                token = Path(self.token_file).read_text().strip()
            except OSError as exc:
                raise UsageError(f"token file {self.token_file}: {exc.strerror or exc}") from None
        if token:
            headers["Authorization"] = f"Bearer {token}"
        elif self.basic:
            headers["Authorization"] = f"Basic {self.basic}"


_tmpdir: str | None = None


def _data_file(name: str, data: str) -> str:
    """Write base64 ``data`` (a certificate or key) to a private file: ``ssl`` loads chains from files only."""
    global _tmpdir
    if _tmpdir is None:
        _tmpdir = tempfile.mkdtemp(prefix="zerowatt-kube-")
        atexit.register(shutil.rmtree, _tmpdir, True)
    path = os.path.join(_tmpdir, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(base64.b64decode(data))
    return path


def _named(items: Any, name: str, what: str, source: str) -> Mapping[str, Any]:
    for item in items or ():
        if isinstance(item, Mapping) and item.get("name") == name:
            body = item.get(what)
            return body if isinstance(body, Mapping) else {}
    raise UsageError(f"kubeconfig {source}: no {what} named {name!r}")


def from_kubeconfig(path: str, context: str | None = None) -> LeanClient | None:
    """The client for ``path``'s (current) context, or ``None`` when it needs the official client."""
    import yaml

    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise UsageError(f"kubeconfig {path}: {exc.strerror or exc}") from None
    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        doc = yaml.load(text, Loader=loader)  # a safe loader (C if available)
    except yaml.YAMLError as exc:
        raise UsageError(f"kubeconfig {path}: not valid YAML ({exc})") from None
    if not isinstance(doc, Mapping):
        raise UsageError(f"kubeconfig {path}: Invalid kube-config file. No configuration found.")
    name = context or doc.get("current-context")
    if not name:
        raise UsageError(f"kubeconfig {path}: no current-context and no --context")
    ctx = _named(doc.get("contexts"), str(name), "context", path)
    cluster = _named(doc.get("clusters"), str(ctx.get("cluster")), "cluster", path)
    user = _named(doc.get("users"), str(ctx.get("user")), "user", path) if ctx.get("user") else {}
    if set(cluster) - _CLUSTER_KEYS or set(user) - _USER_KEYS:
        return None  # exec, auth-provider, proxy-url, impersonation...: the official client's job
    base = Path(path).parent

    def rel(value: Any) -> str | None:
        return str(base / str(value)) if value else None

    server = str(cluster.get("server") or "")
    if not server:
        raise UsageError(f"kubeconfig {path}: cluster {ctx.get('cluster')!r} has no server")
    ca_data = cluster.get("certificate-authority-data")
    cfg = LeanConfiguration(
        host=server.rstrip("/"),
        verify_ssl=not cluster.get("insecure-skip-tls-verify", False),
        ssl_ca_cert=rel(cluster.get("certificate-authority")),
        ca_cert_data=base64.b64decode(ca_data).decode() if ca_data else None,
        tls_server_name=cluster.get("tls-server-name"),
    )
    if user.get("client-certificate-data"):
        cfg.cert_file = _data_file("client.crt", str(user["client-certificate-data"]))
    else:
        cfg.cert_file = rel(user.get("client-certificate"))
    if user.get("client-key-data"):
        cfg.key_file = _data_file("client.key", str(user["client-key-data"]))
    else:
        cfg.key_file = rel(user.get("client-key"))
    basic = None
    if user.get("username") and user.get("password"):
        basic = base64.b64encode(f"{user['username']}:{user['password']}".encode()).decode()
    return LeanClient(cfg, token=user.get("token"), token_file=rel(user.get("tokenFile")), basic=basic)


def in_cluster(environ: Mapping[str, str], account: Path = SERVICE_ACCOUNT) -> LeanClient | None:
    """The pod's service account (``KUBERNETES_SERVICE_HOST``/``_PORT``, token and CA files), if there is one."""
    host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
    token = account / "token"
    if not host or not port or not token.is_file():
        return None
    if ":" in host:
        host = f"[{host}]"
    ca = account / "ca.crt"
    cfg = LeanConfiguration(host=f"https://{host}:{port}", ssl_ca_cert=str(ca) if ca.is_file() else None)
    return LeanClient(cfg, token_file=str(token))
