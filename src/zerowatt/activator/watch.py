"""Watching a namespace's EndpointSlices while requests wait for a pod (adapter).

A watch without a resourceVersion first lists every object as ``ADDED``, then streams each change as
the API server stores it (``MODIFIED``, ``DELETED``), one JSON event per line. The activator opens one
while a scale from zero is under way, so a ready pod is seen as soon as the endpoint controller writes it,
without polling the API; the watch ends as soon as the wanted endpoints appear or nobody waits any more.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from typing import Any

import httpx

from zerowatt.kube.api import WatchTarget

#: Seconds between two checks of whether anybody still waits (the stream itself may stay silent).
CHECK_EVERY = 0.5


async def watch_slices(
    client: httpx.AsyncClient,
    target: WatchTarget,
    found: Callable[[Iterable[dict[str, Any]]], bool],
    waiting: Callable[[], bool],
) -> None:
    """Feed the namespace's slices (all of them, after each event) to ``found`` until it returns True or
    ``waiting()`` turns False. A watch the API refuses or breaks raises (the caller falls back to polling)."""
    cache: dict[str, dict[str, Any]] = {}

    async def consume() -> None:
        async with client.stream("GET", target.url, headers=target.headers) as resp:
            if resp.status_code != 200:
                raise RuntimeError(f"watch answered {resp.status_code}")
            async for line in resp.aiter_lines():
                if not line.strip():
                    continue
                event = json.loads(line)
                obj = event.get("object") or {}
                name = str((obj.get("metadata") or {}).get("name") or "")
                if event.get("type") == "DELETED":
                    cache.pop(name, None)
                elif event.get("type") in ("ADDED", "MODIFIED"):
                    cache[name] = obj
                else:
                    continue  # BOOKMARK, ERROR: nothing to read
                if found(cache.values()):
                    return

    task = asyncio.get_running_loop().create_task(consume())
    try:
        while not task.done() and waiting():
            await asyncio.wait({task}, timeout=CHECK_EVERY)
        if task.done():
            task.result()  # a broken watch raises here
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
