"""``zerowatt up --policy NAME``: the live autoscaler in a real host on a free loopback port, real HTTP requests,
real wasmtime (WAGI in-process, wasi:http through ``wasmtime serve`` children found in /proc).

Policy windows are made small with ``--policy-option`` (``compression`` divides every window), so each
scenario takes a second or two. Waits are "until" loops with generous deadlines, never timing assertions.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.conftest import EXAMPLES, cli_env, free_port, invoke_cli
from tests.host.serving import metric, wait_ready

PROBE = Path(__file__).resolve().parents[1] / "wasm" / "components" / "probe.wat"

pytestmark = pytest.mark.timeout(120)

#: Small windows per policy: every one scales to zero within about a second of the last request.
POLICIES: dict[str, list[str]] = {
    "kpa": ["compression=60"],  # stable window 1 s, grace 0.5 s, tick 33 ms
    "keepalive": ["keep_alive=0.3"],
    "hybrid": ["compression=600", "range=600"],  # 0.1 s bins over 1 s; the 1 s range is the fallback keep-alive
    "energy": [],  # break-even of a 0.3 ms start: about a millisecond
}


@dataclass
class Host:
    url: str
    admin: str
    proc: subprocess.Popen[str]
    log: Path

    def metrics(self) -> str:
        return httpx.get(f"{self.admin}/metrics", timeout=10).text

    def value(self, name: str, app: str, component: str) -> float:
        return metric(self.metrics(), name, app=app, component=component)

    def wait_for(self, what: str, check: Callable[[], bool], within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.05)
        raise AssertionError(f"{what} did not happen within {within} s:\n{self.log.read_text()[-4000:]}")

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.log.read_text()


def start_host(work: Path, manifests: list[Path], args: list[str]) -> Host:
    port, admin = free_port(), free_port()
    log = work / f"host-{port}.log"
    env = dict(cli_env(), ZEROWATT_CACHE_DIR=str(work / "cache"))
    argv = [sys.executable, "-m", "zerowatt", "up", *map(str, manifests)]
    argv += ["--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}", "--workers", "1", *args]
    with log.open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, text=True, env=env)
    host = Host(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin}", proc, log)
    try:
        wait_ready(host.admin, proc, log)
    except BaseException:
        host.stop()
        raise
    return host


def serve_children(root: int) -> list[int]:
    """Pids of ``wasmtime serve`` processes descending from ``root`` (read from /proc)."""
    parents: dict[int, int] = {}
    commands: dict[int, bytes] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            commands[int(entry.name)] = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z":
            continue
        parents[int(entry.name)] = int(fields[1])

    def descends(pid: int) -> bool:
        seen = 0
        while pid in parents and seen < 64:
            pid = parents[pid]
            if pid == root:
                return True
            seen += 1
        return False

    return sorted(
        pid for pid, cmd in commands.items() if pid in parents and b"serve" in cmd.split(b"\0") and descends(pid)
    )


def summaries(log: str) -> dict[str, dict[str, object]]:
    out = {}
    for line in log.splitlines():
        _, sep, text = line.partition("autoscale summary ")
        if sep:
            data = json.loads(text)
            out[f"{data['app']}/{data['component']}"] = data
    return out


WAT = ("hello-wat", "hello")
HTTP = ("hello-wasi-http", "hello-wasi-http")


@pytest.mark.parametrize("policy", list(POLICIES))
def test_each_policy_scales_to_zero_and_back_without_errors(policy: str, tmp_path: Path) -> None:
    options = [a for o in POLICIES[policy] for a in ("--policy-option", o)]
    host = start_host(
        tmp_path,
        [EXAMPLES / "hello-wat" / "spin.toml", EXAMPLES / "hello-wasi-http" / "spin.toml"],
        ["--policy", policy, *options, "--log-level", "debug"],
    )
    try:
        for round_ in (1, 2):
            assert httpx.get(f"{host.url}/hello", timeout=30).text == "Hello from WebAssembly (WAT)!\n"
            assert httpx.get(f"{host.url}/hello-http", timeout=30).text == "Hello from wasi:http\n"
            for app, component in (WAT, HTTP):
                assert host.value("zerowatt_cold_starts_total", app, component) == round_
            host.wait_for(
                f"{policy}: scale to zero (round {round_})",
                lambda: all(host.value("zerowatt_instances", *key) == 0 for key in (WAT, HTTP)),
            )
            host.wait_for("wasmtime serve children exit", lambda: serve_children(host.proc.pid) == [])
        starts = 2
        if policy == "hybrid":
            # Round 2's request taught the histogram an idle time beyond its 1 s range (round 1 stayed
            # loaded for the whole 1 s fallback keep-alive), so §4.2's out-of-range branch applies: unload at
            # once, pre-warm at 85 % of the forecast idle time (about 0.9 s later) for 30 % of it. That
            # pre-warm is a third start; wait for it and its release instead of racing it.
            starts = 3
            host.wait_for(
                "hybrid: the pre-warm after round 2 and its release",
                lambda: all(
                    host.value("zerowatt_instance_starts_total", *key) == starts
                    and host.value("zerowatt_instances", *key) == 0
                    for key in (WAT, HTTP)
                ),
            )
            host.wait_for("the pre-warmed children exit", lambda: serve_children(host.proc.pid) == [])
        text = host.metrics()
        assert metric(text, "zerowatt_requests_total", code="200") == 4
        assert metric(text, "zerowatt_instance_starts_total", app=WAT[0], component=WAT[1]) == starts
        assert metric(text, "zerowatt_instance_starts_total", app=HTTP[0], component=HTTP[1]) == starts
        assert metric(text, "zerowatt_idle_instance_seconds_total", app=WAT[0], component=WAT[1]) >= 0
    finally:
        log = host.stop()
    done = summaries(log)
    assert done["hello-wat/hello"]["cold_starts"] == 2 and done["hello-wat/hello"]["policy"] == policy
    assert done["hello-wasi-http/hello-wasi-http"]["instance_starts"] == starts
    if policy == "hybrid":
        for label in ("hello-wat/hello", "hello-wasi-http/hello-wasi-http"):
            assert f"autoscale {label}: 0 -> 1 instance(s) (hybrid: keep-alive)" in log  # the pre-warm's move
    if policy == "kpa":
        # Knative keeps the pod a stable window after the load, then the grace period; the decider runs on
        # its tick meanwhile (compression 60: window 1 s, grace 0.5 s, tick 1/30 s).
        stamps = [
            (datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f"), m.group(2))
            for m in re.finditer(r"^(\S+ \S+) .*autoscale hello-wat/hello: (\d -> \d)", log, re.M)
        ]
        ups = [t for t, move in stamps if move == "0 -> 1"]
        downs = [t for t, move in stamps if move == "1 -> 0"]
        assert len(ups) == 2 and len(downs) == 2
        assert all((d - u).total_seconds() >= 1.5 - 0.002 for u, d in zip(ups, downs, strict=True))
        assert int(str(done["hello-wat/hello"]["decisions"])) > 2 * 2 + 10  # ticks, not just arrivals/completions


def test_the_activator_holds_concurrent_requests_during_a_cold_start(tmp_path: Path) -> None:
    host = start_host(
        tmp_path,
        [EXAMPLES / "hello-wasi-http" / "spin.toml"],
        ["--policy", "keepalive", "--policy-option", "keep_alive=0.2"],
    )
    try:

        async def burst() -> list[int]:
            async with httpx.AsyncClient(base_url=host.url, timeout=30) as client:
                responses = await asyncio.gather(*(client.get("/hello-http") for _ in range(20)))
            return [r.status_code for r in responses]

        for _ in range(2):  # from zero, twice
            assert asyncio.run(burst()) == [200] * 20
            host.wait_for("scale to zero", lambda: host.value("zerowatt_instances", *HTTP) == 0)
        assert host.value("zerowatt_instance_starts_total", *HTTP) == 2  # one child per burst
        assert host.value("zerowatt_cold_starts_total", *HTTP) >= 2  # the requests that waited for it
        host.wait_for("the child exits", lambda: serve_children(host.proc.pid) == [])
    finally:
        host.stop()


def test_wasi_http_children_scale_from_zero_to_n_and_back_to_zero(tmp_path: Path) -> None:
    (tmp_path / "spin.toml").write_text(
        f"""spin_manifest_version = 2
