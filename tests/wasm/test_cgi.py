"""WAGI's CGI contract: the environment, argv and the parsing of the guest's output (pure functions)."""

from __future__ import annotations

import pytest

from zerowatt.wasm.executor import GuestRequest
from zerowatt.wasm.wagi.cgi import CgiOutputError, CgiPlan, cgi_argv, cgi_environment, parse_cgi_output, query_args


def request(**overrides: object) -> GuestRequest:
    fields: dict[str, object] = {
        "request_id": "r1",
        "method": "POST",
        "path": "/test/hello/abc/d%20ef",
        "query": "foo=bar&x=a%20b",
        "headers": (
            ("host", "localhost:3000"),
            ("content-type", "text/plain"),
            ("x-trace-id", "42"),
            ("authorization", "secret"),
            ("connection", "keep-alive"),
        ),
        "body": b"abc",
        "matched_route": "/hello/...",
        "path_info": "/abc/d%20ef",
        "client_addr": "10.0.0.7",
        "client_port": 5555,
    }
    fields.update(overrides)
    return GuestRequest(**fields)  # type: ignore[arg-type]


def test_environment_matches_spins_wagi_variables() -> None:
    env = cgi_environment(request(), base="/test")
    assert env["X_FULL_URL"] == "http://localhost:3000/test/hello/abc/d%20ef?foo=bar&x=a%20b"
    assert env["PATH_INFO"] == "/abc/d ef"
    assert env["PATH_TRANSLATED"] == "/abc/d ef"
    assert env["X_RAW_PATH_INFO"] == "/abc/d%20ef"
    assert env["X_MATCHED_ROUTE"] == "/test/hello/..."
    assert env["X_RAW_COMPONENT_ROUTE"] == "/hello/..."
    assert env["X_COMPONENT_ROUTE"] == "/hello"
    assert env["X_BASE_PATH"] == "/test"
    assert env["SCRIPT_NAME"] == "/test/hello"
    assert env["QUERY_STRING"] == "foo=bar&x=a%20b"
    assert env["REQUEST_METHOD"] == "POST"
    assert env["CONTENT_LENGTH"] == "3"
    assert env["CONTENT_TYPE"] == "text/plain"
    assert env["SERVER_NAME"] == "localhost"
    assert env["SERVER_PORT"] == "3000"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["SERVER_SOFTWARE"] == "WAGI/1"
    assert env["GATEWAY_INTERFACE"] == "CGI/1.1"
    assert env["REMOTE_ADDR"] == env["REMOTE_HOST"] == "10.0.0.7"
    assert env["X_CLIENT_ADDR"] == "10.0.0.7:5555"
    assert env["HTTP_X_TRACE_ID"] == "42"
    assert env["HTTP_HOST"] == "localhost:3000"
    assert "HTTP_AUTHORIZATION" not in env and "HTTP_CONNECTION" not in env


def test_exact_route_at_root_base() -> None:
    env = cgi_environment(request(path="/hello", query="", matched_route="/hello", path_info=""), base="/")
    assert env["SCRIPT_NAME"] == "/hello"
    assert env["X_MATCHED_ROUTE"] == "/hello"
    assert env["PATH_INFO"] == ""
    assert env["X_FULL_URL"] == "http://localhost:3000/hello"


def test_host_header_without_port_falls_back_to_listener_port() -> None:
    env = cgi_environment(request(headers=(("host", "example.org"),), port=8080), base="/")
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("example.org", "8080")


def test_cgi_variables_override_component_environment() -> None:
    env = cgi_environment(request(), extra={"PATH_INFO": "spoofed", "GREETING": "hi"})
    assert env["PATH_INFO"] == "/abc/d ef"
    assert env["GREETING"] == "hi"


def test_argv_template_expands_query_arguments() -> None:
    assert query_args("a=1&b=x%20y&&c+d") == ["a=1", "b=x y", "c d"]
    assert cgi_argv("${SCRIPT_NAME} ${ARGS}", "/hello", "a&b%20c") == ["/hello", "a", "b c"]
    assert cgi_argv("${SCRIPT_NAME} --flag ${ARGS}", "/x", "") == ["/x", "--flag"]


def test_parse_output_with_status_and_headers() -> None:
    out = parse_cgi_output(b"Status: 418 I'm a teapot\r\nContent-Type: text/plain\r\nX-A: 1\r\n\r\nbody\r\n")
    assert out.status == 418
    assert out.headers == [("content-type", "text/plain"), ("x-a", "1")]
    assert out.body == b"body\r\n"


def test_location_without_status_is_a_302() -> None:
    out = parse_cgi_output(b"Location: /elsewhere\n\n")
    assert (out.status, out.headers, out.body) == (302, [("location", "/elsewhere")], b"")
    assert parse_cgi_output(b"Status: 301\nLocation: /x\n\n").status == 301


def test_content_type_only_is_a_200_and_body_is_kept_binary() -> None:
    out = parse_cgi_output(b"Content-Type: application/octet-stream\n\n\x00\xff\n\n")
    assert out.status == 200 and out.body == b"\x00\xff\n\n"


@pytest.mark.parametrize(
    "stdout",
    [
        b"",
        b"no header block at all",
        b"X-Only: other\n\nbody",  # none of Content-Type/Location/Status
        b"Status: abc\n\n",
        b"Status: 99\n\n",
        "Status: ²²²\n\n".encode(),  # digits to str.isdigit, not to int()
        b"Content-Type text/plain\n\n",  # no colon
        b"Bad Name: x\nContent-Type: text/plain\n\n",
        b"Content-Type: \xff\n\n",
    ],
)
def test_malformed_output_is_rejected(stdout: bytes) -> None:
    with pytest.raises(CgiOutputError):
        parse_cgi_output(stdout)


@pytest.mark.parametrize(
    ("req", "extra"),
    [
        (request(), {}),
        (request(), {"PATH_INFO": "spoofed", "GREETING": "hi", "SCRIPT_NAME": "x"}),
        (request(path="/hello", query="", matched_route="/hello", path_info=""), {"A": "1"}),
        (request(headers=(("host", "example.org"),), port=8080), {}),
        (request(headers=(("host", "[::1]:9"),), path_info="/a%20b"), {}),
        (request(headers=(("accept", "a"), ("accept", "b"), ("x-a", "1"), ("x_a", "2"), ("content-type", "t"))), {}),
        (request(headers=(("authorization", "secret"), ("connection", "close"))), {}),
        (request(headers=()), {}),
    ],
)
def test_cgi_plan_gives_exactly_the_environment_of_cgi_environment(req: GuestRequest, extra: dict[str, str]) -> None:
    for base in ("/", "/test"):
        plan = CgiPlan.build(base=base, matched_route=req.matched_route, extra=extra, argv_template="${SCRIPT_NAME}")
        header_names, values = plan.values(req)
        names = [*plan.names, *header_names]
        assert len(names) == len(plan.fixed_values) + len(values)
        env = dict(zip(names, [*plan.fixed_values, *values], strict=True))
        assert len(env) == len(names)  # no name twice
        assert env == cgi_environment(req, base=base, extra=extra)
        assert not plan.general
        assert plan.argv("a&b") == cgi_argv("${SCRIPT_NAME}", env["SCRIPT_NAME"], "a&b")


def test_cgi_plan_defers_to_the_dict_when_a_variable_could_be_shadowed_by_a_header() -> None:
    plan = CgiPlan.build(base="/", matched_route="/x", extra={"HTTP_ACCEPT": "v"}, argv_template="${SCRIPT_NAME}")
    assert plan.general
