"""The components a worker can serve, and the one place that loads and unloads them.

Separate from HTTP on purpose: the autoscaler (:mod:`zerowatt.host.autoscale`) decides *when* a
component's instances live, through each executor's :class:`~zerowatt.wasm.executor.Scalable` side;
the app core (:mod:`zerowatt.host.app`) only asks for a slot and reports use. The idle queries here
take the time as arguments (``now``), so they are testable without clocks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from zerowatt.units import Seconds
from zerowatt.wasm.executor import Scalable
from zerowatt.wasm.model import App, Component, ExecutorKind, WagiOptions
from zerowatt.wasm.modules import executor_kind

from .registry import DEFAULT_FACTORIES, ExecutorContext, ExecutorFactory

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (app name, component id)


@dataclass(slots=True)
class Slot:
    """One component's executor and its use (``last_used`` is the caller's monotonic clock).

    ``in_flight`` is written by the component's :class:`~zerowatt.host.autoscale.ComponentScaler` only
    (admitted, done); ``cold_starts`` too (requests that found no instance ready).
    """

    app: App
    component: Component
    kind: ExecutorKind
    executor: Scalable
    last_used: Seconds = 0.0
    requests: int = 0
    cold_starts: int = 0
    in_flight: int = 0
    labels: tuple[str, str] = field(default=("", ""))


def executor_kinds(app: App) -> dict[str, ExecutorKind]:
    """Each component's executor kind (from its triggers; AUTO, left by apps built by hand, resolved from
    the module by :func:`zerowatt.wasm.modules.executor_kind`, the loader's own decision)."""
    kinds: dict[str, ExecutorKind] = {}
    for trigger in app.triggers:
        kind = trigger.executor
        if kind is ExecutorKind.AUTO:
            kind = executor_kind(app.components[trigger.component_id].source)
        kinds.setdefault(trigger.component_id, kind)
    return kinds


class ComponentPool:
    """Executors for every routable component of ``apps`` (created up front, loaded on demand)."""

    def __init__(
        self,
        apps: Iterable[App],
        ctx: ExecutorContext,
        factories: Mapping[ExecutorKind, ExecutorFactory] | None = None,
        on_unload: Callable[[Slot], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.factories = dict(DEFAULT_FACTORIES if factories is None else factories)
        self.on_unload = on_unload
        self.slots: dict[Key, Slot] = {}
        for app in apps:
            kinds = executor_kinds(app)
            for component_id, kind in kinds.items():
                component = app.components[component_id]
                options: dict[str, WagiOptions] = {
                    t.route.pattern: t.wagi for t in app.triggers if t.component_id == component_id
                }
                factory = self.factories[kind]
                executor = factory(app, component, options, ctx)
                self.slots[(app.name, component_id)] = Slot(
                    app, component, kind, executor, labels=(app.name, component_id)
                )

    def slot(self, app: str, component: str) -> Slot:
        return self.slots[(app, component)]

    def loaded(self) -> list[Key]:
        return [key for key, slot in self.slots.items() if slot.executor.loaded]

    async def unload(self, app: str, component: str) -> bool:
        """Scale one component to zero; returns whether it was loaded."""
        slot = self.slots[(app, component)]
        was_loaded = slot.executor.loaded
        await slot.executor.unload()
        if was_loaded:
            log.info("unloaded %s/%s", app, component)
            if self.on_unload is not None:
                self.on_unload(slot)
        return was_loaded

    def idle(self, now: Seconds, idle_after: Seconds) -> list[Key]:
        """Loaded components without a request in flight whose last use is ``idle_after`` or more ago."""
        return [
            key
            for key, slot in self.slots.items()
            if slot.executor.loaded and not slot.in_flight and now - slot.last_used >= idle_after
        ]

    def next_expiry(self, idle_after: Seconds) -> Seconds | None:
        """When the next loaded component becomes idle (``last_used + idle_after``), or None if none is loaded."""
        times = [s.last_used + idle_after for s in self.slots.values() if s.executor.loaded]
        return min(times) if times else None

    async def unload_idle(self, now: Seconds, idle_after: Seconds) -> list[Key]:
        keys = self.idle(now, idle_after)
        for app, component in keys:
            await self.unload(app, component)
        return keys

    async def close(self) -> None:
        for app, component in list(self.slots):
            await self.unload(app, component)
