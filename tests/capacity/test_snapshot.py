"""Bad snapshots: exit 2 naming the object and the field, or a warning with counts; never a traceback."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.capacity.builders import deployment, listing, node, pod
from tests.conftest import invoke_cli, run_cli
from zerowatt.capacity.model import NODE_BOUND
from zerowatt.capacity.snapshot import parse_snapshot
from zerowatt.errors import ValidationError


def base() -> dict[str, Any]:
    return listing(deployment("web"), node("n0"), node("n1"), pod("web-5d8f7c-a", "n0"), pod("web-5d8f7c-b", "n1"))


def broken(edit: Any) -> dict[str, Any]:
    doc = copy.deepcopy(base())
    edit(doc["items"])
    return doc


@pytest.mark.parametrize(
    ("edit", "where", "field"),
    [
        (lambda it: it[3]["metadata"].pop("name"), "items[3] (Pod)", "metadata.name: missing"),
        (lambda it: it[3]["spec"].pop("containers"), "Pod default/web-5d8f7c-a", "spec.containers: missing"),
        (
            lambda it: it[3]["spec"]["containers"][0]["resources"]["requests"].update(cpu="12xx"),
            "Pod default/web-5d8f7c-a",
            "spec.containers[0].resources.requests.cpu: '12xx' is not a Kubernetes quantity",
        ),
        (
            lambda it: it[4]["spec"]["containers"][0]["resources"]["requests"].update(memory="-1Gi"),
            "Pod default/web-5d8f7c-b",
            "requests.memory: expected a quantity ≥ 0",
        ),
        (lambda it: it[1]["status"]["allocatable"].pop("memory"), "Node n0", "status.allocatable.memory: missing"),
        (lambda it: it[1]["status"]["allocatable"].update(cpu=[1]), "Node n0", "status.allocatable.cpu: expected"),
        (lambda it: it[2]["metadata"].update(name="n0"), "Node n0", "listed twice"),
        (lambda it: it[3].pop("kind"), "snapshot", "items[3]: kind: missing"),
        (lambda it: it[3]["spec"].update(tolerations={"key": "x"}), "Pod default/web-5d8f7c-a", "spec.tolerations"),
    ],
)
def test_bad_fields_name_the_object_and_the_field(edit: Any, where: str, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_snapshot(broken(edit), "snapshot")
    assert info.value.where == where
    assert field in info.value.message


def test_what_can_be_counted_is_a_warning_with_counts() -> None:
    items = [deployment("web"), node("n0"), node("bare-metal")]
    items[2]["status"] = {}  # no capacity at all
    items += [
        pod("web-5d8f7c-a", "n0", cpu=None, memory=None),
        pod("web-5d8f7c-b", "n0", cpu=None, memory=None),
        pod("web-5d8f7c-c", None),
        pod("web-5d8f7c-d", "bare-metal"),
        pod("web-5d8f7c-e", "n0", extra={"nvidia.com/gpu": "1"}),
        pod("agent-x", "n0", owner=("DaemonSet", "agent"), labels={"app": "agent"}),
        {"kind": "ConfigMap", "metadata": {"name": "x"}},
    ]
    snap = parse_snapshot(listing(*items), "dump.json")
    text = "\n".join(snap.warnings)
    assert "1 node(s) without status.allocatable or status.capacity (bare-metal): left out with their pods" in text
    assert "2 containers without requests (counted as 0, as the scheduler does)" in text
    assert "1 pods not on a node (pending" in text
    assert "1 pods on a node the snapshot lacks or left out" in text
    assert "resource nvidia.com/gpu: carried through as a packing constraint (1 pod(s) request it)" in text
    assert "nodes hold more requests" in text or "hold more requests than they can allocate" in text
    assert "ignored objects of other kinds: 1 ConfigMap" in text
    c = snap.cluster
    assert c.n_nodes == 1 and c.n_pods == 4
    assert c.resources[3] == "nvidia.com/gpu"
    assert c.pod_kind[c.pod_names.index("agent-x")] == NODE_BOUND


def test_limits_default_the_request_and_the_deployment_is_found_through_its_replicaset() -> None:
    p = pod("web-5d8f7c-a", "n0", cpu=None, memory=None)
    p["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "250m", "memory": "128Mi"}}
    c = parse_snapshot(listing(deployment("web"), node("n0"), p)).cluster
    assert c.row_request.tolist() == [[250, 128 * 2**20]]
    assert c.workloads[0].kind == "Deployment" and c.workloads[0].name == "web"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (lambda text: text[: len(text) // 2], "not valid JSON"),
        (lambda text: "", "not valid JSON"),
        (lambda text: "[1, 2]", "expected a JSON object"),
        (lambda text: '{"kind": "List"}', "items: missing or not a list"),
        (lambda text: '{"kind": "List", "items": []}', "no node with a capacity"),
    ],
)
def test_unreadable_snapshots_exit_2_naming_the_file(tmp_path: Path, content: Any, message: str) -> None:
    f = tmp_path / "dump.json"
    f.write_text(content(json.dumps(base(), indent=1)))
    r = invoke_cli(["capacity", "--snapshot", str(f), "--format", "json"])
    assert r.returncode == 2
    assert str(f) in r.stderr and message in r.stderr
    assert "Traceback" not in r.stderr


def test_a_truncated_file_says_where_it_ends(tmp_path: Path) -> None:
    f = tmp_path / "dump.json"
    text = json.dumps(base(), indent=1)
    f.write_text(text[:200])
    r = run_cli(["capacity", "--snapshot", str(f)])
    assert r.returncode == 2, r.stderr
    assert f"{f}:" in r.stderr and "truncated?" in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_flags_exit_2(tmp_path: Path) -> None:
    f = tmp_path / "dump.json"
    f.write_text(json.dumps(base()))
    for args, word in (
        (["--node-watts", "300,100"], "--node-watts"),
        (["--node-watts", "abc"], "--node-watts"),
        (["--base-percentile", "99", "--peak-percentile", "50"], "--base-percentile"),
        (["--samples", "x.csv", "--prometheus", "http://127.0.0.1:1"], "at most one"),
        (["--pue", "fast"], "--pue"),
    ):
        r = invoke_cli(["capacity", "--snapshot", str(f), *args])
        assert r.returncode == 2 and word in r.stderr, (args, r.stderr)


def test_pods_of_one_controller_share_one_constraint_each() -> None:
    """One spread and one anti-affinity term per template, owned by all its pods (not one per pod)."""
    from tests.capacity.fixtures import anti, zone_spread

    c = parse_snapshot(zone_spread().doc).cluster
    assert len(c.spreads) == 1 and c.spreads[0].owners.tolist() == [0, 1, 2, 3]
    assert c.spreads[0].matched.tolist() == [0, 1, 2, 3] and c.spreads[0].max_skew == 1
    c = parse_snapshot(anti().doc).cluster
    assert len(c.anti) == 1 and c.anti[0].owners.size == 4 and c.anti[0].topology_key == "kubernetes.io/hostname"
    assert len(c.workloads) == 1 and len(c.placements) == 1
