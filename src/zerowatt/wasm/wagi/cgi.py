"""WAGI's CGI contract as pure functions: the guest's environment and argv, and parsing its stdout.

Follows Spin's WAGI executor (``crates/http/src/wagi``, itself from deislabs/wagi) and RFC 3875: the
same variable names and values, so a module written for Spin's ``executor = { type = "wagi" }`` sees
the same environment here. No I/O: the executor passes a :class:`GuestRequest` in and gets plain data out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from zerowatt.parsing import split_host_port
from zerowatt.wasm.executor import GuestRequest
from zerowatt.wasm.hopbyhop import NEVER_FORWARDED, connection_options, end_to_end

#: RFC 3875 version string WAGI reports (``GATEWAY_INTERFACE``) and its ``SERVER_SOFTWARE``.
GATEWAY_INTERFACE = "CGI/1.1"
SERVER_SOFTWARE = "WAGI/1"
#: Request headers never passed to the guest: ``Authorization`` (RFC 3875 4.1.18, as WAGI does), the
#: hop-by-hop fields and ``Proxy`` (httpoxy: it would become ``HTTP_PROXY``), see :mod:`zerowatt.wasm.hopbyhop`.
#: The fields a request's ``Connection`` header names are dropped too.
HIDDEN_HEADERS = frozenset({"authorization"}) | NEVER_FORWARDED


class CgiOutputError(ValueError):
    """The guest's stdout is not a CGI response (no header block, or neither Content-Type/Location/Status)."""


@dataclass(frozen=True, slots=True)
class CgiResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def join_route(base: str, route: str) -> str:
    """``base`` + ``route`` without a doubled slash: ("/", "/a/...") → "/a/...", ("/t", "/a") → "/t/a"."""
    base = base.rstrip("/")
    return base + route if route else base or "/"


def host_and_port(request: GuestRequest) -> tuple[str, str]:
    """The Host header's host and port (WAGI's precedence), else the request's listener address."""
    host, port = request.host, str(request.port)
    for name, value in request.headers:
        if name == "host":
            h, p = split_host_port(value)
            if h:
                host = h
            if p:
                port = p
            break
    return host, port


