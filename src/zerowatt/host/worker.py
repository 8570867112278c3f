"""A worker process's entry point: ``python -m zerowatt.host.worker READY_FD LIFELINE_FD SUPERVISOR_PID``,
settings and the validated apps pickled on stdin (its handle in the supervisor: :mod:`zerowatt.host.spawn`).

Lean on purpose: a worker imports only what serving needs (wasmtime, the host, its HTTP server and
prometheus-client), never the CLI or the subsystems it does not run (numpy, pyarrow, httpx: the
import test in ``tests/test_imports.py``). The imports happen first, while the supervisor is still
validating; then the worker blocks on stdin until the supervisor sends its settings and apps (EOF
without them: the supervisor gave up, so the worker exits quietly).
"""

from __future__ import annotations

import os
import pickle
import signal
import sys


def main(argv: list[str]) -> int:
    """Import the host, read the settings from stdin, serve until SIGTERM."""
    if len(argv) != 3 or not all(a.isdigit() for a in argv):
        print(
            "usage: python -m zerowatt.host.worker READY_FD LIFELINE_FD SUPERVISOR_PID < PICKLED_SETTINGS_AND_APPS",
            file=sys.stderr,
        )
        return 2
    ready_fd, lifeline_fd, supervisor = (int(a) for a in argv)
    # Ctrl-C and a hangup reach the whole process group; the supervisor decides and sends SIGTERM.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    from zerowatt.lifeline import die_with_parent

    if not die_with_parent(signal.SIGTERM, supervisor):  # while importing: SIGTERM's default action ends it
        return 1
    from zerowatt.host.server import prepare_worker, worker_main

    runtime = prepare_worker()
    payload = sys.stdin.buffer.read()
    devnull = os.open(os.devnull, os.O_RDONLY)  # nothing else may read the supervisor's pipe
    os.dup2(devnull, 0)
    os.close(devnull)
    if not payload:
        return 0
    settings_json, apps = pickle.loads(payload)  # from the supervisor that started this process
    worker_main(settings_json, ready_fd, apps, lifeline=(supervisor, lifeline_fd), runtime=runtime)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
