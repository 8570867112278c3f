"""The autoscaler's adapter in the host: every request of ``zerowatt up`` goes through it.

With ``--policy NAME`` the policy is that one; without, it is the keep-alive policy with ``--idle-unload``
as its window (:func:`idle_unload_policy`), so the app core has one path. One :class:`ComponentScaler` per
component and worker. It owns the clock (``time.monotonic``, passed to the
pure policy as :class:`~zerowatt.scaling.online.Observation.now`), calls the policy's ``decide`` on every
request arrival and completion, at the policy's ``wake_at`` and every ``tick`` while instances exist (one
``loop.call_later`` timer per component, never a polling loop), and converges the component's instances to
the desired count:

* WAGI (in-process): an instance is the loaded component (module mapped from the compile cache +
  ``InstancePre``); 1 = loaded, 0 = unloaded. Every request still gets a fresh wasm instance.
* wasi:http: an instance is a ``wasmtime serve`` child; :meth:`WasiHttpExecutor.scale_to` starts and stops
  children from 0 to N (N capped by ``max_instances``), requests go to the least busy ready child.

Both through :class:`~zerowatt.wasm.executor.Scalable` only (ready, starts, failures, ``scale_to``,
``on_change``). The scaler owns ``slot.in_flight`` (:meth:`ComponentScaler.admit` / :meth:`~ComponentScaler.done`)
and counts cold starts, in one place.

The **activator**: a request that arrives while no instance is ready is held (counted as ``pending`` by the
policy, which then always asks for at least one instance) until one is ready, bounded by the request
deadline (504 only if nothing could start in time). Such a request is a **cold start**. Accounting per
component: cold starts, instance starts, instance-seconds and idle instance-seconds (ready instances beyond
those serving a request), updated at every event and exported on ``/metrics``; a summary is logged at
shutdown.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from zerowatt.errors import ValidationError
from zerowatt.scaling.online import Autoscaler, Observation
from zerowatt.scaling.policies import PolicyConfig
from zerowatt.scaling.policies.keepalive import FixedKeepAlive
from zerowatt.units import Seconds
from zerowatt.wasm.executor import Scalable
from zerowatt.wasm.model import ExecutorKind

from .pool import ComponentPool, Slot
from .settings import HostSettings

log = logging.getLogger(__name__)

#: Start latency the energy policy assumes per executor kind unless ``--policy-option cold_start`` says
#: otherwise: the WAGI cold start measured in docs/benchmarks.md (0.31–0.38 ms, rounded down to the
#: simulator's 0.3 ms) and a ``wasmtime serve`` start (12–13 ms measured there, rounded up).
DEFAULT_COLD_START: dict[ExecutorKind, Seconds] = {ExecutorKind.WAGI: 0.0003, ExecutorKind.WASI_HTTP: 0.015}
#: Instance-time reaches the metrics at most this often, at each change of the ready count and at close:
#: two Prometheus increments on every request cost more than the rest of the scaler (docs/benchmarks.md).
METRICS_PUSH: Seconds = 1.0
#: Children per wasi:http component and worker when ``max_instances`` is not given.
DEFAULT_MAX_CHILDREN = 4


def idle_unload_policy(idle_unload: Seconds | None) -> PolicyConfig:
    """What ``--idle-unload N`` means without ``--policy``: the keep-alive policy with an N-second window.

    An instance stays after its last request for ``idle_unload`` seconds (None: for ever), one instance
    per component while busy, as the idle reaper this replaces did.
    """
    keep = math.inf if idle_unload is None else idle_unload
    return PolicyConfig("keepalive", FixedKeepAlive(keep_alive=keep), options=(("keep_alive", keep),))


def policy_for(settings: HostSettings) -> PolicyConfig:
    """The worker's policy: ``--policy`` with its options, else :func:`idle_unload_policy`."""
    return settings.policy_config() or idle_unload_policy(settings.idle_unload)


