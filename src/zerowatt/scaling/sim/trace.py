"""Azure Functions 2019 traces: read ``N_inv.csv``/``N_run.csv``/``N_mem.csv`` and expand them into invocations.

Format (Shahrad et al., USENIX ATC 2020; Azure Public Dataset, Microsoft, CC-BY 4.0), as re-sampled by
vHive's In-Vitro project:

* ``N_inv.csv``: ``HashFunction,HashApp,HashOwner,minute_1..minute_M`` (the original Azure files order the
  hash columns differently, add ``Trigger`` and name minutes ``1..1440``; columns are found by name, so both
  work): invocations per function per minute;
* ``N_run.csv``: ``HashFunction,HashApp,...,percentile_Average_{0,1,25,50,75,99,100}`` in milliseconds;
* ``N_mem.csv``: ``HashApp,...,AverageAllocatedMb,...`` in MB, per application.

Joins: durations by (HashFunction, HashApp), memory by HashApp. A function without a run row gets the
trace-wide median of each duration percentile; an app without a mem row gets the median
``AverageAllocatedMb``; both are counted in :attr:`Trace.fallbacks` (never silent).

Every malformed line raises :class:`ValidationError` naming ``file:line``, the column and what was
expected, before anything is allocated for it: counts are whole numbers in ``0..MAX_PER_MINUTE``, the
trace's total stays within :data:`MAX_INVOCATIONS` (the simulator holds every invocation in memory),
durations and memory are finite, non-negative and below :data:`MAX_DURATION_MS` and :data:`MAX_MEMORY_MB`.
Reading is an adapter (it opens files); :func:`expand` is pure: counts in, seeded arrivals and durations out.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from zerowatt.errors import ValidationError

#: Percentile columns of ``N_run.csv`` and the probabilities they stand for.
RUN_PERCENTILES: tuple[int, ...] = (0, 1, 25, 50, 75, 99, 100)
RUN_COLUMNS = tuple(f"percentile_Average_{p}" for p in RUN_PERCENTILES)
MEM_COLUMN = "AverageAllocatedMb"
MINUTE = 60.0
#: Invocations of one function in one minute: 10 million (~167,000 a second) is about a hundred times the
#: busiest function of the Azure 2019 trace; a bigger value is a corrupt cell, not a workload.
MAX_PER_MINUTE = 10_000_000
#: Invocations of a whole trace: :func:`expand` and the replays peak at ~200 bytes per invocation (measured:
#: 2 million invocations, all four policies, +400 MB RSS), so this bounds a run to ~20 GB instead of dying
#: in NumPy's allocator.
MAX_INVOCATIONS = 100_000_000
#: A duration percentile (ms): one year. Longer is a unit mistake, and would overflow the energy sums.
MAX_DURATION_MS = 365 * 86400 * 1000.0
#: Memory of an application (MB): 1 TiB, far above any Functions plan (Azure's largest is 14 GB).
MAX_MEMORY_MB = 1024.0 * 1024.0

_MINUTE_HEADER = re.compile(r"^(?:minute_)?(\d+)$")
_FILE_SET = re.compile(r"^(\d+)_inv\.csv$")


@dataclass(frozen=True, slots=True)
class Trace:
    """A loaded trace: per-function minute counts, duration percentiles (s) and memory (GB)."""

    function_ids: tuple[str, ...]
    app_ids: tuple[str, ...]
    counts: npt.NDArray[np.int64]  # [F, M] invocations per minute
    duration_percentiles: npt.NDArray[np.float64]  # [F, 7] seconds, at RUN_PERCENTILES
    memory_gb: npt.NDArray[np.float64]  # [F]
    source: str = ""
    fallbacks: dict[str, int] = field(default_factory=dict)

    @property
    def n_functions(self) -> int:
        return len(self.function_ids)

    @property
    def minutes(self) -> int:
        return int(self.counts.shape[1])

    @property
    def horizon(self) -> float:
        """Length of the trace in seconds (a day for the Azure files)."""
        return self.minutes * MINUTE

    @property
    def invocations(self) -> int:
        return int(self.counts.sum())

    def take(self, n: int) -> Trace:
        """The first ``n`` functions."""
        return Trace(
            self.function_ids[:n],
            self.app_ids[:n],
            self.counts[:n],
            self.duration_percentiles[:n],
            self.memory_gb[:n],
            self.source,
            dict(self.fallbacks),
        )

    def resample(self, n: int, seed: int) -> Trace:
        """``n`` functions drawn with replacement (seeded): a bigger trace with the same per-function shapes."""
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, self.n_functions, size=n)
        return Trace(
            tuple(f"{self.function_ids[i]}#{k}" for k, i in enumerate(idx)),
            tuple(f"{self.app_ids[i]}#{k}" for k, i in enumerate(idx)),
            self.counts[idx],
            self.duration_percentiles[idx],
            self.memory_gb[idx],
            f"{self.source} resampled to {n} (seed {seed})",
            dict(self.fallbacks),
        )


@dataclass(frozen=True, slots=True)
class Invocations:
    """Invocations sorted by (function, arrival): the simulator's input."""

    fid: npt.NDArray[np.int64]  # function index per invocation
    arrival: npt.NDArray[np.float64]  # seconds from trace start
    duration: npt.NDArray[np.float64]  # seconds
    n_functions: int
    horizon: float
    memory_gb: npt.NDArray[np.float64]  # [F]

    @property
    def size(self) -> int:
        return int(self.arrival.size)

    def starts(self) -> npt.NDArray[np.int64]:
        """Index of each function's first invocation ([F + 1], the last entry is ``size``)."""
        return np.searchsorted(self.fid, np.arange(self.n_functions + 1)).astype(np.int64)


