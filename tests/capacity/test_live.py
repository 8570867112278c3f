"""``zerowatt capacity`` without ``--snapshot``: the same objects listed from a (kmock) API server on loopback
through the project's client and a kubeconfig, paged as the real API pages them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.capacity.fixtures import pdb_strict
from tests.conftest import invoke_cli
from tests.kube.emulator import EmulatorThread

PATHS = {
    "Node": "/api/v1/nodes",
    "Pod": "/api/v1/namespaces/{ns}/pods",
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
    "PodDisruptionBudget": "/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets",
}


@pytest.fixture
def api() -> Iterator[EmulatorThread]:
    with EmulatorThread() as et:
        yield et


def kubeconfig(tmp_path: Path, url: str) -> Path:
    f = tmp_path / "kubeconfig"
    f.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "kmock", "cluster": {"server": url}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "u"}}],
                "current-context": "kmock",
            }
        )
    )
    return f


def test_live_api_gives_the_same_report_as_the_snapshot(api: EmulatorThread, tmp_path: Path) -> None:
    doc = pdb_strict().doc
    for item in doc["items"]:
        obj: dict[str, Any] = dict(item)
        ns = obj["metadata"].get("namespace", "")
        r = httpx.post(api.url + PATHS[obj["kind"]].format(ns=ns), json=obj)
        assert r.status_code in (200, 201), r.text
    live = invoke_cli(["capacity", "--kubeconfig", str(kubeconfig(tmp_path, api.url)), "--format", "json"])
    assert live.returncode == 0, live.stderr
    snap_file = tmp_path / "cluster.json"
    snap_file.write_text(json.dumps(doc))
    offline = invoke_cli(["capacity", "--snapshot", str(snap_file), "--format", "json"])
    a, b = json.loads(live.stdout), json.loads(offline.stdout)
    assert a["source"] == "the Kubernetes API"
    assert a["cluster"] == b["cluster"]
    assert a["consolidation"]["requests"]["nodes_off"] == b["consolidation"]["requests"]["nodes_off"] == ["n1", "n0"]
    assert len(a["consolidation"]["cluster_autoscaler"]["nodes_off"]) == 1


def test_an_unreachable_api_server_exits_2(tmp_path: Path) -> None:
    r = invoke_cli(["capacity", "--kubeconfig", str(kubeconfig(tmp_path, "http://127.0.0.1:9")), "--format", "json"])
    assert r.returncode == 2 and "Kubernetes API" in r.stderr
