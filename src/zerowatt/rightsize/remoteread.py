"""Raw samples through Prometheus' remote-read API, as streamed XOR chunks.

With ``STREAMED_XOR_CHUNKS`` Prometheus sends the chunks as they are stored (≈ 1.4 bytes per sample) and
does no per-sample work, where the query API formats every sample as JSON (≈ 29 bytes, ≈ 0.4 µs of
Prometheus CPU, and as much again to parse). The chunks are decoded by ``_xorchunk.c``, a small C file
compiled once with the system C compiler into ``$ZEROWATT_CACHE_DIR/native`` (or
``~/.cache/zerowatt/native``) and loaded with ctypes; without a compiler, or when the server does not
speak the streamed protocol (HTTP 4xx/5xx, another content type), callers fall back to the query API.

Wire format (Prometheus ``prompb/remote.proto``, ``types.proto``; ``storage/remote/chunked.go``): the request
is a snappy-compressed ``ReadRequest``; the answer a sequence of frames, each a uvarint length, a CRC-32C
(not checked here: loopback/TLS already protect the bytes) and a ``ChunkedReadResponse``. Protobuf is
encoded and decoded by hand: the handful of fields needed do not justify a dependency.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sysconfig
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

SOURCE = Path(__file__).with_name("_xorchunk.c")
EQ, NEQ, RE, NRE = 0, 1, 2, 3  # prompb.LabelMatcher.Type
Matcher = tuple[int, str, str]
Series = tuple[dict[str, str], npt.NDArray[np.int64], npt.NDArray[np.float64]]

_lock = threading.Lock()
_lib: Any = None
_failed: str | None = None


class RemoteReadUnavailable(RuntimeError):
    """The decoder cannot be built here, or the server does not answer with streamed chunks."""


def _cache_dir() -> Path:
    if env := os.environ.get("ZEROWATT_CACHE_DIR"):
        return Path(env) / "native"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "zerowatt" / "native"


def decoder() -> Any:
    """The loaded decoder library (built on first use); :class:`RemoteReadUnavailable` if it cannot be."""
    global _lib, _failed
    with _lock:
        if _lib is not None:
            return _lib
        if _failed is not None:
            raise RemoteReadUnavailable(_failed)
        try:
            source = SOURCE.read_bytes()
            digest = hashlib.sha256(source + (sysconfig.get_platform()).encode()).hexdigest()[:16]
            out = _cache_dir() / f"xorchunk-{digest}.so"
            if not out.exists():
                cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
                if not cc:
                    raise RemoteReadUnavailable("no C compiler (cc) to build the XOR chunk decoder")
                out.parent.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
                    tmp_so = Path(tmp) / out.name
                    proc = subprocess.run(
                        [cc, "-O2", "-shared", "-fPIC", "-o", str(tmp_so), str(SOURCE)],
                        capture_output=True,
                        text=True,
                        timeout=120,
                    )
                    if proc.returncode != 0:
                        raise RemoteReadUnavailable(f"building the XOR chunk decoder failed: {proc.stderr[-500:]}")
                    os.replace(tmp_so, out)  # atomic: concurrent builders never load a half-written file
            lib = ctypes.CDLL(str(out))
            lib.zw_decode_many.restype = ctypes.c_long
            lib.zw_decode_many.argtypes = [ctypes.c_char_p] + [ctypes.c_void_p] * 2 + [ctypes.c_long]
            lib.zw_decode_many.argtypes += [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long]
            _lib = lib
            return lib
        except (OSError, subprocess.SubprocessError, RemoteReadUnavailable) as exc:
            _failed = str(exc)
            raise RemoteReadUnavailable(_failed) from None


# -- protobuf, by hand -------------------------------------------------------------------------------------


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _uvarint(number << 3 | 2) + _uvarint(len(payload)) + payload


def _varint_field(number: int, value: int) -> bytes:
    return _uvarint(number << 3) + _uvarint(value & 0xFFFFFFFFFFFFFFFF)


def read_request(matchers: list[Matcher], start_ms: int, end_ms: int) -> bytes:
    """A snappy-compressed ``ReadRequest`` of one query, asking for ``STREAMED_XOR_CHUNKS`` (1)."""
    query = _varint_field(1, start_ms) + _varint_field(2, end_ms)
    for kind, name, value in matchers:
        query += _field(3, _varint_field(1, kind) + _field(2, name.encode()) + _field(3, value.encode()))
    body = _field(1, query) + _varint_field(2, 1)
    return _snappy_literal(body)


def _snappy_literal(data: bytes) -> bytes:
    """Snappy's block format with the whole input as literals: valid, uncompressed (requests are small)."""
    out = bytearray(_uvarint(len(data)))
    pos = 0
    while pos < len(data):
        chunk = data[pos : pos + 65536]
        n = len(chunk) - 1
        if n < 60:
            out.append(n << 2)
        elif n < 256:
            out += bytes((60 << 2, n))
        else:
            out += bytes((61 << 2,)) + n.to_bytes(2, "little")
        out += chunk
        pos += len(chunk)
    return bytes(out)


