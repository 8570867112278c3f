"""The lean kubeconfig / in-cluster reader: what it reads itself, and what it leaves to the official client."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kube.conftest import NOW, workload
from tests.kube.emulator import EmulatorThread
from tests.kube.test_controller_kmock import create, emu
from zerowatt.errors import UsageError
from zerowatt.kube.api import KubeApi, load_api_client
from zerowatt.kube.controller import Downscaler, Options
from zerowatt.kube.kubeconfig import LeanClient, from_kubeconfig, in_cluster
from zerowatt.kube.matcher import schedule_matcher
from zerowatt.kube.settings import make_settings
from zerowatt.kube.wire import endpoint_from


def kubeconfig(tmp_path: Path, cluster: dict[str, object], user: dict[str, object], name: str = "config") -> str:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}, {"name": "other", "cluster": {"server": "https://other:6443"}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [
            {"name": "main", "context": {"cluster": "c", "user": "u"}},
            {"name": "second", "context": {"cluster": "other", "user": "u"}},
        ],
        "current-context": "main",
    }
    path = tmp_path / name
    path.write_text(json.dumps(doc))  # JSON is YAML
    return str(path)


def auth(client: LeanClient) -> str | None:
    headers: dict[str, str] = {}
    client.update_params_for_auth(headers, [], ["BearerToken"], "", "GET", None)
    return headers.get("Authorization")


def test_token_user_and_context(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path, {"server": "https://10.0.0.1:6443/"}, {"token": "abc"})
    client = from_kubeconfig(path)
    assert isinstance(client, LeanClient) and auth(client) == "Bearer abc"
    assert client.configuration.host == "https://10.0.0.1:6443" and client.configuration.verify_ssl
    other = from_kubeconfig(path, "second")
    assert other is not None and other.configuration.host == "https://other:6443"
    with pytest.raises(UsageError, match="no context named 'nope'"):
        from_kubeconfig(path, "nope")


def test_ca_data_insecure_and_relative_files(tmp_path: Path) -> None:
    ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    (tmp_path / "token").write_text("from-file\n")
    cluster = {"server": "https://k:6443", "certificate-authority-data": base64.b64encode(ca.encode()).decode()}
    user = {"tokenFile": "token", "client-certificate": "certs/c.crt", "client-key": "certs/c.key"}
    client = from_kubeconfig(kubeconfig(tmp_path, {**cluster, "tls-server-name": "api.internal"}, user))
    assert client is not None
    cfg = client.configuration
    assert cfg.ca_cert_data == ca and cfg.tls_server_name == "api.internal"
    assert cfg.cert_file == str(tmp_path / "certs/c.crt") and cfg.key_file == str(tmp_path / "certs/c.key")
    assert auth(client) == "Bearer from-file"
    (tmp_path / "token").write_text("rotated")
    assert auth(client) == "Bearer rotated"  # re-read for every batch
    insecure = from_kubeconfig(kubeconfig(tmp_path, {"server": "https://k", "insecure-skip-tls-verify": True}, {}))
    assert insecure is not None and insecure.configuration.verify_ssl is False
    assert endpoint_from(insecure.configuration).tls is not None


def test_client_certificate_data_goes_to_a_private_file(tmp_path: Path) -> None:
    user = {
        "client-certificate-data": base64.b64encode(b"CERT").decode(),
        "client-key-data": base64.b64encode(b"KEY").decode(),
    }
    client = from_kubeconfig(kubeconfig(tmp_path, {"server": "https://k"}, user))
    assert client is not None and client.configuration.cert_file and client.configuration.key_file
    assert Path(client.configuration.key_file).read_bytes() == b"KEY"
    assert stat.S_IMODE(os.stat(client.configuration.key_file).st_mode) == 0o600


def test_basic_auth(tmp_path: Path) -> None:
    client = from_kubeconfig(kubeconfig(tmp_path, {"server": "http://k"}, {"username": "a", "password": "b"}))
    assert client is not None and auth(client) == "Basic " + base64.b64encode(b"a:b").decode()


@pytest.mark.parametrize(
    ("cluster", "user"),
    [
        ({}, {"exec": {"command": "aws", "apiVersion": "client.authentication.k8s.io/v1beta1"}}),
        ({}, {"auth-provider": {"name": "oidc"}}),
        ({"proxy-url": "http://proxy:3128"}, {"token": "t"}),
    ],
)
def test_plugins_and_proxies_are_left_to_the_official_client(
    tmp_path: Path, cluster: dict[str, object], user: dict[str, object]
) -> None:
    assert from_kubeconfig(kubeconfig(tmp_path, {"server": "https://k", **cluster}, user)) is None


def test_bad_files_are_usage_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_text("clusters: [")
    with pytest.raises(UsageError, match="not valid YAML"):
        from_kubeconfig(str(bad))
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(UsageError, match="No configuration found"):
        load_api_client(str(empty))


def test_in_cluster_service_account(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("sa-token")
    (tmp_path / "ca.crt").write_text("CA")
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    client = in_cluster(env, tmp_path)
    assert client is not None and client.configuration.host == "https://10.96.0.1:443"
    assert client.configuration.ssl_ca_cert == str(tmp_path / "ca.crt") and auth(client) == "Bearer sa-token"
    assert in_cluster({}, tmp_path) is None and in_cluster(env, tmp_path / "missing") is None
    v6 = in_cluster({"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}, tmp_path)
    assert v6 is not None and v6.configuration.host == "https://[fd00::1]:443"


def test_a_pass_through_the_lean_client_without_importing_kubernetes(kube: EmulatorThread, tmp_path: Path) -> None:
    emu(kube).add_namespace("dev")
    create(kube, "deployments", workload(spec={"replicas": 2}))
    path = kubeconfig(tmp_path, {"server": kube.url}, {"token": "t0k"})
    api = KubeApi(load_api_client(path))
    report = Downscaler(api, make_settings(default_uptime="never"), schedule_matcher(), Options()).run_pass(NOW)
    assert [c.action for c in report.changes] == ["down"]
    code = (
        "import sys; from zerowatt.kube.api import load_api_client; "
        f"c = load_api_client({path!r}); print(type(c).__name__, 'kubernetes' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["LeanClient", "False"]
