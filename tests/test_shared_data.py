"""Tests that need ``../shared/data`` skip with a reason naming the missing path and what it holds."""

from __future__ import annotations

from pathlib import Path

import pytest

import tests.conftest as conftest


def test_absent_reference_data_skips_naming_the_path_and_what_it_is(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(conftest, "SHARED_DATA", tmp_path / "nowhere")
    with pytest.raises(pytest.skip.Exception) as skipped:
        conftest.shared_path("azure-functions-2019", "the Azure trace samples")
    reason = str(skipped.value)
    assert f"the Azure trace samples at {tmp_path / 'nowhere' / 'azure-functions-2019'}" in reason
    assert "ZEROWATT_SHARED_DATA" in reason
    assert conftest.requires_shared("azure-functions-2019", "x").kwargs["reason"].startswith("needs x at ")


def test_present_reference_data_is_returned(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "power").mkdir()
    monkeypatch.setattr(conftest, "SHARED_DATA", tmp_path)
    assert conftest.shared_path("power", "the power tables") == tmp_path / "power"
    assert conftest.missing_shared("power", "the power tables") is None
    assert conftest.requires_shared("power", "x").args == (False,)