def _read_uvarint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes | memoryview, start: int, end: int) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value) of a message: varints as ints, length-delimited as (start, end)."""
    out: list[tuple[int, int, Any]] = []
    pos = start
    while pos < end:
        key, pos = _read_uvarint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_uvarint(buf, pos)
            out.append((number, 0, value))
        elif wire == 2:
            size, pos = _read_uvarint(buf, pos)
            out.append((number, 2, (pos, pos + size)))
            pos += size
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise RemoteReadUnavailable(f"unexpected protobuf wire type {wire}")
    return out


def parse_chunked(body: bytes, start_ms: int, end_ms: int) -> list[Series]:
    """The series of a streamed ``ChunkedReadResponse`` answer, samples within [start_ms, end_ms].

    A series may continue over several frames (Prometheus cuts frames at 1 MB): chunks are gathered by
    label set. Staleness markers are kept (their NaN bit pattern is preserved for :mod:`promql_local`).
    """
    lib = decoder()
    view = memoryview(body)
    chunks_of: dict[tuple[tuple[str, str], ...], list[tuple[int, int]]] = {}
    pos = 0
    while pos < len(body):
        size, pos = _read_uvarint(view, pos)
        msg_start = pos + 4  # after the CRC-32C
        msg_end = msg_start + size
        if msg_end > len(body):
            raise RemoteReadUnavailable("truncated remote-read frame")
        for number, wire, value in _fields(view, msg_start, msg_end):
            if number != 1 or wire != 2:
                continue
            labels: list[tuple[str, str]] = []
            chunks: list[tuple[int, int]] = []
            for n2, w2, v2 in _fields(view, *value):
                if n2 == 1 and w2 == 2:
                    lab = {n3: bytes(view[a:b]).decode() for n3, _, (a, b) in _fields(view, *v2)}
                    labels.append((lab.get(1, ""), lab.get(2, "")))
                elif n2 == 2 and w2 == 2:
                    enc, data = 0, (0, 0)
                    for n3, w3, v3 in _fields(view, *v2):
                        if n3 == 3 and w3 == 0:
                            enc = v3
                        elif n3 == 4 and w3 == 2:
                            data = v3
                    if enc != 1:
                        raise RemoteReadUnavailable(f"chunk encoding {enc} is not XOR")
                    chunks.append(data)
            chunks_of.setdefault(tuple(labels), []).extend(chunks)
        pos = msg_end
    out: list[Series] = []
    for labels_key, chunks in chunks_of.items():
        offs = np.array([a for a, _ in chunks], dtype=np.int64)
        lens = np.array([b - a for a, b in chunks], dtype=np.int64)
        cap = int(sum((body[a] << 8) | body[a + 1] for a, b in chunks if b - a >= 2))
        t = np.empty(cap, dtype=np.int64)
        v = np.empty(cap, dtype=np.float64)
        n = lib.zw_decode_many(body, offs.ctypes.data, lens.ctypes.data, len(chunks), t.ctypes.data, v.ctypes.data, cap)
        if n < 0:
            raise RemoteReadUnavailable("malformed XOR chunk")
        t, v = t[:n], v[:n]
        if t.size > 1 and not bool((np.diff(t) > 0).all()):  # overlapping chunks: time order, no duplicates
            t, first = np.unique(t, return_index=True)
            v = v[first]
        keep = (t >= start_ms) & (t <= end_ms)
        out.append((dict(labels_key), t[keep], v[keep]))
    return out
