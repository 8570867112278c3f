"""Entry point of a worker process: ``python -m zerowatt.host.worker READY_FD``, settings on stdin.

Lean on purpose: a worker imports only what serving needs (wasmtime, the host, its HTTP server and
prometheus-client), never the CLI or the subsystems it does not run (numpy, pyarrow, httpx: the
import test in ``tests/test_imports.py``). The imports happen first, while the supervisor is still
validating; then the worker blocks on stdin until the supervisor sends its settings as JSON (EOF
without settings: the supervisor gave up, so the worker exits quietly).
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    """Import the host, read the settings from stdin, serve until SIGTERM."""
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m zerowatt.host.worker READY_FD < SETTINGS_JSON", file=sys.stderr)
        return 2
    from zerowatt.host.server import worker_main

    settings_json = sys.stdin.buffer.read().decode()
    devnull = os.open(os.devnull, os.O_RDONLY)  # nothing else may read the supervisor's pipe
    os.dup2(devnull, 0)
    os.close(devnull)
    if not settings_json:
        return 0
    worker_main(settings_json, int(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
