"""``zerowatt rightsize`` from sample files: every output format, --apply, and exit codes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import yaml

from tests.conftest import SHIPPED_ENERGY_DATA, invoke_cli, run_cli
from zerowatt.energy.capacity import CCF_WATTS_PER_GB, CCF_WATTS_PER_VCPU, ccf_pricing
from zerowatt.units import GIB


def rs(*args: str) -> tuple[int, str, str]:
    """``zerowatt rightsize ARGS`` in-process: it reads files and prints, nothing a process of its own shows
    (the first test runs the real entry point in a subprocess once)."""
    r = invoke_cli(["rightsize", *args])
    return r.returncode, r.stdout, r.stderr


def test_json_lists_targets_bounds_current_and_totals(samples_csv: Path) -> None:
    r = run_cli(["rightsize", "--samples", str(samples_csv), "--json", "--power-model", "ccf"])
    code, out, err = r.returncode, r.stdout, r.stderr
    assert code == 0, err
    doc = json.loads(out)
    assert doc["strategy"] == "vpa"
    for c in doc["containers"]:
        assert {"namespace", "workload", "container", "target", "lower_bound", "upper_bound", "current"} <= c.keys()
        for k in ("target", "lower_bound", "upper_bound"):
            assert isinstance(c[k]["cpu"], float) and isinstance(c[k]["memory"], int)
    cluster = doc["totals"]["cluster"]
    freed_cpu = sum(c["freed"]["cpu"] for c in doc["containers"])
    freed_mem = sum(c["freed"]["memory"] for c in doc["containers"])
    assert cluster["cpu_cores"] > 0 and abs(cluster["cpu_cores"] - freed_cpu) < 1e-5
    assert abs(cluster["memory_bytes"] - freed_mem) <= len(doc["containers"])
    expected_w = cluster["cpu_cores"] * CCF_WATTS_PER_VCPU + cluster["memory_bytes"] / 1e9 * CCF_WATTS_PER_GB
    assert abs(cluster["watts"] - expected_w) < 0.01
    assert set(doc["totals"]["namespaces"]) == {"shop", "batch"}


def test_simple_strategy_and_options(samples_csv: Path) -> None:
    code, out, err = rs("--samples", str(samples_csv), "--strategy", "simple", "--format", "json",
                        "--cpu-percentile", "99", "--memory-margin", "0.2")  # fmt: skip
    assert code == 0, err
    for c in json.loads(out)["containers"]:
        assert c["recommended"]["limits"]["cpu"] is None
        assert c["recommended"]["limits"]["memory"] == c["recommended"]["requests"]["memory"]


def test_table_yaml_csv_html(samples_csv: Path, tmp_path: Path) -> None:
    code, out, err = rs("--samples", str(samples_csv))
    assert code == 0, err
    assert "Deployment/w" in out and "postgres" in out and "cluster" in out
    code, out, _ = rs("--samples", str(samples_csv), "--format", "yaml")
    assert code == 0 and yaml.safe_load(out)["containers"][0]["namespace"] in ("shop", "batch")
    code, out, _ = rs("--samples", str(samples_csv), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 3 and rows[0]["target_cpu"]
    html_file = tmp_path / "r.html"
    code, _, _ = rs("--samples", str(samples_csv), "--format", "html", "--output", str(html_file))
    text = html_file.read_text()
    assert code == 0 and text.startswith("<!DOCTYPE html>") and "Deployment/web" in text
    assert "<script" not in text and "http" not in text.split("<body>", 1)[1]  # self-contained


def test_apply_writes_vpas_and_patches(samples_csv: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "vpas"
    code, _, err = rs("--samples", str(samples_csv), "--json", "--apply", str(out_dir))
    assert code == 0, err
    files = sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*.yaml"))
    assert files == ["batch/deployment-worker.vpa.yaml", "shop/deployment-web.vpa.yaml", "shop/statefulset-db.vpa.yaml"]
    vpa = yaml.safe_load((out_dir / "shop/statefulset-db.vpa.yaml").read_text())
    assert vpa["kind"] == "VerticalPodAutoscaler" and vpa["spec"]["updatePolicy"]["updateMode"] == "Off"
    assert vpa["spec"]["targetRef"] == {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db"}
    pol = vpa["spec"]["resourcePolicy"]["containerPolicies"][0]
    assert pol["containerName"] == "postgres" and pol["minAllowed"]["cpu"].endswith("m")

    patch_dir = tmp_path / "patches"
    code, _, err = rs("--samples", str(samples_csv), "--json", "--apply", str(patch_dir), "--apply-as", "patch")
    assert code == 0, err
    patch = yaml.safe_load((patch_dir / "shop/deployment-web.patch.yaml").read_text())
    (container,) = patch["spec"]["template"]["spec"]["containers"]
    assert container["name"] == "app" and container["resources"]["requests"]["memory"].endswith("Mi")
    assert container["resources"]["limits"]["memory"].endswith("Mi")  # kept proportional to today's limit

    dry = tmp_path / "dry"
    code, _, err = rs("--samples", str(samples_csv), "--json", "--apply", str(dry), "--dry-run")
    assert code == 0 and not dry.exists()
    assert "VerticalPodAutoscaler" in err and "would write 3 file(s)" in err


def test_bad_usage_exits_2(samples_csv: Path, tmp_path: Path) -> None:
    assert rs()[0] == 2
    assert rs("--samples", str(samples_csv), "--prometheus", "http://x")[0] == 2
    code, _, err = rs("--samples", str(samples_csv), "--history", "two weeks")
    assert code == 2 and "--history" in err
    code, _, err = rs("--samples", str(samples_csv), "--cpu-percentile", "250")
    assert code == 2 and "--cpu-percentile" in err
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,namespace,pod,container,cpu,memory\n1,a,b,c,oops,1\n")
    code, out, err = rs("--samples", str(bad), "--json")
    assert code == 2 and out == "" and "bad.csv:2: column cpu: 'oops' is not a number" in err


def test_power_defaults_derive_from_ccf_data() -> None:
    # The shipped table (tests/energy/test_model.py checks it is what the CCF data derives).
    with (SHIPPED_ENERGY_DATA / "ccf_coefficients.csv").open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["provider"] == "aws"]
    mins = sum(float(r["min_watts_per_vcpu"]) for r in rows) / len(rows)
    maxs = sum(float(r["max_watts_per_vcpu"]) for r in rows) / len(rows)
    assert abs((mins + maxs) / 2 - CCF_WATTS_PER_VCPU) < 0.001
    assert ccf_pricing().it_watts(2.0, 10e9) == 2 * CCF_WATTS_PER_VCPU + 10 * 0.392
    assert GIB == 1024**3


def test_apply_omits_unbounded_upper_bound() -> None:
    import yaml as _yaml

    from zerowatt.rightsize.accumulator import UsageAccumulator
    from zerowatt.rightsize.apply import render_objects

    acc = UsageAccumulator(1_764_288_000.0, 86400.0)
    sid = acc.series_id("ns", "web-1", "app", "Deployment/web")
    acc.add_samples([sid], [1_764_288_000.0], cpu=[0.5], memory=[4e8])  # one sample: no confidence yet
    files, notes = render_objects(acc.recommend(), "vpa")
    pol = _yaml.safe_load(files[0][1])["spec"]["resourcePolicy"]["containerPolicies"][0]
    assert pol["maxAllowed"] == {} and pol["minAllowed"]["cpu"] == "25m"
    assert notes == []
    pods = UsageAccumulator(1_764_288_000.0, 86400.0)
    pid = pods.series_id("ns", "lonely", "app")
    pods.add_samples([pid], [1_764_288_000.0], cpu=[0.5])
    files, notes = render_objects(pods.recommend(), "patch")
    assert files == [] and "no workload known" in notes[0]


XEON_8180 = "Intel(R) Xeon(R) Platinum 8180 CPU @ 2.50GHz"


def _freed(doc: dict[str, object]) -> tuple[float, float]:
    cluster = doc["totals"]["cluster"]  # type: ignore[index]
    return cluster["cpu_cores"], cluster["memory_bytes"]


def test_ccf_power_with_pue_and_carbon_in_the_totals(samples_csv: Path) -> None:
    code, out, err = rs("--samples", str(samples_csv), "--json", "--power-model", "ccf", "--pue", "1.2",
                        "--carbon", "100")  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    power = doc["power"]
    assert (power["model"], power["basis"], power["pue"], power["carbon_g_per_kwh"]) == ("ccf", "ccf-default", 1.2, 100)
    cores, mem = _freed(doc)
    it = cores * 2.412 + mem / 1e9 * 0.392
    cluster = doc["totals"]["cluster"]
    assert abs(cluster["watts"] - it) < 0.002
    assert abs(cluster["facility_watts"] - it * 1.2) < 0.002
    assert abs(cluster["kwh_per_year"] - it * 1.2 * 8.76) < 0.01  # W × 8760 h / 1000
    assert abs(cluster["co2e_kg_per_year"] - it * 1.2 * 8.76 * 0.1) < 0.002  # 100 g/kWh
    assert abs(cluster["water_litres_per_year"] - it * 8.76 * 1.8) < 0.01  # IT kWh × WUE 1.8
    ns = doc["totals"]["namespaces"]
    assert abs(sum(v["facility_watts"] for v in ns.values()) - cluster["facility_watts"]) < 0.002
    per_container = sum(c["freed"]["facility_watts"] for c in doc["containers"])
    assert abs(per_container - cluster["facility_watts"]) < 0.005


def test_node_power_for_a_named_cpu_and_a_region(samples_csv: Path) -> None:
    from zerowatt.energy import facility_from
    from zerowatt.energy.catalog import specpower_table

    row = next(r for r in specpower_table() if r.cpu.lower().endswith("platinum 8180"))
    code, out, err = rs("--samples", str(samples_csv), "--format", "yaml", "--cpu", XEON_8180,
                        "--region", "aws:eu-west-1", "--pue", "hyperscale")  # fmt: skip
    assert code == 0, err
    doc = yaml.safe_load(out)
    power = doc["power"]
    per_core = (row.max_watts - row.idle_watts) / row.threads
    assert power["model"] == "node" and power["basis"] == "energy:specpower" and "SPECpower" in power["detail"]
    assert abs(power["watts_per_vcpu"] - per_core) < 1e-5 and power["pue"] == 1.10
    grams = facility_from(region="aws:eu-west-1").carbon_g_per_kwh
    assert power["carbon_g_per_kwh"] == grams
    cores, mem = _freed(doc)
    facility_w = (cores * per_core + mem / 1e9 * 0.392) * 1.10
    cluster = doc["totals"]["cluster"]
    assert abs(cluster["facility_watts"] - facility_w) < 0.002
    assert abs(cluster["co2e_kg_per_year"] - facility_w * 8.76 * grams / 1000) < 0.002


def test_node_power_reads_this_machines_cpuinfo(samples_csv: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.conftest import cli_env

    (tmp_path / "cpuinfo").write_text(f"processor : 0\nvendor_id : GenuineIntel\nmodel name : {XEON_8180}\n")
    env = {**cli_env(), "ZEROWATT_PROC_ROOT": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "zerowatt", "rightsize", "--samples", str(samples_csv), "--json"],
                       capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    power = json.loads(r.stdout)["power"]
    assert power["model"] == "node" and power["basis"] == "energy:specpower" and power["pue"] == 1.58


def test_power_in_table_csv_and_html(samples_csv: Path, tmp_path: Path) -> None:
    code, out, err = rs("--samples", str(samples_csv), "--power-model", "ccf", "--output", str(tmp_path / "t.txt"))
    text = (tmp_path / "t.txt").read_text()
    assert code == 0, err
    assert "facility W" in text and "kg CO2e/yr" in text and "ccf (ccf-default)" in text
    code, out, _ = rs("--samples", str(samples_csv), "--format", "csv", "--power-model", "ccf", "--pue", "1.5")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0
    for row in rows:
        assert abs(float(row["freed_facility_watts"]) - 1.5 * float(row["freed_watts"])) < 0.005
        assert abs(float(row["freed_kwh_per_year"]) - 8.76 * float(row["freed_facility_watts"])) < 0.01
    html_file = tmp_path / "r.html"
    code, _, _ = rs("--samples", str(samples_csv), "--format", "html", "--output", str(html_file), "--cpu", XEON_8180)
    page = html_file.read_text()
    assert code == 0 and "<th>facility W</th>" in page and "energy:specpower" in page


def test_bad_power_options_exit_2(samples_csv: Path) -> None:
    for args, needle in [
        (["--power-model", "guess"], "--power-model"),
        (["--pue", "0.5"], "pue"),
        (["--pue", "leaky"], "pue"),
        (["--carbon", "-5"], "carbon"),
        (["--region", "mars:olympus-1"], "mars:olympus-1"),
        (["--carbon", "1", "--region", "aws:eu-west-1"], "not both"),
        (["--power-model", "ccf", "--cpu", XEON_8180], "--cpu"),
        (["--watts-per-vcpu", "-1"], "--watts-per-vcpu"),
    ]:
        code, out, err = rs("--samples", str(samples_csv), "--json", *args)
        assert (code, out) == (2, ""), (args, err)
        assert needle in err, (args, err)
