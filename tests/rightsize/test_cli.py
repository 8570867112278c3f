"""``zerowatt rightsize`` from sample files: every output format, --apply, and exit codes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import yaml

from tests.conftest import SHARED_DATA, run_cli
from zerowatt.rightsize.power import CCF_WATTS_PER_GB, CCF_WATTS_PER_VCPU, PowerCoefficients
from zerowatt.units import GIB


def rs(*args: str) -> tuple[int, str, str]:
    r = run_cli(["rightsize", *args])
    return r.returncode, r.stdout, r.stderr


def test_json_lists_targets_bounds_current_and_totals(samples_csv: Path) -> None:
    code, out, err = rs("--samples", str(samples_csv), "--json")
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
    derived = PowerCoefficients.from_ccf_csv(SHARED_DATA / "power" / "ccf-coefficients-aws-use.csv")
    assert abs(derived.watts_per_vcpu - CCF_WATTS_PER_VCPU) < 0.001
    assert PowerCoefficients().watts(2.0, 10e9) == 2 * CCF_WATTS_PER_VCPU + 10 * 0.392
    assert GIB == 1024**3


def test_apply_omits_unbounded_upper_bound() -> None:
    import yaml as _yaml

    from zerowatt.rightsize.apply import render_objects
    from zerowatt.rightsize.estimator import UsageAccumulator

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
