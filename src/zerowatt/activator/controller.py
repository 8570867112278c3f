"""The activator's control loop and request holding (adapter around the cores).

One asyncio loop does everything: it lists the apps (Deployments the operator made) and their pods'
EndpointSlices every ``sync`` seconds, scrapes autoscaled pods' admin ``/metrics``, asks each app's
:class:`~zerowatt.activator.decide.AppScaler`, and applies :func:`~zerowatt.activator.decide.next_step`
(``spec.replicas`` through the scale subresource, the ``NAME-zerowatt`` slice). Blocking API calls run
on one worker thread.

A request for an app without a ready endpoint is held (:class:`~zerowatt.activator.holding.HoldGate`)
and "pokes" its app, as Knative's activator pokes its autoscaler: the policy is asked at once, the scale
is written, and the app's pod slices are polled every ``fast_poll`` seconds until a pod is ready; then
every held request of the app is released to that pod and the public slice is switched to the pods.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from zerowatt.activator.appconfig import AppConfig, app_config
from zerowatt.activator.decide import AppScaler, Step, next_step
from zerowatt.activator.holding import HoldGate, HoldLimits, Refused
from zerowatt.activator.hosts import AppKey, Miss, resolve
from zerowatt.activator.kubeio import ActivatorApi
from zerowatt.activator.metrics import ActivatorMetrics
from zerowatt.activator.podmetrics import PodSample, parse_sample
from zerowatt.activator.slices import Endpoint, ready_endpoints, slice_manifest, slice_targets, written_endpoints
from zerowatt.activator.watch import watch_slices

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Seconds between two syncs (apps, slices, pod metrics, decisions) when nothing else wakes the loop.
DEFAULT_SYNC = 1.0
#: Seconds between two reads of an app's pod slices while requests wait for it.
DEFAULT_FAST_POLL = 0.01
#: Seconds between pointing the public slice back at the activator and writing 0 replicas.
DEFAULT_DRAIN = 2.0


@dataclass
class ColdStart:
    """The phases of one scale from zero (monotonic seconds; see :mod:`.metrics`)."""

    started: float
    api_done: float | None = None
    ready_at: float | None = None
    recorded: bool = False  # phases observed (by the first held request to get its first byte)


@dataclass
class AppState:
    config: AppConfig
    scaler: AppScaler | None
    ready: list[Endpoint] = field(default_factory=list)
    ready_event: asyncio.Event = field(default_factory=asyncio.Event)
    written: list[tuple[str, int]] | None = None  # what NAME-zerowatt holds (None: not read yet)
    proxying: int = 0
    drain_until: float | None = None
    wake_at: float | None = None
    poking: asyncio.Task[None] | None = None
    cold: ColdStart | None = None
    next_pod: int = 0

    @property
    def key(self) -> AppKey:
        return AppKey(self.config.key.namespace, self.config.service)

    @property
    def label(self) -> str:
        return str(self.key)

    def pick(self) -> Endpoint | None:
        """A ready endpoint, round robin."""
        if not self.ready:
            return None
        self.next_pod = (self.next_pod + 1) % len(self.ready)
        return self.ready[self.next_pod]


class Activator:
    """Apps, their holding and their scaling (see the module docstring). Run :meth:`run` on the loop."""

    def __init__(
        self,
        api: ActivatorApi,
        advertise: Endpoint,
        *,
        metrics: ActivatorMetrics | None = None,
        limits: HoldLimits | None = None,
        sync: float = DEFAULT_SYNC,
        fast_poll: float = DEFAULT_FAST_POLL,
        drain: float = DEFAULT_DRAIN,
        cluster_domain: str = "cluster.local",
        scrape: Callable[[Endpoint], Any] | None = None,
        watch: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.advertise = advertise
        self.metrics = metrics or ActivatorMetrics()
        self.gate = HoldGate(limits or HoldLimits())
        self.sync_interval = sync
        self.fast_poll = fast_poll
        self.drain = drain
        self.cluster_domain = cluster_domain
        self.scrape = scrape
        self.watch = watch
        self._watch_client: httpx.AsyncClient | None = None
        self.clock = clock
        self.apps: dict[AppKey, AppState] = {}  # by (namespace, service)
        self.by_service: dict[str, dict[str, AppKey]] = {}
        self.synced = False  # one full sync done: /readyz
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="zerowatt-activator-api")
        self._wake = asyncio.Event()
        self._stopping = False

    # -- API calls on the worker thread --------------------------------------------------------
    async def _call(self, name: str, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._thread, fn, *args)
        except Exception:
            self.metrics.api_errors.labels(name).inc()
            raise

    # -- routing and holding (called by the proxy) ---------------------------------------------
    def route(self, host: str) -> AppState | Miss:
        found = resolve(host, self.by_service, self.cluster_domain)
        if isinstance(found, Miss):
            return found
        state = self.apps.get(found)
        return state if state is not None else Miss(404, f"no app {found} behind the activator")

    async def endpoint(self, state: AppState, deadline: float) -> tuple[Endpoint, ColdStart | None] | Refused:
        """A ready endpoint of ``state``'s app, holding the request until there is one (bounded); with the
        cold start it waited for (None: warm)."""
        ep = state.pick()
        if ep is not None:
            return ep, None
        key = state.key
        refused = self.gate.admit(key)
        if refused is not None:
            self.metrics.refused.labels("limit").inc()
            return refused
        self.metrics.held.labels(state.label).set(self.gate.held[key])
        self.metrics.cold_starts.labels(state.label).inc()
        if state.cold is None:
            state.cold = ColdStart(self.clock())
        cold = state.cold
        try:
            self._poke(state)
            while True:
                ep = state.pick()
                if ep is not None:
                    return ep, cold
                if self.apps.get(key) is not state:
                    self.metrics.refused.labels("route").inc()
                    return Refused(404, f"app {key} was removed while its request was held")
                state.ready_event.clear()
                remaining = deadline - self.clock()
                if remaining <= 0:
                    self.metrics.refused.labels("deadline").inc()
                    return Refused(504, f"app {key} had no ready endpoint within the holding deadline")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await state.ready_event.wait()
        finally:
            self.gate.release(key)
            self.metrics.held.labels(state.label).set(self.gate.held[key])

    def first_byte(self, state: AppState, cold: ColdStart | None) -> None:
        """A held request got its first byte: record the phases of its scale from zero (once per start)."""
        if cold is None or cold.ready_at is None or cold.recorded:
            return
        cold.recorded = True
        now = self.clock()
        label = state.label
        api_done = cold.api_done if cold.api_done is not None else cold.started
        self.metrics.phase(label, "api", api_done - cold.started)
        self.metrics.phase(label, "pod_start", max(0.0, cold.ready_at - api_done))
        self.metrics.phase(label, "proxy", now - cold.ready_at)
        self.metrics.phase(label, "total", now - cold.started)

    def _poke(self, state: AppState) -> None:
        if state.poking is None or state.poking.done():
            state.poking = asyncio.get_running_loop().create_task(self._scale_from_zero(state))

    async def _scale_from_zero(self, state: AppState) -> None:
        """Ask the policy with the held load, write the scale, poll the pod slices until one is ready."""
        key = state.key
        try:
            await self._decide_and_apply(state, self.clock(), scraped={})
            if state.cold is not None and state.cold.api_done is None:
                state.cold.api_done = self.clock()
            if self.watch and not state.ready:
                try:
                    await self._wait_ready_watching(state)
                except Exception as exc:  # the API refused the watch, or it broke: poll instead
                    log.info("%s: watching EndpointSlices failed (%s); polling", key, exc)
            while self.gate.held[key] > 0 and not state.ready and not self._stopping:
                await self._refresh_ready(state)
                if not state.ready:
                    await asyncio.sleep(self.fast_poll)
            if state.ready:
                await self._apply_slice(state, "pods")
        except Exception:
            log.exception("scale from zero of %s failed; the next sync retries", key)
            await asyncio.sleep(self.fast_poll)
        finally:
            if self.gate.held[key] > 0 and not self._stopping and not state.ready:
                # Held requests still wait (an API error, a pod that went away): try again.
                state.poking = asyncio.get_running_loop().create_task(self._scale_from_zero(state))

    async def _wait_ready_watching(self, state: AppState) -> None:
        """Watch the app's namespace's EndpointSlices until a pod is ready or nobody waits any more."""
        key = state.key
        target = await self._call("slice_watch", self.api.slice_watch, state.config.key.namespace)
        if target is None:
            return
        if self._watch_client is None:
            self._watch_client = httpx.AsyncClient(
                verify=target.tls if target.tls is not None else True,
                timeout=httpx.Timeout(None, connect=5.0),
                trust_env=False,
            )

        def found(slices: Iterable[dict[str, Any]]) -> bool:
            ready = ready_endpoints(slices, state.config.pods_service)
            if ready:
                self.set_ready(state, ready)
            return bool(ready)

        def waiting() -> bool:
            return self.gate.held[key] > 0 and not state.ready and not self._stopping

        await watch_slices(self._watch_client, target, found, waiting)

    # -- observing -----------------------------------------------------------------------------
    def set_ready(self, state: AppState, ready: list[Endpoint]) -> None:
        was = bool(state.ready)
        state.ready = ready
        self.metrics.ready.labels(state.label).set(len(ready))
        if ready:
            if not was and state.cold is not None:
                state.cold.ready_at = self.clock()
            state.ready_event.set()
        elif was:
            state.cold = None  # the next held request starts a new cold start

    async def _refresh_ready(self, state: AppState, slices: list[dict[str, Any]] | None = None) -> None:
        if slices is None:
            slices = await self._call("list_slices", self.api.list_slices, state.config.key.namespace)
        self.set_ready(state, ready_endpoints(slices, state.config.pods_service))
        # What the public slice holds now, as read (not as last written): a slice changed or deleted by
        # someone else is rewritten at the next decision.
        own = next((s for s in slices if (s.get("metadata") or {}).get("name") == state.config.slice_name), None)
        state.written = slice_targets(own) if own is not None else []

    def _update_apps(self, deployments: list[dict[str, Any]]) -> None:
        seen: set[AppKey] = set()
        for d in deployments:
            config = app_config(d)
            key = AppKey(config.key.namespace, config.service)
            seen.add(key)
            state = self.apps.get(key)
            if config.errors and (state is None or state.config.generation != config.generation):
                for error in config.errors:
                    log.warning("%s", error)
            self.metrics.config_errors.labels(str(key)).set(len(config.errors))
            if state is None:
                self.apps[key] = AppState(config, self._scaler(config))
            else:
                if state.config.generation != config.generation:
                    state.scaler = self._scaler(config)
                state.config = config
        for key in [k for k in self.apps if k not in seen]:
            state = self.apps.pop(key)
            state.ready_event.set()  # held requests re-check and time out at their deadline
        by_service: dict[str, dict[str, AppKey]] = {}
        for key in self.apps:
            by_service.setdefault(key.name, {})[key.namespace] = key
        self.by_service = by_service
        self.metrics.apps.set(len(self.apps))

    def _scaler(self, config: AppConfig) -> AppScaler | None:
        if not config.autoscaling:
            return None
        scaler = AppScaler(config)
        scaler.adopt(self.clock())
        return scaler

    async def _scrape_all(self, states: list[AppState]) -> dict[AppKey, dict[str, PodSample]]:
        if self.scrape is None:
            return {}
        jobs: list[tuple[AppKey, Endpoint]] = [
            (s.key, ep) for s in states if s.scaler is not None for ep in s.ready if ep.admin is not None
        ]
        texts = await asyncio.gather(*(self.scrape(ep) for _, ep in jobs), return_exceptions=True)
        now = self.clock()
        out: dict[AppKey, dict[str, PodSample]] = {}
        for (key, ep), text in zip(jobs, texts, strict=True):
            if isinstance(text, str):
                out.setdefault(key, {})[ep.pod or ep.address] = parse_sample(text, now)
        return out

    # -- deciding and applying -----------------------------------------------------------------
    async def _decide_and_apply(self, state: AppState, now: float, scraped: dict[str, PodSample] | None) -> None:
        config, key = state.config, state.key
        held = self.gate.held[key]
        if state.scaler is None:
            desired = config.replicas
        else:
            conc = done = 0.0
            if scraped is not None and scraped:
                conc, done = state.scaler.observe_pods(scraped)
            decision = state.scaler.decide(
                now,
                pod_concurrency=conc,
                pod_completed=done,
                proxying=state.proxying,
                held=held,
                ready=len(state.ready),
            )
            desired = decision.desired
            state.wake_at = decision.wake_at
            self.metrics.desired.labels(state.label).set(desired)
        step = next_step(
            desired=desired,
            replicas=config.replicas,
            ready=len(state.ready),
            now=now,
            drain=self.drain,
            drain_until=state.drain_until,
        )
        await self._apply(state, step)

    async def _apply(self, state: AppState, step: Step) -> None:
        state.drain_until = step.drain_until
        await self._apply_slice(state, step.target)
        if step.replicas is not None and state.scaler is not None:
            await self._call("scale", self.api.scale, state.config.key, step.replicas)
            self.metrics.scale_writes.labels(state.label).inc()
            log.info("scaled %s to %d replica(s)", state.config.key, step.replicas)
            state.config = _with_replicas(state.config, step.replicas)

    async def _apply_slice(self, state: AppState, target: str) -> None:
        endpoints = written_endpoints(state.ready if target == "pods" else [], self.advertise)
        wanted = sorted((e.address, e.http) for e in endpoints)
        if state.written == wanted:
            return
        manifest = slice_manifest(state.config.key.namespace, state.config.service, endpoints)
        await self._call("write_slice", self.api.write_slice, manifest)
        state.written = wanted
        log.info("%s: public endpoints → %s", state.key, target)

    async def sync(self) -> None:
        """One pass: apps, pod slices, pod metrics, decisions, writes."""
        deployments = await self._call("list_apps", self.api.list_apps)
        self._update_apps(deployments)
        namespaces = sorted({s.config.key.namespace for s in self.apps.values()})
        slices: dict[str, list[dict[str, Any]]] = {}
        for ns in namespaces:
            slices[ns] = await self._call("list_slices", self.api.list_slices, ns)
        states = list(self.apps.values())
        for state in states:
            await self._refresh_ready(state, slices[state.config.key.namespace])
        scraped = await self._scrape_all(states)
        now = self.clock()
        for state in states:
            if state.poking is not None and not state.poking.done():
                continue  # a scale from zero is under way: it owns the app until a pod is ready
            try:
                await self._decide_and_apply(state, now, scraped.get(state.key, {}))
            except Exception:
                log.exception("%s: applying the decision failed; retried at the next sync", state.key)
        self.synced = True

    def _next_wake(self, now: float) -> float:
        wake = now + self.sync_interval
        for state in self.apps.values():
            for t in (state.wake_at, state.drain_until):
                if t is not None and t < wake:
                    wake = t
        return max(now + 0.001, wake)

    async def run(self) -> None:
        """Sync until :meth:`stop` (errors are logged and retried at the next sync)."""
        while not self._stopping:
            try:
                await self.sync()
            except Exception:
                log.exception("activator sync failed; retrying")
            now = self.clock()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._next_wake(now) - now):
                    await self._wake.wait()
            self._wake.clear()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        for state in self.apps.values():
            state.ready_event.set()
            if state.poking is not None:
                state.poking.cancel()

    async def aclose(self) -> None:
        if self._watch_client is not None:
            await self._watch_client.aclose()

    def close(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)
        self.api.close()


def _with_replicas(config: AppConfig, replicas: int) -> AppConfig:
    return dataclasses.replace(config, replicas=replicas)
