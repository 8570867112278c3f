"""Meter + exporter on synthetic /proc and powercap trees: exact joules per zone, process and container."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.energy.conftest import RaplTree
from zerowatt.energy.exporter import Exporter
from zerowatt.energy.facility import Facility
from zerowatt.energy.meter import Meter
from zerowatt.energy.procfs import ProcReader
from zerowatt.energy.sources.rapl import RaplSource
from zerowatt.errors import ValidationError
from zerowatt.parsing import parse_host_port

CID = "b" * 64


def _stat(busy: int, total: int) -> str:
    return f"cpu  {busy} 0 0 {total - busy} 0 0 0 0 0 0\ncpu0 {busy} 0 0 {total - busy} 0 0 0 0 0 0\n"


def _pid(root: Path, pid: int, comm: str, ticks: int, cgroup: str) -> None:
    d = root / str(pid)
    d.mkdir(exist_ok=True)
    (d / "stat").write_text(f"{pid} ({comm}) S 1 {pid} {pid} 0 -1 0 0 0 0 0 {ticks} 0 0 0 20 0 1 0 5000 0 0\n")
    (d / "cgroup").write_text(cgroup)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    hits = [v for (n, ls), v in samples.items() if n == name and all((k, v2) in ls for k, v2 in labels.items())]
    assert len(hits) == 1, (name, labels, len(hits))
    return hits[0]


def test_exporter_joules_by_zone_process_and_container(tmp_path: Path, rapl: RaplTree) -> None:
    proc = tmp_path / "proc"
    proc.mkdir()
    rapl.add("intel-rapl:0", "package-0", 0)
    rapl.add("intel-rapl:0:0", "core", 0)
    rapl.add("intel-rapl:0:1", "dram", 0)
    (proc / "stat").write_text(_stat(100, 1000))
    _pid(proc, 100, "web server", 10, f"0::/system.slice/docker-{CID}.scope\n")
    _pid(proc, 200, "batch", 10, "0::/user.slice\n")
    exporter = Exporter(
        Meter(RaplSource(str(rapl.root)), ProcReader(str(proc))), Facility(1.5, 2.0, 400.0), node_name="n"
    )
    exporter.step(0.0)
    # One second: node busy 100 of 200 ticks (u = 0.5); web +50 ticks, batch +25; RAPL package 90 J
    # (core 50 J inside it), DRAM 10 J: node 100 J, active 50 J, web 25 J, batch 12.5 J.
    (proc / "stat").write_text(_stat(200, 1200))
    _pid(proc, 100, "web server", 60, f"0::/system.slice/docker-{CID}.scope\n")
    _pid(proc, 200, "batch", 35, "0::/user.slice\n")
    rapl.set("intel-rapl:0", 90_000_000)
    rapl.set("intel-rapl:0:0", 50_000_000)
    rapl.set("intel-rapl:0:1", 10_000_000)
    exporter.step(1.0)
    s = _samples(generate_latest(exporter.registry).decode())
    assert math.isclose(_value(s, "zerowatt_node_joules_total"), 100.0)
    assert math.isclose(_value(s, "kepler_node_cpu_joules_total", zone="package"), 90.0)
    assert math.isclose(_value(s, "kepler_node_cpu_active_joules_total", zone="dram"), 5.0)
    assert math.isclose(_value(s, "kepler_node_cpu_idle_joules_total", zone="core"), 25.0)
    assert math.isclose(_value(s, "kepler_node_cpu_usage_ratio"), 0.5)
    assert math.isclose(_value(s, "zerowatt_process_joules_total", pid="100"), 25.0)
    assert math.isclose(_value(s, "kepler_process_cpu_joules_total", pid="100", zone="package"), 22.5)
    assert math.isclose(_value(s, "kepler_process_cpu_joules_total", pid="200", zone="dram"), 1.25)
    assert math.isclose(_value(s, "kepler_process_cpu_joules_total", pid="100", zone="core"), 12.5)
    assert _value(s, "kepler_process_cpu_seconds_total", pid="100", comm="web server", type="container") > 0
    assert math.isclose(_value(s, "kepler_container_cpu_joules_total", container_id=CID, zone="package"), 22.5)
    assert math.isclose(_value(s, "zerowatt_node_facility_joules_total"), 150.0)
    assert math.isclose(_value(s, "zerowatt_node_co2e_grams_total"), 150.0 / 3.6e6 * 400.0)
    assert _value(s, "zerowatt_energy_source_info", source="rapl", trust="measured") == 1.0


def test_parse_listen() -> None:
    def parse_listen(text: str) -> tuple[str, int]:  # as `zerowatt energy serve --listen` reads it
        return parse_host_port(text, key="--listen", default_host="127.0.0.1")

    assert parse_listen("127.0.0.1:9102") == ("127.0.0.1", 9102)
    assert parse_listen("[::1]:80") == ("::1", 80)
    assert parse_listen(":80") == ("127.0.0.1", 80)
    with pytest.raises(ValidationError, match="HOST:PORT"):
        parse_listen("localhost")
