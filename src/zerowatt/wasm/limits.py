"""Default per-request guest limits, apart from the engine so that the CLI can show them as option
defaults without importing wasmtime (``zerowatt up`` starts its workers before it imports wasmtime)."""

from __future__ import annotations

from zerowatt.units import MIB, Bytes, Seconds

DEFAULT_MEMORY_LIMIT: Bytes = 128 * MIB
DEFAULT_REQUEST_TIMEOUT: Seconds = 30.0
