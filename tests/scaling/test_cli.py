"""``zerowatt simulate``: JSON shape, table, plot, and exit codes for bad input (in-process: nothing there needs
a process of its own)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import invoke_cli, run_cli

KEYS = {
    "invocations",
    "cold_starts",
    "cold_start_share",
    "instance_seconds",
    "idle_instance_seconds",
    "idle_memory_gb_seconds",
    "energy_joules",
    "facility_energy_joules",
    "latency_added_ms",
}


def test_json_has_the_documented_shape(azure_dir: Path, tmp_path: Path) -> None:
    png = tmp_path / "cmp.png"
    result = run_cli(
        [
            "simulate",
            "--trace",
            str(azure_dir),
            "--functions",
            "10",
            "--policy",
            "kpa,keepalive,hybrid,energy",
            "--cold-start",
            "0.0003",
            "--seed",
            "3",
            "--json",
            "--plot",
            str(png),
        ]
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data["policies"]) == {"kpa", "keepalive", "hybrid", "energy"}
    for name, p in data["policies"].items():
        assert set(p) >= KEYS, name
        assert set(p["latency_added_ms"]) == {"p50", "p99", "p999"}
        assert p["invocations"] == 28432
    assert data["trace"]["attribution"].startswith("Trace: Azure Public Dataset, Microsoft")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = run_cli(["simulate", "--trace", str(azure_dir), "--functions", "10", "--policy", "energy", "--seed", "3",
                     "--json"])  # fmt: skip
    assert json.loads(again.stdout)["policies"]["energy"] == data["policies"]["energy"]


def test_table_output_credits_the_dataset(azure_dir: Path) -> None:
    result = run_cli(["simulate", "--trace", str(azure_dir), "--functions", "5", "--policy", "keepalive"])
    assert result.returncode == 0, result.stderr
    assert "keepalive" in result.stdout and "Azure Public Dataset, Microsoft" in result.stdout


def test_more_functions_than_the_largest_file_resamples(azure_dir: Path) -> None:
    r = run_cli(["simulate", "--trace", str(azure_dir), "--functions", "230", "--policy", "energy", "--json"])
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["trace"]["functions"] == 230
    assert "resampled the 200-function files to 230 functions" in r.stderr


def test_bad_input_exits_2_with_a_clear_message(azure_dir: Path, tmp_path: Path) -> None:
    r = invoke_cli(["simulate", "--trace", str(tmp_path / "nope"), "--policy", "kpa"])
    assert r.returncode == 2 and "trace directory not found" in r.stderr
    r = invoke_cli(["simulate", "--trace", str(azure_dir), "--policy", "kpa,magic"])
    assert r.returncode == 2 and "unknown policy 'magic'" in r.stderr
    r = invoke_cli(["simulate", "--trace", str(azure_dir), "--cold-start", "-1"])
    assert r.returncode == 2 and "--cold-start" in r.stderr
    for kind in ("inv", "run", "mem"):
        shutil.copy(azure_dir / f"10_{kind}.csv", tmp_path / f"10_{kind}.csv")
    inv = tmp_path / "10_inv.csv"
    lines = inv.read_text().splitlines()
    inv.write_text("\n".join([*lines[:6], lines[6][:500]]) + "\n")  # truncated last line
    r = invoke_cli(["simulate", "--trace", str(tmp_path), "--policy", "keepalive", "--json"])
    assert r.returncode == 2
    assert "10_inv.csv:7" in r.stderr and "truncated" in r.stderr
    assert r.stdout == ""


def test_pareto_sweep_json_and_plot(azure_dir: Path, tmp_path: Path) -> None:
    png = tmp_path / "pareto.png"
    r = run_cli(["simulate", "--trace", str(azure_dir), "--functions", "10", "--policy", "hybrid",
                 "--cold-start", "1", "--arrivals", "phase", "--pareto", str(png), "--json"])  # fmt: skip
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["arrivals"] == "phase"
    ka = data["pareto"]["keepalive"]
    assert [q["param_s"] for q in ka][:3] == [60.0, 120.0, 300.0]
    mem = [q["memory_norm"] for q in ka]
    assert mem == sorted(mem)  # idle memory grows with the window
    assert [q["param_s"] for q in data["pareto"]["hybrid"]] == [3600.0, 7200.0, 10800.0, 14400.0]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = invoke_cli(["simulate", "--trace", str(azure_dir), "--functions", "10", "--arrivals", "poisson"])
    assert bad.returncode == 2 and "--arrivals" in bad.stderr
