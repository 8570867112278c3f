"""One downscaler pass over 10,000 Deployments in 500 namespaces: controller CPU, measured honestly.

``python -m benchmarks downscaler [--workloads N] [--namespaces M]``: passes inside this process;
``python -m benchmarks downscaler --process [--sizes 0,1000,10000]``: whole ``zerowatt downscaler --once``
processes (start-up included: CPU user+sys, wall, peak RSS, API requests per pass), as py-kube-downscaler
is measured (issue 14).

The Kubernetes API is kmock's emulator (the same :class:`tests.kube.emulator.Emulator` the tests use, with
the request log dropped and single objects served by key instead of by scanning all of them) running in a
**separate process**, so the CPU time measured here — ``time.process_time()`` of this process around
``Downscaler.run_pass`` — is the controller's alone: listing (paged, 500 a page) and JSON decoding,
deciding, building and sending the merge patches, decoding the answers, and the list of pods' metadata that
looks for ``downscaler/force-uptime`` (one running pod per Deployment). The emulator's own CPU is reported
beside it, not added.

Three passes, as py-kube-downscaler was measured on the same kind of machine (docs/benchmarks.md):
1. every Deployment goes down (10,000 PATCHes), 2. nothing changes (lists only), 3. every one comes back —
run twice in the same process and against the same emulator: first through the official client's urllib3
pool one request at a time (``--transport urllib3``, the write path before the lean client: the "before"),
then through :mod:`zerowatt.kube.wire`, pipelined (the default: the "after").
Besides, the pure decision alone over the same in-memory objects (no HTTP) shows how much of a pass is
wire and client cost. The machine is shared and noisy: compare within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

from benchmarks.machine import describe

#: py-kube-downscaler 26.4, one --once pass, 10,000 Deployments on kmock (shared/notes/anchor-figures.md).
PY_KUBE_DOWNSCALER_ALL_DOWN_S = 15.8
PY_KUBE_DOWNSCALER_NO_CHANGE_S = 3.2
BUDGET_S = 2.0


def deployment(i: int, ns: str, replicas: int | None = None) -> dict[str, Any]:
    name = f"app-{i:05d}"
    count = 1 + i % 3 if replicas is None else replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": f"00000000-0000-0000-0000-{i:012d}",
            "resourceVersion": str(1000 + i),
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"app": name, "team": f"team-{i % 17}"},
            "annotations": {"deployment.kubernetes.io/revision": "3"},
        },
        "spec": {
            "replicas": count,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "main",
                            "image": f"registry.example/{name}:1.0",
                            "ports": [{"containerPort": 8080}],
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "128Mi"},
                                "limits": {"memory": "256Mi"},
                            },
                        }
                    ]
                },
            },
        },
        "status": {"replicas": count, "readyReplicas": count},
    }


def pod(i: int, ns: str) -> dict[str, Any]:
    """A running pod of Deployment ``i``: what a metadata-only list returns, plus its phase."""
    name = f"app-{i:05d}-7d9f8c6b5-x{i % 97:02d}ab"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": f"10000000-0000-0000-0000-{i:012d}",
            "resourceVersion": str(50000 + i),
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"app": f"app-{i:05d}", "pod-template-hash": "7d9f8c6b5"},
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"app-{i:05d}-7d9f8c6b5", "controller": True}
            ],
        },
        "status": {"phase": "Running"},
    }


def _serve(workloads: int, namespaces: int, conn: Any, replicas: int | None = None, ns_uptime: bool = True) -> None:
    """Child process: kmock's emulator with the objects stored directly, serving until terminated.

    Asked ``"cpu?"`` it answers its CPU time so far, ``"requests?"`` the number of requests it has served.
    """
    import kmock
    from tests.kube.emulator import Emulator

    served = [0]

    class FastEmulator(Emulator):  # type: ignore[misc]
        async def __call__(self, raw_request: Any) -> Any:
            served[0] += 1
            return await super().__call__(raw_request)

        # kmock finds the object of a PATCH/GET by scanning every stored object; by key is O(1).
        async def _serve_fetch(self, request: Any) -> Any:
            obj = self._objects[request.resource, request.namespace, request.name]
            if obj.deleted:
                raise kmock.KubernetesObjectNotFoundError()
            return obj.raw

        async def _serve_update(self, request: Any) -> Any:
            return self._objects[request.resource, request.namespace, request.name].last.raw

    async def main() -> None:
        emu = FastEmulator(strict=False)
        emu.resources.load_bundled()
        for n in range(namespaces):
            emu.add_namespace(
                f"ns-{n:03d}",
                {"downscaler/uptime": "Mon-Fri 07:30-20:30 Europe/Berlin"} if n % 2 and ns_uptime else None,
            )
        for i in range(workloads):
            ns = f"ns-{i % namespaces:03d}"
            emu.objects["apps/v1/deployments", ns, f"app-{i:05d}"] = deployment(i, ns, replicas)
            p = pod(i, ns)
            emu.objects["v1/pods", ns, p["metadata"]["name"]] = p
        async with emu, kmock.Server(emu) as server:
            conn.send(f"http://127.0.0.1:{server.port}")
            while True:
                await asyncio.sleep(0.5)
                emu.served.clear()
                if conn.poll():
                    question = conn.recv()
                    conn.send(served[0] if question == "requests?" else time.process_time())

    asyncio.run(main())


def _emulator_cpu(conn: Any) -> float:
    conn.send("cpu?")  # answered at the next tick
    value = float(conn.recv())
    return value


def _emulator_requests(conn: Any) -> int:
    conn.send("requests?")
    return int(conn.recv())


KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{{name: kmock, cluster: {{server: "{url}"}}}}]
users: [{{name: bench, user: {{token: bench-token}}}}]
contexts: [{{name: bench, context: {{cluster: kmock, user: bench}}}}]
current-context: bench
"""

