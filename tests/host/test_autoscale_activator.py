"""The activator's bounds, in-process with real ``wasmtime serve`` children (and real failing binaries):
a start that never gets ready ends the held request at its deadline, a start that fails lets it through to
the executor's 503, and the instance-time accounting follows the children."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.waiting import await_until
from tests.wasm.wasihttp_support import make_component, request, running
from zerowatt.host.autoscale import ComponentScaler
from zerowatt.host.pool import Slot
from zerowatt.scaling.policies import parse_policy
from zerowatt.wasm.executor import GuestUnavailable
from zerowatt.wasm.model import ExecutorKind
from zerowatt.wasm.wasihttp.executor import WasiHttpExecutor

pytestmark = pytest.mark.timeout(60)


def scaler_for(executor: WasiHttpExecutor, *options: str) -> ComponentScaler:
    app, component = make_component()
    slot = Slot(app, component, ExecutorKind.WASI_HTTP, executor, labels=(app.name, component.id))
    policy = parse_policy("keepalive", list(options)).autoscaler(cold_start=0.015)
    return ComponentScaler(slot, policy, max_instances=3)


async def test_a_start_that_never_gets_ready_ends_the_held_request_at_its_deadline(tmp_path: Path) -> None:
    fake = tmp_path / "wasmtime"
    fake.write_text("#!/bin/sh\nexec sleep 30\n")
    fake.chmod(0o755)
    app, component = make_component()
    async with running(app, component, wasmtime_path=str(fake), start_timeout=1.0) as executor:
        scaler = scaler_for(executor)
        with pytest.raises(TimeoutError):
            await scaler.admit(0.3)
        assert scaler.pending == 0 and scaler.slot.in_flight == 0 and executor.ready == 0
        assert scaler.stats.cold_starts == 0  # never admitted


async def test_a_start_that_fails_lets_the_held_request_through_to_the_503(tmp_path: Path) -> None:
    fake = tmp_path / "wasmtime"
    fake.write_text("#!/bin/sh\necho 'Error: broken' >&2\nexit 3\n")
    fake.chmod(0o755)
    app, component = make_component()
    async with running(app, component, wasmtime_path=str(fake)) as executor:
        scaler = scaler_for(executor)
        assert await scaler.admit(5.0) is True  # released by the failure, long before the deadline
        assert executor.start_failures == 1
        with pytest.raises(GuestUnavailable, match="broken"):
            await executor.handle(request())
        scaler.done()


async def test_children_follow_the_desired_count_and_instance_time_is_accounted() -> None:
    app, component = make_component()
    async with running(app, component) as executor:
        scaler = scaler_for(executor, "capacity=1", "keep_alive=0.05")
        held = [asyncio.ensure_future(scaler.admit(10.0)) for _ in range(3)]
        assert await asyncio.gather(*held) == [True] * 3  # all three waited for a child
        await await_until(
            lambda: executor.ready + executor.starting >= 3 and not executor.starting, "three children started"
        )
        assert executor.ready == 3 and len(set(executor.pids)) == 3
        responses = await asyncio.gather(*(executor.handle(request()) for _ in range(3)))
        assert [r.status for r in responses] == [200] * 3
        for _ in range(3):
            scaler.done()
        await await_until(lambda: not executor.ready, "every child stopped after the keep-alive")
        scaler.close()
        assert scaler.stats.instance_starts == 3 and scaler.stats.max_instances_seen == 3
        assert 0 < scaler.stats.idle_instance_seconds <= scaler.stats.instance_seconds
