"""Scale from zero through the activator on loopback (issue 12, "Numbers"): request → first byte, split.

``python -m benchmarks activator [--rounds N] [--warm N]``

The stack of the end-to-end test, all on 127.0.0.1: kmock's emulator (the Kubernetes API), the test
kubelet (``tests/activator/kubelet.py``: each replica is a real ``zerowatt up`` process serving
``examples/hello-wat``, ready when its ``/readyz`` answers, polled every 5 ms) and the activator
(:class:`zerowatt.activator.server.ActivatorServer`, sync 50 ms, endpoint polling 10 ms while requests
wait). The app is autoscaled with the keep-alive policy and a 0.3 s window, so it goes back to zero
between rounds.

Each round waits until the app is at zero (no pod, the public slice at the activator), sends one request
to the activator on a new connection and measures the time to the first byte of the answer. The split,
per round, is the activator's own histogram (``zerowatt_activator_scale_from_zero_seconds``: ``api`` =
the scale subresource written, ``pod_start`` = a ready endpoint seen, ``proxy`` = the first byte from the
pod) and the runtime's own start as the kubelet saw it (process spawned → ``/readyz`` 200). What the
operator and activator add is the end-to-end time minus the runtime's start and minus the pod's own time
for its first request (``zerowatt_request_duration_seconds_sum`` scraped from the new pod: the component
load and the first request's Python paths), which splits ``proxy`` into the runtime's part and the
activator's proxying. That remainder also holds the test kubelet's own delays (noticing the Deployment,
spawning, probing, publishing the slice). A control run (as many rounds) scales a second app by hand and
sends its first request straight to the fresh pod once the kubelet sees it ready, one control round after
each activator round (same load): the time outside the runtime's start on each path (request or scale
write → first byte, minus the pod's start) holds the same test-kubelet delays and the same first request
to a fresh pod, so their difference is what the activator adds. ``--warm N`` requests then
go through the activator with the pod up, against the same requests straight to the pod (proxy cost).
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.machine import describe

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))


def first_byte(host: str, port: int, header_host: str, timeout: float = 120.0) -> tuple[float, bytes]:
    """Seconds from connecting to the first byte of the answer to ``GET /hello`` (new connection)."""
    t0 = time.perf_counter()
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(f"GET /hello HTTP/1.1\r\nHost: {header_host}\r\nConnection: close\r\n\r\n".encode())
        first = s.recv(1)
        t1 = time.perf_counter()
        rest = b""
        while chunk := s.recv(65536):
            rest += chunk
    return t1 - t0, first + rest


def phase_sums(admin: str) -> dict[str, float]:
    import httpx

    out: dict[str, float] = {}
    for line in httpx.get(admin + "/metrics").text.splitlines():
        if line.startswith("zerowatt_activator_scale_from_zero_seconds_sum{"):
            phase = line.split('phase="', 1)[1].split('"', 1)[0]
            out[phase] = float(line.rpartition(" ")[2])
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def wait(predicate: Any, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not within {timeout} s")
        time.sleep(0.01)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks activator")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--warm", type=int, default=200)
    args = parser.parse_args(argv)

    import httpx
    from tests.activator.conftest import start_cluster
    from tests.activator.kubelet import Kubelet
    from tests.kube.emulator import EmulatorThread

    from zerowatt.activator.holding import HoldLimits
    from zerowatt.activator.podmetrics import parse_sample

    rows: list[dict[str, float]] = []
    control: list[dict[str, float]] = []
    warm: dict[str, list[float]] = {"activator": [], "direct": []}
    with EmulatorThread() as et:
        cluster = start_cluster(et, HoldLimits(), sync=0.05, drain=0.05, fast_poll=0.01)
        try:
            with Kubelet(et.url, poll=0.005, grace=0.05) as kubelet:
                cluster.add_app(
                    "web",
                    annotations={
                        "zerowatt.dev/autoscaling": "true",
                        "zerowatt.dev/policy": "keepalive",
                        "zerowatt.dev/policy-params": '{"keep_alive": 0.3}',
                    },
                )
                cluster.add_app("ctl", replicas=0)
                wait(cluster.synced, "first sync")
                host, port = cluster.server.address

                def control_round() -> None:
                    """The same fresh pod without the activator: scale written by hand, the first request
                    straight to the pod as soon as the kubelet sees it ready."""
                    n_before = len(kubelet.all_pods())
                    t0 = time.perf_counter()
                    cluster.api.patch("/apis/apps/v1/namespaces/apps/deployments/ctl/scale", {"spec": {"replicas": 1}})
                    wait(lambda: len(kubelet.all_pods()) > n_before, "control pod spawned")
                    pod = kubelet.all_pods()[n_before]
                    wait(lambda: pod.ready_at is not None, "control pod ready")
                    cdp = kubelet.deployments[("apps", "ctl")]
                    direct_first, answer = first_byte(pod.ip, cdp.http, "ctl.apps")
                    total = time.perf_counter() - t0
                    assert b" 200 " in answer.split(b"\r\n", 1)[0], answer[:200]
                    start = pod.start_seconds or 0.0
                    control.append({"runtime_start": start, "direct_first_byte": direct_first, "total": total})
                    cluster.api.patch("/apis/apps/v1/namespaces/apps/deployments/ctl/scale", {"spec": {"replicas": 0}})
                    wait(lambda: pod.stopped_at is not None, "control pod stopped")

                for _ in range(args.rounds):
                    wait(lambda: kubelet.live("apps", "web") == 0 and cluster.replicas("web") == 0, "at zero")
                    wait(
                        lambda: (
                            all(p.stopped_at for p in kubelet.all_pods())
                            and (cluster.public_slice("web") or {}).get("ports", [{}])[0].get("port") == port
                        ),
                        "slice at the activator",
                    )
                    before = phase_sums(cluster.admin_url)
                    pods_before = len(kubelet.all_pods())
                    total, answer = first_byte(host, port, "web.apps")
                    assert b" 200 " in answer.split(b"\r\n", 1)[0], answer[:200]
                    after = phase_sums(cluster.admin_url)
                    pods = kubelet.all_pods()[pods_before:]
                    wait(lambda p=pods: p and p[0].ready_at is not None, "pod ready")  # type: ignore[misc]
                    row = {k: after[k] - before.get(k, 0.0) for k in after}
                    row["first_byte"] = total
                    row["runtime_start"] = pods[0].start_seconds or 0.0
                    dp = kubelet.deployments[("apps", "web")]
                    scraped = httpx.get(f"http://{pods[0].ip}:{dp.admin}/metrics").text
                    # the pod's own time for its first request (component load included): the runtime's
                    row["runtime_first_request"] = parse_sample(scraped, 0.0).busy_seconds
                    row["activator_proxying"] = row["proxy"] - row["runtime_first_request"]
                    rows.append(row)
                    print(json.dumps({k: round(v * 1e3, 1) for k, v in row.items()}), flush=True)
                    control_round()  # interleaved: both paths see the same machine load
                if args.warm:
                    # pod up: the same request through the activator and straight to the pod
                    cluster.server.call(lambda: None)
                    _, _ = first_byte(host, port, "web.apps")
                    dp = kubelet.deployments[("apps", "web")]
                    pod = next(p for p in dp.pods if p.ready_at is not None)
                    for i in range(args.warm):
                        for kind in ("activator", "direct") if i % 2 else ("direct", "activator"):
                            target = (host, port) if kind == "activator" else (pod.ip, dp.http)
                            warm[kind].append(first_byte(*target, "web.apps")[0])
        finally:
            cluster.server.stop()

    def summary(key: str) -> dict[str, float]:
        values = [r[key] for r in rows]
        return {
            "p50_ms": pct(values, 0.5) * 1e3,
            "p99_ms": pct(values, 0.99) * 1e3,
            "mean_ms": statistics.fmean(values) * 1e3,
        }

    keys = ["first_byte", "api", "pod_start", "runtime_start", "proxy", "runtime_first_request", "activator_proxying"]
    result: dict[str, Any] = {k: summary(k) for k in keys}
    overhead = [r["first_byte"] - r["runtime_start"] - r["runtime_first_request"] for r in rows]
    result["overhead_first_byte_minus_runtime_start_and_first_request"] = {
        "p50_ms": pct(overhead, 0.5) * 1e3,
        "p99_ms": pct(overhead, 0.99) * 1e3,
    }
    activator_part = [r["api"] + max(0.0, r["activator_proxying"]) for r in rows]
    result["activator_api_plus_proxying"] = {
        "p50_ms": pct(activator_part, 0.5) * 1e3,
        "p99_ms": pct(activator_part, 0.99) * 1e3,
    }
    if control:
        for key in ("runtime_start", "direct_first_byte"):
            values = [c[key] for c in control]
            result[f"control_{key}"] = {"p50_ms": pct(values, 0.5) * 1e3, "p99_ms": pct(values, 0.99) * 1e3}
        # outside the runtime's start: scale write → first byte, minus the pod's start, per path
        act_rest = [r["first_byte"] - r["runtime_start"] for r in rows]
        ctl_rest = [c["total"] - c["runtime_start"] for c in control]
        result["activator_path_outside_runtime_start"] = {"p50_ms": pct(act_rest, 0.5) * 1e3}
        result["control_path_outside_runtime_start"] = {"p50_ms": pct(ctl_rest, 0.5) * 1e3}
        result["activator_adds_p50_ms"] = (pct(act_rest, 0.5) - pct(ctl_rest, 0.5)) * 1e3
    if warm["direct"]:
        result["warm_first_byte"] = {
            k: {"p50_ms": pct(v, 0.5) * 1e3, "p99_ms": pct(v, 0.99) * 1e3} for k, v in warm.items()
        }
    result["rounds"] = args.rounds
    result["machine"] = describe()
    result["command"] = "python -m benchmarks activator " + " ".join(argv)
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "activator.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