def cgi_environment(
    request: GuestRequest,
    *,
    base: str = "/",
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The guest's environment for ``request``: component variables (``extra``) first, then CGI's.

    CGI variables win over a component's ``environment`` of the same name, as in Spin (the request's
    metadata must not be spoofable by configuration).
    """
    env: dict[str, str] = dict(extra or {})
    host, port = host_and_port(request)
    host_header = next((v for n, v in request.headers if n == "host"), f"{host}:{port}")
    raw_route = request.matched_route
    component_route = raw_route[: -len("/...")] if raw_route.endswith("/...") else raw_route
    path_and_query = request.path + (f"?{request.query}" if request.query else "")
    path_info = unquote(request.path_info, errors="replace")
    content_type = next((v for n, v in reversed(request.headers) if n == "content-type"), "")
    for name, value in end_to_end(request.headers):  # RFC 9110 7.6.1, httpoxy: zerowatt.wasm.hopbyhop
        if name != "authorization":  # RFC 3875 4.1.18, as in Spin
            env["HTTP_" + name.upper().replace("-", "_")] = value
    env.update(
        {
            "AUTH_TYPE": "",
            "CONTENT_LENGTH": str(len(request.body)),
            "CONTENT_TYPE": content_type,
            "GATEWAY_INTERFACE": GATEWAY_INTERFACE,
            "PATH_INFO": path_info,
            "PATH_TRANSLATED": path_info,
            "QUERY_STRING": request.query,
            "REMOTE_ADDR": request.client_addr,
            "REMOTE_HOST": request.client_addr,
            "REMOTE_USER": "",
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": base.rstrip("/") + component_route,
            "SERVER_NAME": host,
            "SERVER_PORT": port,
            "SERVER_PROTOCOL": "HTTP/1.1",
            "SERVER_SOFTWARE": SERVER_SOFTWARE,
            "X_FULL_URL": f"{request.scheme}://{host_header}{path_and_query}",
            "X_RAW_PATH_INFO": request.path_info,
            "X_MATCHED_ROUTE": join_route(base, raw_route),
            "X_BASE_PATH": base,
            "X_RAW_COMPONENT_ROUTE": raw_route,
            "X_COMPONENT_ROUTE": component_route,
            "X_CLIENT_ADDR": f"{request.client_addr}:{request.client_port}",
        }
    )
    env.update(path_match_variables(request))
    return env


def path_match_variables(request: GuestRequest) -> dict[str, str]:
    """``X_PATH_MATCH_<NAME>`` for each ``:name`` route parameter: the variable Spin gives WAGI guests."""
    return {"X_PATH_MATCH_" + name.upper(): value for name, value in request.path_params}


#: The CGI variables whose values change per request, in the order :meth:`CgiPlan.values` gives them.
DYNAMIC_NAMES = (
    "CONTENT_LENGTH",
    "CONTENT_TYPE",
    "PATH_INFO",
    "PATH_TRANSLATED",
    "QUERY_STRING",
    "REMOTE_ADDR",
    "REMOTE_HOST",
    "REQUEST_METHOD",
    "SERVER_NAME",
    "SERVER_PORT",
    "X_FULL_URL",
    "X_RAW_PATH_INFO",
    "X_CLIENT_ADDR",
)
_HTTP_NAMES: dict[str, str] = {}  # header name → its CGI variable name (bounded memo)
_HOSTS: dict[tuple[str, str, int], tuple[str, str]] = {}  # (Host header, listener host, port) → (host, port)
_MEMO_LIMIT = 1024


@dataclass(frozen=True, slots=True)
class CgiPlan:
    """The environment of one route's guests split into what is fixed and what each request brings.

    :func:`cgi_environment` builds a dict per request; the executor's hot path instead builds the
    fixed part once per route (component variables, then the constant CGI variables, then the names
    of :data:`DYNAMIC_NAMES`) and per request only the values that change plus the ``HTTP_*``
    headers. Together they are exactly :func:`cgi_environment`'s variables (tested), in another
    order. ``general`` is set when a component variable could be shadowed by a header (its name
    starts with ``HTTP_``): then the caller must use :func:`cgi_environment`.
    """

    names: tuple[str, ...]  # fixed names, then DYNAMIC_NAMES
    fixed_values: tuple[str, ...]  # the values of the fixed names (len(names) - len(DYNAMIC_NAMES))
    base: str
    matched_route: str
    argv_template: str
    script_name: str
    general: bool

    @classmethod
    def build(cls, *, base: str, matched_route: str, extra: Mapping[str, str], argv_template: str) -> CgiPlan:
        component_route = matched_route[: -len("/...")] if matched_route.endswith("/...") else matched_route
        script_name = base.rstrip("/") + component_route
        constant = {
            "AUTH_TYPE": "",
            "GATEWAY_INTERFACE": GATEWAY_INTERFACE,
            "REMOTE_USER": "",
            "SCRIPT_NAME": script_name,
            "SERVER_PROTOCOL": "HTTP/1.1",
            "SERVER_SOFTWARE": SERVER_SOFTWARE,
            "X_MATCHED_ROUTE": join_route(base, matched_route),
            "X_BASE_PATH": base,
            "X_RAW_COMPONENT_ROUTE": matched_route,
            "X_COMPONENT_ROUTE": component_route,
        }
        fixed = {k: v for k, v in extra.items() if k not in constant and k not in DYNAMIC_NAMES}
        fixed.update(constant)
        return cls(
            names=(*fixed, *DYNAMIC_NAMES),
            fixed_values=tuple(fixed.values()),
            base=base,
            matched_route=matched_route,
            argv_template=argv_template,
            script_name=script_name,
            general=any(k.startswith("HTTP_") for k in extra),
        )

    def argv(self, query: str) -> list[str]:
        return cgi_argv(self.argv_template, self.script_name, query)

    def values(self, request: GuestRequest) -> tuple[list[str], list[str]]:
        """``(header names, values)``: the ``HTTP_*`` names, then the values of DYNAMIC_NAMES and of those headers."""
        headers: dict[str, str] = {}
        content_type = ""
        host_header: str | None = None
        listed: list[str] | None = None
        for name, value in request.headers:
            if name == "host":
                if host_header is None:
                    host_header = value
            elif name == "content-type":
                content_type = value
            if name in HIDDEN_HEADERS:
                if name == "connection":
                    listed = (listed or []) + connection_options(value)
                continue
            key = _HTTP_NAMES.get(name)
            if key is None:
                if len(_HTTP_NAMES) >= _MEMO_LIMIT:
                    _HTTP_NAMES.clear()
                key = _HTTP_NAMES[name] = "HTTP_" + name.upper().replace("-", "_")
            headers[key] = value
        if listed:  # RFC 9110 7.6.1: the fields Connection names are hop-by-hop too
            for name in listed:
                headers.pop("HTTP_" + name.upper().replace("-", "_"), None)
        if host_header is None:
            host, port = request.host, str(request.port)
            host_header = f"{host}:{port}"
        else:
            memo = (host_header, request.host, request.port)
            found = _HOSTS.get(memo)
            if found is None:
                if len(_HOSTS) >= _MEMO_LIMIT:
                    _HOSTS.clear()
                found = _HOSTS[memo] = host_and_port(request)
            host, port = found
        query = request.query
        path_info = request.path_info
        decoded = unquote(path_info, errors="replace") if "%" in path_info else path_info
        client = request.client_addr
        values = [
            str(len(request.body)),
            content_type,
            decoded,
            decoded,
            query,
            client,
            client,
            request.method,
            host,
            port,
            f"{request.scheme}://{host_header}{request.path}?{query}"
            if query
            else f"{request.scheme}://{host_header}{request.path}",
            path_info,
            f"{client}:{request.client_port}",
        ]
        if request.path_params:  # after the headers: a client cannot forge a route parameter
            headers.update(path_match_variables(request))
        values += headers.values()
        return list(headers), values


def query_args(query: str) -> list[str]:
    """WAGI's ``${ARGS}``: the query string split on ``&``, each part percent-decoded."""
    return [unquote(part.replace("+", " ")) for part in query.split("&") if part]


