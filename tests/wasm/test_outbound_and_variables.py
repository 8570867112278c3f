"""allowed_outbound_hosts patterns and {{ variable }} templates."""

from __future__ import annotations

import pytest

from zerowatt.errors import ValidationError
from zerowatt.wasm.manifest.outbound import is_outbound_allowed, parse_host_pattern
from zerowatt.wasm.manifest.parse import parse_byte_size
from zerowatt.wasm.manifest.variables import parse_assignments, parse_template, render, resolve_variables
from zerowatt.wasm.model import Variable


@pytest.mark.parametrize(
    ("url", "patterns", "allowed"),
    [
        ("https://example.com/path?q=1", ["https://example.com"], True),
        ("https://example.com:443/", ["https://example.com"], True),
        ("https://example.com:8443/", ["https://example.com"], False),
        ("http://example.com/", ["https://example.com"], False),
        ("http://example.com/", ["*://example.com:80"], True),
        ("https://api.example.com/", ["https://*.example.com"], True),
        ("https://example.com/", ["https://*.example.com"], False),
        ("https://evil-example.com/", ["https://*.example.com"], False),
        ("https://anything.test/", ["https://*"], True),
        ("http://127.0.0.1:5000/", ["http://127.0.0.1:*"], True),
        ("http://127.0.0.1:8050/", ["http://127.0.0.1:8000..8099"], True),
        ("http://127.0.0.1:8100/", ["http://127.0.0.1:8000..8099"], False),
        ("http://[::1]:8080/", ["http://[::1]:8080"], True),
        ("HTTPS://Example.COM/", ["https://example.com"], True),
        ("redis://cache.local", ["redis://cache.local"], True),
        ("https://example.com/", [], False),
        ("ftp://example.com/", ["*://example.com:*"], False),  # no default port for ftp and none given
        ("ftp://example.com:21/", ["*://example.com:*"], True),
        ("/relative", ["https://*"], False),
        ("http://example.com:notaport/", ["http://*:*"], False),
    ],
)
def test_is_outbound_allowed(url: str, patterns: list[str], allowed: bool) -> None:
    assert is_outbound_allowed(url, patterns) is allowed


@pytest.mark.parametrize(
    "pattern",
    [
        "example.com",
        "https://",
        "https://exa mple.com",
        "https://example.com/path",
        "*://x",
        "https://x:1..0",
        "https://**.x",
    ],
)
def test_bad_patterns_are_rejected(pattern: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_host_pattern(pattern, "spin.toml: component.c.allowed_outbound_hosts[0]")
    assert info.value.where == "spin.toml: component.c.allowed_outbound_hosts[0]"


def test_templates_render_and_report_unknown_names() -> None:
    template = parse_template("https://{{ host }}:{{port}}/{{ host }}", "w")
    assert template.names == ("host", "port", "host")
    assert render(template, {"host": "h", "port": "1"}, "w") == "https://h:1/h"
    assert parse_template("no placeholders", "w").render({}) == "no placeholders"
    with pytest.raises(ValidationError, match="unknown application variable 'port'"):
        render(template, {"host": "h"}, "w")
    with pytest.raises(ValidationError, match="unbalanced"):
        parse_template("x }} y", "w")


def test_resolve_variables_precedence_and_required() -> None:
    declared = {
        "a": Variable("a", default="default-a"),
        "b": Variable("b", default="default-b"),
        "c": Variable("c", required=True, secret=True),
    }
    env = {"SPIN_VARIABLE_B": "env-b", "SPIN_VARIABLE_C": "env-c", "SPIN_VARIABLE_A_": "ignored"}
    assert resolve_variables(declared, {"b": "cli-b"}, env, "f: variables") == {
        "a": "default-a",
        "b": "cli-b",
        "c": "env-c",
    }
    with pytest.raises(ValidationError) as info:
        resolve_variables(declared, {}, {}, "f: variables")
    assert info.value.where == "f: variables.c" and "SPIN_VARIABLE_C" in info.value.message


def test_parse_assignments() -> None:
    assert parse_assignments(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    for bad in ("novalue", "Upper=1", "=1"):
        with pytest.raises(ValidationError, match="NAME=VALUE"):
            parse_assignments([bad])


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (1, 1),
        ("64Mi", 64 * 2**20),
        ("1Gi", 2**30),
        ("500M", 500_000_000),
        ("2KiB", 2048),
        ("1.5Gi", 3 * 2**29),
        ("7", 7),
    ],
)
def test_byte_sizes(value: object, size: int) -> None:
    assert parse_byte_size(value, "w") == size


@pytest.mark.parametrize("value", [0, -5, "0Mi", "lots", "12 parsecs", True, 1.5, None])
def test_bad_byte_sizes(value: object) -> None:
    with pytest.raises(ValidationError):
        parse_byte_size(value, "w")


@pytest.mark.parametrize(
    ("url", "pattern", "allowed"),
    [
        ("http://10.0.0.7/x", "http://10.0.0.0/24", True),
        ("http://10.0.1.7/x", "http://10.0.0.0/24", False),
        ("https://10.0.0.7/x", "http://10.0.0.0/24", False),  # the scheme still counts
        ("http://10.0.0.7:8080/", "http://10.0.0.0/24", False),  # default port 80 for http
        ("http://127.0.0.9:80/", "*://127.0.0.5/24:80", True),  # host bits dropped, as Spin does
        ("http://[ff00::1]:80/", "*://ff00::/8:80", True),
        ("http://intranet.example/", "http://10.0.0.0/8", False),  # CIDR entries never match domain names
    ],
)
def test_cidr_entries_match_ip_literals_inside_the_network(url: str, pattern: str, allowed: bool) -> None:
    assert is_outbound_allowed(url, [pattern]) is allowed
    assert parse_host_pattern(pattern, "w").network is not None
