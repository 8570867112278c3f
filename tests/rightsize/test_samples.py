"""Sample files: CSV and Parquet agree with feeding the estimator directly; bad files get located errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from tests.rightsize.conftest import NOW, WORKLOADS, samples, write_csv
from zerowatt.errors import ValidationError
from zerowatt.rightsize.accumulator import UsageAccumulator
from zerowatt.rightsize.model import Recommendation
from zerowatt.rightsize.samples import SampleFilter, load_samples, parse_selector

HISTORY = 14 * 86400.0


def direct() -> list[Recommendation]:
    acc = UsageAccumulator(NOW, HISTORY)
    for w in WORKLOADS:
        for k, pod in enumerate(w.pods):
            sid = acc.series_id(w.namespace, pod, w.container, w.workload)
            t, cpu, mem = samples(w, k)
            oom = np.zeros(t.size, dtype=bool)
            if w.oom_at is not None:
                oom[w.oom_at] = True
            acc.add_samples(np.full(t.size, sid), t, cpu=cpu, memory=mem, oom=oom)
            acc.set_current([sid], cpu_request=[w.cpu_request], memory_request=[w.memory_request],
                            memory_limit=[w.memory_request])  # fmt: skip
    return acc.recommend()


def test_csv_matches_direct_feed(samples_csv: Path) -> None:
    acc, stats = load_samples(samples_csv, HISTORY)
    assert acc.now == NOW
    assert stats.rows == sum(len(w.pods) for w in WORKLOADS) * 3 * 1440
    assert stats.warnings == []
    got = acc.recommend()
    assert got == direct()
    assert {r.id.owner for r in got} == {"Deployment/web", "StatefulSet/db", "Deployment/worker"}
    worker = next(r for r in got if r.id.owner == "Deployment/worker")
    assert worker.oom_kills == 1
    # OOM with a 512 MiB request above the ~612 MB peak: bumped to max(612 MB + 100 MiB, 1.2 × 612 MB).
    assert worker.target.memory > 1.2 * 600e6


def test_parquet_and_rfc3339_match_csv(samples_csv: Path, tmp_path: Path) -> None:
    table = pcsv.read_csv(samples_csv)
    pq.write_table(table, tmp_path / "s.parquet", row_group_size=5000)
    acc, _ = load_samples(tmp_path / "s.parquet", HISTORY, batch_rows=3000)
    assert acc.recommend() == direct()
    rfc = write_csv(tmp_path / "rfc.csv", WORKLOADS[1:2], rfc3339=True)
    acc2, _ = load_samples(rfc, HISTORY)
    assert [r.id.owner for r in acc2.recommend()] == ["StatefulSet/db"]
    assert acc2.recommend()[0] == next(r for r in direct() if r.id.owner == "StatefulSet/db")


def test_namespace_and_selector_filters(samples_csv: Path) -> None:
    acc, stats = load_samples(samples_csv, HISTORY, flt=SampleFilter(namespaces=("batch",)))
    assert [r.id.namespace for r in acc.recommend()] == ["batch"]
    assert stats.filtered_rows > 0
    acc, _ = load_samples(samples_csv, HISTORY, flt=SampleFilter(selector=parse_selector("container=postgres")))
    assert [r.id.container for r in acc.recommend()] == ["postgres"]
    with pytest.raises(ValidationError, match="no samples left"):
        load_samples(samples_csv, HISTORY, flt=SampleFilter(namespaces=("nope",)))
    with pytest.raises(ValidationError, match="unknown key"):
        SampleFilter(selector={"app": "x"})
    with pytest.raises(ValidationError, match="key=value"):
        parse_selector("app")


HEADER = "timestamp,namespace,pod,container,cpu,memory\n"


def write(tmp_path: Path, text: str, name: str = "bad.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_nan_and_negative_samples_are_dropped_and_counted(tmp_path: Path) -> None:
    p = write(tmp_path, HEADER + f"{NOW - 120},a,p,c,0.5,1e8\n{NOW - 60},a,p,c,NaN,-5\n{NOW},a,p,c,-1,2e8\n")
    acc, stats = load_samples(p, HISTORY)
    assert (stats.nan_samples, stats.negative_samples) == (1, 2)
    assert any("NaN" in w for w in stats.warnings) and any("negative" in w for w in stats.warnings)
    assert acc.recommend()[0].samples == 1


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("timestamp,namespace,pod,cpu,memory\n1,a,b,0.1,1\n", r"bad.csv: missing column\(s\) container"),
        (HEADER + "1,a,b,c,0.1,1\n2,a,b,c,zero,1\n", r"bad.csv:3: column cpu: 'zero' is not a number"),
        (HEADER + "1,a,b,c,0.1,1\n2,a,b,c\n", r"bad.csv:3: malformed CSV"),
        (HEADER + "yesterday,a,b,c,0.1,1\n", r"bad.csv:2: column timestamp: 'yesterday' is not RFC 3339"),
        (HEADER, "no samples"),
        (HEADER + "1,a,b,c,NaN,NaN\n", "no valid samples"),
    ],
)
def test_malformed_csv_names_file_and_line(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        load_samples(write(tmp_path, text), HISTORY)


def test_malformed_parquet(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not a readable Parquet file"):
        load_samples(write(tmp_path, "not parquet", "x.parquet"), HISTORY)
    t = pa.table({"timestamp": [1.0], "namespace": ["a"], "pod": ["b"], "container": ["c"],
                  "cpu": [pa.scalar(b"x")], "memory": [1.0]})  # fmt: skip
    pq.write_table(t, tmp_path / "y.parquet")
    with pytest.raises(ValidationError, match="column cpu has type binary"):
        load_samples(tmp_path / "y.parquet", HISTORY)
    pq.write_table(t.drop(["memory"]), tmp_path / "z.parquet")
    with pytest.raises(ValidationError, match=r"z.parquet: missing column\(s\) memory"):
        load_samples(tmp_path / "z.parquet", HISTORY)
    with pytest.raises(ValidationError, match="no such file"):
        load_samples(tmp_path / "absent.csv", HISTORY)
