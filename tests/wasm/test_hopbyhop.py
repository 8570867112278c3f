"""Hop-by-hop and httpoxy request headers never reach a guest, on either executor (pure functions).

The end-to-end versions (real guests behind the real HTTP front) are in tests/host/test_http_limits.py.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from zerowatt.wasm.executor import GuestRequest
from zerowatt.wasm.hopbyhop import connection_options, end_to_end
from zerowatt.wasm.wagi.cgi import CgiOutputError, CgiPlan, cgi_environment, parse_cgi_output
from zerowatt.wasm.wasihttp.plan import encode_request

HOSTILE = (
    ("host", "example.org"),
    ("proxy", "http://attacker.example:8080"),  # httpoxy: would become HTTP_PROXY
    ("proxy-authorization", "Basic c2VjcmV0"),
    ("connection", "keep-alive, X-Nominated ,x-other"),
    ("x-nominated", "1"),
    ("x-other", "2"),
    ("connection", "X-Third"),  # a second Connection field adds to the first
    ("x-third", "3"),
    ("keep-alive", "timeout=5"),
    ("te", "trailers"),
    ("trailer", "x-late"),
    ("transfer-encoding", "chunked"),
    ("upgrade", "websocket"),
    ("proxy-connection", "keep-alive"),
    ("proxy-authenticate", "Basic"),
    ("x-kept", "yes"),
    ("accept", "*/*"),
)
EnvBuilder = Callable[[GuestRequest], dict[str, str]]
KEPT = [("host", "example.org"), ("x-kept", "yes"), ("accept", "*/*")]


def request(headers: tuple[tuple[str, str], ...] = HOSTILE) -> GuestRequest:
    return GuestRequest(
        request_id="r1",
        method="GET",
        path="/app/x",
        query="",
        headers=headers,
        body=b"",
        matched_route="/app/...",
        path_info="/x",
    )


def test_end_to_end_keeps_only_end_to_end_fields() -> None:
    assert end_to_end(HOSTILE) == KEPT


def test_connection_cannot_make_host_hop_by_hop() -> None:
    assert connection_options("Host, close, ,X-A") == ["close", "x-a"]
    assert end_to_end([("connection", "host"), ("host", "h")]) == [("host", "h")]


def _plan_env(req: GuestRequest) -> dict[str, str]:
    plan = CgiPlan.build(base="/", matched_route=req.matched_route, extra={}, argv_template="${SCRIPT_NAME}")
    names, values = plan.values(req)
    return dict(zip([*plan.names, *names], [*plan.fixed_values, *values], strict=True))


@pytest.mark.parametrize("build", [_plan_env, cgi_environment], ids=["plan", "dict"])
def test_the_wagi_environment_has_no_hop_by_hop_or_proxy_variables(build: EnvBuilder) -> None:
    env = build(request())
    http_vars = {k: v for k, v in env.items() if k.startswith("HTTP_")}
    assert http_vars == {"HTTP_HOST": "example.org", "HTTP_X_KEPT": "yes", "HTTP_ACCEPT": "*/*"}


def test_the_request_proxied_to_a_wasi_http_child_has_no_hop_by_hop_or_proxy_fields() -> None:
    head = encode_request(request(), "127.0.0.1:1").decode("latin-1").split("\r\n\r\n")[0]
    names = [line.split(":", 1)[0] for line in head.split("\r\n")[1:]]
    assert [n for n in names if not n.startswith("spin-")] == ["host", "x-kept", "accept", "content-length"]


@pytest.mark.parametrize("status", ["100", "101 Switching Protocols", "103", "199"])
def test_an_interim_cgi_status_is_refused(status: str) -> None:
    with pytest.raises(CgiOutputError, match="interim"):
        parse_cgi_output(f"Status: {status}\nContent-Type: text/plain\n\nbody".encode())
    assert parse_cgi_output(b"Status: 200\nContent-Type: text/plain\n\nbody").status == 200
