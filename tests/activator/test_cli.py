"""``zerowatt activator`` as a process: kubeconfig → kmock, serves, ready after a sync, stops on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.activator.kubelet import deployment, kube_api
from tests.conftest import cli_env, free_port, invoke_cli
from tests.kube.emulator import EmulatorThread
from tests.waiting import wait_until


def kubeconfig(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: k\n"
        f"clusters: [{{name: k, cluster: {{server: '{url}'}}}}]\n"
        "contexts: [{name: k, context: {cluster: k, user: u}}]\nusers: [{name: u, user: {token: t}}]\n"
    )
    return path


def test_activator_process_serves_routes_and_stops_on_sigterm(tmp_path: Path) -> None:
    with EmulatorThread() as et:
        api = kube_api(et.url)
        api.create("/apis/apps/v1/namespaces/apps/deployments", deployment("web", replicas=0))
        port, admin = free_port(), free_port()
        args = ["activator", "--kubeconfig", str(kubeconfig(tmp_path, et.url)), "--advertise", "127.0.0.1"]
        args += ["--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}", "--sync", "0.1"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "zerowatt", *args, "--hold-deadline", "0.5"],
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:

            def ready() -> bool:
                try:
                    return httpx.get(f"http://127.0.0.1:{admin}/readyz").status_code == 200
                except httpx.HTTPError:
                    return False

            wait_until(ready, "the activator's /readyz")
            slice_path = "/apis/discovery.k8s.io/v1/namespaces/apps/endpointslices/web-zerowatt"
            wait_until(lambda: api.list("/apis/discovery.k8s.io/v1/namespaces/apps/endpointslices"), "a slice")
            assert api.get(slice_path)["ports"][0]["port"] == port
            miss = httpx.get(f"http://127.0.0.1:{port}/", headers={"host": "nope"})
            assert miss.status_code == 404 and "no app named 'nope'" in miss.text
            # not autoscaled and at zero: held until the deadline, then a clear 504
            held = httpx.get(f"http://127.0.0.1:{port}/", headers={"host": "web.apps"}, timeout=30)
            assert held.status_code == 504 and "holding deadline" in held.text
            metrics = httpx.get(f"http://127.0.0.1:{admin}/metrics").text
            assert 'zerowatt_activator_refused_total{reason="deadline"} 1.0' in metrics
        finally:
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out.decode()
        api.close()


def test_bad_flags_exit_2_naming_the_flag() -> None:
    r = invoke_cli(["activator", "--listen", "nope:x", "--advertise", "10.0.0.1"])
    assert r.returncode == 2 and "--listen" in r.stderr
