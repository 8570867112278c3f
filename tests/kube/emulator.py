"""kmock's ``KubernetesEmulator`` on a loopback port in a background thread, with the fixes the notes list.

* ``GET /api/v1/namespaces`` and ``GET|POST /api/v1/namespaces/NAME``: kmock's path parser takes any
  ``namespaces`` segment for the namespaced scope prefix, so these are answered here, from a namespace
  store kept beside kmock's objects.
* Fault injection that happens *before* kmock touches its state (kmock applies a PATCH to its store even
  when a reaction answers it, so an injected 409 would still change the object): a :class:`Fault` answers
  one matching request with a status (and ``Retry-After``), optionally after running a "concurrent writer"
  on the store, which is how a real 409 comes about.
* KubeVirt's ``start`` subresource (``PUT /apis/subresources.kubevirt.io/v1/namespaces/NS/virtualmachines/
  NAME/start``), which kmock does not serve (404): answered here as virt-api's ``StartVMRequestHandler``
  (pkg/virt-api/rest/lifecycle.go) does, and :meth:`Emulator.kubevirt_sync` plays virt-controller's
  ``syncRunStrategy`` on the VMs' status, so a test sees whether a VM would really run.
* The request log is dropped after each request (kmock rescans it on every request), and PATCH/GET of one
  object are served by key instead of by scanning every object, so thousands of objects stay cheap.

The controller under test uses the official ``kubernetes`` client over real HTTP; nothing is patched.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp.web
import attrs
import kmock

_NS_LIST = re.compile(r"^/api/v1/namespaces/?$")
_NS_ONE = re.compile(r"^/api/v1/namespaces/([^/]+)/?$")
_VM_START = re.compile(r"^/apis/subresources\.kubevirt\.io/v1/namespaces/([^/]+)/virtualmachines/([^/]+)/start$")
RUNNING = {"created": True, "ready": True, "printableStatus": "Running"}
STOPPED = {"created": False, "ready": False, "printableStatus": "Stopped"}


@dataclass
class Fault:
    """Answer the next ``times`` requests matching ``method`` and the ``path`` regex with ``status``."""

    method: str
    path: str
    status: int
    times: int = 1
    retry_after: str | None = None
    before: Callable[[Emulator], None] | None = None
    hits: int = 0


@attrs.define(kw_only=True)
class Emulator(kmock.KubernetesEmulator):  # type: ignore[misc]
    namespaces: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    faults: list[Fault] = attrs.field(factory=list)
    served: list[tuple[str, str]] = attrs.field(factory=list)
    keep_log: bool = False

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        method, path = raw_request.method, raw_request.path
        self.served.append((method, raw_request.path_qs))
        for fault in self.faults:
            if fault.method == method and fault.hits < fault.times and re.fullmatch(fault.path, path):
                fault.hits += 1
                if fault.before is not None:
                    fault.before(self)
                await raw_request.read()
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": fault.status}
                return aiohttp.web.json_response(status, status=fault.status, headers=headers)
        if _NS_LIST.match(path) or _NS_ONE.match(path):
            return await self._namespace(raw_request)
        if method == "PUT" and (start := _VM_START.match(path)):
            await raw_request.read()
            return self._vm_start(start.group(1), start.group(2))
        try:
            return await super().__call__(raw_request)  # type: ignore[no-any-return]
        finally:
            if not self.keep_log:
                self._requests.clear()

    async def _namespace(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        one = _NS_ONE.match(raw_request.path)
        if raw_request.method == "POST" and not one:
            data = json.loads(await raw_request.read())
            self.add_namespace(data["metadata"]["name"], data["metadata"].get("annotations"))
            return aiohttp.web.json_response(self.namespaces[data["metadata"]["name"]], status=201)
        if raw_request.method != "GET":
            return aiohttp.web.json_response({"kind": "Status", "code": 405}, status=405)
        if one:
            ns = self.namespaces.get(one.group(1))
            if ns is None:
                return aiohttp.web.json_response({"kind": "Status", "code": 404, "reason": "NotFound"}, status=404)
            return aiohttp.web.json_response(ns)
        items = list(self.namespaces.values())
        return aiohttp.web.json_response({"kind": "NamespaceList", "apiVersion": "v1", "metadata": {}, "items": items})

    def _vm_start(self, namespace: str, name: str) -> aiohttp.web.StreamResponse:
        """virt-api's start: Halted → runStrategy Always (running: true); Manual/RerunOnFailure → a start request
        in status; Always/Once → 409; a VM whose VMI runs → 409 "VM is already running"."""

        def status(code: int, message: str) -> aiohttp.web.StreamResponse:
            body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "message": message}
            return aiohttp.web.json_response(body, status=code)

        vm = next((v for ns, n, v in self.vms() if (ns, n) == (namespace, name)), None)
        if vm is None:
            return status(404, f'virtualmachine.kubevirt.io "{name}" not found')
        spec, st = dict(vm.get("spec") or {}), dict(vm.get("status") or {})
        if st.get("created") and st.get("printableStatus") != "Stopped":
            return status(409, "VM is already running")
        strategy = spec.get("runStrategy") or ("Always" if spec.get("running") else "Halted")
        if strategy == "Halted":
            vm.patch({"spec": {"runStrategy": "Always"} if "runStrategy" in spec else {"running": True}})
        elif strategy in ("Manual", "RerunOnFailure"):
            requests = [*st.get("stateChangeRequests", []), {"action": "Start"}]
            vm.patch({"status": {"stateChangeRequests": requests}})
        else:
            return status(409, f"{strategy} does not support manual start requests")
        return aiohttp.web.json_response({}, status=202)

    def vms(self) -> list[tuple[str, str, Any]]:
        """(namespace, name, kmock's object) of every VirtualMachine stored (the store is keyed by resource objects)."""
        found = []
        for _, obj in list(self.objects.items()):
            if obj and obj.get("kind") == "VirtualMachine" and obj.get("apiVersion") == "kubevirt.io/v1":
                m = obj.get("metadata") or {}
                found.append((str(m.get("namespace")), str(m.get("name")), obj))
        return found

    def kubevirt_sync(self) -> None:
        """virt-controller's ``syncRunStrategy``, reduced to whether a VMI runs (``status.created``)."""
        for _, _, vm in self.vms():
            spec, st = dict(vm.get("spec") or {}), dict(vm.get("status") or {})
            strategy = spec.get("runStrategy") or ("Always" if spec.get("running") else "Halted")
            running = bool(st.get("created")) and st.get("printableStatus") != "Stopped"
            started = any(r.get("action") == "Start" for r in st.get("stateChangeRequests", []))
            if strategy == "Halted":
                running = False
            elif strategy == "Always" or (strategy in ("RerunOnFailure", "Once") and st.get("runStrategy") != strategy):
                running = (
                    True  # RerunOnFailure/Once start when the recorded strategy changes (shouldStartRerunOnFailure)
                )
            elif strategy == "Manual" and started:
                running = True
            vm.patch(
                {"status": {**(RUNNING if running else STOPPED), "runStrategy": strategy, "stateChangeRequests": []}}
            )

    def add_namespace(self, name: str, annotations: dict[str, str] | None = None) -> None:
        meta: dict[str, Any] = {"name": name, "uid": str(uuid.uuid4())}
        meta["creationTimestamp"] = "2020-01-01T00:00:00Z"
        if annotations:
            meta["annotations"] = dict(annotations)
        self.namespaces[name] = {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


@dataclass
class EmulatorThread:
    """Runs :class:`Emulator` + ``kmock.Server`` on 127.0.0.1 in its own event loop thread."""

    custom_resources: list[dict[str, Any]] = field(default_factory=list)
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    emulator: Emulator | None = None
    url: str = ""

    def __enter__(self) -> EmulatorThread:
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.run(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        self.run(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` in the emulator's thread (its store is not thread-safe)."""

        async def wrapper() -> Any:
            return fn()

        return self.run(wrapper())

    def make_emulator(self) -> Emulator:
        """The emulator to serve (a subclass overrides it to serve another, e.g. with server-side apply)."""
        return Emulator(strict=False)

    async def _start(self) -> None:
        emu = self.make_emulator()
        emu.resources.load_bundled()
        for info in self.custom_resources:
            emu.resources[info["resource"]] = {k: v for k, v in info.items() if k != "resource"}
        self.emulator = emu
        await emu.__aenter__()
        self._server = kmock.Server(emu)
        await self._server.__aenter__()
        self.url = f"http://127.0.0.1:{self._server.port}"

    async def _stop(self) -> None:
        await self._server.__aexit__(None, None, None)
        assert self.emulator is not None
        await self.emulator.__aexit__(None, None, None)
