"""Usage samples from files (CSV or Parquet), streamed into the estimator in batches.

Columns: ``timestamp`` (RFC 3339 or Unix seconds), ``namespace``, ``pod``, ``container``, ``cpu`` (cores,
averaged over the sample interval), ``memory`` (working-set bytes); optional ``workload``, ``oom`` (1 where
the container was OOM-killed at that time) and the current ``cpu_request``, ``memory_request``,
``cpu_limit``, ``memory_limit``. Parquet files are read row group by row group with their dictionary
pages kept as dictionaries, so names cost nothing per row and memory stays bounded by the batch size; CSV
files are parsed with pyarrow's multi-threaded reader.

Bad values: NaN and negative samples are dropped and counted (the report lists them as warnings, because
one bad scrape should not hide a cluster's worth of good ones); a file with no valid sample, a missing
column, a value that is not a number, an infinite or absurdly large value (above :data:`MAX_CORES` or
:data:`MAX_BYTES`), a timestamp outside the years 1 to 9999 or a row with the wrong number of fields is an
error naming the file, line (CSV: the physical line, blank lines and quoted line breaks counted) or row
(Parquet) and column.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from zerowatt.errors import SettingError, ValidationError
from zerowatt.rightsize.accumulator import UsageAccumulator
from zerowatt.rightsize.estimator import VpaConfig
from zerowatt.rightsize.histogram import FloatArray

REQUIRED = ("timestamp", "namespace", "pod", "container", "cpu", "memory")
KEY_COLUMNS = ("namespace", "pod", "container", "workload")
CURRENT_COLUMNS = ("cpu_request", "memory_request", "cpu_limit", "memory_limit")
NUMERIC = ("cpu", "memory", "oom", *CURRENT_COLUMNS)
BATCH_ROWS = 1 << 20
#: Largest CPU value (cores) and memory value (bytes) accepted in a sample or a current request/limit. Far
#: above any node; what is above is a unit mistake, and near 1e308 the histograms' bucket arithmetic overflows.
MAX_CORES = 1e6
MAX_BYTES = float(2**60)
#: Timestamps RFC 3339 can write: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z, in Unix seconds.
MIN_TIME = -62135596800.0
MAX_TIME = 253402300799.0
_LIMITS = {"cpu": (MAX_CORES, "a number of cores up to 1e6"), "memory": (MAX_BYTES, "a number of bytes up to 2^60")}

Progress = Callable[[int, int], None]


@dataclass
class SampleFilter:
    """Which containers to keep: namespaces and ``key=value`` matches on namespace/pod/container/workload."""

    namespaces: Sequence[str] = ()
    selector: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in self.selector:
            if key not in KEY_COLUMNS:
                raise SettingError("selector", f"unknown key {key!r} for sample files; use {', '.join(KEY_COLUMNS)}")


@dataclass
class LoadStats:
    """What was read and what was dropped, for the report's warnings."""

    rows: int = 0
    nan_samples: int = 0
    negative_samples: int = 0
    filtered_rows: int = 0
    warnings: list[str] = field(default_factory=list)

    def finish(self, source: str) -> None:
        if self.nan_samples:
            self.warnings.append(f"{source}: dropped {self.nan_samples} NaN sample value(s)")
        if self.negative_samples:
            self.warnings.append(f"{source}: dropped {self.negative_samples} negative sample value(s)")


def parse_selector(text: str | None) -> dict[str, str]:
    """``k=v,k2=v2`` → dict; an entry without ``=`` is an error."""
    out: dict[str, str] = {}
    if not text:
        return out
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise SettingError("selector", f"expected key=value, got {part!r}")
        k, v = part.split("=", 1)
        out[k.strip()] = v.strip()
    return out


@dataclass(frozen=True)
class _Place:
    """Where a batch's rows are in the file, to name the line (CSV) or row (Parquet) of a bad value."""

    path: Path
    first: int  # index of the batch's first data row in the file, 0-based
    csv: bool

    @property
    def file(self) -> str:
        return str(self.path)

    def at(self, index: int) -> str:
        """``file:LINE`` (CSV) or ``file: row N`` (Parquet) of the batch's row ``index``."""
        row = self.first + index
        if self.csv:
            return f"{self.path}:{_csv_line(self.path, row)}"
        return f"{self.path}: row {row + 1}"


