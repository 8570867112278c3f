"""``zerowatt operator`` from cold start to 1,000 SpinApps' children, and at rest: controller CPU.

``python -m benchmarks operator [--apps N] [--idle SECONDS]``

The Kubernetes API is kmock's emulator (:class:`tests.operator.emulator.OperatorEmulator`: the test fixture,
with server-side apply creating objects) in a **separate process**, with the request log dropped and single
objects served by key (kmock otherwise scans its request log and all objects for every request). The
operator is the real command, ``python -m zerowatt operator --kubeconfig ...``, in its own process, so its
CPU — user + system of that process and its threads, read from ``/proc/PID/stat``, start-up and imports
included — is measured alone. Two runs, each against a fresh emulator holding N SpinApps and their
executor and nothing else:

1. ``--once``: one pass, exit (rusage of the exited child);
2. watch mode: CPU when the last child (3 per app) exists, when every app's status shows its children,
   then — once the watch echoes of those writes are consumed (a second without CPU use) — the CPU used
   over ``--idle`` seconds while nothing changes (as % of one core).

Goals (issue 12): cold start to all children ≤ 10 s CPU; steady state ≤ 1 % of a core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.machine import describe

GOAL_COLD_S = 10.0
GOAL_IDLE_CORE = 0.01
TICK = os.sysconf("SC_CLK_TCK")


def spinapp(i: int) -> dict[str, Any]:
    name = f"app-{i:04d}"
    return {
        "apiVersion": "core.spinkube.dev/v1alpha1",
        "kind": "SpinApp",
        "metadata": {
            "name": name,
            "namespace": "apps",
            "uid": f"uid-{i:08d}",
            "generation": 1,
            "resourceVersion": "1",
        },
        "spec": {
            "image": f"registry.example/{name}:v1",
            "executor": "containerd-shim-spin",
            "replicas": 1 + i % 3,
            "enableAutoscaling": i % 2 == 0,
            "resources": {"limits": {"cpu": "100m", "memory": "128Mi"}},
            "variables": [
                {"name": "greeting", "value": "hello"},
                {"name": "token", "valueFrom": {"secretKeyRef": {"name": f"{name}-creds", "key": "token"}}},
            ],
        },
    }


def _serve(apps: int, conn: Any) -> None:
    """Child process: the emulator with N SpinApps and one executor, answering counts over ``conn``."""
    import kmock
    from tests.operator.emulator import CRDS, OperatorEmulator

    class FastEmulator(OperatorEmulator):  # type: ignore[misc]
        async def _serve_fetch(self, request: Any) -> Any:
            key = (request.resource, request.namespace, request.name)
            if key not in self._objects or self._objects[key].deleted:
                raise kmock.KubernetesObjectNotFoundError()
            return self._objects[key].raw

        async def _serve_update(self, request: Any) -> Any:
            return self._objects[request.resource, request.namespace, request.name].last.raw

    def counts(emu: Any) -> dict[str, int]:
        out: dict[str, int] = {"status": 0}
        for (res, _ns, _name), obj in list(emu.objects.items()):
            if obj.deleted:
                continue
            out[res.plural] = out.get(res.plural, 0) + 1
            if res.plural == "spinapps" and (obj.raw.get("status") or {}).get("deploymentName"):
                ready = [c for c in obj.raw["status"].get("conditions") or [] if c.get("type") == "Ready"]
                if ready and ready[0].get("reason") != "Creating":
                    out["status"] += 1
        return out

    async def main() -> None:
        emu = FastEmulator(strict=False)
        emu.resources.load_bundled()
        for info in CRDS:
            emu.resources[info["resource"]] = {k: v for k, v in info.items() if k != "resource"}
        executor = {
            "apiVersion": "core.spinkube.dev/v1alpha1",
            "kind": "SpinAppExecutor",
            "metadata": {"name": "containerd-shim-spin", "namespace": "apps", "uid": "uid-exec"},
            "spec": {"createDeployment": True, "deploymentConfig": {"runtimeClassName": "wasmtime-spin-v2"}},
        }
        emu.add_namespace("apps")  # kopf serves a namespace once it has seen it
        emu.objects["core.spinkube.dev/v1alpha1/spinappexecutors", "apps", "containerd-shim-spin"] = executor
        for i in range(apps):
            emu.objects["core.spinkube.dev/v1alpha1/spinapps", "apps", f"app-{i:04d}"] = spinapp(i)
        async with emu, kmock.Server(emu) as server:
            conn.send(f"http://127.0.0.1:{server.port}")
            while True:
                await asyncio.sleep(0.05)
                emu.served.clear()
                if conn.poll():
                    conn.recv()
                    conn.send(counts(emu))

    asyncio.run(main())


def _cpu_of(pid: int) -> float:
    """User + system seconds of a running process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _kubeconfig(url: str, where: Path) -> Path:
    path = where / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: kmock\n"
        f"clusters:\n- name: kmock\n  cluster:\n    server: {url}\n"
        "users:\n- name: bench\n  user:\n    token: bench\n"
        "contexts:\n- name: kmock\n  context:\n    cluster: kmock\n    user: bench\n"
    )
    return path


class Emulator:
    def __init__(self, apps: int) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(apps, child), daemon=True)
        self.proc.start()
        self.url = str(self.conn.recv())

    def counts(self) -> dict[str, int]:
        self.conn.send("counts?")
        result: dict[str, int] = self.conn.recv()
        return result

    def close(self) -> None:
        self.proc.terminate()
        self.proc.join(5)