[application]
name = "probe-app"
[[trigger.http]]
route = "/..."
component = "probe"
[component.probe]
source = "{PROBE}"
"""
    )
    host = start_host(
        tmp_path,
        [tmp_path / "spin.toml"],
        [
            "--policy",
            "keepalive",
            *("--policy-option", "keep_alive=0.3", "--policy-option", "capacity=1"),
            *("--policy-option", "max_instances=3", "--request-timeout", "0.5"),
        ],
    )
    try:
        assert serve_children(host.proc.pid) == []

        async def hold(n: int) -> list[int]:
            # Requests that run until their deadline keep the load at n (one instance each: capacity=1).
            async with httpx.AsyncClient(base_url=host.url, timeout=30) as client:
                responses = await asyncio.gather(*(client.get(f"/loop{i}") for i in range(n)))
            return [r.status_code for r in responses]

        seen: list[int] = []

        async def scenario() -> list[int]:
            task = asyncio.create_task(hold(3))
            while not task.done():
                seen.append(len(serve_children(host.proc.pid)))
                await asyncio.sleep(0.02)
            return await task

        statuses = asyncio.run(scenario())
        assert statuses == [504] * 3  # the guest loops forever: the deadline answers, not the autoscaler
        assert max(seen) == 3  # three children for three concurrent requests
        assert host.value("zerowatt_instance_starts_total", "probe-app", "probe") == 3
        host.wait_for("every child exits", lambda: serve_children(host.proc.pid) == [])
        assert host.value("zerowatt_instances", "probe-app", "probe") == 0
        r = httpx.get(f"{host.url}/hello", timeout=30)  # and back from zero
        assert r.status_code == 200 and r.text == "Hello from wasi:http\n"
        assert host.value("zerowatt_instance_starts_total", "probe-app", "probe") == 4
    finally:
        host.stop()
    host.wait_for("no child outlives the host", lambda: serve_children(host.proc.pid) == [], within=10)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--policy", "bogus"], "bogus"),
        (["--policy", "kpa", "--policy-option", "nope=1"], "nope"),
        (["--policy", "keepalive", "--policy-option", "keep_alive=soon"], "keep_alive"),
        (["--policy", "keepalive", "--policy-option", "keep_alive=-1"], "keep_alive"),
        (["--policy", "keepalive", "--policy-option", "capacity=0.5"], "capacity"),
        (["--policy", "kpa", "--policy-option", "stable_window=1"], "stable_window"),
        (["--policy", "energy", "--policy-option", "cold_start"], "cold_start"),
        (["--policy-option", "keep_alive=1"], "--policy"),
    ],
)
def test_bad_policy_or_option_exits_2_naming_it(args: list[str], named: str) -> None:
    # In-process: rejected before anything is served (a process of its own would only add an interpreter start).
    result = invoke_cli(
        ["up", str(EXAMPLES / "hello-wat" / "spin.toml"), "--listen", f"127.0.0.1:{free_port()}", *args]
    )
    assert result.returncode == 2, result.stderr
    assert named in result.stderr


def test_up_json_announces_the_policy(tmp_path: Path) -> None:
    port, admin = free_port(), free_port()
    env = dict(cli_env(), ZEROWATT_CACHE_DIR=str(tmp_path / "cache"))
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("w") as o, err.open("w") as e:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "zerowatt", "up", str(EXAMPLES / "hello-wat" / "spin.toml")),
                *("--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}", "--workers", "1", "--json"),
                *("--policy", "energy", "--policy-option", "memory_gb=0.5"),
            ],
            stdout=o,
            stderr=e,
            text=True,
            env=env,
        )
    host = Host(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin}", proc, err)
    try:
        wait_ready(host.admin, proc, err)
        assert json.loads(out.read_text())["policy"] == {"name": "energy", "options": ["memory_gb=0.5"]}
        assert httpx.get(f"{host.url}/hello").status_code == 200
    finally:
        host.stop()
    assert summaries(err.read_text())["hello-wat/hello"]["requests"] == 1