#: How :func:`expand` places a minute's invocations inside the minute.
SPREADS = ("uniform", "phase")


def expand(trace: Trace, seed: int, spread: str = "uniform") -> Invocations:
    """Spread each minute's invocations inside the minute and draw their durations (seeded).

    ``spread="uniform"`` (the default): arrivals are the order statistics of uniform draws, generated
    already sorted from normalised exponential spacings (no sort of millions of values).
    ``spread="phase"``: every function gets one seeded phase ``φ`` in the minute and a minute with ``n``
    invocations places them at ``φ + j/n`` minutes (mod 1), ``j = 0..n-1``. Timer triggers, a large share
    of Azure's functions (Shahrad et al. §3.2, Fig. 2), fire at the same second of every period, so their
    idle times are whole periods; uniform spreading blurs each by up to ±1 minute, which is what the hybrid
    policy's 1-minute bins are meant to resolve. For functions invoked many times a minute both models
    give evenly spread arrivals. Durations are drawn by inverse transform from the function's percentile
    curve, linear between the published percentiles (same draws in both models).
    """
    if spread not in SPREADS:
        raise ValidationError("spread", f"expected one of {', '.join(SPREADS)}, got {spread!r}")
    rng = np.random.default_rng(seed)
    counts = trace.counts
    f_idx, m_idx = np.nonzero(counts)
    n = counts[f_idx, m_idx]
    total = int(n.sum())
    if total > MAX_INVOCATIONS:  # a resampled trace (the reader checks the files): refuse before allocating
        raise ValidationError(
            trace.source,
            f"{total:,} invocations: more than the simulator's limit of {MAX_INVOCATIONS:,} (it holds every "
            "invocation in memory); use fewer functions",
        )
    if total == 0:
        empty_f = np.zeros(0, dtype=np.int64)
        empty = np.zeros(0, dtype=np.float64)
        return Invocations(empty_f, empty, empty, trace.n_functions, trace.horizon, trace.memory_gb)
    group_of_point = np.repeat(np.arange(n.size), n)
    group_start_point = np.concatenate(([0], np.cumsum(n)[:-1]))
    gaps = rng.standard_exponential(total + n.size)  # drawn in both models: the same durations follow
    if spread == "uniform":
        # Exponential spacings: for a group of n points draw n + 1 gaps; the cumulative sums divided by the
        # total of all n + 1 are the sorted uniform order statistics.
        gap_offsets = group_start_point + np.arange(n.size)  # each group owns n + 1 consecutive gaps
        csum = np.cumsum(gaps)
        base = np.where(gap_offsets > 0, csum[gap_offsets - 1], 0.0)
        group_total = csum[gap_offsets + n] - base
        point_gap_index = np.arange(total) + group_of_point  # position of the gap ending at each point
        u = (csum[point_gap_index] - base[group_of_point]) / group_total[group_of_point]
    else:
        phase = np.random.default_rng([seed, 1]).random(trace.n_functions)[f_idx]
        # Sorted without a sort: φ + j/n stays below 1 for j < J = ceil(n (1 - φ)), so the r-th smallest
        # of (φ + j/n) mod 1 is j = (r + J) mod n (the wrapped ones, then the rest). Per-group values are
        # repeated rather than gathered, and both mods are one conditional subtraction (r + J < 2 n).
        ng = np.repeat(n, n)
        j = (
            np.arange(total)
            - np.repeat(group_start_point, n)
            + np.repeat(np.ceil(n * (1.0 - phase) - 1e-12).astype(np.int64), n)
        )
        j -= ng * (j >= ng)
        u = np.repeat(phase, n) + j / ng
        u -= u >= 1.0
    arrival = (m_idx[group_of_point] + u) * MINUTE
    fid = f_idx[group_of_point].astype(np.int64)
    # f_idx is sorted by function then minute (np.nonzero is row-major), so arrivals are sorted per function.
    duration = _draw_durations(trace.duration_percentiles, fid, rng.random(total))
    return Invocations(fid, arrival, duration, trace.n_functions, trace.horizon, trace.memory_gb)


