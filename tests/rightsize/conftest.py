"""Synthetic workloads shared by the file, CLI and Prometheus tests."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

NOW = 1_764_288_000  # 2025-11-28T00:00:00Z
DAY = 86400
STEP = 60
DAYS = 3


@dataclass(frozen=True)
class Workload:
    namespace: str
    workload: str  # Kind/name
    pods: tuple[str, ...]
    container: str
    cpu_low: float
    cpu_high: float  # 1 minute in 10 at this level
    memory: float
    memory_growth: float  # bytes per day
    cpu_request: float
    memory_request: float
    oom_at: int | None = None  # minute index of an OOM kill


WORKLOADS = (
    Workload("shop", "Deployment/web", ("web-7d9f-a", "web-7d9f-b"), "app", 0.15, 0.6, 300e6, 5e6, 1.0, 1024**3),
    Workload("shop", "StatefulSet/db", ("db-0",), "postgres", 0.4, 1.2, 1.5e9, 0.0, 2.0, 4 * 1024**3),
    Workload("batch", "Deployment/worker", ("worker-5c-x",), "main", 0.02, 0.05, 600e6, 0.0, 0.5, 512 * 1024**2,
             oom_at=DAYS * 1440 - 120),
)  # fmt: skip


def samples(w: Workload, pod_index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(timestamps, cpu cores, memory bytes) per minute over DAYS days ending at NOW, deterministic."""
    n = DAYS * 1440
    t = NOW - (n - 1) * STEP + np.arange(n) * STEP
    i = np.arange(n)
    cpu = np.where((i + pod_index) % 10 == 0, w.cpu_high, w.cpu_low) + 0.001 * (i % 7)
    mem = np.floor(w.memory + w.memory_growth * (i / 1440) + 1e6 * ((i * 7 + pod_index) % 13))
    # +0.4 millicore keeps values off whole-millicore boundaries, where rate() rounding could truncate down.
    return t.astype(np.float64), np.round(cpu, 6) + 0.0004, mem


def write_csv(path: Path, workloads: tuple[Workload, ...] = WORKLOADS, rfc3339: bool = False) -> Path:
    from datetime import UTC, datetime

    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["timestamp", "namespace", "pod", "container", "cpu", "memory", "workload", "oom",
                      "cpu_request", "memory_request", "cpu_limit", "memory_limit"])  # fmt: skip
        for w in workloads:
            for k, pod in enumerate(w.pods):
                t, cpu, mem = samples(w, k)
                for j in range(t.size):
                    ts = datetime.fromtimestamp(t[j], UTC).isoformat().replace("+00:00", "Z") if rfc3339 else int(t[j])
                    oom = 1 if w.oom_at is not None and j == w.oom_at else 0
                    out.writerow([ts, w.namespace, pod, w.container, f"{cpu[j]:.6f}", int(mem[j]), w.workload, oom,
                                  w.cpu_request, int(w.memory_request), "", int(w.memory_request)])  # fmt: skip
    return path


@pytest.fixture(scope="session")
def samples_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_csv(tmp_path_factory.mktemp("rightsize") / "samples.csv")


@pytest.fixture(scope="session")
def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from tests.rightsize.promfixture import start_prometheus

    yield from start_prometheus(tmp_path_factory.mktemp("prometheus"))