def _command(kubeconfig: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "zerowatt",
        "operator",
        "--kubeconfig",
        str(kubeconfig),
        "--runtime-image",
        "rt:1",
        *extra,
    ]


def run_once(apps: int, tmp: Path) -> dict[str, Any]:
    emu = Emulator(apps)
    try:
        before = os.times()
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            _command(_kubeconfig(emu.url, tmp), "--once", "--json"), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        out, _ = proc.communicate(timeout=600)
        wall = time.perf_counter() - t0
        after = os.times()
        cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
        counts = emu.counts()
    finally:
        emu.close()
    summary = json.loads(out)
    children = counts.get("deployments", 0) + counts.get("services", 0)
    return {"mode": "--once", "cpu_s": round(cpu, 3), "wall_s": round(wall, 2), "children": children, **summary}


def run_watch(apps: int, idle: float, tmp: Path, *, kopf: bool = False) -> dict[str, Any]:
    emu = Emulator(apps)
    proc = None
    try:
        t0 = time.perf_counter()
        kubeconfig = _kubeconfig(emu.url, tmp)
        if kopf:
            script = str(Path(__file__).with_name("kopf_spinapps.py"))
            command = [sys.executable, "-m", "kopf", "run", "--standalone", "-n", "apps", "--quiet", script]
        else:
            command = _command(kubeconfig)
        env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        want = 3 * apps
        cold_cpu = cold_wall = None
        while True:
            counts = emu.counts()
            children = counts.get("deployments", 0) + counts.get("services", 0)
            if cold_cpu is None and children >= want:
                cold_cpu, cold_wall = _cpu_of(proc.pid), time.perf_counter() - t0
            if cold_cpu is not None and (kopf or counts["status"] >= apps):
                settled_cpu, settled_wall = _cpu_of(proc.pid), time.perf_counter() - t0
                break
            if proc.poll() is not None or time.perf_counter() - t0 > 600:
                raise RuntimeError(f"operator did not converge: {counts}")
            time.sleep(0.05)
        # The watch echoes of the last writes (3 children + 1 status per app) reach the operator as fast as
        # the emulator streams them: steady state begins once a whole second passes without CPU use.
        quiet_since = time.perf_counter()
        last = _cpu_of(proc.pid)
        while time.perf_counter() - quiet_since < 120:
            time.sleep(1.0)
            now_cpu = _cpu_of(proc.pid)
            if now_cpu - last <= 1.0 / TICK:
                break
            last = now_cpu
        idle0, w0 = _cpu_of(proc.pid), time.perf_counter()
        time.sleep(idle)
        idle_cpu, idle_wall = _cpu_of(proc.pid) - idle0, time.perf_counter() - w0
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        emu.close()
    return {
        "mode": "kopf (watch)" if kopf else "watch",
        "cold_cpu_s": round(cold_cpu, 3),
        "cold_wall_s": round(cold_wall, 2),
        "settled_cpu_s": round(settled_cpu, 3),
        "settled_wall_s": round(settled_wall, 2),
        "idle_seconds": round(idle_wall, 1),
        "idle_cpu_s": round(idle_cpu, 3),
        "idle_core_fraction": round(idle_cpu / idle_wall, 5),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks operator", description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of steady state to measure")
    parser.add_argument("--kopf", action="store_true", help="also run the same decisions on kopf (kopf_spinapps.py)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        once = run_once(args.apps, Path(tmp))
        print(json.dumps(once), flush=True)
        watch = run_watch(args.apps, args.idle, Path(tmp))
        print(json.dumps(watch), flush=True)
        kopf = run_watch(args.apps, args.idle, Path(tmp), kopf=True) if args.kopf else None
        if kopf is not None:
            print(json.dumps(kopf), flush=True)
    print()
    print(f"{args.apps} SpinApps on kmock, `zerowatt operator` process CPU (user+sys, start-up included):")
    print(
        f"  --once pass:                   {once['cpu_s']:.2f} s CPU ({once['wall_s']:.1f} s wall), "
        f"{once['children']} children"
    )
    print(f"  watch: all children created    {watch['cold_cpu_s']:.2f} s CPU ({watch['cold_wall_s']:.1f} s wall)")
    print(f"  watch: all statuses settled    {watch['settled_cpu_s']:.2f} s CPU ({watch['settled_wall_s']:.1f} s wall)")
    print(
        f"  watch: nothing changing        {100 * watch['idle_core_fraction']:.3f} % of a core "
        f"over {watch['idle_seconds']} s"
    )
    if kopf is not None:
        print(f"  kopf: all children created     {kopf['cold_cpu_s']:.2f} s CPU ({kopf['cold_wall_s']:.1f} s wall)")
        print(f"  kopf: nothing changing         {100 * kopf['idle_core_fraction']:.3f} % of a core")
    print(f"goals: cold start ≤ {GOAL_COLD_S:.0f} s CPU, steady ≤ {100 * GOAL_IDLE_CORE:.0f} % of a core")
    print(f"machine: {describe()}")
    flags = " --kopf" if args.kopf else ""
    print(f"command: python -m benchmarks operator --apps {args.apps} --idle {args.idle:g}{flags}")
    ok = (
        once["cpu_s"] <= GOAL_COLD_S
        and watch["cold_cpu_s"] <= GOAL_COLD_S
        and watch["idle_core_fraction"] <= GOAL_IDLE_CORE
    )
    return 0 if ok else 1