def _draw_durations(
    pct: npt.NDArray[np.float64], fid: npt.NDArray[np.int64], u: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    probs = np.asarray(RUN_PERCENTILES, dtype=np.float64) / 100.0
    seg = np.clip(np.searchsorted(probs, u, side="right") - 1, 0, probs.size - 2)
    lo_p, hi_p = probs[seg], probs[seg + 1]
    lo_v, hi_v = pct[fid, seg], pct[fid, seg + 1]
    w = (u - lo_p) / (hi_p - lo_p)
    out: npt.NDArray[np.float64] = lo_v + w * (hi_v - lo_v)
    return out


# --------------------------------------------------------------------------------------------- reading


def available_sizes(directory: Path) -> list[int]:
    """The N of every ``N_inv.csv`` in ``directory``, sorted."""
    if not directory.is_dir():
        raise ValidationError(str(directory), "trace directory not found")
    sizes = []
    for p in directory.iterdir():
        m = _FILE_SET.match(p.name)
        if m:
            sizes.append(int(m.group(1)))
    return sorted(sizes)


def read_trace(directory: Path, size: int) -> Trace:
    """Read ``{size}_inv.csv``, ``{size}_run.csv`` and ``{size}_mem.csv`` from ``directory`` and join them."""
    inv_path = directory / f"{size}_inv.csv"
    run_path = directory / f"{size}_run.csv"
    mem_path = directory / f"{size}_mem.csv"
    f_ids, a_ids, counts = _read_inv(inv_path)
    run = _read_keyed(run_path, ("HashFunction", "HashApp"), RUN_COLUMNS, 1e-3, (MAX_DURATION_MS, "ms"))
    mem = _read_keyed(mem_path, ("HashApp",), (MEM_COLUMN,), 1.0 / 1024.0, (MAX_MEMORY_MB, "MB"))
    fallbacks = {"functions_without_run_row": 0, "apps_without_mem_row": 0}

    median_pct = np.median(np.array(list(run.values())), axis=0) if run else None
    pct = np.empty((len(f_ids), len(RUN_COLUMNS)))
    for i, key in enumerate(zip(f_ids, a_ids, strict=True)):
        row = run.get(key)
        if row is None:
            if median_pct is None:
                raise ValidationError(str(run_path), "no duration rows at all: cannot fall back to a median")
            fallbacks["functions_without_run_row"] += 1
            row = median_pct
        pct[i] = row
    for i in range(len(f_ids)):
        # Percentiles must be non-decreasing for inverse-transform sampling; published rows are, but a
        # rounded row can dip by a unit: make the curve monotone instead of rejecting the trace.
        pct[i] = np.maximum.accumulate(pct[i])

    median_mem = float(np.median([v[0] for v in mem.values()])) if mem else None
    memory = np.empty(len(f_ids))
    for i, app in enumerate(a_ids):
        got = mem.get((app,))
        if got is None:
            if median_mem is None:
                raise ValidationError(str(mem_path), "no memory rows at all: cannot fall back to a median")
            fallbacks["apps_without_mem_row"] += 1
            memory[i] = median_mem
        else:
            memory[i] = got[0]
    return Trace(tuple(f_ids), tuple(a_ids), counts, pct, memory, str(directory / f"{size}_*.csv"), fallbacks)


def _open_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    if not path.is_file():
        raise ValidationError(str(path), "file not found (a trace directory holds N_inv.csv, N_run.csv, N_mem.csv)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(str(path), f"cannot read: {exc}") from None
    # Line numbers are physical lines (where a quoted field spans lines, the line the record starts on), so
    # an editor's "go to line" lands on the row at fault.
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[int, list[str]]] = []
    header: list[str] | None = None
    while True:
        line_no = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise ValidationError(f"{path}:{line_no}", f"malformed CSV: {exc}") from None
        if not row or all(not c.strip() for c in row):
            continue
        if header is None:
            header = [c.strip() for c in row]
            continue
        if len(row) != len(header):
            raise ValidationError(
                f"{path}:{line_no}",
                f"expected {len(header)} fields as in the header, found {len(row)}"
                + (" (truncated line?)" if len(row) < len(header) else ""),
            )
        rows.append((line_no, row))
    if header is None:
        raise ValidationError(str(path), "empty file: expected a header line")
    return header, rows


def _column(path: Path, header: Sequence[str], name: str) -> int:
    try:
        return header.index(name)
    except ValueError:
        raise ValidationError(f"{path}:1", f"missing column {name!r} in the header") from None


def _number(path: Path, line_no: int, column: str, text: str, limit: float, unit: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValidationError(
            f"{path}:{line_no}", f"column {column!r}: expected a number, found {_shown(text)}"
        ) from None
    if not np.isfinite(value) or value < 0:
        raise ValidationError(f"{path}:{line_no}", f"column {column!r}: expected a number >= 0, found {_shown(text)}")
    if value > limit:
        raise ValidationError(
            f"{path}:{line_no}", f"column {column!r}: {_shown(text)} is above the limit of {limit:,.0f} {unit}"
        )
    return value


def _shown(text: str) -> str:
    """A cell quoted for a message, cut to 40 characters (a corrupt cell can be megabytes)."""
    return repr(text) if len(text) <= 40 else repr(text[:40]) + f"... ({len(text)} characters)"


def _count(path: Path, line_no: int, column: str, text: str) -> int:
    """One minute's invocations: a whole number in ``0..MAX_PER_MINUTE`` (the slow path, per cell)."""
    digits = text.strip()
    if not (digits.isascii() and digits.isdigit()):
        raise ValidationError(
            f"{path}:{line_no}",
            f"column {column!r}: expected a whole number of invocations >= 0, found {_shown(text)}",
        )
    significant = digits.lstrip("0") or "0"  # int() refuses strings of over 4,300 digits: count them first
    if len(significant) > len(str(MAX_PER_MINUTE)) or int(significant) > MAX_PER_MINUTE:
        raise ValidationError(
            f"{path}:{line_no}",
            f"column {column!r}: {_shown(text)} invocations in one minute is above the limit of "
            f"{MAX_PER_MINUTE:,} (the simulator would need memory for each one)",
        )
    return int(significant)


def _read_inv(path: Path) -> tuple[list[str], list[str], npt.NDArray[np.int64]]:
    header, rows = _open_rows(path)
    f_col = _column(path, header, "HashFunction")
    a_col = _column(path, header, "HashApp")
    minute_cols = [i for i, name in enumerate(header) if _MINUTE_HEADER.match(name)]
    if not minute_cols:
        raise ValidationError(f"{path}:1", "no minute columns (expected minute_1..minute_N or 1..N)")
    f_ids: list[str] = []
    a_ids: list[str] = []
    counts = np.empty((len(rows), len(minute_cols)), dtype=np.int64)
    seen: dict[tuple[str, str], int] = {}
    total = 0
    for r, (line_no, row) in enumerate(rows):
        key = (row[f_col].strip(), row[a_col].strip())
        if not key[0]:
            raise ValidationError(f"{path}:{line_no}", "column 'HashFunction': expected an id, found an empty field")
        if key in seen:
            raise ValidationError(f"{path}:{line_no}", f"function {key[0][:16]}... repeats line {seen[key]}")
        seen[key] = line_no
        f_ids.append(key[0])
        a_ids.append(key[1])
        values = [row[i] for i in minute_cols]
        try:  # the fast path; NumPy takes what int() takes ("+5", " 7 "), the slow path says what is wrong
            arr = np.array(values, dtype=np.int64)
        except (ValueError, OverflowError):
            arr = np.array([_count(path, line_no, header[i], v) for i, v in zip(minute_cols, values, strict=True)])
        if (arr < 0).any():
            i = minute_cols[int(np.argmax(arr < 0))]
            raise ValidationError(
                f"{path}:{line_no}", f"column {header[i]!r}: expected invocations >= 0, found {_shown(row[i])}"
            )
        if (arr > MAX_PER_MINUTE).any():
            i = minute_cols[int(np.argmax(arr > MAX_PER_MINUTE))]
            _count(path, line_no, header[i], row[i])  # raises: above the limit
        row_total = int(arr.sum())
        if total + row_total > MAX_INVOCATIONS:
            over = int(np.searchsorted(np.cumsum(arr) + total, MAX_INVOCATIONS, side="right"))
            raise ValidationError(
                f"{path}:{line_no}",
                f"column {header[minute_cols[over]]!r}: the trace exceeds {MAX_INVOCATIONS:,} invocations here "
                "(the simulator holds every invocation in memory); use fewer functions or a shorter trace",
            )
        total += row_total
        counts[r] = arr
    return f_ids, a_ids, counts


def _read_keyed(
    path: Path, key_cols: tuple[str, ...], value_cols: tuple[str, ...], scale: float, limit: tuple[float, str]
) -> dict[tuple[str, ...], npt.NDArray[np.float64]]:
    header, rows = _open_rows(path)
    k_idx = [_column(path, header, c) for c in key_cols]
    v_idx = [_column(path, header, c) for c in value_cols]
    out: dict[tuple[str, ...], npt.NDArray[np.float64]] = {}
    for line_no, row in rows:
        key = tuple(row[i].strip() for i in k_idx)
        vals = np.array([_number(path, line_no, header[i], row[i], *limit) for i in v_idx]) * scale
        out.setdefault(key, vals)  # the first row of a duplicated key wins (the samples have none)
    return out
