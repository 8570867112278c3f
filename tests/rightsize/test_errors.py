"""Bad input and failing Prometheus chunks: named rows, real errors, exit codes and the PARTIAL DATA banner."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.rightsize.conftest import write_csv
from tests.rightsize.test_prometheus import PROM_ARGS, FakePrometheus, failing_memory, fake, healthy

__all__ = ["fake"]  # the fixture, used by name below


def _with_nan_container(path: Path) -> Path:
    write_csv(path)
    with path.open("a", newline="") as fh:
        out = csv.writer(fh)
        for i in range(200):
            out.writerow([1_764_288_000 - 60 * i, "shop", "ghost-0", "broken", "NaN", "NaN", "StatefulSet/ghost", 0,
                          "", "", "", ""])  # fmt: skip
    return path


@pytest.mark.parametrize("strategy", ["vpa", "simple", "simple-hist"])
def test_all_nan_container_is_named_with_a_reason(tmp_path: Path, strategy: str) -> None:
    path = _with_nan_container(tmp_path / "s.csv")
    r = run_cli(["rightsize", "--samples", str(path), "--history", "3d", "--strategy", strategy, "--json"])
    assert r.returncode == 0, r.stderr
    ghost = [c for c in json.loads(r.stdout)["containers"] if c["container"] == "broken"]
    assert len(ghost) == 1
    assert ghost[0]["recommended"]["requests"] == {"cpu": None, "memory": None}
    assert "no" in ghost[0]["reason"].lower() and ("NaN" in ghost[0]["reason"] or "No data" in ghost[0]["reason"])
    table = run_cli(["rightsize", "--samples", str(path), "--history", "3d", "--strategy", strategy])
    assert table.returncode == 0 and "broken" in table.stdout and "note" in table.stdout
    out = tmp_path / "vpas"
    applied = run_cli(["rightsize", "--samples", str(path), "--history", "3d", "--strategy", strategy,
                       "--apply", str(out)])  # fmt: skip
    assert applied.returncode == 0, applied.stderr
    assert "shop/StatefulSet/ghost/broken: no recommendation" in applied.stderr
    assert not list(out.glob("shop/statefulset-ghost.*"))  # nothing to write for it


def test_zero_chunking_flags_are_usage_errors(samples_csv: Path) -> None:
    url = "http://127.0.0.1:9"  # never contacted: the flags are checked first
    for flag, word in (("--pods-per-query", "--pods-per-query"), ("--concurrency", "--concurrency"),
                       ("--timeout", "--timeout")):  # fmt: skip
        r = run_cli(["rightsize", "--prometheus", url, *PROM_ARGS, flag, "0"])
        assert r.returncode == 2, (flag, r.stderr)
        assert word in r.stderr and ("at least 1" in r.stderr or "positive" in r.stderr)
        assert "Operation now in progress" not in r.stderr


def test_samples_directory_is_a_clear_error(tmp_path: Path) -> None:
    r = run_cli(["rightsize", "--samples", str(tmp_path)])
    assert r.returncode == 2 and "is a directory" in r.stderr and str(tmp_path) in r.stderr


def _rejecting(path: str, q: dict[str, str]) -> tuple[int, Any]:
    if path.endswith(("/query_range", "/query")):
        return 422, {"status": "error", "errorType": "execution",
                     "error": "query processing would load too many samples into memory"}  # fmt: skip
    return healthy(path, q)


@pytest.mark.parametrize("strategy", ["vpa", "simple"])
def test_allow_partial_with_every_chunk_failed_shows_the_real_error(
    fake: Callable[..., FakePrometheus], strategy: str
) -> None:
    f = fake(_rejecting)
    r = run_cli(["rightsize", "--prometheus", f.url, *PROM_ARGS, "--allow-partial", "--strategy", strategy])
    assert r.returncode == 1, r.stderr
    assert "HTTP 422" in r.stderr and "too many samples" in r.stderr
    assert "all series empty" not in r.stderr


def test_partial_banner_on_stdout_in_table_format(fake: Callable[..., FakePrometheus], tmp_path: Path) -> None:
    f = fake(failing_memory)
    # The fake serves samples through range queries only: the server path.
    args = ["rightsize", "--prometheus", f.url, "--end", "1764288000", "--history", "3d", "--allow-partial",
            "--compute", "server"]  # fmt: skip
    r = run_cli(args)
    assert r.returncode == 0, r.stderr
    assert "PARTIAL DATA" in r.stdout
    out = tmp_path / "report.txt"
    assert run_cli([*args, "--output", str(out)]).returncode == 0
    assert "PARTIAL DATA" in out.read_text()
