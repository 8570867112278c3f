"""Soak under fault load: healthy traffic beside runaway guests, every answer counted (issue 10, item 8).

``python -m benchmarks soak [--seconds 120] [--workers 1] [--deadline 2]``

A real ``zerowatt up`` serves the examples; ``wrk`` drives ``/hello`` and ``/echo/x`` (healthy) while a
third ``wrk`` keeps runaway guests on ``/slow`` (each one runs to its deadline: 504). The healthy routes
must see no answer but 200: a spurious 500 (an epoch interrupt taken for a trap, a lost instance slot)
or a reset shows up in wrk's non-2xx or socket-error counts, and the host's own
``zerowatt_requests_total`` is read back from ``/metrics`` to count every status per route. Exit code 1
when a healthy request failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
RESULTS = Path(__file__).parent / "results"
HEALTHY = {"/hello": 16, "/echo/x": 8}  # path -> wrk connections
RUNAWAY = ("/slow", 4)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(admin: int, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"zerowatt up exited with {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("zerowatt up was not ready in time")


def wrk(port: int, path: str, connections: int, seconds: int, timeout: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            f"--timeout={max(1, round(timeout))}s",
            f"http://127.0.0.1:{port}{path}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def parse_wrk(text: str) -> dict[str, int]:
    """requests, non-2xx answers and socket errors from wrk's summary."""
    requests = re.search(r"(\d+) requests in", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return {
        "requests": int(requests.group(1)) if requests else 0,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(g) for g in errors.groups()) if errors else 0,
    }


def statuses(admin: int) -> dict[str, dict[str, float]]:
    """``zerowatt_requests_total`` per app and status code, from the host's own metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=10) as r:
        text = r.read().decode()
    out: dict[str, dict[str, float]] = {}
    for m in re.finditer(r'^zerowatt_requests_total\{app="([^"]+)",code="(\d+)"[^}]*\} (\S+)$', text, re.M):
        out.setdefault(m.group(1), {})[m.group(2)] = out.get(m.group(1), {}).get(m.group(2), 0.0) + float(m.group(3))
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks soak", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--deadline", type=float, default=2.0, help="--request-timeout of the host (the runaways' 504)")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (make setup installs it)", file=sys.stderr)
        return 2
    port, admin = free_port(), free_port()
    manifests = [str(EXAMPLES / name / "spin.toml") for name in ("hello-wat", "echo-c", "slow-wat")]
    with tempfile.TemporaryDirectory(prefix="zerowatt-soak-") as work:
        cmd = [
            sys.executable,
            "-m",
            "zerowatt",
            "up",
            *manifests,
            "--listen",
            f"127.0.0.1:{port}",
            "--admin",
            f"127.0.0.1:{admin}",
            "--workers",
            str(args.workers),
            "--request-timeout",
            str(args.deadline),
            "--cache-dir",
            str(Path(work) / "cache"),
            "--log-level",
            "warning",
        ]
        up = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_ready(admin, up)
            loads = {path: wrk(port, path, c, args.seconds, 10.0) for path, c in HEALTHY.items()}
            slow = wrk(port, RUNAWAY[0], RUNAWAY[1], args.seconds, args.deadline * 3)
            results = {path: parse_wrk(p.communicate()[0]) for path, p in loads.items()}
            results[RUNAWAY[0]] = parse_wrk(slow.communicate()[0])
            by_app = statuses(admin)
        finally:
            up.send_signal(signal.SIGTERM)
            try:
                _, err = up.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                up.kill()
                _, err = up.communicate()
    log = err.decode(errors="replace")
    healthy = sum(results[p]["requests"] for p in HEALTHY)
    failed = sum(results[p]["non_2xx"] + results[p]["socket_errors"] for p in HEALTHY)
    spurious_500 = sum(codes.get("500", 0.0) for app, codes in by_app.items() if app != "slow-wat")
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}",
        "command": "python -m benchmarks soak " + " ".join(argv),
        "seconds": args.seconds,
        "wrk": results,
        "host_statuses": by_app,
        "healthy_requests": healthy,
        "healthy_failed": failed,
        "spurious_500": spurious_500,
        "interrupt_traps_in_log": log.count("wasm trap: interrupt"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print(f"healthy requests: {healthy}, failed: {failed}, spurious 500s: {spurious_500:.0f}")
    if healthy == 0 or results[RUNAWAY[0]]["requests"] + results[RUNAWAY[0]]["socket_errors"] == 0:
        print("wrk sent nothing: no result", file=sys.stderr)
        return 1
    return 0 if failed == 0 and spurious_500 == 0 else 1
