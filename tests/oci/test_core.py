"""The pure core of ``zerowatt pull``: references, manifests, credentials, challenges, the locked app."""

from __future__ import annotations

import base64
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from zerowatt.errors import ValidationError
from zerowatt.oci import tomlwrite
from zerowatt.oci.auth import credentials_for, parse_challenge, token_url
from zerowatt.oci.locked import plan_app
from zerowatt.oci.manifest import OCI_INDEX, parse_manifest, sha256_digest
from zerowatt.oci.reference import OciReference, UrlReference, parse_reference
from zerowatt.wasm.manifest.parse import parse_manifest as parse_spin

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ghcr.io/org/app:1.0", OciReference("ghcr.io", "org/app", "1.0", None)),
        ("app", OciReference("docker.io", "library/app", "latest", None)),
        ("user/app", OciReference("docker.io", "user/app", "latest", None)),
        ("localhost:5000/a/b/c", OciReference("localhost:5000", "a/b/c", "latest", None)),
        (f"127.0.0.1:5000/app@{D}", OciReference("127.0.0.1:5000", "app", None, D)),
        (f"reg.example/app:v2@{D}", OciReference("reg.example", "app", "v2", D)),
        (f"https://h/app.tar.gz#sha256={'a' * 64}", UrlReference("https://h/app.tar.gz", D)),
    ],
)
def test_references(text: str, expected: object) -> None:
    assert parse_reference(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ghcr.io/Org/app", "lower-case"),
        ("ghcr.io/org/app:", "tag"),
        ("ghcr.io/org/app@sha256:abc", "64 lower-case hex"),
        ("https://h/app.tar.gz", "#sha256="),
        ("https://h/app.tar.gz#sha256=xyz", "64 lower-case hex"),
        ("ftp://h/app", "https://"),
        ("a b", "no spaces"),
    ],
)
def test_bad_references_name_what_was_expected(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_reference(text)


def test_docker_hub_api_host_and_loopback() -> None:
    assert parse_reference("user/app").api_host == "registry-1.docker.io"  # type: ignore[union-attr]
    ref = parse_reference("127.0.0.1:5000/app")
    assert isinstance(ref, OciReference) and ref.loopback and ref.manifest_ref == "latest"
    assert not parse_reference("ghcr.io/a/b").loopback  # type: ignore[union-attr]


def manifest(layers: list[dict[str, Any]], **extra: object) -> bytes:
    doc = {"schemaVersion": 2, "config": {"mediaType": "x", "digest": D, "size": 2}, "layers": layers, **extra}
    return json.dumps(doc).encode()


def test_manifests_are_checked() -> None:
    data = manifest([{"mediaType": "m", "digest": D, "size": 1}])
    assert parse_manifest(data, where="r", expected_digest=sha256_digest(data)).layers[0].size == 1
    with pytest.raises(ValidationError, match="manifest digest mismatch"):
        parse_manifest(data, where="r", expected_digest=D)
    with pytest.raises(ValidationError, match="image index"):
        parse_manifest(json.dumps({"mediaType": OCI_INDEX, "manifests": []}).encode(), where="r", expected_digest=None)
    with pytest.raises(ValidationError, match="at most 500"):
        parse_manifest(manifest([{"mediaType": "m", "digest": D, "size": 1}] * 501), where="r", expected_digest=None)
    with pytest.raises(ValidationError, match=r"r: layers\[0\].digest"):
        parse_manifest(manifest([{"mediaType": "m", "digest": "md5:x", "size": 1}]), where="r", expected_digest=None)


def test_docker_config_credentials() -> None:
    auth = base64.b64encode(b"me:pa:ss").decode()
    configs = [
        ("a.json", json.dumps({"auths": {"other.io": {"auth": auth}}})),
        ("b.json", json.dumps({"auths": {"https://index.docker.io/v1/": {"auth": auth}}})),
        ("c.json", json.dumps({"auths": {"ghcr.io": {"username": "u", "password": "p"}}})),
    ]
    hub = credentials_for("docker.io", configs)
    assert hub is not None and (hub.username, hub.password, hub.source) == ("me", "pa:ss", "b.json")
    assert "pa:ss" not in repr(hub)
    ghcr = credentials_for("ghcr.io", configs)
    assert ghcr is not None and ghcr.username == "u"
    assert credentials_for("quay.io", configs) is None
    with pytest.raises(ValidationError, match=r'bad\.json: expected a \.dockerconfigjson document with an "auths"'):
        credentials_for("ghcr.io", [("bad.json", "[]")])


def test_bearer_challenges() -> None:
    header = 'Bearer realm="https://auth.io/token",service="registry.io",scope="repository:org/app:pull"'
    challenge = parse_challenge(header)
    assert challenge.scheme == "bearer" and challenge.params["service"] == "registry.io"
    assert token_url(challenge, "org/app", where="r") == (
        "https://auth.io/token?service=registry.io&scope=repository%3Aorg%2Fapp%3Apull"
    )
    assert parse_challenge('Basic realm="x"').scheme == "basic"
    with pytest.raises(ValidationError, match="no usable realm"):
        token_url(parse_challenge('Bearer realm="file:///etc"'), "x", where="r")


def locked_app(**component: object) -> dict[str, Any]:
    comp = {"id": "web", "source": {"content_type": "application/wasm", "digest": D}, **component}
    return {
        "spin_lock_version": 1,
        "metadata": {"name": "demo", "version": "1.0", "trigger": {"type": "http", "base": "/api"}},
        "variables": {"who": {"default": "world"}, "token": {"secret": True}},
        "triggers": [
            {"id": "t", "trigger_type": "http", "trigger_config": {"component": "web", "route": "/hello/..."}}
        ],
        "components": [comp],
    }


def test_a_locked_app_becomes_a_manifest_zerowatt_parses(tmp_path: Path) -> None:
    inline = b'evil"\n[component.x]\x7f'
    doc = locked_app(
        env={"MODE": 'quote " and \\ and \n newline'},
        config={"message": "{{ who }}"},
        metadata={"allowed_outbound_hosts": ["https://example.com"]},
        files=[
            {"digest": D, "path": "static/index.html"},
            {"inline": base64.b64encode(inline).decode(), "digest": sha256_digest(inline), "path": "a.txt"},
        ],
    )
    plan = plan_app(json.dumps(doc).encode(), where="ref: spin.lock")
    parsed = tomllib.loads(plan.manifest)
    assert parsed["component"]["web"]["environment"]["MODE"] == 'quote " and \\ and \n newline'
    assert parsed["application"]["trigger"]["http"]["base"] == "/api"
    assert parsed["variables"] == {"who": {"default": "world"}, "token": {"required": True, "secret": True}}
    assert parsed["component"]["web"]["files"] == [{"source": "files/web", "destination": "/"}]
    assert plan.needed_digests() == {D}
    spec = parse_spin(parsed, tmp_path / "spin.toml")
    assert spec.name == "demo" and spec.triggers[0].component_id == "web"


@pytest.mark.parametrize(
    ("component", "message"),
    [
        ({"files": [{"digest": D, "path": "../x"}]}, r"files\[0\].path: unsafe file path '../x'"),
        ({"files": [{"digest": D, "path": "/etc/x"}]}, "unsafe file path"),
        ({"files": [{"digest": D, "path": "a//b"}]}, "unsafe file path"),
        ({"files": [{"digest": D, "path": "a"}, {"digest": D, "path": "a/b"}]}, "clashes"),
        ({"files": [{"inline": base64.b64encode(b"x").decode(), "digest": D, "path": "a"}]}, "digest mismatch"),
        ({"dependencies": {"a:b": {}}}, "component dependencies are not supported"),
        ({"metadata": {"key_value_stores": ["default"]}}, "no key-value store"),
        ({"source": {"content_type": "application/wasm", "source": "file:///x.wasm"}}, "was this app pushed"),
    ],
)
def test_what_zerowatt_cannot_or_must_not_write_is_refused(component: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        plan_app(json.dumps(locked_app(**component)).encode(), where="ref: spin.lock")


def test_non_http_triggers_and_plain_wasm_packages_are_refused() -> None:
    doc = locked_app()
    doc["triggers"][0]["trigger_type"] = "redis"
    with pytest.raises(ValidationError, match=r"triggers\[0\] \(t\): trigger type 'redis'"):
        plan_app(json.dumps(doc).encode(), where="ref")
    with pytest.raises(ValidationError, match="not a Spin application"):
        plan_app(b'{"architecture": "wasm"}', where="ref")


def test_toml_strings_escape_everything_toml_forbids_raw() -> None:
    text = "".join(chr(c) for c in range(0x80)) + "é\U0001f600"
    assert tomllib.loads(f"k = {tomlwrite.string(text)}")["k"] == text
    with pytest.raises(ValidationError, match="where"):
        tomlwrite.value(None, "where")
