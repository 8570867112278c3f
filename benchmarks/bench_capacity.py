"""The capacity report at the scale of a large real cluster: 5,000 nodes and 150,000 pods.

``python -m benchmarks capacity [--nodes 5000] [--pods 150000] [--also 500]``

The generator builds a snapshot as ``kubectl get nodes,pods,pdb,deploy,sts,ds -A -o json`` writes it (three
node pools in three zones, one of them GPU nodes tainted for GPU pods; three DaemonSets on every node;
Deployments of 1–60 replicas, some with a node selector, zone spread, hostname anti-affinity, PDBs, emptyDir
volumes; nodes filled to a random 20–90 % of CPU) and the usage summaries per container (base, peak, upper
bound, median, right-sizer target), written once as JSON + ``.npz`` into ``.zerowatt-cache/bench_capacity/``.
Each scale then runs in a fresh subprocess: decode and parse the snapshot (reported on its own), then the
breakdown, the watts and the three scale-downs (zerowatt on today's and right-sized requests, and
cluster-autoscaler's rule) with the JSON document; it reports wall and CPU time and the peak RSS of that
process. Target (issue 13): breakdown + both scenarios ≤ 10 s and ≤ 2 GiB at 5,000 nodes / 150,000 pods.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".zerowatt-cache" / "bench_capacity"


def generate(nodes: int, pods: int, seed: int = 13) -> tuple[dict[str, Any], dict[str, Any]]:
    """The snapshot document and the usage arrays (per container row, in the parser's row order)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    pools = [("general", "m6i.4xlarge", 16, 64), ("compute", "c6i.8xlarge", 32, 64), ("gpu", "g5.4xlarge", 16, 64)]
    items: list[dict[str, Any]] = []
    node_pool = rng.choice(3, size=nodes, p=[0.6, 0.37, 0.03])
    node_free = np.zeros((nodes, 2))
    for i in range(nodes):
        name, itype, cpu, mem = pools[node_pool[i]]
        alloc = {"cpu": f"{cpu * 1000 - 200}m", "memory": f"{mem - 2}Gi", "pods": "250"}
        spec: dict[str, Any] = {}
        if name == "gpu":
            alloc["nvidia.com/gpu"] = "1"
            spec["taints"] = [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]
        items.append(
            {
                "kind": "Node",
                "metadata": {
                    "name": f"ip-10-{i // 250}-{i % 250}.eu-west-1.compute.internal",
                    "labels": {
                        "kubernetes.io/hostname": f"ip-10-{i // 250}-{i % 250}",
                        "node.kubernetes.io/instance-type": itype,
                        "topology.kubernetes.io/zone": zones[i % 3],
                        "pool": name,
                    },
                },
                "spec": spec,
                "status": {"capacity": {**alloc, "cpu": str(cpu)}, "allocatable": alloc},
            }
        )
        node_free[i] = (cpu * 1000 - 200, (mem - 2) * 1024)
    names = [it["metadata"]["name"] for it in items]
    # Fill each node to a random share of its CPU.
    target_fill = rng.uniform(0.3, 0.95, nodes)
    budget = node_free[:, 0] * target_fill
    ds_pods = 3 * nodes
    app_pods = pods - ds_pods
    cpu_choices = np.array([50, 100, 100, 250, 250, 500, 1000])
    mem_choices = np.array([64, 128, 256, 256, 512, 1024, 2048])
    # Workloads until the pod budget is spent.
    sizes = []
    left = app_pods
    while left > 0:
        k = int(min(left, rng.integers(1, 61)))
        sizes.append(k)
        left -= k
    order = rng.permutation(nodes)
    cursor = 0
    rows_usage = []
    for d in range(3):
        items.append({"kind": "DaemonSet", "metadata": {"name": f"agent-{d}", "namespace": "kube-system"}})
        for i in range(nodes):
            items.append(
                {
                    "kind": "Pod",
                    "metadata": {
                        "name": f"agent-{d}-{i}",
                        "namespace": "kube-system",
                        "labels": {"app": f"agent-{d}"},
                        "ownerReferences": [{"kind": "DaemonSet", "name": f"agent-{d}", "controller": True}],
                    },
                    "spec": {
                        "nodeName": names[i],
                        "tolerations": [{"operator": "Exists"}],
                        "containers": [{"name": "agent", "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}}}],
                    },
                    "status": {"phase": "Running"},
                }
            )
            rows_usage.append((20.0, 45.0, 55.0, 30.0, 40.0, 40.0, 60.0, 70.0, 50.0, 60.0))
    node_free[:, 0] -= 150
    node_free[:, 1] -= 192
    budget -= 150
    for w, k in enumerate(sizes):
        ns = f"team-{w % 40:02d}"
        name = f"svc-{w:05d}"
        gpu = w % 97 == 0
        pool = "gpu" if gpu else ("compute" if w % 5 == 0 else None)
        cpu = int(cpu_choices[rng.integers(0, cpu_choices.size)])
        mem = int(mem_choices[rng.integers(0, mem_choices.size)])
        labels = {"app": name}
        spec: dict[str, Any] = {}
        if pool:
            spec["nodeSelector"] = {"pool": pool}
        if gpu:
            spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
            k = min(k, 2)
        if w % 20 == 1:
            spec["affinity"] = {
                "podAntiAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {"labelSelector": {"matchLabels": labels}, "topologyKey": "kubernetes.io/hostname"}
                    ]
                }
            }
        if w % 10 == 2:
            spec["topologySpreadConstraints"] = [
                {
                    "maxSkew": max(1, k // 3),
                    "topologyKey": "topology.kubernetes.io/zone",
                    "whenUnsatisfiable": "DoNotSchedule",
                    "labelSelector": {"matchLabels": labels},
                }
            ]
        if w % 33 == 3:
            spec["volumes"] = [{"name": "cache", "emptyDir": {}}]
        items.append({"kind": "Deployment", "metadata": {"name": name, "namespace": ns}})
        if w % 5 == 4:
            items.append(
                {
                    "kind": "PodDisruptionBudget",
                    "metadata": {"name": name, "namespace": ns},
                    "spec": {"selector": {"matchLabels": labels}, "maxUnavailable": 1},
                    "status": {"disruptionsAllowed": 1},
                }
            )
        used_nodes: set[int] = set()
        for r in range(k):
            # next node (in a shuffled ring) of the right pool with budget left
            for _ in range(nodes):
                n = int(order[cursor % nodes])
                cursor += 1
                ok = pools[node_pool[n]][0] == pool if pool else node_pool[n] != 2
                if "affinity" in spec and n in used_nodes:
                    ok = False
                if ok and budget[n] >= cpu and node_free[n, 0] >= cpu and node_free[n, 1] >= mem:
                    break
            else:
                break
            if gpu and node_free[n, 0] < cpu:
                break
            budget[n] -= cpu
            node_free[n] -= (cpu, mem)
            used_nodes.add(n)
            items.append(
                {
                    "kind": "Pod",
                    "metadata": {
                        "name": f"{name}-7d4b9c8f5-{r:05d}",
                        "namespace": ns,
                        "labels": {**labels, "pod-template-hash": "7d4b9c8f5"},
                        "ownerReferences": [{"kind": "ReplicaSet", "name": f"{name}-7d4b9c8f5", "controller": True}],
                    },
                    "spec": {
                        "nodeName": names[n],
                        **spec,
                        "containers": [
                            {
                                "name": "app",
                                "resources": {
                                    "requests": {"cpu": f"{cpu}m", "memory": f"{mem}Mi"},
                                    **({"limits": {"nvidia.com/gpu": "1"}} if gpu else {}),
                                },
                            }
                        ],
                    },
                    "status": {"phase": "Running"},
                }
            )
            b = cpu * rng.uniform(0.05, 0.4)
            m = mem * 2**20 * rng.uniform(0.2, 0.6)
            rows_usage.append((b, b * 2.2, b * 3.0, b * 1.4, b * 2.6, m, m * 1.3, m * 1.6, m * 1.1, m * 1.5))
    doc = {"apiVersion": "v1", "kind": "List", "items": items}
    arr = np.asarray(rows_usage, dtype=np.float64)
    return doc, {"usage": arr}


def _child(snapshot: Path, usage: Path) -> None:
    """One measured run: parse, then each phase of :func:`zerowatt.capacity.report.analyse`, timed apart."""
    import numpy as np

    from zerowatt.capacity import consolidate as cons
    from zerowatt.capacity.breakdown import compute
    from zerowatt.capacity.pack import CLUSTER_AUTOSCALER, ZEROWATT
    from zerowatt.capacity.power import attribute, node_models
    from zerowatt.capacity.report import Analysis, document
    from zerowatt.capacity.selectors import placement_matrix
    from zerowatt.capacity.snapshot import parse_snapshot
    from zerowatt.capacity.usage import Usage
    from zerowatt.energy.facility import Facility

    clock = {"wall": time.perf_counter, "cpu": time.process_time}
    marks: list[tuple[str, dict[str, float]]] = []

    def mark(name: str) -> None:
        marks.append((name, {k: f() for k, f in clock.items()}))

    mark("start")
    doc = json.loads(snapshot.read_bytes())
    snap = parse_snapshot(doc, str(snapshot))
    del doc
    mark("parse")
    cluster = snap.cluster
    u = np.load(usage)["usage"]
    assert u.shape[0] == cluster.n_rows, (u.shape, cluster.n_rows)
    us = Usage(u[:, [0, 5]], u[:, [1, 6]], u[:, [2, 7]], u[:, [3, 8]], u[:, [4, 9]])
    facility = Facility()
    models = node_models(cluster.node_labels, cluster.node_cpus)
    bd = compute(cluster, us)
    watts = attribute(
        bd, cluster.pod_node[bd.row_pod], cluster.alloc[:, 0].astype(np.float64), models, cluster.node_cpus
    )
    pmask = placement_matrix(cluster.placements, cluster.node_names, cluster.node_labels, cluster.node_taints)
    pod_typical = np.bincount(bd.row_pod, weights=bd.row_typical, minlength=cluster.n_pods)
    mark("breakdown")

    def scenario(name: str, req: np.ndarray, policy: cons.Policy) -> cons.Scenario:
        res = cons.pack(cluster, req, policy, pmask)
        sv = cons.savings(cluster, res, pod_typical, models, facility, None)
        return cons.Scenario(name, policy, res, sv, cluster.n_nodes, cons.lower_bound(cluster, req), req.sum(axis=0))

    req = cluster.pod_requests()
    today = scenario("requests", req, ZEROWATT)
    mark("requests")
    rs = scenario("rightsized", cluster.pod_requests(cons.rightsized_rows(cluster.row_request, us.target)), ZEROWATT)
    mark("rightsized")
    ca = scenario("cluster-autoscaler", req, CLUSTER_AUTOSCALER)
    mark("autoscaler")
    result = cons.Consolidation(today, rs, ca, cons.compare(today.result, ca.result, cluster.node_names))
    out = document(Analysis(cluster, us, bd, watts, models, result, facility, None))
    mark("document")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    phases = {name: {k: round(v[k] - marks[i][1][k], 2) for k in clock} for i, (name, v) in enumerate(marks[1:])}
    target = {k: round(sum(phases[p][k] for p in ("breakdown", "requests", "rightsized")), 2) for k in clock}
    print(
        json.dumps(
            {
                "nodes": cluster.n_nodes,
                "pods": cluster.n_pods,
                "rows": cluster.n_rows,
                "phases": phases,
                "breakdown_and_both_scenarios": target,
                "peak_rss_gib": round(rss, 2),
                "off_requests": len(out["consolidation"]["requests"]["nodes_off"]),
                "off_rightsized": len(out["consolidation"]["rightsized"]["nodes_off"]),
                "off_autoscaler": len(out["consolidation"]["cluster_autoscaler"]["nodes_off"]),
                "lower_bound": out["consolidation"]["requests"]["lower_bound_nodes"],
            }
        )
    )


def run_scale(nodes: int, pods: int, regen: bool) -> dict[str, Any]:
    import numpy as np

    CACHE.mkdir(parents=True, exist_ok=True)
    snap = CACHE / f"snapshot-{nodes}-{pods}.json"
    usage = CACHE / f"usage-{nodes}-{pods}.npz"
    if regen or not snap.exists() or not usage.exists():
        t = time.perf_counter()
        doc, u = generate(nodes, pods)
        snap.write_text(json.dumps(doc, separators=(",", ":")))
        np.savez(usage, usage=u["usage"])
        print(f"generated {snap.name} ({snap.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t:.1f} s")
    r = subprocess.run(
        [sys.executable, __file__, "--child", str(snap), str(usage)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    result: dict[str, Any] = json.loads(r.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str]) -> int:
    from benchmarks.machine import describe

    ap = argparse.ArgumentParser(prog="python -m benchmarks capacity")
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--pods", type=int, default=150_000)
    ap.add_argument("--also", type=int, default=500, help="a smaller scale (nodes; pods × the same ratio)")
    ap.add_argument("--regen", action="store_true")
    args = ap.parse_args(argv)
    print(f"machine: {describe()}")
    scales = [(args.also, args.pods * args.also // args.nodes)] if args.also else []
    scales.append((args.nodes, args.pods))
    ok = True
    for n, p in scales:
        res = run_scale(n, p, args.regen)
        print(json.dumps(res))
        if n == args.nodes:
            ok = res["breakdown_and_both_scenarios"]["wall"] <= 10.0 and res["peak_rss_gib"] <= 2.0
    print("target (≤ 10 s, ≤ 2 GiB):", "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        sys.path.insert(0, str(ROOT / "src"))
        _child(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        sys.path.insert(0, str(ROOT))
        sys.exit(main(sys.argv[1:]))
