"""HTTP/1.1 response parsing cost: the shared sans-I/O parser against ``http.client`` and the code it replaced.

``python -m benchmarks http1 [--answers N]``. CPU time of this process per response, for N pipelined API
server answers (a 1.2 KB JSON body, the headers the API server sends) parsed from one receive buffer, as
``kube/wire.py`` reads them, and for one chunked answer fed 1 KiB at a time, as ``wasm/wasihttp/client.py`` may
receive it. Baselines measured in the same run: ``http.client.HTTPResponse`` (what urllib3 and the official
Kubernetes client parse with) and the byte-operations reader ``kube/wire.py`` had before it used the shared
parser (reproduced below from the project's own history). The machine is shared and noisy: the ratios are
the claim.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.machine import describe
from zerowatt.http1 import ResponseParser

BODY = json.dumps({"kind": "Deployment", "metadata": {"name": "web", "annotations": {"a": "x" * 900}}}).encode()
ANSWER = (
    b"HTTP/1.1 200 OK\r\nAudit-Id: 5d1c6a4e-3f0b-4f7e-9c1a-2b7d9e0f4a11\r\nCache-Control: no-cache, private\r\n"
    b"Content-Type: application/json\r\nX-Kubernetes-Pf-Flowschema-Uid: 7f3e\r\n"
    b"X-Kubernetes-Pf-Prioritylevel-Uid: 9a1b\r\nDate: Wed, 02 Dec 2026 18:00:00 GMT\r\n"
    b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY
)


def chunked(body: bytes, size: int = 512) -> bytes:
    parts = [b"%x\r\n" % len(body[i : i + size]) + body[i : i + size] + b"\r\n" for i in range(0, len(body), size)]
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
        + b"".join(parts)
        + b"0\r\n\r\n"
    )


def cpu_per_call(func: Callable[[], object], budget: float = 0.3) -> float:
    calls, start = 0, time.process_time()
    while (elapsed := time.process_time() - start) < budget:
        func()
        calls += 1
    return elapsed / calls


def shared_pipelined(wire: bytes, n: int) -> None:
    parser = ResponseParser()
    parser.feed(wire)
    for _ in range(n):
        resp = parser.next_response()
        assert resp is not None and resp.status == 200


def shared_trickled(pieces: list[bytes]) -> None:
    parser = ResponseParser()
    for piece in pieces:
        parser.feed(piece)
        if (resp := parser.next_response()) is not None:
            assert resp.status == 200
            return
    raise AssertionError("incomplete")


class _File(io.BytesIO):
    def close(self) -> None:  # HTTPResponse closes its file after a body; the next answer is in it
        pass


class _Sock:
    def __init__(self, data: bytes) -> None:
        self.file = _File(data)

    def makefile(self, mode: str) -> io.BytesIO:
        return self.file


def stdlib_pipelined(wire: bytes, n: int) -> None:
    sock = _Sock(wire)
    for _ in range(n):
        resp = http.client.HTTPResponse(sock)  # type: ignore[arg-type]
        resp.begin()
        resp.read()
        assert resp.status == 200


def previous_wire_pipelined(wire: bytes, n: int) -> None:
    """The reading of ``kube/wire.py`` before the shared parser (Content-Length path), from one buffer."""
    buf, pos = bytearray(wire), 0
    for _ in range(n):
        end = buf.find(b"\r\n\r\n", pos)
        head = buf[pos:end].decode("latin-1")
        pos = end + 4
        status_line, _, rest = head.partition("\r\n")
        parts = status_line.split(" ", 2)
        status = int(parts[1])
        length, retry_after = -1, None
        for line in rest.split("\r\n"):
            name, _, value = line.partition(":")
            n_ = name.lower()
            if n_ == "content-length":
                length = int(value)
            elif n_ == "retry-after":
                retry_after = value.strip()
        with memoryview(buf) as view:
            body = bytes(view[pos : pos + length])
        pos += length
        assert status == 200 and len(body) == length and retry_after is None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks http1")
    parser.add_argument("--answers", type=int, default=64, help="pipelined answers per buffer (wire.WINDOW)")
    args = parser.parse_args(argv)
    n = args.answers
    wire = ANSWER * n
    results: dict[str, object] = {"machine": describe(), "command": "python -m benchmarks http1 " + " ".join(argv)}
    per = {
        "shared_us": cpu_per_call(lambda: shared_pipelined(wire, n)) / n * 1e6,
        "previous_wire_us": cpu_per_call(lambda: previous_wire_pipelined(wire, n)) / n * 1e6,
        "http_client_us": cpu_per_call(lambda: stdlib_pipelined(wire, n)) / n * 1e6,
    }
    results["pipelined"] = per
    print(
        f"{n} pipelined answers of {len(ANSWER)} bytes, per answer: shared parser {per['shared_us']:.2f} µs, "
        f"previous wire.py reader {per['previous_wire_us']:.2f} µs "
        f"(x{per['shared_us'] / per['previous_wire_us']:.2f}), "
        f"http.client {per['http_client_us']:.2f} µs (x{per['http_client_us'] / per['shared_us']:.1f} the shared one)"
    )
    big = chunked(b"y" * 64 * 1024)
    pieces = [big[i : i + 1024] for i in range(0, len(big), 1024)]
    trickled = cpu_per_call(lambda: shared_trickled(pieces)) * 1e6
    results["chunked_64k_in_1k_pieces_us"] = trickled
    print(f"one chunked 64 KiB answer fed in {len(pieces)} pieces of 1 KiB: {trickled:.0f} µs")
    print("machine:", describe())
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "http1.json").write_text(json.dumps(results, indent=2))
    return 0
