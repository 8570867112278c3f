"""A ``matrix`` answer of Prometheus's query API, parsed without a Python object per sample."""

from __future__ import annotations

import json

import numpy as np
import numpy.typing as npt

from zerowatt.errors import ZerowattError

Matrix = list[tuple[dict[str, str], npt.NDArray[np.int64], npt.NDArray[np.float64]]]


class PrometheusError(ZerowattError):
    """Prometheus could not be reached or answered with an error (exit code 1)."""


_TO_CSV = bytes.maketrans(b"[", b"\n")


def parse_matrix(body: bytes) -> tuple[Matrix, list[str]]:
    """A ``matrix`` answer of ``/api/v1/query`` as (labels, times in ms, values) per series, and its warnings.

    ``json.loads`` would build two Python objects per sample (hundreds of bytes each, ~1 µs); here only the
    label sets go through ``json``, and all samples of the answer are turned into one CSV buffer read by
    pyarrow's multi-threaded parser (``"NaN"`` reads as NaN). Relies on the answer's shape
    (``{"metric":{…},"values":[[t,"v"],…]}``), which Prometheus and Thanos write; raw quotes cannot occur
    inside JSON strings, so label values cannot fake it.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if b'{"metric":' not in body and b'"metric"' in body:  # not Prometheus' compact layout: the slow way
        doc = json.loads(body)
        slow: Matrix = []
        for s_ in (doc.get("data") or {}).get("result") or []:
            vals = s_.get("values") or []
            t_ms = np.array([round(float(p[0]) * 1000) for p in vals], dtype=np.int64)
            slow.append((dict(s_.get("metric") or {}), t_ms, np.array([float(p[1]) for p in vals])))
        return slow, [str(w) for w in doc.get("warnings") or []]
    labels: list[dict[str, str]] = []
    segments: list[bytes] = []
    counts: list[int] = []
    pos, end_of_data = 0, 0
    while True:
        m = body.find(b'{"metric":', pos)
        if m < 0:
            break
        v = body.find(b',"values":[', m)
        if v < 0:
            raise PrometheusError("unexpected answer: a series without values")
        labels.append(json.loads(body[m + 10 : v]))
        start = v + 11
        if body[start : start + 1] == b"]":
            segments.append(b"")
            counts.append(0)
            pos = end_of_data = start
            continue
        e = body.find(b"]]", start)
        seg = body[start + 1 : e]  # t,"v"],[t,"v"],...,[t,"v"
        segments.append(seg)
        counts.append(seg.count(b"],[") + 1)
        pos = end_of_data = e + 2
    warnings: list[str] = []
    w = body.rfind(b'"warnings":')
    if w > end_of_data:
        found, _ = json.JSONDecoder().raw_decode(body.decode("utf-8", "replace"), w + 11)
        warnings = [str(x) for x in found or []]
    if not labels:
        return [], warnings
    # One pass: `t,"v"],[t,"v"` → `t,v,⏎t,v,` (each line ends with an empty third field).
    text = (b",\n".join(s_ for s_ in segments if s_) + b",").translate(_TO_CSV, b']"')
    table = pacsv.read_csv(
        pa.py_buffer(text),
        read_options=pacsv.ReadOptions(column_names=["t", "v", "_"]),
        convert_options=pacsv.ConvertOptions(
            include_columns=["t", "v"], column_types={"t": pa.float64(), "v": pa.float64()}
        ),
        memory_pool=pa.system_memory_pool(),  # malloc returns what is freed; arrow's pools keep it (peak RSS)
    )
    t_all = np.rint(table.column("t").to_numpy() * 1000).astype(np.int64)
    v_all = np.asarray(table.column("v").to_numpy(zero_copy_only=False), dtype=np.float64)
    out: Matrix = []
    offset = 0
    for lab, n in zip(labels, counts, strict=True):
        out.append((lab, t_all[offset : offset + n], v_all[offset : offset + n]))
        offset += n
    return out, warnings
