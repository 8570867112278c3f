"""kmock's emulator with what the operator needs on top of the downscaler's fixes (tests/kube/emulator.py).

Server-side apply (``PATCH`` with ``application/apply-patch+yaml``) creates the object when it does not
exist, as the API server does; kmock alone answers 404. On an existing object kmock merges the body into
it (not the field-ownership semantics of a real server, which the operator does not rely on: it applies
its whole intent every time and never depends on removal of fields by omission in these tests). New
objects get a ``uid``, as the API server gives them. A watch of namespaces (kopf opens one even for a
fixed namespace) is held open and empty instead of answered with a list.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import aiohttp.web
import attrs
from kmock._internal import parsing, references

from tests.kube.emulator import Emulator, EmulatorThread


@attrs.define(kw_only=True)
class OperatorEmulator(Emulator):
    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        content_type = raw_request.headers.get("Content-Type", "")
        is_apply = raw_request.method == "PATCH" and content_type.startswith("application/apply-patch")
        if is_apply and not self._faulted(raw_request):
            created = await self._create_on_apply(raw_request)
            if created is not None:
                self.served.append((raw_request.method, raw_request.path_qs))
                return created
        return await super().__call__(raw_request)

    async def _namespace(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        """A watch of namespaces (kopf keeps one open) is an empty stream held open; the rest as before."""
        if raw_request.query.get("watch") in ("true", "1"):
            response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(raw_request)
            await asyncio.Event().wait()  # until the client goes away (the handler is cancelled)
            return response
        return await super()._namespace(raw_request)

    def _faulted(self, raw_request: aiohttp.web.BaseRequest) -> bool:
        return any(
            f.method == raw_request.method and f.hits < f.times and re.fullmatch(f.path, raw_request.path)
            for f in self.faults
        )

    async def _create_on_apply(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse | None:
        k8s = parsing.parse_path(raw_request.path)
        if k8s.group is None or k8s.name is None or k8s.subresource:
            return None
        resource = references.resource(group=k8s.group, version=k8s.version, plural=k8s.plural)
        key = (resource, k8s.namespace, k8s.name)
        async with self._lock:
            if key in self._objects and not self._objects[key].deleted:
                return None
            data: dict[str, Any] = await raw_request.json()
            data.setdefault("metadata", {}).setdefault("uid", str(uuid.uuid4()))
            if key in self._objects:
                self._objects[key].create(data)
            else:
                self._objects[key] = data
            raw = self._objects[key].last.raw
            await self._buses[resource].put({"type": "ADDED", "object": raw})
        return aiohttp.web.json_response(raw, status=201)


class OperatorEmulatorThread(EmulatorThread):
    def make_emulator(self) -> Emulator:
        return OperatorEmulator(strict=False)


VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]
CRDS = [
    {"resource": "zerowatt.dev/v1alpha1/wasmapps", "kind": "WasmApp", "namespaced": True, "verbs": VERBS},
    {"resource": "core.spinkube.dev/v1alpha1/spinapps", "kind": "SpinApp", "namespaced": True, "verbs": VERBS},
    {
        "resource": "core.spinkube.dev/v1alpha1/spinappexecutors",
        "kind": "SpinAppExecutor",
        "namespaced": True,
        "verbs": VERBS,
    },
]
