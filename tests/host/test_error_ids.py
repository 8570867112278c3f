"""Every 5xx the host sends carries an error id (header and body) that is also in the log.

The module here imports Spin's ``spin-config``, so the WAGI executor cannot link it. The loader
refuses such a module (tests/wasm/test_host_imports.py); this App is built by hand, as if the file
had changed after loading, to exercise the executor's own failure path: it used to answer 503 with
an empty error id and no log line.
"""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from tests.host.conftest import make_host
from tests.host.guestbuild import app, component
from tests.wasm.test_host_imports import SPIN_CONFIG_WAT
from zerowatt.host.app import HostApp
from zerowatt.host.asgi import AsgiApp
from zerowatt.host.pool import ComponentPool
from zerowatt.host.settings import HostSettings
from zerowatt.wasm.model import App
from zerowatt.wasm.router import Router


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> list[App]:
    source = tmp_path_factory.mktemp("spin") / "config.wat"
    source.write_text(SPIN_CONFIG_WAT)
    return [app([component(Path(source), "spin")], {"/spin": "spin"}, name="spin-app")]


async def test_a_module_that_cannot_link_gets_503_with_a_logged_id(
    apps: list[App], pool: ComponentPool, caplog: pytest.LogCaptureFixture
) -> None:
    host = make_host(apps, pool, [])
    caplog.set_level(logging.ERROR)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=AsgiApp(host)), base_url="http://test") as client:
        first = await client.get("/spin")
        second = await client.get("/spin")
    ids = []
    for response in (first, second):
        assert response.status_code == 503
        error_id = response.headers["x-error-id"]
        assert len(error_id) >= 8 and error_id in response.text
        logged = [r for r in caplog.records if error_id in r.getMessage()]
        assert logged and "spin-config" in logged[0].getMessage()
        ids.append(error_id)
    assert ids[0] != ids[1]


@pytest.mark.parametrize("policy", ["kpa", "keepalive"])
async def test_a_module_that_cannot_load_is_503_at_once_under_a_policy(
    apps: list[App], pool: ComponentPool, policy: str
) -> None:
    """The activator lets a request through when a start fails *during* its own scaling decision (WAGI
    loads synchronously there): it used to wait for a later failure and answer 504 at the deadline."""
    host = HostApp(Router(apps).match, pool, HostSettings(policy=policy, request_timeout=30.0))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=AsgiApp(host)), base_url="http://test") as client:
        response = await client.get("/spin")
    assert response.status_code == 503 and response.headers["x-error-id"] in response.text
    assert pool.slot("spin-app", "spin").in_flight == 0
