"""The pure decision: every annotation, precedence, exclusions, grace periods, compatibility."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.flags import cli_message
from tests.kube.conftest import NOW, merge_patch, real_matcher, workload
from zerowatt.errors import ValidationError
from zerowatt.kube import annotations as ann
from zerowatt.kube.decide import Decision, NamespaceView, decide, grace_seconds
from zerowatt.kube.kinds import KINDS
from zerowatt.kube.settings import make_settings
from zerowatt.parsing import parse_timestamp

MATCH = real_matcher()
DOWN_ALL = {"default_uptime": "never"}


def run(
    obj: dict[str, Any],
    kind: str = "deployments",
    ns: dict[str, str] | None = None,
    excluded: bool = False,
    **settings: Any,
) -> Decision:
    s = make_settings(include_resources=kind, **settings)
    return decide(obj, KINDS[kind], NamespaceView("dev", ns or {}, excluded), s, NOW, MATCH)


def downscaled(replicas: int = 0, original: int = 3, **annos: str) -> dict[str, Any]:
    return workload(spec={"replicas": replicas}, annotations={ann.ORIGINAL_REPLICAS: str(original), **annos})


def test_defaults_leave_everything_up() -> None:
    d = run(workload())
    assert d.action == "none" and d.patch is None


def test_flag_downtime_scales_down_and_records_the_original() -> None:
    d = run(workload(), **DOWN_ALL)
    assert d.action == "down" and (d.level, d.target, d.original) == (3, 0, 3)
    assert d.patch == {"spec": {"replicas": 0}, "metadata": {"annotations": {ann.ORIGINAL_REPLICAS: "3"}}}


def test_default_downtime_flag() -> None:
    assert run(workload(), default_downtime="always").action == "down"


def test_recurring_schedule_in_and_out() -> None:
    assert run(workload(), default_uptime="Mon-Fri 08:00-18:00 UTC").action == "none"
    assert run(workload(), default_uptime="Mon-Fri 13:00-18:00 UTC").action == "down"
    assert run(workload(), default_downtime="Mon-Fri 11:00-13:00 UTC").action == "down"


@pytest.mark.parametrize(
    ("obj_annos", "ns_annos", "flag", "expected"),
    [
        ({ann.UPTIME: "always"}, {ann.UPTIME: "never"}, "never", "none"),  # workload beats namespace
        ({}, {ann.UPTIME: "never"}, "always", "down"),  # namespace beats flag
        ({}, {ann.UPTIME: "always"}, "never", "none"),
        ({ann.DOWNTIME: "always"}, {}, "always", "down"),  # downtime wins over uptime
        ({ann.UPTIME: "never"}, {}, "always", "down"),
        ({}, {}, "never", "down"),  # flag
    ],
)
def test_precedence_workload_namespace_flag(
    obj_annos: dict[str, str], ns_annos: dict[str, str], flag: str, expected: str
) -> None:
    assert run(workload(annotations=obj_annos), ns=ns_annos, default_uptime=flag).action == expected


def test_environment_is_the_flag_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from zerowatt.cli.main import app

    monkeypatch.setenv("DEFAULT_UPTIME", "bogus spec")
    result = CliRunner().invoke(app, ["downscaler", "--once", "--kubeconfig", "/nonexistent"])
    assert result.exit_code == 2 and "--default-uptime" in result.output and "bogus spec" in result.output
    # a flag given on the command line beats the environment: the bad env value is never read
    result = CliRunner().invoke(
        app, ["downscaler", "--once", "--default-uptime", "always", "--kubeconfig", "/nonexistent"]
    )
    assert result.exit_code == 2 and "kubeconfig" in result.output


def test_cli_reports_setting_errors_under_their_flags() -> None:
    from typer.testing import CliRunner

    from zerowatt.cli.main import app

    for args, shown in (
        (["--include-resources", "deployments,pods"], "--include-resources: unknown resource pods"),
        (["--exclude-namespaces", "kube-("], "--exclude-namespaces: 'kube-(' is not a valid regular expression"),
        (["--grace-period", "1d"], "--grace-period: '1d' is not a duration"),
    ):
        result = CliRunner().invoke(app, ["downscaler", "--once", *args, "--kubeconfig", "/nonexistent"])
        assert result.exit_code == 2 and shown in " ".join(result.output.split()), result.output


def test_downtime_replicas_flag_namespace_and_both_spellings() -> None:
    d = run(workload(), downtime_replicas=1, **DOWN_ALL)
    assert (d.action, d.target) == ("down", 1)
    assert run(workload(), ns={ann.DOWNTIME_REPLICAS: "2"}, **DOWN_ALL).target == 2
    assert (
        run(workload(annotations={ann.DOWNSCALE_REPLICAS: "2"}), ns={ann.DOWNTIME_REPLICAS: "1"}, **DOWN_ALL).target
        == 2
    )
    both = {ann.DOWNSCALE_REPLICAS: "2", ann.DOWNTIME_REPLICAS: "1"}
    assert run(workload(annotations=both), **DOWN_ALL).target == 1  # kube-downscaler's spelling wins
    assert run(workload(spec={"replicas": 1}), downtime_replicas=1, **DOWN_ALL).action == "none"


def test_upscale_restores_the_original_and_removes_the_state() -> None:
    d = run(downscaled())
    assert d.action == "up" and d.target == 3
    assert d.patch == {"spec": {"replicas": 3}, "metadata": {"annotations": {ann.ORIGINAL_REPLICAS: None}}}


def test_changed_by_hand_during_downtime_is_left_alone() -> None:
    assert run(downscaled(replicas=2)).action == "none"


def test_no_needless_update_when_already_down_or_up() -> None:
    assert run(downscaled(), **DOWN_ALL).action == "none"  # a restart mid-downtime changes nothing
    assert run(workload(spec={"replicas": 0}), **DOWN_ALL).action == "none"


@pytest.mark.parametrize("value", ["true", "True", "yes", "anything"])
def test_exclude_annotation(value: str) -> None:
    assert run(workload(annotations={ann.EXCLUDE: value}), **DOWN_ALL).action == "skip"


def test_exclude_false_is_not_excluded() -> None:
    assert run(workload(annotations={ann.EXCLUDE: "false"}), **DOWN_ALL).action == "down"


def test_excluded_after_downscale_is_restored() -> None:
    d = run(downscaled(**{ann.EXCLUDE: "true"}), **DOWN_ALL)
    assert d.action == "up" and d.target == 3


def test_exclude_until() -> None:
    future = (NOW + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    past = (NOW - timedelta(days=1)).strftime("%Y-%m-%d")
    assert run(workload(annotations={ann.EXCLUDE_UNTIL: future}), **DOWN_ALL).action == "skip"
    assert run(workload(annotations={ann.EXCLUDE_UNTIL: past}), **DOWN_ALL).action == "down"
    assert run(workload(), ns={ann.EXCLUDE_UNTIL: "2099-01-01 10:00"}, **DOWN_ALL).action == "skip"
    bad = run(workload(annotations={ann.EXCLUDE_UNTIL: "next tuesday"}), **DOWN_ALL)
    assert bad.action == "error" and ann.EXCLUDE_UNTIL in bad.reason and "next tuesday" in bad.reason


def test_namespace_exclude_annotation() -> None:
    assert run(workload(), ns={ann.EXCLUDE: "true"}, **DOWN_ALL).action == "skip"
    assert run(downscaled(), ns={ann.EXCLUDE: "true"}, **DOWN_ALL).action == "up"


def test_exclude_namespaces_regex_skips_the_namespace_whole() -> None:
    # py-kube-downscaler's autoscale_resources "continue"s past such a namespace: nothing there is touched,
    # not even an object that is down (with or without --upscale-target-only).
    assert run(workload(), excluded=True, **DOWN_ALL).action == "skip"
    assert run(downscaled(), excluded=True, **DOWN_ALL).action == "skip"
    assert run(downscaled(), excluded=True, upscale_target_only=True, **DOWN_ALL).action == "skip"


def test_exclude_deployments_by_name() -> None:
    assert run(workload(name="downscaler"), **DOWN_ALL).action == "skip"
    assert run(workload(name="web"), exclude_deployments="web,api", **DOWN_ALL).action == "skip"


def test_matching_labels() -> None:
    labelled = workload(labels={"team": "a", "env": "dev"})
    assert run(labelled, matching_labels="env=dev", **DOWN_ALL).action == "down"
    assert run(labelled, matching_labels="env=prod,tier=.*", **DOWN_ALL).action == "skip"
    assert run(labelled, matching_labels="team=.*", **DOWN_ALL).action == "down"
    assert run(workload(), matching_labels="team=.*", **DOWN_ALL).action == "skip"


def test_force_uptime_and_force_downtime_on_the_namespace() -> None:
    assert run(workload(), ns={ann.FORCE_UPTIME: "true"}, **DOWN_ALL).action == "none"
    assert run(downscaled(), ns={ann.FORCE_UPTIME: "true"}, **DOWN_ALL).action == "up"
    assert run(downscaled(), ns={ann.FORCE_UPTIME: "always"}, **DOWN_ALL).action == "up"
    assert run(workload(), ns={ann.FORCE_UPTIME: "false"}, **DOWN_ALL).action == "down"
    assert run(workload(), ns={ann.FORCE_DOWNTIME: "true"}).action == "down"
    assert run(workload(), ns={ann.FORCE_DOWNTIME: "Mon-Fri 11:00-13:00 UTC"}).action == "down"
    assert run(workload(), ns={ann.FORCE_DOWNTIME: "Mon-Fri 13:00-14:00 UTC"}).action == "none"
    both = {ann.FORCE_UPTIME: "true", ann.FORCE_DOWNTIME: "true"}
    assert run(workload(), ns=both).action == "none"  # uptime wins


def test_force_uptime_and_force_downtime_on_a_workload_are_ignored_as_upstream() -> None:
    # py-kube-downscaler's autoscale_resource reads neither annotation from the workload itself.
    assert run(workload(annotations={ann.FORCE_UPTIME: "true"}), **DOWN_ALL).action == "down"
    assert run(downscaled(**{ann.FORCE_UPTIME: "true"}), **DOWN_ALL).action == "none"
    assert run(workload(annotations={ann.FORCE_DOWNTIME: "true"})).action == "none"
    assert run(workload(annotations={ann.FORCE_UPTIME: "maybe"}), **DOWN_ALL).action == "down"  # not read at all


def test_upscale_and_downscale_periods() -> None:
    assert run(downscaled(), upscale_period="always", **DOWN_ALL).action == "up"  # periods beat uptime
    assert run(workload(), downscale_period="always").action == "down"
    assert run(workload(), upscale_period="always", downscale_period="always").action == "none"  # overlap
    assert run(workload(), upscale_period="Mon-Fri 20:00-21:00 UTC", **DOWN_ALL).action == "none"  # outside both
    assert run(downscaled(), upscale_period="Mon-Fri 20:00-21:00 UTC").action == "none"
    annotated = workload(annotations={ann.DOWNSCALE_PERIOD: "Mon-Sun 11:00-13:00 UTC"})
    assert run(annotated).action == "down"
    assert run(workload(), ns={ann.UPSCALE_PERIOD: "always"}, downscale_period="always").action == "none"


def test_grace_period_from_creation() -> None:
    fresh = workload(created=(NOW - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    d = run(fresh, **DOWN_ALL)
    assert d.action == "none" and "grace period" in d.reason
    assert run(fresh, grace_period=60, **DOWN_ALL).action == "down"
    assert run(workload(created=None), **DOWN_ALL).action == "down"  # unknown age: not protected


@pytest.mark.parametrize(
    ("value", "action"),
    [
        ("60", "down"),  # an integer below the global 900 s: used
        ("900", "none"),  # equal to the global: used (5 min old is within it)
        ("3600", "none"),  # longer than the global: ignored, the global 900 s applies
        ("0", "none"),  # not positive: ignored
        ("-5", "none"),
        ("1m", "none"),  # not an integer: ignored (upstream), not an error
        ("soon", "none"),
    ],
)
def test_grace_period_annotation_as_upstream(value: str, action: str) -> None:
    fresh = workload(
        created=(NOW - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"), annotations={ann.GRACE_PERIOD: value}
    )
    assert run(fresh, **DOWN_ALL).action == action
    older = workload(created=(NOW - timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    older["metadata"]["annotations"] = {ann.GRACE_PERIOD: value}
    assert run(older, grace_period=1800, **DOWN_ALL).action == ("down" if value in ("60", "900") else "none")


def test_grace_period_from_deployment_time_annotation() -> None:
    recent = (NOW - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    obj = workload(annotations={"deployment-time": recent})
    assert run(obj, deployment_time_annotation="deployment-time", **DOWN_ALL).action == "none"
    assert run(obj, **DOWN_ALL).action == "down"
    obj["metadata"]["annotations"]["deployment-time"] = "garbage"  # ignored, as kube-downscaler does
    assert run(obj, deployment_time_annotation="deployment-time", **DOWN_ALL).action == "down"


def test_namespace_grace_period_annotation_is_not_read() -> None:
    fresh = workload(created=(NOW - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert run(fresh, ns={ann.GRACE_PERIOD: "60"}, **DOWN_ALL).action == "none"  # upstream: jobs policies only


@pytest.mark.parametrize(
    ("annos", "needle"),
    [
        ({ann.ORIGINAL_REPLICAS: "three"}, ann.ORIGINAL_REPLICAS),
        ({ann.DOWNTIME_REPLICAS: "-1"}, ann.DOWNTIME_REPLICAS),
        ({ann.DOWNSCALE_REPLICAS: "x"}, ann.DOWNSCALE_REPLICAS),
        ({ann.UPTIME: "Mon-Fri 25:00-26:00"}, "Mon-Fri 25:00-26:00"),
        ({ann.DOWNTIME: "sometimes"}, "sometimes"),
        ({ann.DOWNTIME_REPLICAS: "120%"}, "120%"),
    ],
)
def test_invalid_annotation_is_an_error_decision_naming_the_object(annos: dict[str, str], needle: str) -> None:
    d = run(workload(annotations=annos), **DOWN_ALL)
    assert d.action == "error" and d.patch is None
    assert "Deployment dev/web" in d.reason and needle in d.reason


def test_invalid_namespace_annotation_names_the_namespace() -> None:
    d = run(workload(), ns={ann.DOWNTIME_REPLICAS: "many"}, **DOWN_ALL)
    assert d.action == "error" and "Namespace dev" in d.reason


def test_switch_from_kube_downscaler_mid_downtime() -> None:
    # State written by kube-downscaler (hjacobs or the forks): replicas 0 and original-replicas "5".
    theirs = workload(spec={"replicas": 0}, annotations={ann.ORIGINAL_REPLICAS: "5"})
    assert run(theirs, **DOWN_ALL).action == "none"  # still downtime: left as it is
    up = run(theirs)
    assert up.action == "up" and up.patch == {
        "spec": {"replicas": 5},
        "metadata": {"annotations": {ann.ORIGINAL_REPLICAS: None}},
    }
    # and what zerowatt writes is what they read back: an integer string under the same key
    ours = merge_patch(workload(spec={"replicas": 5}), run(workload(spec={"replicas": 5}), **DOWN_ALL).patch)
    assert ours["metadata"]["annotations"] == {ann.ORIGINAL_REPLICAS: "5"} and ours["spec"]["replicas"] == 0


def test_restart_mid_downtime_keeps_the_count() -> None:
    obj = workload(spec={"replicas": 4})
    obj = merge_patch(obj, run(obj, **DOWN_ALL).patch)
    for _ in range(3):  # several passes (or restarts: the state is only in the object)
        assert run(obj, **DOWN_ALL).action == "none"
    obj = merge_patch(obj, run(obj).patch)
    assert obj["spec"]["replicas"] == 4 and ann.ORIGINAL_REPLICAS not in obj["metadata"]["annotations"]


def test_parse_time_and_duration() -> None:
    def parse_time(where: str, value: str) -> datetime:  # annotations and creationTimestamp
        return parse_timestamp(value, key=where)

    def parse_duration(where: str, value: str) -> float:  # the grace period
        return grace_seconds(value, key=where)

    assert parse_time("x", "2024-12-24").isoformat() == "2024-12-24T00:00:00+00:00"
    assert parse_time("x", "2024-12-24 18:30").hour == 18
    assert parse_time("x", "2024-12-24T18:30").minute == 30
    assert parse_time("x", "2024-12-24T18:30:00+02:00").utcoffset() == timedelta(hours=2)
    assert (
        parse_duration("x", "900") == 900 and parse_duration("x", "1h30m") == 5400 and parse_duration("x", "45s") == 45
    )
    for bad in ("", "1d", "m"):
        with pytest.raises(ValidationError, match="duration"):
            parse_duration("x", bad)


def test_settings_errors_name_the_flag() -> None:
    assert re.match(
        r"--include-resources: .*pods",
        cli_message(lambda: make_settings(include_resources="deployments,pods"), "include_resources"),
    )
    assert cli_message(lambda: make_settings(exclude_namespaces="kube-("), "exclude_namespaces").startswith(
        "--exclude-namespaces: "
    )
    assert cli_message(lambda: make_settings(downtime_replicas=-1), "downtime_replicas").startswith(
        "--downtime-replicas: "
    )


def test_public_holidays_as_downtime() -> None:
    christmas = NOW.replace(month=12, day=25)
    s = make_settings(default_downtime="holidays DE Europe/Berlin")
    on_holiday = decide(workload(), KINDS["deployments"], NamespaceView("dev"), s, christmas, MATCH)
    assert on_holiday.action == "down" and "holidays DE" in on_holiday.reason
    assert decide(workload(), KINDS["deployments"], NamespaceView("dev"), s, NOW, MATCH).action == "none"
