"""The exporter's /metrics conserve over random process churn (issue 16): rendered, parsed, summed.

Σ ``zerowatt_process_joules_total`` (running and terminated) + ``zerowatt_terminated_joules_total`` (the
terminated beyond those kept) + ``zerowatt_node_unattributed_joules_total`` + ``zerowatt_node_idle_joules_total``
= ``zerowatt_node_joules_total``, at every scrape, whatever starts, exits or reuses a pid in between.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from zerowatt.energy.board import SeenBoard
from zerowatt.energy.exporter import Exporter
from zerowatt.energy.facility import Facility
from zerowatt.energy.meter import Meter
from zerowatt.energy.model import ModelChoice, NodePowerModel
from zerowatt.energy.procfs import ProcReader
from zerowatt.energy.request import ActiveRate, LiveRate
from zerowatt.energy.sources.model import ModelSource

CID = "c" * 64


@dataclass
class Step:
    spawn: list[int]  # pids started (reused if they ran before)
    exit: list[int]  # indexes into the live pids, exited
    grow: list[int]  # ticks each live process uses
    extra_busy: int  # node busy ticks no process accounts for (kernel, exited before sampling)
    idle: int


steps = st.builds(
    Step,
    spawn=st.lists(st.integers(100, 112), max_size=3),
    exit=st.lists(st.integers(0, 20), max_size=3),
    grow=st.lists(st.integers(0, 50), min_size=20, max_size=20),
    extra_busy=st.integers(0, 40),
    idle=st.integers(0, 200),
)


class Node:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.busy = 0
        self.total = 0
        self.ticks: dict[int, int] = {}
        self.starts = 1000
        self.stat()

    @classmethod
    def with_two_processes(cls, root: Path) -> Node:
        node = cls(root)
        node.ticks = {100: 0, 101: 0}
        node.write(100, 900)
        node.write(101, 901)
        return node

    def stat(self) -> None:
        idle = self.total - self.busy
        line = f"{self.busy} 0 0 {idle} 0 0 0 0 0 0"
        (self.root / "stat").write_text(f"cpu  {line}\ncpu0 {line}\n")

    def write(self, pid: int, start: int) -> None:
        d = self.root / str(pid)
        d.mkdir(exist_ok=True)
        cgroup = f"0::/system.slice/docker-{CID}.scope\n" if pid % 2 else "0::/user.slice\n"
        (d / "cgroup").write_text(cgroup)
        (d / "stat").write_text(
            f"{pid} (p{pid}) S 1 {pid} {pid} 0 -1 0 0 0 0 0 {self.ticks[pid]} 0 0 0 20 0 1 0 {start} 0 0\n"
        )

    def apply(self, step: Step) -> None:
        live = sorted(self.ticks)
        for i in step.exit:
            if live and i < len(live):
                pid = live[i]
                if pid in self.ticks:
                    self.busy += 3  # its last ticks after the previous sample: nobody reports them
                    del self.ticks[pid]
                    (self.root / str(pid) / "stat").write_text("")  # an exited process's stat reads empty
                    for f in ("stat", "cgroup"):
                        (self.root / str(pid) / f).unlink()
                    (self.root / str(pid)).rmdir()
        for pid in step.spawn:
            if pid not in self.ticks:
                self.ticks[pid] = 0
                self.starts += 1
                self.write(pid, self.starts)
        for (pid, _), grow in zip(sorted(self.ticks.items()), step.grow, strict=False):
            self.ticks[pid] += grow
            self.busy += grow
            start = int((self.root / str(pid) / "stat").read_text().split()[21])
            self.write(pid, start)
        self.busy += step.extra_busy


def scrape(exporter: Exporter) -> dict[str, float]:
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(generate_latest(exporter.registry).decode()):
        for sample in family.samples:
            sums[sample.name] = sums.get(sample.name, 0.0) + sample.value
    return sums


@settings(max_examples=60, deadline=None)
@given(st.lists(steps, min_size=1, max_size=12), st.integers(-1, 3), st.booleans())
def test_a_sum_over_the_rendered_metrics_conserves(plan: list[Step], max_terminated: int, spread: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        node = Node.with_two_processes(root)
        idle_ticks = 0
        source = ModelSource(ModelChoice(NodePowerModel(10.0, 50.0, 1), "configured", "test"))
        exporter = Exporter(
            Meter(source, ProcReader(str(root)), spread_idle=spread),
            Facility(1.5, 2.0, 400.0),
            node_name="n",
            max_terminated=max_terminated,
        )
        exporter.step(0.0)
        for i, step in enumerate(plan, start=1):
            before_busy = node.busy
            node.apply(step)
            idle_ticks += step.idle
            node.total = node.busy + idle_ticks
            assert node.busy >= before_busy
            node.stat()
            exporter.step(float(i))
            m = scrape(exporter)
            node_joules = m["zerowatt_node_joules_total"]
            accounted = (
                m.get("zerowatt_process_joules_total", 0.0)
                + m["zerowatt_terminated_joules_total"]
                + m["zerowatt_node_unattributed_joules_total"]
                + m["zerowatt_node_idle_joules_total"]
            )
            assert abs(accounted - node_joules) <= 0.01 * node_joules + 1e-9, (accounted, node_joules)
            if max_terminated >= 0:
                assert len(exporter.totals.terminated) <= max_terminated
        ProcReader.close(exporter.meter.procs)


def test_an_exited_process_stays_with_state_terminated(tmp_path: Path) -> None:
    node = Node(tmp_path)
    node.ticks = {100: 0, 101: 0}
    node.write(100, 900)
    node.write(101, 901)
    source = ModelSource(ModelChoice(NodePowerModel(10.0, 50.0, 1), "configured", "test"))
    exporter = Exporter(Meter(source, ProcReader(str(tmp_path))), Facility(1.5, 2.0, 400.0), node_name="n")
    exporter.step(0.0)
    node.apply(Step([], [], [30, 10] + [0] * 18, 0, 0))
    node.total = node.busy + 60
    node.stat()
    exporter.step(1.0)
    node.apply(Step([], [0], [0] * 20, 0, 0))  # pid 100 exits
    node.total = node.busy + 120
    node.stat()
    exporter.step(2.0)
    text = generate_latest(exporter.registry).decode()
    assert 'zerowatt_process_joules_total{comm="p100",container_id="",pid="100",state="terminated"}' in text
    assert 'state="running"' in text and 'pid="101"' in text
    assert 'kepler_process_cpu_joules_total{comm="p100"' in text
    assert 'kepler_container_cpu_seconds_total{container_id="' + CID in text


def test_terminated_containers_are_bounded_too(tmp_path: Path) -> None:
    from zerowatt.energy.containers import ContainerRef
    from zerowatt.energy.meter import ContainerTotal, Totals

    totals = Totals(max_terminated=1)
    for i, joules in enumerate((3.0, 1.0, 2.0)):
        totals.containers[str(i)] = ContainerTotal(ContainerRef(str(i), "docker"), joules=joules)
    node = Node(tmp_path)
    source = ModelSource(ModelChoice(NodePowerModel(10.0, 50.0, 1), "configured", "test"))
    meter = Meter(source, ProcReader(str(tmp_path)))
    meter.sample(0.0)
    node.total = 100
    node.stat()
    interval = meter.sample(1.0)
    assert interval is not None
    totals.add(interval)  # none of the three has a live process any more
    assert list(totals.containers) == ["0"]  # the highest-energy one is kept


def test_no_two_samples_share_a_label_set_when_pids_are_reused() -> None:
    """Terminated series are keyed by pid, name, binary and container; families without ``exe`` sum them."""
    import threading
    from collections import Counter

    from zerowatt.energy.exporter import EnergyCollector
    from zerowatt.energy.meter import ProcessTotal, Totals
    from zerowatt.energy.procfs import ProcessInfo

    totals = Totals()
    totals.node_joules = 10.0
    totals.zones[("package", "p")] = 10.0
    for exe, joules in (("/bin/a", 1.0), ("/bin/b", 2.0)):
        t = ProcessTotal(ProcessInfo(7, "job", 1, 100, exe), joules=joules, cpu_seconds=joules)
        totals._terminate(t)
    totals.processes[(7, 200)] = ProcessTotal(ProcessInfo(7, "job", 1, 200, "/bin/a"), joules=4.0, cpu_seconds=4.0)
    collector = EnergyCollector(totals, threading.Lock(), Facility(), "n")
    seen: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()
    for family in collector.collect():
        for sample in family.samples:
            seen[(sample.name, tuple(sorted(sample.labels.items())))] += 1
    assert [key for key, n in seen.items() if n > 1] == []
    joules = {k: v for k, v in seen.items() if k[0] == "zerowatt_process_joules_total"}
    assert len(joules) == 2  # running, and the two terminated binaries summed


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(steps, st.floats(0.0, 0.5)), min_size=1, max_size=10))
def test_the_hosts_rate_prices_every_process_as_the_exporter_does(plan: list[tuple[Step, float]]) -> None:
    """The first half of issue 16's law: the app host's :class:`LiveRate` (its own scan of the same
    ``/proc``) prices each process's CPU-seconds of an interval at exactly what the exporter attributes to it,
    also when the processes' CPU times add up to more than the node's busy time (a VM's steal: ``stolen`` is
    the share of the processes' ticks that ``/proc/stat`` books as steal, not busy); and so does a worker that
    reads ``/proc/stat`` only and takes the processes' sum from its supervisor's board."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        node = Node.with_two_processes(root)
        idle_ticks = 0
        stolen_ticks = 0

        def model() -> ModelSource:
            return ModelSource(ModelChoice(NodePowerModel(10.0, 50.0, 1), "configured", "test"))

        meter = Meter(model(), ProcReader(str(root)))
        live = LiveRate(model(), ActiveRate(1.0, "initial"), proc_root=str(root))
        # a host's supervisor scans and publishes; its worker reads /proc/stat only and takes the sum
        board = SeenBoard(Path(tmp) / "board" / "seen")
        (Path(tmp) / "board").mkdir()
        publisher = LiveRate(model(), ActiveRate(1.0, "initial"), proc_root=str(root), board=board, publish=True)
        follower = LiveRate(model(), ActiveRate(1.0, "initial"), proc_root=str(root), board=board, board_wait=0.0)
        rates: list[ActiveRate] = []
        live.listeners.append(rates.append)
        shared: list[tuple[ActiveRate, ActiveRate]] = []
        publisher.listeners.append(lambda r: shared.append((r, r)))
        follower.listeners.append(lambda r: shared.append((shared.pop()[0], r)))
        meter.sample(0.0)
        for sampler in (live, publisher, follower):
            sampler.refresh(0.0, tick=0)
        for i, (step, stolen) in enumerate(plan, start=1):
            before = node.busy
            node.apply(step)
            steal = int((node.busy - before) * stolen)
            node.busy -= steal  # the processes' ticks include it; /proc/stat's busy does not
            stolen_ticks += steal
            idle_ticks += step.idle
            node.total = node.busy + idle_ticks + stolen_ticks
            node.stat()
            iv = meter.sample(float(i))
            for sampler in (live, publisher, follower):
                sampler.refresh(float(i), tick=i)
            assert iv is not None and len(rates) == i
            published, followed = shared[-1]
            for rate in (published, followed):  # the same sum, added in another order: equal to the last bits
                assert math.isclose(rate.joules_per_cpu_second, rates[-1].joules_per_cpu_second, rel_tol=1e-12)
            for pid, cpu in iv.process_cpu.items():
                priced = cpu * rates[-1].joules_per_cpu_second
                assert math.isclose(priced, iv.processes.workloads.get(pid, 0.0), rel_tol=1e-9, abs_tol=1e-12)
            assert live.meter.procs._fds == {}  # a host process on its own keeps no file open
            assert follower.meter.procs.known == {}  # the follower scanned nothing
        ProcReader.close(meter.procs)
