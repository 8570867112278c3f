"""Host header routing: every form the contract names, ambiguity, hostile input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zerowatt.activator.hosts import AppKey, Miss, resolve, split_host

APPS = {"web": {"apps": 1}, "api": {"a": 1, "b": 1}}


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("web", AppKey("apps", "web")),
        ("web:80", AppKey("apps", "web")),
        ("WEB.Apps", AppKey("apps", "web")),
        ("web.apps.svc", AppKey("apps", "web")),
        ("web.apps.svc.cluster.local", AppKey("apps", "web")),
        ("web.apps.svc.cluster.local.:8080", AppKey("apps", "web")),
        ("api.b", AppKey("b", "api")),
    ],
)
def test_every_service_name_form_routes(host: str, expected: AppKey) -> None:
    assert resolve(host, APPS) == expected


@pytest.mark.parametrize(
    ("host", "status", "words"),
    [
        ("api", 421, "several namespaces (a, b)"),
        ("nope", 404, "no app named 'nope'"),
        ("web.other", 404, "no app other/web"),
        ("web.apps.svc.evil.com", 404, "not a Service name"),
        ("", 400, "missing Host"),
        ("web:http", 400, "bad port"),
        ("web:1234567", 400, "bad port"),
        ("we_b", 400, "expected NAME"),
        ("[::1]:80", 404, "IP address"),
        ("a" * 400, 400, "longer than"),
        ("web..apps", 400, "expected NAME"),
    ],
)
def test_misses_say_why(host: str, status: int, words: str) -> None:
    got = resolve(host, APPS)
    assert isinstance(got, Miss)
    assert got.status == status
    assert words in got.reason


def test_cluster_domain_is_configurable() -> None:
    assert resolve("web.apps.svc.corp.internal", APPS, "corp.internal") == AppKey("apps", "web")
    assert isinstance(resolve("web.apps.svc.cluster.local", APPS, "corp.internal"), Miss)


@given(st.text(max_size=400))
def test_any_host_header_is_an_answer_never_an_exception(host: str) -> None:
    got = split_host(host)
    assert isinstance(got, Miss | tuple)