def _csv_records(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(first physical line, fields) of every record of a CSV file, skipping blank lines as pyarrow does."""
    with path.open(newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh)
        while True:
            line = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error:  # a field over csv's size limit, say: count it as one line, go on
                row = [""]
            if row:
                yield line, row


def _csv_line(path: Path, row: int) -> int:
    """The physical line of data row ``row`` (0-based, after the header): the error path only.

    pyarrow skips blank lines and a record's quoted line breaks are lines too, so the row index plus two
    is wrong as soon as a file has either; this walks the file the way pyarrow splits it.
    """
    for k, (line, _) in enumerate(_csv_records(path)):
        if k == row + 1:  # record 0 is the header
            return line
    return row + 2


def _shown(value: object) -> str:
    """A value quoted for a message, cut to 40 characters (a corrupt field can be megabytes)."""
    text = repr(value)
    return text if len(text) <= 42 else text[:40] + f"... ({len(str(value))} characters)"


def _timestamps(col: pa.ChunkedArray | pa.Array, place: _Place) -> FloatArray:
    """Unix seconds from a numeric, timestamp or RFC 3339 string column (NaN where empty)."""
    typ = col.type
    if pa.types.is_integer(typ) or pa.types.is_floating(typ):
        return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
    if pa.types.is_timestamp(typ):
        unit = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}[typ.unit]
        ints = pc.cast(col, pa.int64()).to_numpy(zero_copy_only=False)
        return np.asarray(ints, dtype=np.float64) / unit
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        col = pc.if_else(pc.equal(pc.utf8_trim_whitespace(col), ""), pa.scalar(None, typ), col)
        try:
            as_num = pc.cast(col, pa.float64())
            return np.asarray(pc.fill_null(as_num, math.nan).to_numpy(zero_copy_only=False), dtype=np.float64)
        except pa.ArrowInvalid:
            pass
        try:
            ts = pc.cast(col, pa.timestamp("ns", "UTC"))
        except pa.ArrowInvalid:
            return _times_one_by_one(col, place)
        return _timestamps(ts, place)
    raise ValidationError(place.file, f"column timestamp has type {typ}, expected RFC 3339 strings or Unix seconds")


def _times_one_by_one(col: pa.ChunkedArray | pa.Array, place: _Place) -> FloatArray:
    """A column that mixes Unix seconds and RFC 3339, or holds a bad value: read value by value, the
    bad one named with its own line (the slow path; the whole-column casts above are the fast one)."""
    out = np.full(len(col), math.nan)
    for i, value in enumerate(col.to_pylist()):
        if value is None:
            continue
        one = pa.array([value])
        try:
            out[i] = one.cast(pa.float64())[0].as_py()
            continue
        except pa.ArrowInvalid:
            pass
        try:
            out[i] = one.cast(pa.timestamp("ns", "UTC")).cast(pa.int64())[0].as_py() / 1e9
        except pa.ArrowInvalid:
            raise ValidationError(
                place.at(i), f"column timestamp: {_shown(value)} is not RFC 3339 or Unix seconds"
            ) from None
    return out


def _check_times(t: FloatArray, place: _Place) -> None:
    """Every timestamp present and in years 1 to 9999 (NaN, inf and 1e300 name their line)."""
    ok = (t >= MIN_TIME) & (t <= MAX_TIME)
    if ok.all():
        return
    bad = int(np.argmin(ok))
    if math.isnan(t[bad]):
        raise ValidationError(place.at(bad), "column timestamp: empty value")
    raise ValidationError(
        place.at(bad), f"column timestamp: {t[bad]:g} is outside 0001-01-01 to 9999-12-31 (Unix seconds)"
    )


def _check_limit(values: FloatArray, name: str, place: _Place) -> None:
    """No infinite or absurdly large value (NaN and negative ones are dropped and counted elsewhere)."""
    limit, expected = _LIMITS["cpu" if name.startswith("cpu") else "memory"]
    with np.errstate(invalid="ignore"):
        bad = np.isinf(values) | (values > limit)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValidationError(place.at(i), f"column {name}: expected {expected}, found {float(values[i]):g}")


def _first_bad_number(col: pa.ChunkedArray | pa.Array) -> tuple[int, str]:
    """(row index, value) of the first entry pyarrow cannot cast to a number: the error path only."""
    for i, v in enumerate(col.to_pylist()):
        if v is None:
            continue
        try:
            pa.array([v]).cast(pa.float64())
        except pa.ArrowInvalid:
            return i, v
    return -1, ""


def _numeric(col: pa.ChunkedArray | pa.Array, name: str, place: _Place) -> FloatArray:
    typ = col.type
    if pa.types.is_boolean(typ):
        col = pc.cast(col, pa.float64())
    elif pa.types.is_string(typ) or pa.types.is_large_string(typ):
        col = pc.if_else(pc.equal(pc.utf8_trim_whitespace(col), ""), pa.scalar(None, typ), col)
        try:
            col = pc.cast(col, pa.float64())
        except pa.ArrowInvalid:
            index, value = _first_bad_number(col)
            where = place.at(index) if index >= 0 else place.file
            raise ValidationError(where, f"column {name}: {_shown(value)} is not a number") from None
    elif not (pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_null(typ)):
        raise ValidationError(place.file, f"column {name} has type {typ}, expected numbers")
    if pa.types.is_null(col.type):
        return np.full(len(col), np.nan)
    if col.null_count:
        col = pc.fill_null(pc.cast(col, pa.float64()), math.nan)
    if pa.types.is_floating(col.type):
        return np.asarray(col.to_numpy(zero_copy_only=False))  # float32 stays float32: exact either way
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)


class _KeyMapper:
    """Maps rows' (namespace, pod, container, workload) to accumulator series ids, batch by batch.

    Names arrive dictionary-encoded; only the few distinct combinations in a batch touch Python.
    """

    def __init__(self, acc: UsageAccumulator, flt: SampleFilter) -> None:
        self.acc = acc
        self.flt = flt

    def series(self, batch: pa.RecordBatch | pa.Table) -> tuple[np.ndarray, np.ndarray]:
        """(series id per row, keep mask) for a batch."""
        columns: list[tuple[np.ndarray, int]] = []
        dicts: list[list[str | None]] = []
        radix = 1
        for name in KEY_COLUMNS:
            if name not in batch.schema.names:
                dicts.append([None])
                continue
            col = batch.column(name)
            if isinstance(col, pa.ChunkedArray):
                col = col.combine_chunks()
            if not pa.types.is_dictionary(col.type):
                col = pc.dictionary_encode(col)
            values: list[str | None] = [*col.dictionary.to_pylist(), None]
            dicts.append(values)
            if col.indices.null_count:
                idx = pc.fill_null(col.indices, len(col.dictionary)).to_numpy(zero_copy_only=False)
            elif len(col.dictionary) == 1:
                radix *= len(values)  # one name in this batch: index 0 everywhere, nothing to add
                continue
            else:
                idx = col.indices.to_numpy(zero_copy_only=False)
            columns.append((idx, radix))
            radix *= len(values)
        small = radix < 2**31
        codes = np.zeros(batch.num_rows, dtype=np.int32 if small else np.int64)
        for idx, mult in columns:
            codes += idx * mult if small else idx.astype(np.int64) * mult
        if radix <= 4 * codes.size + (1 << 16):
            # Few combinations (dictionary pages per row group): an O(n) lookup table instead of a sort.
            present = np.flatnonzero(np.bincount(codes, minlength=radix))
            lut = np.empty(radix, dtype=np.int64)
            lut[present] = np.arange(present.size)
            uniq, inverse = present, lut[codes]
        else:
            uniq, inverse = np.unique(codes, return_inverse=True)
        sids = np.empty(uniq.size, dtype=np.int64)
        keep = np.ones(uniq.size, dtype=np.bool_)
        for j, code in enumerate(uniq.tolist()):
            parts: list[str | None] = []
            for values in dicts:
                parts.append(values[code % len(values)])
                code //= len(values)
            ns, pod, container, workload = parts
            if ns is None or pod is None or container is None:
                raise ValidationError("samples", "a row lacks namespace, pod or container")
            if not self._wanted(ns, pod, container, workload):
                keep[j] = False
                sids[j] = -1
                continue
            sids[j] = self.acc.series_id(ns, pod, container, workload or None)
        return sids[inverse], keep[inverse]

    def _wanted(self, ns: str, pod: str, container: str, workload: str | None) -> bool:
        if self.flt.namespaces and ns not in self.flt.namespaces:
            return False
        row = {"namespace": ns, "pod": pod, "container": container, "workload": workload}
        return all(row.get(k) == v for k, v in self.flt.selector.items())


def _check_columns(names: Sequence[str], where: str) -> None:
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        found = ", ".join(_shown(n) for n in names[:20]) or "none"
        raise ValidationError(where, f"missing column(s) {', '.join(missing)}; found {found}")
    twice = sorted({n for n in names if n in (*REQUIRED, *KEY_COLUMNS, *NUMERIC) and names.count(n) > 1})
    if twice:
        raise ValidationError(where, f"column(s) {', '.join(twice)} appear more than once")


def _feed(
    acc: UsageAccumulator,
    mapper: _KeyMapper,
    batch: pa.RecordBatch | pa.Table,
    t: FloatArray,
    place: _Place,
    stats: LoadStats,
) -> None:
    sid, keep = mapper.series(batch)
    names = batch.schema.names
    cpu = _numeric(batch.column("cpu"), "cpu", place)
    mem = _numeric(batch.column("memory"), "memory", place)
    _check_times(t, place)
    _check_limit(cpu, "cpu", place)
    _check_limit(mem, "memory", place)
    stats.rows += int(keep.sum())
    stats.filtered_rows += int((~keep).sum())
    stats.nan_samples += int((np.isnan(cpu) & keep).sum() + (np.isnan(mem) & keep).sum())
    stats.negative_samples += int(((cpu < 0) & keep).sum() + ((mem < 0) & keep).sum())
    oom = _numeric(batch.column("oom"), "oom", place) if "oom" in names else None
    if not keep.all():
        sid, t, cpu, mem = sid[keep], t[keep], cpu[keep], mem[keep]
        oom = oom[keep] if oom is not None else None
    acc.add_samples(sid, t, cpu=cpu, memory=mem, oom=None if oom is None else np.nan_to_num(oom) > 0)
    current = [c for c in CURRENT_COLUMNS if c in names]
    if current:
        vals = {c: _numeric(batch.column(c), c, place) for c in current}
        for c, v in vals.items():
            _check_limit(v, c, place)
        acc.set_current(sid, timestamps=t, **{c: v[keep] for c, v in vals.items()})


def _csv_table(path: Path) -> pa.Table:
    header = next(_csv_records(path), (1, []))[1]  # as pyarrow reads it: blank lines skipped, quotes removed
    if header:
        header[0] = header[0].removeprefix("\ufeff")  # pyarrow skips a UTF-8 byte order mark
    header = [h.strip() for h in header]
    _check_columns(header, str(path))
    types = {c: pa.string() for c in header}
    try:
        return pcsv.read_csv(
            path,
            read_options=pcsv.ReadOptions(block_size=16 << 20),
            convert_options=pcsv.ConvertOptions(column_types=types, strings_can_be_null=False),
        )
    except pa.ArrowInvalid as exc:
        line = _bad_csv_line(path, len(header))
        raise ValidationError(f"{path}:{line}" if line else str(path), f"malformed CSV: {exc}") from None


def _bad_csv_line(path: Path, width: int) -> int | None:
    for line, row in _csv_records(path):
        if len(row) != width:
            return line
    return None


def _parquet_now(pf: pq.ParquetFile, place: _Place) -> float | None:
    """Latest timestamp from the row groups' statistics (no data read), or None when not available."""
    schema = pf.schema_arrow
    if "timestamp" not in schema.names:
        return None
    typ = schema.field("timestamp").type
    if not (pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_timestamp(typ)):
        return None
    idx = schema.get_field_index("timestamp")
    best: float | None = None
    for rg in range(pf.metadata.num_row_groups):
        st = pf.metadata.row_group(rg).column(idx).statistics
        if st is None or not st.has_min_max:
            return None
        mx = st.max
        if pa.types.is_timestamp(typ):
            mx = _timestamps(pa.array([mx], type=typ), place)[0]
        best = float(mx) if best is None else max(best, float(mx))
    if best is None or not MIN_TIME <= best <= MAX_TIME:
        return None  # not usable: the scan of the timestamps finds and names the bad row
    return best


def iter_parquet(path: Path, batch_rows: int = BATCH_ROWS, use_threads: bool = True) -> Iterator[pa.RecordBatch]:
    """Record batches with the name columns kept dictionary-encoded (as stored), one row group at a time."""
    pf = pq.ParquetFile(path, read_dictionary=[c for c in KEY_COLUMNS if c in pq.read_schema(path).names])
    for rg in range(pf.metadata.num_row_groups):  # batches never straddle row groups (and their dictionaries)
        yield from pf.iter_batches(batch_size=batch_rows, row_groups=[rg], use_threads=use_threads)


def load_samples(
    path: Path,
    history: float,
    *,
    now: float | None = None,
    config: VpaConfig | None = None,
    flt: SampleFilter | None = None,
    progress: Progress | None = None,
    batch_rows: int = BATCH_ROWS,
    track_simple: bool = True,
    keep_series: bool = False,
) -> tuple[UsageAccumulator, LoadStats]:
    """Stream a CSV or Parquet sample file into a fresh accumulator.

    ``now`` (end of the history) defaults to the file's latest timestamp.
    """
    if path.is_dir():
        raise ValidationError(str(path), "is a directory: give one CSV or Parquet file of samples")
    if not path.is_file():
        raise ValidationError(str(path), "no such file")
    flt = flt or SampleFilter()
    stats = LoadStats()
    kind = "parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv"
    if kind == "parquet":
        try:
            pf = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise ValidationError(str(path), f"not a readable Parquet file: {exc}") from None
        _check_columns(pf.schema_arrow.names, str(path))
        total = pf.metadata.num_rows
        if now is None:
            now = _parquet_now(pf, _Place(path, 0, csv=False))
        if now is None:
            now = -math.inf
            scanned = 0
            for b in pf.iter_batches(batch_size=batch_rows, columns=["timestamp"]):
                t = _timestamps(b.column(0), _Place(path, scanned, csv=False))
                _check_times(t, _Place(path, scanned, csv=False))
                if t.size:
                    now = max(now, float(np.max(t)))
                scanned += b.num_rows
        if not math.isfinite(now):
            raise ValidationError(str(path), "no samples")
        acc = UsageAccumulator(now, history, config, track_simple, keep_series)
        mapper = _KeyMapper(acc, flt)
        done = 0
        try:
            for batch in iter_parquet(path, batch_rows):
                place = _Place(path, done, csv=False)
                t = _timestamps(batch.column("timestamp"), place)
                _feed(acc, mapper, batch, t, place, stats)
                done += batch.num_rows
                if progress:
                    progress(done, total)
        except (pa.ArrowInvalid, OSError) as exc:
            raise ValidationError(str(path), f"unreadable Parquet data after row {done}: {exc}") from None
    else:
        table = _csv_table(path)
        total = table.num_rows
        if total == 0:
            raise ValidationError(str(path), "no samples (only a header)")
        t_all = _timestamps(table.column("timestamp"), _Place(path, 0, csv=True))
        _check_times(t_all, _Place(path, 0, csv=True))
        if now is None:
            now = float(np.max(t_all))
        acc = UsageAccumulator(now, history, config, track_simple, keep_series)
        mapper = _KeyMapper(acc, flt)
        for start in range(0, total, batch_rows):
            batch = table.slice(start, batch_rows)
            _feed(acc, mapper, batch, t_all[start : start + batch_rows], _Place(path, start, csv=True), stats)
            if progress:
                progress(min(start + batch_rows, total), total)
    stats.finish(str(path))
    if acc.n_series == 0 or stats.rows == 0:
        raise ValidationError(str(path), "no samples left after the namespace/selector filters")
    if not acc.has_data():
        raise ValidationError(str(path), "no valid samples (all NaN, negative or outside the history window)")
    return acc, stats
