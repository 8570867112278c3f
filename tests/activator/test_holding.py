"""The holding bounds: per app, in total, and the release bookkeeping."""

from __future__ import annotations

import pytest

from zerowatt.activator.holding import HoldGate, HoldLimits
from zerowatt.activator.hosts import AppKey
from zerowatt.errors import ValidationError

A, B = AppKey("n", "a"), AppKey("n", "b")


def test_per_app_limit_refuses_with_503_and_leaves_other_apps_alone() -> None:
    gate = HoldGate(HoldLimits(per_app=2, total=10))
    assert gate.admit(A) is None
    assert gate.admit(A) is None
    refused = gate.admit(A)
    assert refused is not None and refused.status == 503 and "n/a" in refused.reason
    assert gate.admit(B) is None
    gate.release(A)
    assert gate.admit(A) is None
    assert gate.refused == 1


def test_total_limit_holds_across_apps() -> None:
    gate = HoldGate(HoldLimits(per_app=5, total=3))
    for key in (A, B, A):
        assert gate.admit(key) is None
    refused = gate.admit(B)
    assert refused is not None and "its limit" in refused.reason
    assert gate.total == 3


def test_release_without_admit_is_an_error_not_a_negative_count() -> None:
    gate = HoldGate()
    with pytest.raises(ValidationError):
        gate.release(A)
    assert gate.admit(A) is None
    gate.release(A)
    assert A not in gate.held and gate.total == 0


@pytest.mark.parametrize("kwargs", [{"per_app": 0}, {"total": 0}, {"deadline": 0}])
def test_limits_are_validated(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        HoldLimits(**kwargs)  # type: ignore[arg-type]
