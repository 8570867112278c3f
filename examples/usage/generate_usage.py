"""Write ``usage.csv``: one day of container usage samples for the README's ``zerowatt rightsize`` tour.

Why a generator: the tour needs a samples file that a fresh clone has, with shapes a right-sizer must tell
apart (a diurnal web tier, a spiky worker, a steady database that requests far more than it uses). The file is
committed beside this script and a test regenerates it byte for byte, so what the README shows stays
reproducible. Stdlib only (``python3 examples/usage/generate_usage.py``), seeded, one sample per 5 minutes.
"""

from __future__ import annotations

import csv
import math
import random
import sys
from pathlib import Path

START = 1_764_547_200  # 2025-12-01T00:00:00Z
STEP = 300
SAMPLES = 288  # one day
GIB = 1 << 30
MIB = 1 << 20
#: (namespace, workload, pods, container, cpu request (cores), memory request (bytes), shape)
WORKLOADS = (
    ("shop", "web", 3, "nginx", 1.0, 1 * GIB, "diurnal"),
    ("shop", "worker", 2, "worker", 2.0, 2 * GIB, "spiky"),
    ("shop", "db", 1, "postgres", 4.0, 8 * GIB, "steady"),
)
COLUMNS = ("timestamp", "namespace", "workload", "pod", "container", "cpu", "memory", "cpu_request", "memory_request")


def usage(shape: str, step: int, rng: random.Random) -> tuple[float, float]:
    """CPU cores and working-set bytes at ``step`` for a shape."""
    day = math.sin(2 * math.pi * (step / SAMPLES - 0.3))  # peaks in the afternoon (UTC)
    if shape == "diurnal":
        return max(0.02, 0.25 + 0.18 * day + rng.gauss(0, 0.02)), 300 * MIB + 60 * MIB * day + rng.gauss(0, 4 * MIB)
    if shape == "spiky":
        burst = rng.random() < 0.05
        return (1.2 if burst else 0.08) + abs(rng.gauss(0, 0.02)), (900 if burst else 500) * MIB + rng.gauss(0, 8 * MIB)
    return 0.35 + rng.gauss(0, 0.01), 1.6 * GIB + rng.gauss(0, 2 * MIB)


def rows(seed: int = 2025) -> list[tuple[object, ...]]:
    """Every sample, sorted by time then pod."""
    rng = random.Random(seed)
    out: list[tuple[object, ...]] = []
    for step in range(SAMPLES):
        when = START + step * STEP
        for namespace, workload, pods, container, cpu_req, mem_req, shape in WORKLOADS:
            for index in range(pods):
                cpu, memory = usage(shape, step, rng)
                pod = f"{workload}-{index}" if workload == "db" else f"{workload}-7d9f8-{index}"
                out.append(
                    (when, namespace, workload, pod, container, f"{cpu:.4f}", int(memory), cpu_req, int(mem_req))
                )
    return out


def write(path: Path) -> None:
    """Write the CSV (LF line ends, so the committed file is the same on every machine)."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows())


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("usage.csv"))
