"""KubeApi's retry policy and its handling of a server that does not answer at all."""

from __future__ import annotations

import pytest
from kubernetes import client

from tests.conftest import free_port
from zerowatt.kube.api import ApiError, KubeApi, RetryPolicy, path_segment


def test_backoff_doubles_is_capped_and_honours_retry_after() -> None:
    policy = RetryPolicy(attempts=5, base=0.5, cap=4.0)
    assert [policy.delay(n, None) for n in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert policy.delay(0, "2") == 2.0
    assert policy.delay(0, "120") == 4.0  # a server asking for more than the cap gets the cap
    assert policy.delay(1, "Wed, 21 Oct 2015 07:28:00 GMT") == 1.0  # HTTP date: our own backoff


def test_unreachable_server_is_retried_then_reported() -> None:
    cfg = client.Configuration()
    cfg.host = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    sleeps: list[float] = []
    api = KubeApi(
        client.ApiClient(cfg), retry=RetryPolicy(attempts=3, base=0.01, cap=1), sleep=sleeps.append, timeout=2
    )
    with pytest.raises(ApiError) as err:
        api.get("/api/v1/namespaces")
    assert err.value.status == 0 and "GET /api/v1/namespaces" in str(err.value)
    assert sleeps == [0.01, 0.02] and api.requests == 3


def test_path_segment_escapes() -> None:
    assert path_segment("a/b c") == "a%2Fb%20c"
