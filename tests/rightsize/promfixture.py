"""A real Prometheus server filled with the synthetic workloads' history (promtool backfill)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np

from tests.conftest import free_port
from tests.rightsize.conftest import STEP, WORKLOADS, Workload, samples


def _labels(**kv: str) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in kv.items()) + "}"


def openmetrics(workloads: tuple[Workload, ...] = WORKLOADS) -> str:
    """cAdvisor and kube-state-metrics series as they would have been scraped, one line per sample."""
    lines: list[str] = []
    for w in workloads:
        kind, name = w.workload.split("/")
        for k, pod in enumerate(w.pods):
            t, cpu, mem = samples(w, k)
            ids = {"namespace": w.namespace, "pod": pod, "container": w.container}
            lab = _labels(**ids)
            # The counter starts one step before the first sample so that rate() yields a value there too.
            counter = 1000.0 + np.concatenate(([0.0], np.cumsum(cpu * STEP)))
            ct = np.concatenate(([t[0] - STEP], t))
            lines += [
                f"container_cpu_usage_seconds_total{lab} {float(c)!r} {int(s)}"
                for c, s in zip(counter, ct, strict=True)
            ]
            lines += [f"container_memory_working_set_bytes{lab} {int(m)} {int(s)}" for m, s in zip(mem, t, strict=True)]
            if w.oom_at is not None:
                oom_lab = _labels(**ids, reason="OOMKilled")
                lines += [
                    f"kube_pod_container_status_last_terminated_reason{oom_lab} {1 if j >= w.oom_at else 0} {int(s)}"
                    for j, s in enumerate(t)
                    if j % 5 == 0 or j == w.oom_at
                ]
            recent = t[-120::5]
            for metric, resource, unit, value in (
                ("kube_pod_container_resource_requests", "cpu", "core", w.cpu_request),
                ("kube_pod_container_resource_requests", "memory", "byte", w.memory_request),
                ("kube_pod_container_resource_limits", "memory", "byte", w.memory_request),
            ):
                lab2 = _labels(**ids, resource=resource, unit=unit)
                lines += [f"{metric}{lab2} {float(value)!r} {int(s)}" for s in recent]
            if kind == "Deployment":
                rs = pod.rsplit("-", 1)[0]
                owner = _labels(namespace=w.namespace, pod=pod, owner_kind="ReplicaSet", owner_name=rs)
                rs_owner = _labels(namespace=w.namespace, replicaset=rs, owner_kind="Deployment", owner_name=name)
                lines += [f"kube_replicaset_owner{rs_owner} 1 {int(s)}" for s in t[::30]] if k == 0 else []
            else:
                owner = _labels(namespace=w.namespace, pod=pod, owner_kind=kind, owner_name=name)
            lines += [f"kube_pod_owner{owner} 1 {int(s)}" for s in t[::30]]
    # OpenMetrics wants each metric family's samples together: sort by metric name, keep time order.
    lines.sort(key=lambda line: line.split("{", 1)[0])
    return "\n".join(lines) + "\n# EOF\n"


def serve_tsdb(data: Path, workdir: Path, timeout: float = 60) -> tuple[subprocess.Popen[bytes], str]:
    """Start Debian's ``prometheus`` on the TSDB in ``data`` (no scrapes) on a loopback port; wait until ready.

    Shared by the tests and ``benchmarks/rightsize_prometheus.py``. Stop it with :func:`stop_prometheus`.
    """
    prom = shutil.which("prometheus")
    if not prom:
        raise RuntimeError("Debian's prometheus package (prometheus, promtool) is required: make sysdeps")
    cfg = workdir / "prometheus.yml"
    cfg.write_text("global:\n  scrape_interval: 1m\nscrape_configs: []\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (workdir / "prometheus.log").open("w") as log:
        proc = subprocess.Popen(
            [prom, f"--config.file={cfg}", f"--storage.tsdb.path={data}", f"--web.listen-address=127.0.0.1:{port}",
             "--storage.tsdb.retention.time=100y", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_prometheus(proc)
            raise RuntimeError(f"prometheus did not become ready: {(workdir / 'prometheus.log').read_text()[-2000:]}")
        time.sleep(0.2)


def stop_prometheus(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM (Prometheus flushes its head block), SIGKILL after ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_prometheus(workdir: Path) -> Iterator[str]:
    """Backfill, start ``prometheus`` on a loopback port, yield its URL, stop it."""
    promtool = shutil.which("promtool")
    if not promtool:
        raise RuntimeError("Debian's prometheus package (prometheus, promtool) is required: make sysdeps")
    data = workdir / "data"
    data.mkdir()
    src = workdir / "history.om"
    src.write_text(openmetrics())
    subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", "-q", str(src), str(data)],
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    proc, url = serve_tsdb(data, workdir)
    try:
        yield url
    finally:
        stop_prometheus(proc)
