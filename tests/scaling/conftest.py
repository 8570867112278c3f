"""Fixtures of the scaling tests: hand-made invocations and the shared Azure sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SHARED_DATA, shared_path
from zerowatt.scaling.sim.trace import Invocations

AZURE_RELATIVE = "azure-functions-2019"
AZURE_WHAT = "the Azure Functions 2019 trace samples (N_inv/N_run/N_mem.csv)"
AZURE = SHARED_DATA / AZURE_RELATIVE


def invocations(
    rows: list[tuple[int, float, float]], n_functions: int = 1, horizon: float = 3600.0, memory_gb: float = 1.0
) -> Invocations:
    """Invocations from ``(function, arrival, duration)`` rows (sorted here, as the simulator expects)."""
    rows = sorted(rows)
    fid = np.array([r[0] for r in rows], dtype=np.int64)
    arrival = np.array([r[1] for r in rows], dtype=np.float64)
    duration = np.array([r[2] for r in rows], dtype=np.float64)
    return Invocations(fid, arrival, duration, n_functions, horizon, np.full(n_functions, memory_gb))


@pytest.fixture(scope="session")
def azure_dir() -> Path:
    return shared_path(AZURE_RELATIVE, AZURE_WHAT)