class ScalerMetrics(Protocol):
    """What the scaler reports (implemented by :class:`zerowatt.host.metrics.HostMetrics`)."""

    def request_waited(self, app: str, component: str) -> None: ...
    def instance_started(self, app: str, component: str, seconds: float | None) -> None: ...
    def set_instances(self, app: str, component: str, n: int) -> None: ...
    def instance_time(self, app: str, component: str, instance_seconds: float, idle_seconds: float) -> None: ...


@dataclass(slots=True)
class ScalerStats:
    """What one component's scaler counted (this worker)."""

    requests: int = 0
    cold_starts: int = 0  # requests that had to wait for an instance
    instance_starts: int = 0
    instance_seconds: float = 0.0
    idle_instance_seconds: float = 0.0
    decisions: int = 0
    max_instances_seen: int = 0


class ComponentScaler:
    """The policy, the instances and the activator of one component (see the module docstring)."""

    def __init__(
        self,
        slot: Slot,
        autoscaler: Autoscaler,
        *,
        max_instances: int,
        metrics: ScalerMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.slot = slot
        self.autoscaler = autoscaler
        self.max_instances = max(1, max_instances)
        self.metrics = metrics
        self.clock = clock
        self.app, self.component = slot.labels
        self.label = f"{self.app}/{self.component}"
        self.executor: Scalable = slot.executor
        self.executor.on_change = self._on_change
        self.pending = 0
        self.desired = 0
        self.stats = ScalerStats()
        self._ready_event: asyncio.Event | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._now = clock()
        self._acc_t = self._now
        self._acc_ready = 0
        self._acc_busy = 0
        self._reported_ready = -1
        self._pushed = (0.0, 0.0)  # instance-time already in the metrics (seconds, idle seconds)
        self._push_at = self._now
        self._starts_seen = self.executor.starts
        self._closed = False
        # The one observation handed to the policy, updated in place (see Observation: not kept by policies).
        self._obs = Observation(now=self._now, in_flight=0)

    # -- the clock and the accounting ----------------------------------------------------------
    def _advance(self) -> float:
        """Read the clock (``Observation.now`` never goes backwards) and add the interval since the last
        event at the instance counts seen then; returns now."""
        now = self.clock()
        if now > self._now:
            self._now = now
        else:
            now = self._now
        dt = now - self._acc_t
        self._acc_t = now
        if dt <= 0 or self._acc_ready == 0:
            return now
        stats = self.stats
        stats.instance_seconds += self._acc_ready * dt
        idle = self._acc_ready - self._acc_busy
        if idle > 0:
            stats.idle_instance_seconds += idle * dt
        if self.metrics is not None and now >= self._push_at:
            self._push_time(now)
        return now

    def _push_time(self, now: float) -> None:
        """Hand the instance-time accounted since the last push to the metrics."""
        assert self.metrics is not None
        pushed_inst, pushed_idle = self._pushed
        inst, idle = self.stats.instance_seconds, self.stats.idle_instance_seconds
        self._pushed = (inst, idle)
        self._push_at = now + METRICS_PUSH
        if inst != pushed_inst or idle != pushed_idle:
            self.metrics.instance_time(self.app, self.component, inst - pushed_inst, idle - pushed_idle)

    def _count_starts(self) -> None:
        starts = self.executor.starts
        if starts == self._starts_seen:
            return
        seconds = self.executor.last_start_seconds
        if seconds is not None:
            log.info("cold start %s: %.3f ms", self.label, seconds * 1e3)
        for _ in range(starts - self._starts_seen):
            self.stats.instance_starts += 1
            if self.metrics is not None:
                self.metrics.instance_started(self.app, self.component, seconds)
        self._starts_seen = starts

    def _snapshot(self) -> None:
        self._count_starts()
        ready = self.executor.ready
        self._acc_ready = ready
        self._acc_busy = min(self.slot.in_flight, ready)
        self.stats.max_instances_seen = max(self.stats.max_instances_seen, ready)
        if ready != self._reported_ready:
            self._reported_ready = ready
            if self.metrics is not None:
                self._push_time(self._now)
                self.metrics.set_instances(self.app, self.component, ready)
        if ready > 0 and self._ready_event is not None:
            self._ready_event.set()

    def flush(self) -> None:
        """Bring instance-time up to now, in the stats and the metrics (otherwise they move at events)."""
        now = self._advance()
        if self.metrics is not None:
            self._push_time(now)

    # -- events --------------------------------------------------------------------------------
    def try_admit(self) -> bool:
        """The warm case of :meth:`admit` without a coroutine: when an instance is ready, admit the request
        at once (one decision) and return True; otherwise count nothing and return False (then await
        :meth:`admit`). The app core calls this first: most requests are warm."""
        ready = self.executor.ready
        if ready <= 0:
            return False
        now = self._advance()
        self.stats.requests += 1
        self.slot.in_flight += 1  # the load the policy sees is the same as (pending 1, in flight 0)
        self._decide(now, ready)
        return True

    async def admit(self, timeout: Seconds) -> bool:
        """Hold the request until an instance is ready (the activator); then it counts in ``slot.in_flight``
        until :meth:`done`.

        Returns whether the request was a cold start (it found no ready instance): counted here, the only
        place (this scaler's stats, ``slot.cold_starts``, the metrics). A start that fails releases the
        request (the executor answers it with the reason). Raises :class:`TimeoutError` when no instance
        became ready within ``timeout`` seconds.
        """
        if self.try_admit():  # warm, the common case: admitted at once, one decision
            return False
        now = self._advance()
        self.stats.requests += 1
        cold = True
        failures = self.executor.failures  # before the decision: a synchronous start may fail in it
        self.pending += 1
        admitted = False
        try:
            self._decide(now)
            self._snapshot()
            if self.executor.ready == 0:
                await self._wait_ready(timeout, failures)
            admitted = True
        finally:
            self.pending -= 1
            if admitted:
                self.slot.in_flight += 1  # same synchronous step: the load the policy sees is unchanged
                self._advance()
                self._snapshot()
            else:  # gave up (deadline, client gone): the load went down
                now = self._advance()
                self._decide(now)
                self._snapshot()
        if cold:
            self.stats.cold_starts += 1
            self.slot.cold_starts += 1
            if self.metrics is not None:
                self.metrics.request_waited(self.app, self.component)
        return cold

    async def _wait_ready(self, timeout: Seconds, failures: int) -> None:
        if self._ready_event is None:
            self._ready_event = asyncio.Event()
        event = self._ready_event
        async with asyncio.timeout(timeout):
            while self.executor.ready == 0:
                if self.executor.failures != failures:
                    return  # a start failed: the executor answers the request with the reason (503)
                event.clear()
                await event.wait()

    def done(self) -> None:
        """A request admitted by :meth:`admit` finished (answered or failed): it leaves ``slot.in_flight``."""
        self.slot.in_flight -= 1
        now = self._advance()
        self._decide(now, self.executor.ready)

    def _settle(self, ready: int) -> None:
        """:meth:`_snapshot` after an event that changed the load only (the per-request path): a change of
        the ready count, which the executor reports through ``on_change`` anyway, takes the full one.
        ``ready``: the executor's ready count now."""
        if ready != self._acc_ready or ready == 0:
            self._snapshot()
        else:
            in_flight = self.slot.in_flight
            self._acc_busy = in_flight if in_flight < ready else ready

    def _on_change(self) -> None:
        """The executor's ready count changed (a child became ready, stopped, crashed, failed to start)."""
        if self._closed:
            return
        now = self._advance()
        self._snapshot()
        if self._ready_event is not None:
            self._ready_event.set()  # waiters re-check readiness and start failures
        if self.executor.ready != self.desired and self.executor.ready == 0 and self.pending + self.slot.in_flight:
            self._decide(now)  # e.g. a crash while requests wait: ask again
            self._snapshot()

    def _wake(self) -> None:
        self._timer = None
        self._timer_at = None
        if self._closed:
            return
        now = self._advance()
        self._decide(now)
        self._snapshot()

    # -- the policy ----------------------------------------------------------------------------
    def _decide(self, now: float, ready: int | None = None) -> None:
        """Ask the policy, converge to its answer and settle the accounting (:meth:`_settle`; the callers
        that take a full :meth:`_snapshot` next find it settled, and a snapshot twice changes nothing).

        ``ready``: the executor's ready count now when the caller has just read it (saves a property call
        on the per-request path). ``scale_to`` is skipped when the executor already has ``desired`` ready
        instances (then it has nothing to do: both executors converge to ``n`` and are there).
        """
        executor = self.executor
        if ready is None:
            ready = executor.ready
        in_flight, pending = self.slot.in_flight, self.pending
        if in_flight < 0 or pending < 0:
            raise ValidationError("Observation", "in_flight, pending and ready must be >= 0")
        obs = self._obs
        obs.now, obs.in_flight, obs.pending, obs.ready = now, in_flight, pending, ready
        decision = self.autoscaler.decide(obs)
        self.stats.decisions += 1
        desired = decision.desired
        if desired > self.max_instances:
            desired = self.max_instances
        if desired != self.desired:
            log.debug(
                "autoscale %s: %d -> %d instance(s) (%s: %s)",
                self.label,
                self.desired,
                desired,
                self.autoscaler.name,
                decision.reason,
            )
            self.desired = desired
        if desired != ready:
            executor.scale_to(desired)
            if executor.starts != self._starts_seen:
                self._count_starts()
            ready = executor.ready
        wake_at = decision.wake_at
        timer_at = self._timer_at
        if timer_at is None or self.autoscaler.tick is not None or (wake_at is not None and wake_at < timer_at):
            self._schedule(now, wake_at)  # else the pending timer fires first (see _schedule)
        self._settle(ready)

    def _schedule(self, now: float, wake_at: float | None) -> None:
        target = wake_at if wake_at is not None else math.inf
        tick = self.autoscaler.tick
        if tick is not None and (self.desired > 0 or self.executor.ready > 0):
            target = min(target, now + tick)
        if self._timer is not None and self._timer_at is not None and self._timer_at <= target:
            # A timer that fires first stays (busy components would re-arm one per request otherwise): when
            # it fires, the policy is asked again and answers with the edge it wants then.
            return
        if math.isinf(target):
            return  # nothing pending: no timer needed
        self._cancel_timer()
        loop = asyncio.get_running_loop()
        # At least 1 ms: the loop's timers have millisecond resolution; firing before ``target`` only
        # re-asks the policy, which answers with the same edge.
        self._timer = loop.call_later(max(target - now, 0.001), self._wake)
        self._timer_at = target

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_at = None

    def close(self) -> None:
        self.flush()
        self._closed = True
        self._cancel_timer()

    def summary(self) -> dict[str, object]:
        s = self.stats
        return {
            "app": self.app,
            "component": self.component,
            "policy": self.autoscaler.name,
            "requests": s.requests,
            "cold_starts": s.cold_starts,
            "instance_starts": s.instance_starts,
            "instance_seconds": round(s.instance_seconds, 6),
            "idle_instance_seconds": round(s.idle_instance_seconds, 6),
            "decisions": s.decisions,
            "max_instances": s.max_instances_seen,
        }


class HostAutoscaler:
    """Every component's scaler in one worker, built from one :class:`PolicyConfig`."""

    def __init__(self, pool: ComponentPool, config: PolicyConfig, metrics: ScalerMetrics | None = None) -> None:
        self.config = config
        self.scalers: dict[tuple[str, str], ComponentScaler] = {}
        for key, slot in pool.slots.items():
            kind = slot.kind
            limit = config.max_instances or (1 if kind is ExecutorKind.WAGI else DEFAULT_MAX_CHILDREN)
            if kind is ExecutorKind.WAGI:
                limit = 1  # one in-process instance: the loaded module (each request gets a fresh wasm instance)
            policy = config.autoscaler(cold_start=DEFAULT_COLD_START.get(kind, 0.0003))
            self.scalers[key] = ComponentScaler(slot, policy, max_instances=limit, metrics=metrics)

    def get(self, key: tuple[str, str]) -> ComponentScaler | None:
        return self.scalers.get(key)

    def close(self) -> None:
        for scaler in self.scalers.values():
            scaler.close()

    def log_summary(self) -> None:
        for scaler in self.scalers.values():
            log.info("autoscale summary %s", json.dumps(scaler.summary(), sort_keys=True))
