"""``--policy-option KEY=VALUE`` read against a parameters dataclass: the dataclass is the option schema.

A field is an option when its metadata says so (:func:`option`). Its annotation (``float``, ``int``, either
``| None``) decides how the text is read, ``at_least``/``above`` bound the value, and the dataclass's own
``__post_init__`` checks the rest once the object is built. Every error is a ``UsageError`` (exit 2) that
names the key. Pure: strings in, a dataclass out.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from zerowatt.errors import UsageError, ValidationError

_META = "zerowatt.option"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """One ``--policy-option`` key, derived from a dataclass field."""

    key: str  # the KEY of KEY=VALUE
    field: str  # the field it sets
    help: str
    integer: bool
    at_least: float = 0.0
    above: bool = False  # the value must be strictly above ``at_least``


def option(help: str, *, key: str | None = None, at_least: float = 0.0, above: bool = False) -> dict[str, object]:
    """Field metadata that makes a parameters field a ``--policy-option`` (``key``: when not the field name)."""
    return {_META: (help, key, at_least, above)}


def option_specs(cls: type) -> dict[str, OptionSpec]:
    """The options of a parameters dataclass, by key, in field order."""
    hints = typing.get_type_hints(cls)
    out: dict[str, OptionSpec] = {}
    for f in dataclasses.fields(cls):
        meta = f.metadata.get(_META)
        if meta is None:
            continue
        help_text, key, at_least, above = meta
        args = typing.get_args(hints[f.name]) or (hints[f.name],)
        spec = OptionSpec(key or f.name, f.name, help_text, int in args, at_least, above)
        out[spec.key] = spec
    return out


def _value(spec: OptionSpec, text: str) -> float:
    key = spec.key
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"--policy-option {key}={text!r}: expected a number") from None
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"--policy-option {key}={text!r}: expected a finite number >= 0")
    if spec.integer and (value != int(value) or value < spec.at_least):
        raise UsageError(f"--policy-option {key}={text!r}: expected a whole number >= {spec.at_least:g}")
    if value < spec.at_least or (spec.above and value == spec.at_least):
        relation = ">" if spec.above else ">="
        raise UsageError(f"--policy-option {key}={text!r}: expected a number {relation} {spec.at_least:g}")
    return value


def split_options(items: Sequence[str], specs: Mapping[str, OptionSpec], owner: str) -> dict[str, float]:
    """``KEY=VALUE`` items checked against ``specs`` (``owner`` names what they belong to in errors)."""
    values: dict[str, float] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--policy-option {item!r}: expected KEY=VALUE, e.g. keep_alive=60")
        if key not in specs:
            raise UsageError(
                f"--policy-option {key}: not an option of {owner}; expected one of {', '.join(sorted(specs))}"
            )
        values[key] = _value(specs[key], text)
    return values


def build(cls: type[T], values: Mapping[str, float], specs: Mapping[str, OptionSpec], owner: str) -> T:
    """The dataclass with ``values`` (by key) set and its own checks run (``UsageError`` naming the key)."""
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        spec = specs[key]
        kwargs[spec.field] = int(value) if spec.integer else value
    try:
        return cls(**kwargs)
    except ValidationError as exc:
        raise UsageError(f"--policy-option ({owner}): {exc}") from None
