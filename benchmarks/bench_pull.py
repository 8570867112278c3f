"""``zerowatt pull`` cost: what each app pod's init container pays before ``zerowatt up`` starts.

``python -m benchmarks pull [--runs 5] [--files 200]``. Against a real registry on loopback (Debian's
``docker-registry``; skipped when absent), with artifacts laid out as ``spin registry push`` lays them out:
- the files-c example (one Wasm layer, one data layer, one inlined file, the locked app);
- a synthetic app with ``--files`` static files of 4 KiB (one data layer each: Spin's per-file layout);
- the same app in Spin's archive layout (one tar.gz layer for all files).
Reported: wall and CPU time of ``pull()`` in this process (median of ``--runs``), and the wall time of the
whole CLI in a fresh interpreter (``python -m zerowatt pull``: start-up and imports included), whose
difference is what the interpreter and imports cost; and the in-process pull again with one layer fetched
at a time (``PARALLEL_FETCHES = 1``), in the same run. Loopback only, so the network costs nothing here:
the numbers are zerowatt's own work plus the registry's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.conftest import EXAMPLES, cli_env
from tests.oci.registry import BINARY, start_registry, stop
from tests.oci.spinpush import Artifact, lock_and_assemble, push

import zerowatt.oci.pull as pull_module
from benchmarks.machine import describe
from zerowatt.oci.pull import PullSettings, pull

RESULTS = Path(__file__).parent / "results" / "pull.json"


def synthetic(root: Path, files: int, archive: bool) -> Artifact:
    app = root / f"synthetic-{files}-{archive}"
    (app / "static").mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (app / "static" / f"f{i:04d}.txt").write_bytes(bytes([i % 251]) * 4096)
    (app / "files.wasm").write_bytes((EXAMPLES / "files-c" / "files.wasm").read_bytes())
    manifest = (EXAMPLES / "files-c" / "spin.toml").read_text().replace('name = "files-c"', 'name = "synthetic"')
    (app / "spin.toml").write_text(manifest.split("[component.files.build]")[0])
    return lock_and_assemble(app / "spin.toml", archive=archive)


def measure(ref: str, work: Path, runs: int) -> dict[str, float]:
    walls, cpus, clis = [], [], []
    settings = PullSettings(pull_secrets=work / "none")
    for i in range(runs):
        dest = work / f"in-{i}"
        wall, cpu = time.perf_counter(), time.process_time()
        pull(ref, dest, settings)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    for i in range(max(1, runs // 2)):
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "zerowatt", "pull", ref, "--to", str(work / f"cli-{i}"), "--pull-secrets", "/x"],
            capture_output=True,
            text=True,
            env=cli_env(),
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        clis.append(time.perf_counter() - start)
    return {
        "pull_wall_ms": statistics.median(walls) * 1e3,
        "pull_cpu_ms": statistics.median(cpus) * 1e3,
        "cli_wall_ms": statistics.median(clis) * 1e3,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks pull")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--files", type=int, default=200)
    args = parser.parse_args(argv)
    if not Path(BINARY).exists():
        print("docker-registry is not installed (make setup installs it); skipped")
        return 0
    results: dict[str, object] = {"machine": describe(), "command": "python -m benchmarks pull " + " ".join(argv)}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        registry = start_registry(work / "registry")
        try:
            cases = {
                "files-c": lock_and_assemble(EXAMPLES / "files-c" / "spin.toml"),
                f"{args.files} files, a layer each": synthetic(work, args.files, archive=False),
                f"{args.files} files, archive layer": synthetic(work, args.files, archive=True),
            }
            for i, (name, artifact) in enumerate(cases.items()):
                push(registry.base, f"bench/app{i}", "v1", artifact)
                layers = len(artifact.all_layers())
                row = measure(f"{registry.host}/bench/app{i}:v1", work / f"case{i}", args.runs)
                parallel = pull_module.PARALLEL_FETCHES
                pull_module.PARALLEL_FETCHES = 1  # the same pulls one layer at a time, in the same run
                sequential = measure(f"{registry.host}/bench/app{i}:v1", work / f"seq{i}", args.runs)
                pull_module.PARALLEL_FETCHES = parallel
                row["sequential_pull_wall_ms"] = sequential["pull_wall_ms"]
                results[name] = {"layers": layers, **row}
                print(
                    f"{name:32s} {layers:4d} layers  pull {row['pull_wall_ms']:7.1f} ms wall "
                    f"{row['pull_cpu_ms']:7.1f} ms CPU   CLI {row['cli_wall_ms']:7.1f} ms   "
                    f"one layer at a time {row['sequential_pull_wall_ms']:7.1f} ms",
                    flush=True,
                )
        finally:
            stop(registry)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(results["machine"])
    return 0