#: py-kube-downscaler 26.4 on the same emulator and population, whole process (issue 14): controller CPU.
UPSTREAM_PROCESS = {
    (10_000, "writing"): 46.0,
    (1_000, "no change"): 1.4,
    (0, "empty cluster"): 0.7,
}
UPSTREAM_RSS_MIB_10K = 411


def run_process(command: list[str], env: dict[str, str]) -> tuple[float, float, float, int, str]:
    """Run ``command`` to its end: (CPU user+sys s, wall s, peak RSS MiB, exit code, stderr tail)."""
    import subprocess

    t0 = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()  # read before waiting: the logs must not fill the pipe
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    tail = err.decode(errors="replace")[-600:]
    return usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss / 1024, proc.returncode, tail


def process_main(argv: list[str]) -> int:
    """Whole ``zerowatt downscaler --once`` processes, start-up included, against the emulator (issue 14)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks downscaler --process")
    parser.add_argument("--sizes", default="0,1000,10000", help="Deployments per emulator (0: an empty cluster)")
    parser.add_argument("--namespaces", type=int, default=500)
    parser.add_argument("--command", default=f"{sys.executable} -m zerowatt downscaler")
    args = parser.parse_args(argv)
    import compileall
    import shlex
    import tempfile

    import zerowatt

    # As installed from a wheel (pip writes the .pyc files): this machine sets PYTHONDONTWRITEBYTECODE, and
    # compiling zerowatt's sources at every start would be counted as ≈0.1 s of start-up CPU.
    compileall.compile_dir(os.path.dirname(zerowatt.__file__), quiet=1)
    rows: list[dict[str, Any]] = []
    ctx = mp.get_context("spawn")
    for size in (int(x) for x in args.sizes.split(",")):
        namespaces = max(1, min(args.namespaces, size // 20)) if size else 1
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_serve, args=(size, namespaces, child, 2, False), daemon=True)
        proc.start()
        url = parent.recv()
        with tempfile.TemporaryDirectory() as tmp:
            config = os.path.join(tmp, "kubeconfig")
            with open(config, "w") as f:
                f.write(KUBECONFIG.format(url=url))
            env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "DEFAULT_", "DOWNTIME"))}
            env |= {"KUBECONFIG": config, "HOME": tmp}
            passes = (
                [("empty cluster", "never")]
                if size == 0
                else [("writing", "never"), ("no change", "never"), ("writing up", "always")]
            )
            try:
                for label, uptime in passes:
                    before = _emulator_requests(parent)
                    cmd = [*shlex.split(args.command), "--once", "--default-uptime", uptime]
                    cpu, wall, rss, code, tail = run_process(cmd, env)
                    requests = _emulator_requests(parent) - before
                    row = {
                        "deployments": size,
                        "namespaces": namespaces,
                        "pass": label,
                        "cpu_s": round(cpu, 3),
                        "wall_s": round(wall, 3),
                        "peak_rss_mib": round(rss, 1),
                        "requests": requests,
                        "exit": code,
                    }
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                    if code != 0:
                        print(tail, file=sys.stderr)
            finally:
                proc.terminate()
                proc.join(5)

    print()
    print("zerowatt downscaler --once, whole process (start-up included), against kmock in another process:")
    print(
        f"  {'Deployments':>11} {'pass':<14} {'CPU s':>7} {'wall s':>7} {'peak RSS':>9} {'requests':>8}  upstream CPU"
    )
    for r in rows:
        ref = UPSTREAM_PROCESS.get((r["deployments"], r["pass"]))
        vs = f"  {ref:g} s → {ref / r['cpu_s']:.1f}× less" if ref else ""
        print(
            f"  {r['deployments']:>11} {r['pass']:<14} {r['cpu_s']:>7.3f} {r['wall_s']:>7.2f} "
            f"{r['peak_rss_mib']:>6.0f} MiB {r['requests']:>8}{vs}"
        )
    big = [r["peak_rss_mib"] for r in rows if r["deployments"] == 10_000]
    if big:
        print(f"  peak RSS at 10k: {max(big):.0f} MiB (py-kube-downscaler: {UPSTREAM_RSS_MIB_10K} MiB)")
    print(f"machine: {describe()}")
    print(f"command: python -m benchmarks downscaler --process {' '.join(argv)}".rstrip())
    os.makedirs("benchmarks/results", exist_ok=True)
    with open("benchmarks/results/downscaler_process.json", "w") as f:
        json.dump({"results": rows, "machine": describe(), "argv": argv}, f, indent=2)
    return 0 if all(r["exit"] == 0 for r in rows) else 1


def main(argv: list[str]) -> int:
    if argv[:1] == ["--process"]:
        return process_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m benchmarks downscaler", description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", type=int, default=10_000)
    parser.add_argument("--namespaces", type=int, default=500)
    parser.add_argument(
        "--transports", default="urllib3,lean", help="write paths to run, in order (before,after); the last is judged"
    )
    args = parser.parse_args(argv)

    # Log as the CLI does (one formatted line per change), into /dev/null so 10,000 lines do not flood
    # the terminal: the formatting is counted, the terminal is not.
    import logging

    from kubernetes import client

    from zerowatt.kube.api import KubeApi
    from zerowatt.kube.controller import Downscaler, Options
    from zerowatt.kube.decide import NamespaceView, decide
    from zerowatt.kube.kinds import KINDS
    from zerowatt.kube.logs import TextFormatter
    from zerowatt.kube.matcher import schedule_matcher
    from zerowatt.kube.settings import make_settings

    logger = logging.getLogger("zerowatt.kube")
    sink = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115
    sink.setFormatter(TextFormatter())
    logger.addHandler(sink)
    logger.setLevel(logging.INFO)
    logger.propagate = False

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(args.workloads, args.namespaces, child), daemon=True)
    t0 = time.perf_counter()
    proc.start()
    url = parent.recv()
    print(
        f"emulator ready in another process (pid {proc.pid}) after {time.perf_counter() - t0:.1f} s: {url}",
        file=sys.stderr,
    )
    results: list[dict[str, Any]] = []
    try:
        cfg = client.Configuration()
        cfg.host = url
        matcher = schedule_matcher()
        # Saturday noon in Berlin: every Deployment is out of its uptime (the flag or its namespace's).
        saturday = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
        monday = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
        uptime = "Mon-Fri 07:30-20:30 Europe/Berlin"
        settings = make_settings(default_uptime=uptime, include_resources="deployments")
        for transport in args.transports.split(","):
            api = KubeApi(client.ApiClient(cfg), transport=transport)
            ctl = Downscaler(api, settings, matcher, Options())
            for label, now in (("all scaled down", saturday), ("nothing changes", saturday), ("all scaled up", monday)):
                before_req, emu_before = api.requests, _emulator_cpu(parent)
                cpu0, wall0 = time.process_time(), time.perf_counter()
                report = ctl.run_pass(now)
                cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
                emu_cpu = _emulator_cpu(parent) - emu_before
                row = {
                    "transport": transport,
                    "pass": label,
                    "controller_cpu_s": round(cpu, 3),
                    "wall_s": round(wall, 3),
                    "emulator_cpu_s": round(emu_cpu, 3),
                }
                row |= {
                    "objects": report.objects,
                    "changes": len(report.changes),
                    "requests": api.requests - before_req,
                }
                results.append(row)
                print(json.dumps(row), flush=True)
                assert not report.errors, report.errors[:3]
                assert len(report.changes) == (0 if label == "nothing changes" else args.workloads), label

        # The pure decision over the same objects, no HTTP: what the wire and the client cost is the rest.
        objects = list(api.list("/apis/apps/v1/deployments"))
        views = {f"ns-{n:03d}": NamespaceView(f"ns-{n:03d}") for n in range(args.namespaces)}
        kind = KINDS["deployments"]
        cpu0 = time.process_time()
        actions = [
            decide(o, kind, views[o["metadata"]["namespace"]], settings, saturday, matcher).action for o in objects
        ]
        pure = time.process_time() - cpu0
        row = {
            "transport": "-",
            "pass": "decision only (in memory)",
            "controller_cpu_s": round(pure, 3),
            "objects": len(objects),
            "down": actions.count("down"),
        }
        results.append(row)
        print(json.dumps(row), flush=True)
    finally:
        proc.terminate()
        proc.join(5)

    judged = [r for r in results if r["transport"] == args.transports.split(",")[-1]]
    down, same, up = (r["controller_cpu_s"] for r in judged)
    print()
    print(f"{args.workloads} Deployments in {args.namespaces} namespaces, controller CPU per pass:")
    for r in results:
        print(
            f"  {r['transport']:<8} {r['pass']:<28} {r['controller_cpu_s']:>7.3f} s CPU"
            + (
                f"  ({r['wall_s']:.2f} s wall, emulator {r['emulator_cpu_s']:.2f} s CPU, {r['requests']} requests)"
                if "wall_s" in r
                else ""
            )
        )
    before = [r for r in results if r["transport"] == "urllib3"]
    if before and before is not judged and len(before) == 3:
        ratios = ", ".join(
            f"{b['pass']} {b['controller_cpu_s'] / a['controller_cpu_s']:.1f}x"
            for b, a in zip(before, judged, strict=True)
        )
        print(f"  before/after (urllib3 / lean, this run): {ratios}")
    if args.workloads == 10_000:
        print(
            "  vs py-kube-downscaler (anchor figures, same kind of machine, not this run): "
            f"all down {PY_KUBE_DOWNSCALER_ALL_DOWN_S / down:.1f}x less CPU, "
            f"nothing changes {PY_KUBE_DOWNSCALER_NO_CHANGE_S / same:.1f}x less"
        )
    worst = max(down, same, up)
    print(f"  budget {BUDGET_S} s for every pass: {'met' if worst <= BUDGET_S else 'NOT met'} (worst {worst:.3f} s)")
    print(f"machine: {describe()}")
    print(f"command: python -m benchmarks downscaler {' '.join(argv)}".rstrip())
    os.makedirs("benchmarks/results", exist_ok=True)
    with open("benchmarks/results/downscaler.json", "w") as f:
        json.dump({"results": results, "machine": describe(), "argv": argv}, f, indent=2)
    return 0 if worst <= BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
