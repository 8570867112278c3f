"""Domain units as plain ``float`` aliases, so signatures say what a number means.

They are type aliases rather than wrapper classes: the hot paths (per-request accounting, vectorised
simulations) stay plain floats and NumPy arrays, and mypy still documents intent at every boundary.
"""

from __future__ import annotations

from typing import TypeAlias

Seconds: TypeAlias = float
Joules: TypeAlias = float
Watts: TypeAlias = float
Cores: TypeAlias = float
Bytes: TypeAlias = int
GramsCO2e: TypeAlias = float
Litres: TypeAlias = float

JOULES_PER_KWH = 3.6e6
MIB = 1024 * 1024
GIB = 1024 * MIB
