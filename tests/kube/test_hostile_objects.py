"""Hostile VirtualMachines and Applications: every shape decides or reports an error, never raises or writes junk."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.kube.conftest import NOW, real_matcher
from zerowatt.errors import ValidationError
from zerowatt.kube import annotations as ann
from zerowatt.kube import argocd
from zerowatt.kube.decide import NamespaceView, decide
from zerowatt.kube.kinds import KINDS, VM_RESTORABLE
from zerowatt.kube.settings import make_settings

SOME = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MATCH = real_matcher()
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
strategies = st.sampled_from(
    ["Always", "Halted", "Manual", "RerunOnFailure", "Once", "WaitAsReceiver", "Sometimes", ""]
)
kept_values = st.sampled_from([*VM_RESTORABLE, "running", "Halted", "Bogus", "", "always "])


@SOME
@given(
    strategy=st.none() | strategies | json_values,
    running=st.none() | st.booleans() | json_values,
    status=st.none()
    | st.fixed_dictionaries(
        {"created": st.booleans(), "printableStatus": st.sampled_from(["Running", "Stopped", "Paused"])}
    )
    | json_values,
    kept=st.none() | kept_values,
    original=st.none() | st.sampled_from(["1", "0", "x"]),
    uptime=st.sampled_from(["always", "never"]),
)
def test_any_virtual_machine_decides_or_reports(
    strategy: Any, running: Any, status: Any, kept: str | None, original: str | None, uptime: str
) -> None:
    spec: dict[str, Any] = {"template": {}}
    if strategy is not None:
        spec["runStrategy"] = strategy
    if running is not None:
        spec["running"] = running
    annos = {k: v for k, v in ((ann.ORIGINAL_RUN_STRATEGY, kept), (ann.ORIGINAL_REPLICAS, original)) if v is not None}
    meta = {"name": "vm", "namespace": "lab", "creationTimestamp": "2020-01-01T00:00:00Z", "annotations": annos}
    obj = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": meta, "spec": spec, "status": status}
    settings_ = make_settings(include_resources="virtualmachines", default_uptime=uptime)
    d = decide(obj, KINDS["virtualmachines"], NamespaceView("lab"), settings_, NOW, MATCH)
    assert d.action in ("none", "down", "up", "clear", "error")
    if d.action == "error":
        assert "VirtualMachine lab/vm" in d.reason
    if d.action == "clear":  # a stale mark removed (py-kube-downscaler's rule): annotations only
        assert set(d.patch or {}) == {"metadata"}
    elif d.patch is not None:
        written = d.patch["spec"]
        assert set(written) <= {"runStrategy", "running"}
        assert written.get("runStrategy") in (None, "Halted", *VM_RESTORABLE)  # nothing unknown is written back
        assert written.get("running") in (None, True, False)
        kept_now = d.patch["metadata"]["annotations"].get(ann.ORIGINAL_RUN_STRATEGY)
        assert kept_now is None or kept_now in (*VM_RESTORABLE, "running")


@SOME
@given(app=json_values, policy=json_values)
def test_any_application_reads_or_reports(app: Any, policy: Any) -> None:
    obj = {"metadata": {"name": "a", "namespace": "argocd"}, "spec": {"syncPolicy": policy}}
    for candidate in (obj, {"metadata": {"name": "a"}, "spec": app}):
        try:
            assert argocd.self_heal_on(candidate) in (True, False)
        except ValidationError as exc:
            assert "Application argocd/a" in str(exc) or "Application None/a" in str(exc)
        owner = argocd.generated_by({"metadata": {"ownerReferences": app}})
        assert owner is None or isinstance(owner, str)
        assert argocd.appset_ignores_sync_policy({"spec": {"ignoreApplicationDifferences": app}}, "a") in (True, False)


@SOME
@given(tracking=st.text(max_size=40), label=st.text(max_size=10))
def test_any_tracking_marks_name_an_application_or_nothing(tracking: str, label: str) -> None:
    obj = {
        "kind": "Deployment",
        "metadata": {
            "name": "web", "namespace": "dev",
            "annotations": {argocd.TRACKING_ID: tracking}, "labels": {argocd.DEFAULT_INSTANCE_LABEL: label},
        },
    }  # fmt: skip
    found = argocd.tracked_app(obj, "argocd")
    assert found is None or (found[0] and found[1])


@pytest.mark.parametrize(
    ("tracking", "expected"),
    [
        ("shop:apps/Deployment:dev/web", ("argocd", "shop")),
        ("team-a_shop:apps/Deployment:dev/web", ("team-a", "shop")),
        ("shop:apps/Deployment:dev/other", None),  # names another object: a copy, not managed
        ("shop:apps/StatefulSet:dev/web", None),
        ("shop", ("argocd", "blog")),  # not a tracking-id: the label decides
    ],
)
def test_tracking_id_wins_over_the_label_only_when_well_formed(tracking: str, expected: Any) -> None:
    obj = {
        "kind": "Deployment",
        "metadata": {
            "name": "web", "namespace": "dev",
            "annotations": {argocd.TRACKING_ID: tracking}, "labels": {argocd.DEFAULT_INSTANCE_LABEL: "blog"},
        },
    }  # fmt: skip
    assert argocd.tracked_app(obj, "argocd") == expected


@pytest.mark.parametrize("label", ["_", "team-a_", "_web", ""])
def test_instance_values_with_an_empty_part_name_no_application(label: str) -> None:
    obj = {"kind": "Deployment", "metadata": {"name": "web", "labels": {argocd.DEFAULT_INSTANCE_LABEL: label}}}
    assert argocd.tracked_app(obj, "argocd") is None
