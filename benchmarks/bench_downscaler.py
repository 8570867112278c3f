"""One downscaler pass over 10,000 Deployments in 500 namespaces: controller CPU, measured honestly.

``python -m benchmarks downscaler [--workloads N] [--namespaces M]``

The Kubernetes API is kmock's emulator (the same :class:`tests.kube.emulator.Emulator` the tests use, with
the request log dropped and single objects served by key instead of by scanning all of them) running in a
**separate process**, so the CPU time measured here — ``time.process_time()`` of this process around
``Downscaler.run_pass`` — is the controller's alone: listing (paged, 500 a page) and JSON decoding,
deciding, building and sending the merge patches through the official ``kubernetes`` client, decoding the
answers. The emulator's own CPU is reported beside it, not added.

Three passes, as py-kube-downscaler was measured on the same kind of machine (docs/benchmarks.md):
1. every Deployment goes down (10,000 PATCHes), 2. nothing changes (lists only), 3. every one comes back.
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


def deployment(i: int, ns: str) -> dict[str, Any]:
    name = f"app-{i:05d}"
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
            "replicas": 1 + i % 3,
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
        "status": {"replicas": 1 + i % 3, "readyReplicas": 1 + i % 3},
    }


def _serve(workloads: int, namespaces: int, conn: Any) -> None:
    """Child process: kmock's emulator with the objects stored directly, serving until terminated."""
    import kmock
    from tests.kube.emulator import Emulator

    class FastEmulator(Emulator):  # type: ignore[misc]
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
                f"ns-{n:03d}", {"downscaler/uptime": "Mon-Fri 07:30-20:30 Europe/Berlin"} if n % 2 else None
            )
        for i in range(workloads):
            ns = f"ns-{i % namespaces:03d}"
            emu.objects["apps/v1/deployments", ns, f"app-{i:05d}"] = deployment(i, ns)
        async with emu, kmock.Server(emu) as server:
            conn.send(f"http://127.0.0.1:{server.port}")
            while True:
                await asyncio.sleep(0.5)
                emu.served.clear()
                if conn.poll():
                    conn.send(time.process_time())  # the emulator's CPU so far
                    conn.recv()

    asyncio.run(main())


def _emulator_cpu(conn: Any) -> float:
    conn.send("cpu?")  # answered at the next tick
    value = float(conn.recv())
    return value


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks downscaler", description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", type=int, default=10_000)
    parser.add_argument("--namespaces", type=int, default=500)
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
        api = KubeApi(client.ApiClient(cfg))
        matcher = schedule_matcher()
        # Saturday noon in Berlin: every Deployment is out of its uptime (the flag or its namespace's).
        saturday = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
        monday = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
        uptime = "Mon-Fri 07:30-20:30 Europe/Berlin"
        settings = make_settings(default_uptime=uptime, include_resources="deployments")
        ctl = Downscaler(api, settings, matcher, Options())
        for label, now in (("all scaled down", saturday), ("nothing changes", saturday), ("all scaled up", monday)):
            before_req, emu_before = api.requests, _emulator_cpu(parent)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            report = ctl.run_pass(now)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            emu_cpu = _emulator_cpu(parent) - emu_before
            row = {
                "pass": label,
                "controller_cpu_s": round(cpu, 3),
                "wall_s": round(wall, 3),
                "emulator_cpu_s": round(emu_cpu, 3),
            }
            row |= {"objects": report.objects, "changes": len(report.changes), "requests": api.requests - before_req}
            results.append(row)
            print(json.dumps(row), flush=True)
            assert not report.errors, report.errors[:3]

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

    down, same = results[0]["controller_cpu_s"], results[1]["controller_cpu_s"]
    print()
    print(f"{args.workloads} Deployments in {args.namespaces} namespaces, controller CPU per pass:")
    for r in results:
        print(
            f"  {r['pass']:<28} {r['controller_cpu_s']:>7.3f} s CPU"
            + (
                f"  ({r['wall_s']:.2f} s wall, emulator {r['emulator_cpu_s']:.2f} s CPU, {r['requests']} requests)"
                if "wall_s" in r
                else ""
            )
        )
    if args.workloads == 10_000:
        print(
            "  vs py-kube-downscaler (anchor figures, same kind of machine, not this run): "
            f"all down {PY_KUBE_DOWNSCALER_ALL_DOWN_S / down:.1f}x less CPU, "
            f"nothing changes {PY_KUBE_DOWNSCALER_NO_CHANGE_S / same:.1f}x less"
        )
    # The budget is judged on the steady-state pass (what every interval costs); the passes that change
    # every object are reported beside it, with their own verdict, because they are the expensive ones.
    change = max(r["controller_cpu_s"] for r in (results[0], results[2]))
    print(f"  budget {BUDGET_S} s, steady-state pass: {'met' if same <= BUDGET_S else 'NOT met'} ({same:.3f} s)")
    print(
        f"  budget {BUDGET_S} s, pass writing every object: "
        f"{'met' if change <= BUDGET_S else 'NOT met'} ({change:.3f} s)"
    )
    print(f"machine: {describe()}")
    print(f"command: python -m benchmarks downscaler {' '.join(argv)}".rstrip())
    os.makedirs("benchmarks/results", exist_ok=True)
    with open("benchmarks/results/downscaler.json", "w") as f:
        json.dump({"results": results, "machine": describe(), "argv": argv}, f, indent=2)
    return 0 if same <= BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
