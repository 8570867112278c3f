"""The issue's bad inputs through the real CLI (``python -m zerowatt``): exit 2, ``file:line`` on stderr, no traceback.

Before the fix ``simulate`` died in NumPy's allocator (``_ArrayMemoryError``: 7 TiB for a minute value of
999999999999), ``rightsize`` with ``cpu=inf`` or ``memory=1e400`` died with a ``ValueError`` from
``np.bincount``, and a bad timestamp on line 7 was reported on line 2.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import run_cli, shared_path
from tests.scaling.conftest import AZURE, AZURE_RELATIVE, AZURE_WHAT


def assert_clean_usage_error(args: list[str], where: str) -> str:
    proc = run_cli(args)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, proc.stderr
    assert where in proc.stderr, proc.stderr
    assert proc.stdout == ""
    return proc.stderr


def test_simulate_a_huge_minute_value_exits_2_naming_line_and_column(tmp_path: Path) -> None:
    shared_path(AZURE_RELATIVE, AZURE_WHAT)
    for kind in ("inv", "run", "mem"):
        shutil.copy(AZURE / f"10_{kind}.csv", tmp_path / f"10_{kind}.csv")
    inv = tmp_path / "10_inv.csv"
    lines = inv.read_text().splitlines()
    cells = lines[3].split(",")
    cells[10] = "999999999999"
    lines[3] = ",".join(cells)
    inv.write_text("\n".join(lines) + "\n")
    header = lines[0].split(",")
    err = assert_clean_usage_error(["simulate", "--trace", str(tmp_path), "--json"], f"{inv}:4: column")
    assert repr(header[10]) in err and "10,000,000" in err


def test_simulate_flags_out_of_range_exit_2() -> None:
    trace = shared_path(AZURE_RELATIVE, AZURE_WHAT)  # --functions is checked against the sizes it holds
    for flag, value in (("--seed", "-1"), ("--cold-start", "nan"), ("--warmup", "inf"), ("--functions", "10000000")):
        assert_clean_usage_error(["simulate", "--trace", str(trace), flag, value], flag)


SAMPLES_HEADER = "timestamp,namespace,pod,container,cpu,memory\n"
GOOD_ROWS = "".join(f"{1700000000 + 60 * k},ns,web-1,app,0.5,1e8\n" for k in range(5))


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("1700000400,ns,web-1,app,inf,1e8", "column cpu: expected a number of cores up to 1e6, found inf"),
        ("1700000400,ns,web-1,app,0.5,1e400", "column memory: expected a number of bytes up to 2^60, found inf"),
        ("yesterday,ns,web-1,app,0.5,1e8", "column timestamp: 'yesterday' is not RFC 3339 or Unix seconds"),
    ],
)
def test_rightsize_bad_samples_exit_2_naming_line_7(tmp_path: Path, row: str, message: str) -> None:
    path = tmp_path / "samples.csv"
    path.write_text(SAMPLES_HEADER + GOOD_ROWS + row + "\n")
    err = assert_clean_usage_error(["rightsize", "--samples", str(path), "--json"], f"{path}:7: ")
    assert message in err


def test_rightsize_line_numbers_count_blank_lines_and_quoted_breaks(tmp_path: Path) -> None:
    path = tmp_path / "samples.csv"
    quoted_break = '1700000301,ns,"web\n1",app,0.5,1e8\n'
    text = SAMPLES_HEADER + "\n" + GOOD_ROWS + quoted_break + "\n" + "soon,ns,web-1,app,0.5,1e8\n"
    path.write_text(text)
    assert_clean_usage_error(["rightsize", "--samples", str(path)], f"{path}:11: column timestamp: 'soon'")
