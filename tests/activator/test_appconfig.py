"""Deployment annotations → AppConfig: defaults, the policies' own options, bad annotations as warnings."""

from __future__ import annotations

from typing import Any

import pytest

from tests.activator.kubelet import deployment
from zerowatt.activator.appconfig import app_config, is_app
from zerowatt.scaling.policies.keepalive import FixedKeepAlive
from zerowatt.scaling.policies.kpa import KpaParams


def dep(**annotations: str) -> dict[str, Any]:
    return deployment("web", "apps", replicas=2, annotations=annotations)


def test_defaults_follow_the_contract() -> None:
    c = app_config(dep())
    assert (c.autoscaling, c.policy.name, c.min_scale, c.max_scale) == (False, "kpa", 0, 10)
    assert isinstance(c.policy.params, KpaParams)
    assert (c.service, c.pods_service, c.slice_name, c.replicas) == ("web", "web-pods", "web-zerowatt", 2)
    assert c.errors == ()


def test_policy_and_params_are_zerowatt_up_policy_options() -> None:
    c = app_config(
        dep(
            **{
                "zerowatt.dev/autoscaling": "true",
                "zerowatt.dev/policy": "keepalive",
                "zerowatt.dev/policy-params": '{"keep_alive": 120, "compression": 60}',
                "zerowatt.dev/min-scale": "1",
                "zerowatt.dev/max-scale": "3",
            }
        )
    )
    assert c.autoscaling and c.errors == ()
    assert c.policy.params == FixedKeepAlive(keep_alive=120.0)
    assert c.policy.compression == 60
    assert (c.clamp(0), c.clamp(2), c.clamp(9)) == (1, 2, 3)


@pytest.mark.parametrize(
    ("annotations", "words"),
    [
        ({"zerowatt.dev/policy": "magic"}, "unknown policy 'magic'"),
        ({"zerowatt.dev/policy-params": "{not json"}, "not JSON"),
        ({"zerowatt.dev/policy-params": "[1]"}, "expected a JSON object"),
        ({"zerowatt.dev/policy-params": '{"keep_alive": "long"}'}, "keep_alive: expected a number"),
        ({"zerowatt.dev/policy-params": '{"bogus": 1}'}, "bogus: not an option"),
        ({"zerowatt.dev/min-scale": "one"}, "min-scale='one'"),
        ({"zerowatt.dev/max-scale": "100000"}, "expected 0..1000"),
        ({"zerowatt.dev/min-scale": "5", "zerowatt.dev/max-scale": "2"}, "min-scale=5 > zerowatt.dev/max-scale=2"),
    ],
)
def test_bad_annotations_fall_back_and_name_the_annotation(annotations: dict[str, str], words: str) -> None:
    c = app_config(dep(**annotations))
    assert len(c.errors) == 1
    assert words in c.errors[0] and "Deployment apps/web" in c.errors[0]
    assert c.min_scale <= c.max_scale


def test_only_operator_made_or_annotated_deployments_are_apps() -> None:
    assert is_app(dep())
    plain = {"metadata": {"name": "x", "namespace": "y"}, "spec": {"replicas": 1}}
    assert not is_app(plain)
    assert is_app({"metadata": {"annotations": {"zerowatt.dev/service": "s"}}})
