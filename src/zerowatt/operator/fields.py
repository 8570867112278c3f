"""Typed readers for a custom resource's JSON that collect problems instead of raising.

An app with three bad fields should get one condition naming all three, so every reader appends a
:class:`Problem` (the dotted path of the field, what is wrong) to a list the caller owns and returns a safe
default; the caller refuses the app if the list is not empty.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: A Kubernetes object name (RFC 1123 subdomain) and a label/annotation value, as the API server checks them.
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Problem:
    """One invalid or unsupported field: ``field`` is its path (``spec.variables[1].valueFrom``)."""

    field: str
    message: str
    unsupported: bool = False  # valid for SpinKube, but zerowatt cannot serve it

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class Reader:
    """Reads fields of one object, appending a :class:`Problem` for each that is missing or mistyped."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def bad(self, path: str, message: str, *, unsupported: bool = False) -> None:
        self.problems.append(Problem(path, message, unsupported))

    def mapping(self, value: Any, path: str) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.bad(path, f"expected an object, got {type(value).__name__}")
            return {}
        return value

    def sequence(self, value: Any, path: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.bad(path, f"expected a list, got {type(value).__name__}")
            return []
        return value

    def string(self, value: Any, path: str, *, required: bool = False) -> str:
        if value is None or value == "":
            if required:
                self.bad(path, "required")
            return ""
        if not isinstance(value, str):
            self.bad(path, f"expected a string, got {type(value).__name__}")
            return ""
        return value

    def boolean(self, value: Any, path: str, default: bool = False) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            self.bad(path, f"expected true or false, got {value!r}")
            return default
        return value

    def integer(self, value: Any, path: str, default: int, *, minimum: int = 0) -> int:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.bad(path, f"expected a whole number, got {value!r}")
            return default
        if value < minimum:
            self.bad(path, f"expected a number >= {minimum}, got {value}")
            return default
        return value

    def string_map(self, value: Any, path: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, item in self.mapping(value, path).items():
            if not isinstance(item, str):
                self.bad(f"{path}[{key!r}]", f"expected a string, got {type(item).__name__}")
            else:
                out[str(key)] = item
        return out

    def name(self, value: Any, path: str, *, required: bool = True) -> str:
        """An object name (ConfigMap, Secret, ServiceAccount...)."""
        text = self.string(value, path, required=required)
        if text and (len(text) > 253 or not _DNS_SUBDOMAIN.match(text)):
            self.bad(path, f"{text!r} is not a valid object name (lowercase RFC 1123 subdomain)")
            return ""
        return text

    def label_value(self, value: str, path: str) -> None:
        if len(value) > 63 or not _LABEL_VALUE.match(value):
            self.bad(path, f"{value!r} is not a valid label value")

    def only(self, value: Mapping[str, Any], path: str, known: frozenset[str]) -> None:
        """Every key of ``value`` is one the operator reads (nothing is silently ignored)."""
        for key in sorted(set(value) - known):
            self.bad(f"{path}.{key}", "unknown field", unsupported=True)