def cgi_argv(template: str, script_name: str, query: str) -> list[str]:
    """argv from the executor's template, e.g. ``"${SCRIPT_NAME} ${ARGS}"`` → ``["/hello", "a", "b"]``.

    The template is split on whitespace first, so ``${ARGS}`` expands to one argv item per query part
    (a decoded space stays inside its argument instead of splitting it).
    """
    argv: list[str] = []
    for word in template.split():
        if word == "${ARGS}":
            argv.extend(query_args(query))
        else:
            argv.append(word.replace("${SCRIPT_NAME}", script_name).replace("${ARGS}", " ".join(query_args(query))))
    return argv


def parse_cgi_output(stdout: bytes) -> CgiResponse:
    """Turn the guest's stdout into a response, like Spin's ``compose_response``.

    The header block ends at the first empty line (CR ignored); ``Status: CODE [reason]`` sets the status
    (200-599: an interim 1xx is refused), ``Location`` without a status means 302, every other
    well-formed header is passed on. Output without a header block, or with none of
    Content-Type/Location/Status, raises :class:`CgiOutputError`.
    """
    end = stdout.find(b"\n\n")
    crlf_end = stdout.find(b"\r\n\r\n")
    if crlf_end != -1 and (end == -1 or crlf_end < end):
        head, body = stdout[:crlf_end], stdout[crlf_end + 4 :]
    elif end != -1:
        head, body = stdout[:end], stdout[end + 2 :]
    else:
        raise CgiOutputError("the guest's output has no CGI header block (no empty line after the headers)")
    # A guest usually writes the same header block every time: parse each distinct block once.
    known = _PARSED_HEADS.get(head)
    if known is None:
        known = _parse_head(head)
        if len(_PARSED_HEADS) >= _MEMO_LIMIT:
            _PARSED_HEADS.clear()
        _PARSED_HEADS[head] = known
    return CgiResponse(status=known[0], headers=list(known[1]), body=body)


_PARSED_HEADS: dict[bytes, tuple[int, tuple[tuple[str, str], ...]]] = {}


def _parse_head(head: bytes) -> tuple[int, tuple[tuple[str, str], ...]]:
    """(status, headers) of a CGI header block; raises :class:`CgiOutputError` (never memoised)."""
    try:
        text = head.replace(b"\r", b"").decode("utf-8")
    except UnicodeDecodeError:
        raise CgiOutputError("the guest's CGI headers are not UTF-8") from None
    status: int | None = None
    location = False
    content_type = False
    headers: list[tuple[str, str]] = []
    for line in text.split("\n"):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if not sep or not name or not _is_token(name) or not _is_field_value(value):
            raise CgiOutputError(f"malformed CGI header line {line[:80]!r}")
        key = name.lower()
        if key == "status":
            code = value.split(" ", 1)[0]
            if not (code.isascii() and code.isdigit() and len(code) == 3 and 100 <= int(code) <= 599):
                raise CgiOutputError(f"bad CGI Status {value[:40]!r} (expected a 3-digit code)")
            if int(code) < 200:
                # A CGI response is the final one: an interim 1xx (101 Switching Protocols above all)
                # would leave the client expecting another response, or another protocol, on the
                # connection (RFC 9110 15.2); the host refuses it (500) instead of desynchronising it.
                raise CgiOutputError(f"CGI Status {code} is an interim (1xx) response; a guest must answer 200-599")
            status = int(code)
            continue
        if key == "location":
            location = True
        elif key == "content-type":
            content_type = True
        headers.append((key, value))
    if status is None and not location and not content_type:
        raise CgiOutputError("the guest's CGI output has none of Content-Type, Location or Status")
    if status is None:
        status = 302 if location else 200
    return status, tuple(headers)


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 field-name
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # controls other than HTAB


def _is_token(name: str) -> bool:
    return _TOKEN.fullmatch(name) is not None


def _is_field_value(value: str) -> bool:
    return _BAD_VALUE.search(value) is None
