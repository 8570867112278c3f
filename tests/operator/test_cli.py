"""``zerowatt operator`` as a process against kmock: a kubeconfig, ``--once``, the JSON summary, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.operator.emulator import CRDS, OperatorEmulatorThread
from tests.operator.samples import executor, spinapp
from tests.operator.test_controller_kmock import DEPLOYMENTS, EXECUTORS, SPINAPPS, create, get


@pytest.fixture
def kube() -> Iterator[OperatorEmulatorThread]:
    with OperatorEmulatorThread(custom_resources=CRDS) as et:
        yield et


def kubeconfig(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: kmock\n"
        f"clusters:\n- name: kmock\n  cluster:\n    server: {url}\n"
        "users:\n- name: me\n  user:\n    token: test\n"
        "contexts:\n- name: kmock\n  context:\n    cluster: kmock\n    user: me\n"
    )
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zerowatt", "operator", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_once_reconciles_and_prints_the_summary(kube: OperatorEmulatorThread, tmp_path: Path) -> None:
    create(kube, EXECUTORS, executor())
    create(kube, SPINAPPS, spinapp("web", uid="uid-web"))
    result = run("--kubeconfig", str(kubeconfig(tmp_path, kube.url)), "--once", "--json", "--runtime-image", "rt:1")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["apps"] == 1 and summary["applies"] == 3 and summary["errors"] == 0
    dep = get(kube, f"{DEPLOYMENTS}/web")
    assert dep is not None
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "rt:1"


def test_a_bad_flag_exits_2(tmp_path: Path) -> None:
    result = run("--log-format", "xml", "--once")
    assert result.returncode == 2
    assert "--log-format" in result.stderr
