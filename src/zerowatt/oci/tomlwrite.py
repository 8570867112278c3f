"""A small TOML writer for the ``spin.toml`` that ``zerowatt pull`` generates (the standard library reads
TOML but cannot write it). Strings are always basic strings with every character TOML forbids raw escaped,
so any value from a hostile locked app stays a value. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping

from zerowatt.errors import ValidationError

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}

TomlValue = str | bool | int | float | list["TomlValue"] | Mapping[str, "TomlValue"]


def string(text: str) -> str:
    """``text`` as a TOML basic string (control characters and DEL escaped, as TOML 1.0 requires)."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def key(name: str) -> str:
    """A key, bare when TOML allows it, else quoted."""
    return name if _BARE_KEY.match(name) else string(name)


def value(item: object, where: str) -> str:
    """Any JSON-like value as inline TOML; ``null`` (which TOML lacks) is an error naming ``where``."""
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int):
        return str(item)
    if isinstance(item, float):
        if item != item or item in (float("inf"), float("-inf")):
            raise ValidationError(where, f"expected a finite number, got {item!r}")
        return repr(item)
    if isinstance(item, str):
        return string(item)
    if isinstance(item, list):
        return "[" + ", ".join(value(x, f"{where}[{i}]") for i, x in enumerate(item)) + "]"
    if isinstance(item, Mapping):
        if not item:
            return "{}"
        return "{ " + ", ".join(f"{key(str(k))} = {value(v, f'{where}.{k}')}" for k, v in item.items()) + " }"
    raise ValidationError(where, f"expected a string, number, boolean, array or table, got {item!r}")


def table(header: str, entries: Mapping[str, object], where: str, *, array: bool = False) -> str:
    """``[header]`` (or ``[[header]]``) and one ``key = value`` line per entry."""
    lines = [f"[[{header}]]" if array else f"[{header}]"]
    lines += [f"{key(k)} = {value(v, f'{where}.{k}')}" for k, v in entries.items()]
    return "\n".join(lines) + "\n"
