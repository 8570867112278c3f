"""Which request headers reach a guest: hop-by-hop fields and the httpoxy ones never do.

The host is the endpoint of the client's connection, so the fields that describe that connection are
consumed here and never forwarded (RFC 9110 §7.6.1): ``Connection``, every field that ``Connection``
names, and the standard hop-by-hop set (``Keep-Alive``, ``Proxy-Authenticate``, ``Proxy-Authorization``,
``TE``, ``Trailer``, ``Transfer-Encoding``, ``Upgrade``; ``Proxy-Connection`` is their pre-standard
cousin). A ``Proxy`` request header is dropped as well: in a CGI environment it would become
``HTTP_PROXY``, which HTTP client libraries take as their outbound proxy (the "httpoxy" vulnerability,
https://httpoxy.org/, CVE-2016-5385 and siblings; CGI servers have stripped it since). Both executors
apply these rules: the WAGI environment (:mod:`zerowatt.wasm.wagi.cgi`) and the request proxied to a wasi:http
child (:mod:`zerowatt.wasm.wasihttp.plan`). Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

#: RFC 9110 §7.6.1 (Connection) and RFC 9112 §7 (Transfer-Encoding, TE, Trailer): fields that describe
#: one connection, plus ``proxy-connection`` (non-standard, the same meaning).
HOP_BY_HOP_REQUEST = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
#: Never passed to a guest: the hop-by-hop set and ``Proxy`` (httpoxy: it would become ``HTTP_PROXY``).
NEVER_FORWARDED = HOP_BY_HOP_REQUEST | {"proxy"}
#: Fields a ``Connection`` header cannot make hop-by-hop: the host needs ``Host`` for the request's
#: authority (RFC 9112 §3.2 requires it on every HTTP/1.1 request).
NOT_NOMINATABLE = frozenset({"host"})


def connection_options(value: str) -> list[str]:
    """The field names a ``Connection`` value lists (lower case), e.g. ``"close, X-Foo"`` → ``["close", "x-foo"]``.

    ``close`` and ``keep-alive`` are connection options rather than field names; dropping a field
    called ``close`` is harmless, so they are not told apart.
    """
    names = []
    for part in value.split(","):
        name = part.strip().lower()
        if name and name not in NOT_NOMINATABLE:
            names.append(name)
    return names


def end_to_end(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """``headers`` (lower-case names) without the hop-by-hop ones, those ``Connection`` names, and ``Proxy``."""
    kept = []
    listed: set[str] = set()
    for name, value in headers:
        if name in NEVER_FORWARDED:
            if name == "connection":
                listed.update(connection_options(value))
            continue
        kept.append((name, value))
    if listed:
        kept = [(name, value) for name, value in kept if name not in listed]
    return kept
