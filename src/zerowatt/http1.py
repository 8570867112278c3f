"""A sans-I/O HTTP/1.1 response parser: bytes in, whole responses out.

Why: zerowatt has two HTTP/1.1 clients, the downscaler's pipelining client for the API server
(:mod:`zerowatt.kube.wire`, blocking sockets) and the wasi:http executor's client for its ``wasmtime
serve`` children (:mod:`zerowatt.wasm.wasihttp.client`, asyncio streams). Each used to parse responses its own
way, and they framed bodies differently (one took ``chunked`` anywhere in ``Transfer-Encoding``, the
other only at the end). Here the framing is written once, after RFC 9112, and the clients only move
bytes: they :meth:`ResponseParser.feed` what they received and ask :meth:`ResponseParser.next_response`
for the next complete answer, which is ``None`` until enough bytes have arrived. Bytes after one response
stay buffered for the next, so pipelined answers (RFC 9112 §9.3) come out in order.

Body framing (RFC 9112 §6.3), in order: an answer to HEAD, a 1xx, 204 or 304 has no body; a
``Transfer-Encoding`` whose final coding is ``chunked`` is chunked (§7.1), any other one runs to the end
of the connection; else a valid ``Content-Length`` (equal values if repeated) is the length, an invalid
one is an error; else the body runs to the end of the connection. ``Transfer-Encoding`` overrides
``Content-Length``, and such an answer (a smuggling signature, §6.3 item 3) closes the connection
afterwards. Interim 1xx answers other than 101 are skipped (RFC 9110 §15.2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MAX_HEAD", "IncompleteResponse", "ProtocolError", "Response", "ResponseParser"]

#: Largest response head (status line + fields), chunk-size line or trailer section accepted.
MAX_HEAD: int = 1 << 20
#: Buffer bytes already parsed that are dropped at once, so a long pipelined run does not keep growing it.
_COMPACT: int = 1 << 20

#: Field lines that are all ``token ":" value`` (RFC 9110 §5.6.2 tchar), no folding, no stray CR/LF.
_FRAMING = ("connection", "transfer-encoding", "content-length")
_PLAIN_FIELDS = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+:[^\r\n]*(?:\r\n[-!#$%&'*+.^_`|~0-9A-Za-z]+:[^\r\n]*)*")
_STATUS_LINE = re.compile(r"HTTP/1\.(\d) (\d{3})(?: (.*))?")
_HEX = frozenset(b"0123456789abcdefABCDEF")

# What the parser is waiting for.
_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _TO_EOF = range(7)
_NO_BODY = -1  # a head's framing: the response ends with its head


class ProtocolError(ValueError):
    """The bytes are not a valid HTTP/1.x response; the connection cannot be used any further."""


class IncompleteResponse(ProtocolError):
    """The connection ended before a whole response arrived.

    ``nothing_received`` says not one byte of this response had arrived: on a reused keep-alive
    connection that means the server closed it while idle, and the request may be resent.
    """

    def __init__(self, message: str, nothing_received: bool) -> None:
        super().__init__(message)
        self.nothing_received = nothing_received


class Response:
    """One whole response. ``headers``: (lower-case name, value) in the order received.

    The field list is built on first use: the downscaler's client reads one field of ten thousand
    answers, and building every list would be most of the parsing cost.
    """

    __slots__ = ("_fields", "_headers", "_lower", "body", "keep_alive", "reason", "status")

    def __init__(self, status: int, reason: str, head: _Head, body: bytes, keep_alive: bool) -> None:
        self.status = status
        self.reason = reason
        self.body = body
        #: Whether the connection may carry another request (HTTP version, ``Connection``, framing).
        self.keep_alive = keep_alive
        self._fields = head.fields
        self._lower = head.lower
        self._headers = head.headers

    @property
    def headers(self) -> list[tuple[str, str]]:
        if self._headers is None:
            self._headers = _fields(self._fields)
        return self._headers

    def header(self, name: str) -> str | None:
        """The first value of the field ``name`` (lower-case), or None."""
        if self._headers is None and self._lower is not None:
            return _field_value(self._lower, self._fields, name, first=True)
        for n, v in self.headers:
            if n == name:
                return v
        return None

    def __repr__(self) -> str:
        return f"Response({self.status}, {self.reason!r}, {self.headers!r}, {self.body[:40]!r}..., {self.keep_alive})"


@dataclass(slots=True)
class _Head:
    status: int
    reason: str
    fields: str  # the field lines as received
    lower: str | None  # "\r\n" + the field lines in lower case, when every line is a plain ``name:value``
    headers: list[tuple[str, str]] | None  # parsed already (the lines that are not plain)
    keep_alive: bool
    mode: int  # _LENGTH, _CHUNK_SIZE, _TO_EOF or _NO_BODY
    length: int


class ResponseParser:
    """Incremental parser of the responses on one connection; not thread-safe.

    >>> p = ResponseParser()
    >>> p.feed(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nhi")
    >>> p.next_response().body
    b'hi'
    """

    __slots__ = (
        "_buf",
        "_eof",
        "_head",
        "_head_request",
        "_max_head",
        "_parts",
        "_pos",
        "_remaining",
        "_scan",
        "_state",
    )

    def __init__(self, max_head: int = MAX_HEAD) -> None:
        self._max_head = max_head
        self._buf = bytearray()
        self._pos = 0  # parsed up to here
        self._scan = 0  # where to resume looking for a line end (never before _pos)
        self._eof = False
        self._state = _HEAD
        self._head: _Head | None = None
        self._head_request = False
        self._remaining = 0
        self._parts: list[bytes] = []

    # --- input ------------------------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        if self._pos:
            if self._pos == len(self._buf):
                self._buf.clear()
                self._scan = self._pos = 0
            elif self._pos >= _COMPACT:
                del self._buf[: self._pos]
                self._scan -= self._pos
                self._pos = 0
        self._buf += data

    def feed_eof(self) -> None:
        """The server closed the connection: a body that runs to the end of it is complete."""
        self._eof = True

    @property
    def buffered(self) -> int:
        """Bytes received and not yet handed out in a response."""
        return len(self._buf) - self._pos

    @property
    def idle(self) -> bool:
        """No response is half-parsed and no byte is waiting: the connection is between answers."""
        return self._state == _HEAD and self._pos == len(self._buf)

    # --- output -----------------------------------------------------------------------------------------

    def next_response(self, *, head_request: bool = False) -> Response | None:
        """The next whole response, or None until more bytes are fed.

        ``head_request``: the request this answers was a HEAD (its answer has no body, RFC 9110 §9.3.2);
        it is read when the head arrives, so pass the same value until the response comes out.
        Raises :class:`ProtocolError` for bytes that are not HTTP/1.x, and :class:`IncompleteResponse`
        when :meth:`feed_eof` came before the response was whole.
        """
        if self._state == _HEAD:
            self._head_request = head_request
        while True:
            state = self._state
            if state == _HEAD:
                head = self._read_head()
                if head is None:
                    return self._need_more()
                if head.mode == _NO_BODY:
                    return self._done(head, b"")
                self._head = head
                self._state = head.mode
                self._remaining = head.length
            elif state == _LENGTH:
                if len(self._buf) - self._pos < self._remaining:
                    return self._need_more()
                return self._done(self._head, self._take(self._remaining))
            elif state == _CHUNK_SIZE:
                line = self._line()
                if line is None:
                    return self._need_more()
                size = line.split(b";", 1)[0].strip(b" \t")
                if not size or len(size) > 16 or not _HEX.issuperset(size):
                    raise ProtocolError(f"bad chunk size line {bytes(line[:40])!r}")
                self._remaining = int(size, 16)
                self._state = _CHUNK_DATA if self._remaining else _TRAILERS
            elif state == _CHUNK_DATA:
                if len(self._buf) - self._pos < self._remaining:
                    return self._need_more()
                self._parts.append(self._take(self._remaining))
                self._state = _CHUNK_END
            elif state == _CHUNK_END:
                if len(self._buf) - self._pos < 2:
                    return self._need_more()
                if self._buf[self._pos : self._pos + 2] != b"\r\n":
                    raise ProtocolError("chunk data not followed by CRLF")
                self._pos = self._scan = self._pos + 2
                self._state = _CHUNK_SIZE
            elif state == _TRAILERS:
                line = self._line()
                if line is None:
                    return self._need_more()
                if not line:  # trailer fields are read and dropped, up to the empty line
                    body = b"".join(self._parts)
                    self._parts = []
                    return self._done(self._head, body)
            else:  # _TO_EOF
                if not self._eof:
                    return None
                return self._done(self._head, self._take(len(self._buf) - self._pos))

    # --- internals --------------------------------------------------------------------------------------

    def _need_more(self) -> Response | None:
        """None (wait for more bytes), or IncompleteResponse once the connection has ended."""
        if self._eof:
            nothing = self._state == _HEAD and self._pos == len(self._buf)
            raise IncompleteResponse(
                "the connection closed before a response"
                if nothing
                else "the connection closed in the middle of a response",
                nothing_received=nothing,
            )
        return None

    def _done(self, head: _Head | None, body: bytes) -> Response:
        assert head is not None
        self._head = None
        self._state = _HEAD
        self._scan = self._pos
        return Response(head.status, head.reason, head, body, head.keep_alive)

    def _take(self, n: int) -> bytes:
        with memoryview(self._buf) as view:  # one copy, not two
            data = bytes(view[self._pos : self._pos + n])
        self._pos += n
        self._scan = self._pos
        return data

    def _line(self) -> bytearray | None:
        end = self._buf.find(b"\r\n", self._scan)
        if end < 0:
            self._scan = max(self._pos, len(self._buf) - 1)
            if len(self._buf) - self._pos > self._max_head:
                raise ProtocolError(f"a line of the response is longer than {self._max_head} bytes")
            return None
        line = self._buf[self._pos : end]
        self._pos = self._scan = end + 2
        return line

    def _read_head(self) -> _Head | None:
        """Parse one head if whole; interim 1xx answers (but 101) are consumed and skipped."""
        while True:
            end = self._buf.find(b"\r\n\r\n", self._scan)
            if end < 0:
                self._scan = max(self._pos, len(self._buf) - 3)
                if len(self._buf) - self._pos > self._max_head:
                    raise ProtocolError(f"response head larger than {self._max_head} bytes")
                return None
            text = self._buf[self._pos : end].decode("latin-1")
            self._pos = self._scan = end + 4
            head = self._parse_head(text)
            if head is not None:
                return head

    def _parse_head(self, text: str) -> _Head | None:
        status_line, _, fields = text.partition("\r\n")
        m = _STATUS_LINE.fullmatch(status_line.rstrip(" "))
        if m is None:
            raise ProtocolError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
        status = int(m.group(2))
        if 100 <= status < 200 and status != 101:
            return None  # interim answer (100 Continue, 103 Early Hints): the final one follows
        headers: list[tuple[str, str]] | None = None
        lower: str | None = None
        if not fields or _PLAIN_FIELDS.fullmatch(fields):
            # Every line is "token:value": a field name can only follow a CRLF, so three searches of the
            # lower-cased text find the framing fields without splitting the head into a list.
            lower = "\r\n" + fields.lower()
            connection = _field_value(lower, fields, "connection")
            te = _field_value(lower, fields, "transfer-encoding")
            cl = _field_value(lower, fields, "content-length")
        else:
            headers = _fields(fields)
            connection, te, cl = (", ".join(v for n, v in headers if n == k) or None for k in _FRAMING)
        tokens = [t.strip(" \t") for t in connection.lower().split(",")] if connection else []
        keep_alive = "close" not in tokens and (m.group(1) != "0" or "keep-alive" in tokens)
        mode, length = _LENGTH, 0
        if self._head_request or status in (101, 204, 304):
            mode = _NO_BODY
        elif te is not None:
            codings = [c for v in te.lower().split(",") if (c := v.strip(" \t"))]
            mode = _CHUNK_SIZE if codings and codings[-1] == "chunked" else _TO_EOF
            if cl is not None or mode == _TO_EOF:
                keep_alive = False
        elif cl is not None:
            if cl.isdigit() and cl.isascii():
                length = int(cl)
            else:  # "42, 42" (a list, or repeated fields) is valid when every value is the same
                values = [v.strip(" \t") for v in cl.split(",")]
                if not all(v.isascii() and v.isdigit() for v in values) or len(set(map(int, values))) != 1:
                    raise ProtocolError(f"bad content-length {cl[:80]!r}")
                length = int(values[0])
        else:
            mode, keep_alive = _TO_EOF, False
        return _Head(status, m.group(3) or "", fields, lower, headers, keep_alive, mode, length)


def _field_value(lower: str, fields: str, name: str, first: bool = False) -> str | None:
    """The value of field ``name`` in plain field lines (repeated fields joined with ", "), or None.

    ``lower`` is ``"\r\n" + fields.lower()``, so an offset in it is the same offset + 2 in ``fields``.
    """
    key = f"\r\n{name}:"
    i = lower.find(key)
    if i < 0:
        return None
    values = []
    while i >= 0:
        start = i + len(key)
        end = lower.find("\r\n", start)
        stop = len(lower) if end < 0 else end
        values.append(fields[start - 2 : stop - 2].strip(" \t"))
        if first or end < 0:
            break
        i = lower.find(key, end)
    return ", ".join(values)


def _fields(text: str) -> list[tuple[str, str]]:
    """(lower-case name, value) of each field line, in order.

    The common case (every line ``token:value``) is one regular-expression check and one comprehension;
    folded lines, whitespace before a colon and malformed lines take the line-by-line path.
    """
    if _PLAIN_FIELDS.fullmatch(text):  # not the case when called from _parse_head, but from Response.headers
        return [(n.lower(), v.strip(" \t")) for n, _, v in (line.partition(":") for line in text.split("\r\n"))]
    headers: list[tuple[str, str]] = []
    for line in text.split("\r\n"):
        name, sep, value = line.partition(":")
        if sep and name[:1] not in " \t" and name[-1:] not in " \t":  # "" is in any string: caught here
            headers.append((name.lower(), value.strip(" \t")))
        elif line[:1] in (" ", "\t"):  # obs-fold: one SP instead (RFC 9112 §5.2)
            if not headers:
                raise ProtocolError(f"response head starts with a folded line: {line[:80]!r}")
            name, value = headers.pop()
            headers.append((name, (value + " " + line.strip(" \t")).strip(" ")))
        else:  # whitespace before the colon is removed, as a proxy must (RFC 9112 §5.1)
            name = name.rstrip(" \t").lower()
            if not sep or not name:
                raise ProtocolError(f"malformed response header line: {line[:80]!r}")
            headers.append((name, value.strip(" \t")))
    return headers
