"""Azure trace reader: the samples load, joins fall back visibly, and bad files name file and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from zerowatt.errors import ValidationError
from zerowatt.scaling.sim.trace import MINUTE, Trace, available_sizes, expand, read_trace


def test_reads_the_samples(azure_dir: Path) -> None:
    assert available_sizes(azure_dir) == [10, 100, 200]
    tr = read_trace(azure_dir, 10)
    assert tr.n_functions == 10 and tr.minutes == 1440
    assert tr.invocations == 28432
    assert tr.fallbacks == {"functions_without_run_row": 0, "apps_without_mem_row": 0}
    assert (np.diff(tr.duration_percentiles, axis=1) >= 0).all()
    assert (tr.memory_gb > 0).all()


@pytest.fixture
def trace_copy(tmp_path: Path, azure_dir: Path) -> Path:
    for kind in ("inv", "run", "mem"):
        shutil.copy(azure_dir / f"10_{kind}.csv", tmp_path / f"10_{kind}.csv")
    return tmp_path


def rewrite_line(path: Path, line_no: int, edit: object) -> None:
    lines = path.read_text().splitlines()
    lines[line_no - 1] = edit(lines[line_no - 1])  # type: ignore[operator]
    path.write_text("\n".join(lines) + "\n")


def test_truncated_line_names_file_and_line(trace_copy: Path) -> None:
    rewrite_line(trace_copy / "10_inv.csv", 4, lambda s: ",".join(s.split(",")[:100]))
    with pytest.raises(ValidationError, match=r"10_inv\.csv:4: expected 1443 fields .* found 100 \(truncated"):
        read_trace(trace_copy, 10)


def test_non_numeric_and_negative_counts(trace_copy: Path) -> None:
    path = trace_copy / "10_inv.csv"
    original = path.read_text()
    rewrite_line(path, 3, lambda s: s.rsplit(",", 1)[0] + ",lots")
    with pytest.raises(ValidationError, match=r"10_inv\.csv:3: column 'minute_1440': expected a whole number"):
        read_trace(trace_copy, 10)
    path.write_text(original)
    rewrite_line(path, 2, lambda s: s.rsplit(",", 1)[0] + ",-3")
    with pytest.raises(ValidationError, match=r"10_inv\.csv:2: column 'minute_1440': expected invocations >= 0"):
        read_trace(trace_copy, 10)


def test_bad_duration_and_memory_values(trace_copy: Path) -> None:
    rewrite_line(trace_copy / "10_run.csv", 5, lambda s: s.rsplit(",", 1)[0] + ",slow")
    with pytest.raises(ValidationError, match=r"10_run\.csv:5: column 'percentile_Average_100': expected a number"):
        read_trace(trace_copy, 10)
    rewrite_line(trace_copy / "10_run.csv", 5, lambda s: s.rsplit(",", 1)[0] + ",100")
    rewrite_line(trace_copy / "10_mem.csv", 6, lambda s: ",".join([*s.split(",")[:3], "-5", *s.split(",")[4:]]))
    with pytest.raises(ValidationError, match=r"10_mem\.csv:6: column 'AverageAllocatedMb': expected a number >= 0"):
        read_trace(trace_copy, 10)


def test_missing_file_and_missing_column(trace_copy: Path) -> None:
    (trace_copy / "10_mem.csv").unlink()
    with pytest.raises(ValidationError, match=r"10_mem\.csv: file not found"):
        read_trace(trace_copy, 10)
    (trace_copy / "10_mem.csv").write_text("HashApp,Other\nx,1\n")
    with pytest.raises(ValidationError, match=r"10_mem\.csv:1: missing column 'AverageAllocatedMb'"):
        read_trace(trace_copy, 10)
    (trace_copy / "10_mem.csv").write_text("")
    with pytest.raises(ValidationError, match=r"10_mem\.csv: empty file"):
        read_trace(trace_copy, 10)


def test_join_falls_back_to_medians_and_counts_it(trace_copy: Path) -> None:
    for kind in ("run", "mem"):
        path = trace_copy / f"10_{kind}.csv"
        lines = path.read_text().splitlines()
        path.write_text("\n".join(lines[:1] + lines[2:]) + "\n")  # drop the first function's row
    tr = read_trace(trace_copy, 10)
    assert tr.fallbacks == {"functions_without_run_row": 1, "apps_without_mem_row": 1}
    others = tr.duration_percentiles[1:]
    assert np.allclose(tr.duration_percentiles[0], np.maximum.accumulate(np.median(others, axis=0)))
    assert tr.memory_gb[0] == pytest.approx(np.median(tr.memory_gb[1:]))


def test_expand_is_seeded_sorted_and_inside_each_minute(azure_dir: Path) -> None:
    tr = read_trace(azure_dir, 10)
    a = expand(tr, 7)
    b = expand(tr, 7)
    c = expand(tr, 8)
    assert np.array_equal(a.arrival, b.arrival) and np.array_equal(a.duration, b.duration)
    assert not np.array_equal(a.arrival, c.arrival)
    assert a.size == tr.invocations
    assert (np.diff(a.fid) >= 0).all()
    same = a.fid[1:] == a.fid[:-1]
    assert (np.diff(a.arrival)[same] >= 0).all()
    minute = np.floor(a.arrival / MINUTE).astype(int)
    per_minute = np.zeros_like(tr.counts)
    np.add.at(per_minute, (a.fid, minute), 1)
    assert np.array_equal(per_minute, tr.counts)
    lo = tr.duration_percentiles[a.fid, 0]
    hi = tr.duration_percentiles[a.fid, -1]
    assert ((a.duration >= lo - 1e-12) & (a.duration <= hi + 1e-12)).all()
    # The median draw lands near the published median (inverse transform between percentiles).
    f0 = a.fid == 0
    assert np.median(a.duration[f0]) == pytest.approx(tr.duration_percentiles[0, 3], rel=0.2)


def test_resample_and_take(azure_dir: Path) -> None:
    tr = read_trace(azure_dir, 10)
    big = tr.resample(25, seed=3)
    assert big.n_functions == 25 and len(set(big.function_ids)) == 25
    assert np.array_equal(big.counts, tr.resample(25, seed=3).counts)
    assert tr.take(4).n_functions == 4


def test_original_azure_column_layout_is_read_by_name(tmp_path: Path) -> None:
    # The Azure Public Dataset's own files: owner first, a Trigger column, minutes named 1..N.
    (tmp_path / "2_inv.csv").write_text(
        "HashOwner,HashApp,HashFunction,Trigger,1,2,3\no1,a1,f1,http,0,2,1\no2,a2,f2,timer,1,0,0\n"
    )
    (tmp_path / "2_run.csv").write_text(
        "HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum,percentile_Average_0,percentile_Average_1,"
        "percentile_Average_25,percentile_Average_50,percentile_Average_75,percentile_Average_99,"
        "percentile_Average_100\no1,a1,f1,100,3,10,500,10,10,50,100,200,500,500\n"
    )
    (tmp_path / "2_mem.csv").write_text("HashOwner,HashApp,SampleCount,AverageAllocatedMb\no1,a1,5,256\n")
    tr = read_trace(tmp_path, 2)
    assert tr.function_ids == ("f1", "f2")
    assert tr.counts.tolist() == [[0, 2, 1], [1, 0, 0]]
    assert tr.duration_percentiles[0, 3] == pytest.approx(0.1)  # ms -> s
    assert tr.memory_gb[0] == pytest.approx(0.25)
    assert tr.fallbacks == {"functions_without_run_row": 1, "apps_without_mem_row": 1}
    inv = expand(tr, 1)
    assert inv.size == 4 and inv.horizon == 180.0


def test_phase_spreading_keeps_each_function_on_one_offset() -> None:
    # One timer-like function (one invocation a minute, every 5 minutes), one with 3 invocations a minute.
    counts = np.zeros((2, 30), dtype=np.int64)
    counts[0, ::5] = 1
    counts[1, 10:12] = 3
    pct = np.tile(np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]), (2, 1))
    tr = Trace(("f", "g"), ("a", "b"), counts, pct, np.ones(2))
    inv = expand(tr, 3, spread="phase")
    t0 = inv.arrival[inv.fid == 0]
    assert np.allclose(np.diff(t0), 300.0)  # idle structure kept: exactly the 5-minute period
    t1 = inv.arrival[inv.fid == 1]
    assert np.allclose(np.diff(t1)[[0, 1, 3, 4]], 20.0)  # n invocations of a minute 60/n s apart
    assert (np.floor(t1 / MINUTE) == [10, 10, 10, 11, 11, 11]).all()
    again = expand(tr, 3, spread="phase")
    assert np.array_equal(inv.arrival, again.arrival)
    assert not np.array_equal(inv.arrival, expand(tr, 4, spread="phase").arrival)
    # Same duration draws as the uniform model: only the placement differs.
    assert np.array_equal(inv.duration, expand(tr, 3).duration)
    with pytest.raises(ValidationError, match="spread"):
        expand(tr, 3, spread="poisson")
