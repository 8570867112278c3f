"""Application variables and ``{{ name }}`` templates, as in Spin's manifest.

Application variables (``[variables]``) get their values, in order of precedence, from the caller
(``--variable name=value``), from the environment (``SPIN_VARIABLE_<NAME>``, Spin's environment
provider), then from their ``default``. Component variables and ``allowed_outbound_hosts`` entries are
templates over those values. Everything here is pure: the caller passes the environment in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from zerowatt.errors import ValidationError
from zerowatt.wasm.model import Variable

#: Spin's rule for variable names: lower-case letters, digits and underscores, starting with a letter.
VARIABLE_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
#: The prefix of Spin's environment-variable provider: ``SPIN_VARIABLE_API_TOKEN`` sets ``api_token``.
ENV_PREFIX = "SPIN_VARIABLE_"

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template: literal pieces interleaved with variable references."""

    literals: tuple[str, ...]  # len(names) + 1 pieces
    names: tuple[str, ...]

    def render(self, values: Mapping[str, str]) -> str:
        parts = [self.literals[0]]
        for name, literal in zip(self.names, self.literals[1:], strict=True):
            parts.append(values[name])
            parts.append(literal)
        return "".join(parts)


def parse_template(text: str, where: str) -> Template:
    """Split ``"https://{{ host }}/v1"`` into literals and names; ``where`` names the key for errors."""
    literals: list[str] = []
    names: list[str] = []
    pos = 0
    for match in _PLACEHOLDER.finditer(text):
        literals.append(text[pos : match.start()])
        name = match.group(1).strip()
        if not VARIABLE_NAME.match(name):
            raise ValidationError(
                where, f"expected '{{{{ variable_name }}}}' (lower-case letters, digits, '_'), found {match.group(0)!r}"
            )
        names.append(name)
        pos = match.end()
    rest = text[pos:]
    if "{{" in rest or "}}" in rest:
        raise ValidationError(where, f"unbalanced '{{{{' or '}}}}' in template {text!r}")
    literals.append(rest)
    return Template(tuple(literals), tuple(names))


def resolve_variables(
    declared: Mapping[str, Variable],
    provided: Mapping[str, str],
    env: Mapping[str, str],
    where: str,
) -> dict[str, str]:
    """The value of every declared application variable (see the module docstring for precedence).

    A required variable without a value is an error naming ``where.<name>``; nothing is printed, so
    secret values never reach a message.
    """
    values: dict[str, str] = {}
    for name, variable in declared.items():
        if name in provided:
            values[name] = provided[name]
        elif ENV_PREFIX + name.upper() in env:
            values[name] = env[ENV_PREFIX + name.upper()]
        elif variable.default is not None:
            values[name] = variable.default
        else:
            raise ValidationError(
                f"{where}.{name}",
                f"required variable has no value: pass --variable {name}=VALUE or set {ENV_PREFIX}{name.upper()}",
            )
    return values


def render(template: Template, values: Mapping[str, str], where: str) -> str:
    """Fill ``template`` with application variable values; an undeclared name is an error."""
    for name in template.names:
        if name not in values:
            known = ", ".join(sorted(values)) or "none declared"
            raise ValidationError(where, f"unknown application variable {name!r} in template (known: {known})")
    return template.render(values)


def parse_assignments(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``["a=1", "b=x=y"]`` → ``{"a": "1", "b": "x=y"}`` (the CLI's ``--variable`` flags)."""
    result: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not VARIABLE_NAME.match(name):
            raise ValidationError("--variable", f"expected NAME=VALUE with a lower-case name, got {item!r}")
        result[name] = value
    return result
