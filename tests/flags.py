"""What the CLI prints for a library's setting error: the library names the key, the CLI its flag."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from zerowatt.cli.common import describe
from zerowatt.errors import SettingError


def cli_message(call: Callable[[], object], key: str) -> str:
    """Run ``call``, expect a :class:`SettingError` for ``key``, and return the message the CLI shows."""
    with pytest.raises(SettingError) as info:
        call()
    assert info.value.key == key and str(info.value).startswith(f"{key}: ")  # the library says the key
    return describe(info.value)
