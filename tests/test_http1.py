"""The shared HTTP/1.1 response parser: framing after RFC 9112 §6.3, and split-anywhere invariance."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zerowatt.http1 import IncompleteResponse, ProtocolError, Response, ResponseParser


def parse_all(chunks: list[bytes], heads: list[bool] | None = None, eof: bool = True) -> list[Response]:
    """Feed ``chunks`` one by one, collecting every response that comes out (then EOF)."""
    parser = ResponseParser()
    heads = list(heads or [])
    out: list[Response] = []

    def drain() -> None:
        while (
            resp := parser.next_response(head_request=heads[len(out)] if len(out) < len(heads) else False)
        ) is not None:
            out.append(resp)
            if parser.idle:
                return

    for chunk in chunks:
        parser.feed(chunk)
        drain()
    if eof:
        parser.feed_eof()
        if not parser.idle:
            drain()
    return out


def one(raw: bytes, head: bool = False) -> Response:
    [resp] = parse_all([raw], [head])
    return resp


def test_content_length_chunked_and_keep_alive() -> None:
    r = one(b"HTTP/1.1 201 Created\r\nContent-Length: 3\r\nX-A:  v \r\n\r\nabc")
    assert (r.status, r.reason, r.body, r.keep_alive) == (201, "Created", b"abc", True)
    assert r.headers == [("content-length", "3"), ("x-a", "v")] and r.header("x-a") == "v"
    r = one(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\nT: 1\r\n\r\n"
    )
    assert r.body == b"hello!" and r.keep_alive
    # HTTP/1.0 closes unless it says keep-alive; "Connection: close" is a token, not a substring
    assert not one(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive
    assert one(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n").keep_alive
    assert not one(b"HTTP/1.1 200 OK\r\nConnection: x, close\r\nContent-Length: 0\r\n\r\n").keep_alive
    assert one(b"HTTP/1.1 200 OK\r\nConnection: closed-caption\r\nContent-Length: 0\r\n\r\n").keep_alive


def test_bodyless_answers_and_interim_responses() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
    assert one(raw, head=True).body == b""  # an answer to HEAD has no body whatever Content-Length says
    for status in (204, 304):
        [a, b] = parse_all([f"HTTP/1.1 {status} X\r\nContent-Length: 5\r\n\r\n".encode() + raw + b"hello"])
        assert (a.status, a.body, b.body) == (status, b"", b"hello")
    r = one(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early\r\nLink: x\r\n\r\n" + raw + b"hello")
    assert (r.status, r.body) == (200, b"hello")


def test_transfer_encoding_rules() -> None:
    # chunked only counts as the final coding (RFC 9112 §6.3 item 3): otherwise the body runs to the close
    r = one(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n5\r\nhello")
    assert r.body == b"5\r\nhello" and not r.keep_alive
    # Transfer-Encoding overrides Content-Length, and the connection is not reused afterwards
    r = one(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    assert r.body == b"abc" and not r.keep_alive
    # no framing at all: to the end of the connection
    r = one(b"HTTP/1.1 200 OK\r\n\r\nuntil the end")
    assert r.body == b"until the end" and not r.keep_alive


def test_header_lookup_without_and_with_the_field_list() -> None:
    raw = (
        b"HTTP/1.1 429 Slow\r\nRetry-After:  5 \r\nX-A: 1\r\nx-a: 2\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nok"
    )
    lazy, eager = one(raw), one(raw)
    assert (lazy.header("retry-after"), lazy.header("x-a"), lazy.header("nope")) == ("5", "1", None)
    assert eager.headers == [
        ("retry-after", "5"),
        ("x-a", "1"),
        ("x-a", "2"),
        ("content-length", "2"),
        ("content-length", "2"),
    ]
    assert (eager.header("retry-after"), eager.header("x-a")) == ("5", "1") and eager.body == b"ok"
    # a value that looks like a field name is not one
    assert one(b"HTTP/1.1 200 OK\r\nX-Note: content-length: 9\r\nContent-Length: 1\r\n\r\n!").body == b"!"
    # whitespace before the colon is removed (RFC 9112 §5.1), through the line-by-line path
    assert one(b"HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\n!").header("content-length") == "1"


def test_obs_fold_and_repeated_content_length() -> None:
    r = one(b"HTTP/1.1 200 OK\r\nX-Long: a\r\n  b\r\nContent-Length: 2, 2\r\n\r\nok")
    assert r.header("x-long") == "a b" and r.body == b"ok"


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"SSH-2.0-nope\r\n\r\n", r"not an HTTP/1\.x status line"),
        (b"HTTP/2 200 OK\r\n\r\n", "status line"),
        (b"HTTP/1.1 20 OK\r\n\r\n", "status line"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed response header line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\nab", "bad content-length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "bad content-length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\n", "bad content-length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1_0\r\n", "bad chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\n", "bad chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY", "not followed by CRLF"),
    ],
)
def test_malformed_answers_are_protocol_errors(raw: bytes, match: str) -> None:
    parser = ResponseParser()
    parser.feed(raw)
    with pytest.raises(ProtocolError, match=match):
        parser.next_response()


def test_head_and_line_limits() -> None:
    parser = ResponseParser(max_head=64)
    parser.feed(b"HTTP/1.1 200 OK\r\nX: " + b"a" * 100)
    with pytest.raises(ProtocolError, match="larger than 64 bytes"):
        parser.next_response()


def test_truncated_answers_say_whether_anything_arrived() -> None:
    parser = ResponseParser()
    parser.feed_eof()
    with pytest.raises(IncompleteResponse) as nothing:
        parser.next_response()
    assert nothing.value.nothing_received
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    assert parser.next_response() is None  # waiting for the rest
    parser.feed_eof()
    with pytest.raises(IncompleteResponse, match="in the middle of a response") as partial:
        parser.next_response()
    assert not partial.value.nothing_received


def test_pipelined_answers_stay_buffered_in_order() -> None:
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 404 No\r\nContent-Length: 1\r\n\r\nb")
    first = parser.next_response()
    assert first is not None and first.body == b"a" and parser.buffered > 0 and not parser.idle
    second = parser.next_response()
    assert second is not None and (second.status, second.body) == (404, b"b") and parser.idle
    assert parser.next_response() is None


# --- property: where the bytes are split does not change what comes out --------------------------------

_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12).filter(
    lambda t: t not in ("content-length", "transfer-encoding", "connection")
)
_value = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789 ;=/", max_size=20).map(str.strip)


@st.composite
def responses(draw: st.DrawFn) -> tuple[bytes, tuple[int, list[tuple[str, str]], bytes]]:
    """A valid keep-alive response (sized or chunked, maybe after a 100 Continue) and what it must parse to."""
    status = draw(st.sampled_from([200, 201, 204, 304, 400, 404, 500]))
    headers = draw(st.lists(st.tuples(_token, _value), max_size=4))
    body = b"" if status in (204, 304) else draw(st.binary(max_size=300))
    interim = b"HTTP/1.1 100 Continue\r\n\r\n" if draw(st.booleans()) else b""
    head = "".join(f"{n}: {v}\r\n" for n, v in headers)
    if draw(st.booleans()) and status not in (204, 304):
        sizes = draw(st.lists(st.integers(1, 64), max_size=8))
        parts, pos = [], 0
        for size in sizes:
            piece = body[pos : pos + size]
            if piece:
                parts.append(b"%x;e=1\r\n" % len(piece) + piece + b"\r\n")
            pos += size
        if pos < len(body):
            parts.append(b"%X\r\n" % (len(body) - pos) + body[pos:] + b"\r\n")
        framing, payload = "Transfer-Encoding: chunked\r\n", b"".join(parts) + b"0\r\nTrailer: t\r\n\r\n"
        expected = [*headers, ("transfer-encoding", "chunked")]
    else:
        framing, payload = f"Content-Length: {len(body)}\r\n", body
        expected = [*headers, ("content-length", str(len(body)))]
    raw = interim + f"HTTP/1.1 {status} Reason Phrase\r\n{head}{framing}\r\n".encode() + payload
    return raw, (status, expected, body)


@settings(max_examples=300, deadline=None)
@given(st.lists(responses(), min_size=1, max_size=4), st.data())
def test_any_split_of_pipelined_responses_gives_the_same_responses(
    answers: list[tuple[bytes, tuple[int, list[tuple[str, str]], bytes]]], data: st.DataObject
) -> None:
    wire = b"".join(raw for raw, _ in answers)
    cuts = sorted(data.draw(st.sets(st.integers(0, len(wire)), max_size=12)))
    chunks = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True)]
    got = parse_all(chunks, eof=False)
    assert [(r.status, r.headers, r.body) for r in got] == [want for _, want in answers]
    assert all(r.keep_alive and r.reason == "Reason Phrase" for r in got)
    whole = parse_all([wire], eof=False)  # split or whole: the same responses
    assert [(r.status, r.reason, r.headers, r.body, r.keep_alive) for r in got] == [
        (r.status, r.reason, r.headers, r.body, r.keep_alive) for r in whole
    ]
    assert [r.header("content-length") for r in got] == [r.header("content-length") for r in whole]


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_byte_at_a_time_close_delimited_body(body: bytes) -> None:
    wire = b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\n" + body
    got = parse_all([wire[i : i + 1] for i in range(len(wire))])
    assert [(r.status, r.body, r.keep_alive) for r in got] == [(200, body, False)]
