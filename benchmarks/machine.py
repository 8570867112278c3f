"""Describe the machine a benchmark ran on, for the record in ``docs/benchmarks.md``."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def describe() -> str:
    """One line: CPU model, logical CPUs, memory, Python and kernel."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = int(line.split()[1]) / 1024 / 1024
                break
    except OSError:
        pass
    return (
        f"{model}, {os.cpu_count()} logical CPUs, {mem_gib:.0f} GiB, "
        f"Python {platform.python_version()}, Linux {platform.release()}"
    )
