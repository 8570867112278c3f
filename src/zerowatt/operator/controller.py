"""The operator's controller: list and watch, reconcile (pure), then write, in pipelined batches.

An informer in a few lines: every watched collection (SpinApps, WasmApps, SpinAppExecutors, and the
Deployments and Services the operator manages) is listed once into a cache, then followed by a watch
stream (:mod:`zerowatt.operator.watch`). Each change marks the apps it touches dirty: an app itself, the
owner of a child (drift, deletion of a child, a Deployment's ready count), every SpinApp of an executor's
namespace. The loop reconciles the dirty apps with :func:`zerowatt.operator.reconcile.reconcile` and sends
what the plans say as pipelined batches over one keep-alive connection (:class:`zerowatt.kube.api.KubeApi`):

1. finalizer additions (merge patch with ``resourceVersion``: a concurrent writer makes it a 409),
   child deletions, and server-side applies of children (field manager ``zerowatt-operator``, ``force``);
2. then, per app, its status (the ``status`` subresource) if step 1 went through for it, or a
   ``Ready=False ApplyFailed`` status and an Event if not; finalizer removal once its children are gone;
   and the Events the plans asked for.

429 and 5xx answers are retried inside ``KubeApi`` with backoff honouring ``Retry-After``; a 409 or any
other failure requeues only that app with its own exponential backoff, so one bad object never stops the
others. Nothing lives only in memory: a restarted operator lists, reconciles and ends where the last one
would have. A periodic resync relists everything (a missed event cannot stick).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from zerowatt.kube.api import MERGE_PATCH, ApiError, KubeApi, encode, path_segment
from zerowatt.kube.wire import Request
from zerowatt.operator import names as n
from zerowatt.operator.children import Settings
from zerowatt.operator.conditions import READY, find, timestamp
from zerowatt.operator.model import Ref, meta
from zerowatt.operator.reconcile import Event, Plan, failed, reconcile
from zerowatt.operator.watch import Change, Relist, Watch

log = logging.getLogger("zerowatt.operator")

APPLY_PATCH = "application/apply-patch+yaml"
MANAGED = f"{n.LABEL_MANAGED_BY}={n.COMPONENT}"


@dataclass(frozen=True)
class Options:
    namespaces: tuple[str, ...] = ()  # empty: all namespaces
    resync: float = 600.0  # seconds between full relists
    backoff_base: float = 0.2
    backoff_cap: float = 30.0


@dataclass(frozen=True)
class Collection:
    """One listed and watched collection: what its objects are to the controller."""

    path: str
    role: str  # app | executor | child
    kind: str  # SpinApp, WasmApp, SpinAppExecutor, Deployment, Service


@dataclass
class Stats:
    """Counters for logs, ``--once``'s summary and the metrics."""

    reconciles: int = 0
    applies: int = 0
    deletes: int = 0
    status_writes: int = 0
    events: int = 0
    errors: int = 0
    requeues: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def collections(namespaces: Iterable[str | None]) -> list[Collection]:
    out = []
    for ns in namespaces:
        scope = f"/namespaces/{path_segment(ns)}" if ns else ""
        for kind, (api_version, plural) in n.APP_KINDS.items():
            out.append(Collection(f"/apis/{api_version}{scope}/{plural}", "app", kind))
        out.append(Collection(f"/apis/{n.SPINKUBE_API}{scope}/{n.EXECUTOR_PLURAL}", "executor", n.EXECUTOR))
        out.append(Collection(f"/apis/apps/v1{scope}/deployments", "child", "Deployment"))
        out.append(Collection(f"/api/v1{scope}/services", "child", "Service"))
    return out


def object_path(api_version: str, plural: str, namespace: str, name: str) -> str:
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    return f"{base}/namespaces/{path_segment(namespace)}/{plural}/{path_segment(name)}"


_PLURALS = {"Deployment": "deployments", "Service": "services"}


def _child_path(manifest: dict[str, Any]) -> str:
    m = manifest["metadata"]
    return object_path(manifest["apiVersion"], _PLURALS[manifest["kind"]], m["namespace"], m["name"])


def _app_path(ref: Ref, sub: str = "") -> str:
    api_version, plural = n.APP_KINDS[ref.kind]
    return object_path(api_version, plural, ref.namespace, ref.name) + sub


def _owner(obj: dict[str, Any]) -> Ref | None:
    for owner in meta(obj).get("ownerReferences") or ():
        if isinstance(owner, dict) and owner.get("controller") and owner.get("kind") in n.APP_KINDS:
            return Ref(str(owner["kind"]), str(meta(obj).get("namespace") or ""), str(owner.get("name") or ""))
    return None


@dataclass
class _Pending:
    """A reconciled app's writes in flight: which requests are its and what came back."""

    ref: Ref
    plan: Plan
    obj: dict[str, Any]
    first: list[int] = field(default_factory=list)
    errors: list[ApiError] = field(default_factory=list)


class Operator:
    """Reconciles SpinApps and WasmApps into their children; see the module docstring."""

    def __init__(
        self,
        api: KubeApi,
        api_client: Any,
        settings: Settings,
        options: Options | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
        on_reconcile: Callable[[Ref, Plan], None] | None = None,
    ) -> None:
        self.api = api
        self.api_client = api_client
        self.settings = settings
        self.options = options or Options()
        self.clock = clock
        self.monotonic = monotonic
        self.on_reconcile = on_reconcile
        self.stats = Stats()
        self.collections = collections(self.options.namespaces or [None])
        self._by_path = {c.path: c for c in self.collections}
        self.apps: dict[Ref, dict[str, Any]] = {}
        self.executors: dict[str, dict[str, dict[str, Any]]] = {}
        self.children: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
        #: app → earliest monotonic time to reconcile it again (0: now).
        self.dirty: dict[Ref, float] = {}
        self._failures: dict[Ref, int] = {}
        self._stale: set[Ref] = set()
        self._versions: dict[str, str] = {}
        self._missing: set[str] = set()  # collections whose CRD is not installed
        self.queue: queue.Queue[Change | Relist] = queue.Queue()
        self.stop = threading.Event()
        self._watches: dict[str, Watch] = {}

    # --- the cache ----------------------------------------------------------------------------------------

    def list_collection(self, coll: Collection) -> None:
        """List one collection into the cache (replacing what it held) and mark what it touches dirty."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        rv = ""
        while True:
            query: dict[str, Any] = {"limit": 500}
            if coll.role == "child":
                query["labelSelector"] = MANAGED
            if token:
                query["continue"] = token
            try:
                page = self.api.request("GET", coll.path, query=query)
            except ApiError as exc:
                if exc.status == 404:  # the CRD is not installed: nothing to do for this kind
                    if coll.path not in self._missing:
                        log.warning("collection not served", extra={"fields": {"path": coll.path}})
                    self._missing.add(coll.path)
                    return
                raise
            items += page.get("items") or []
            page_meta = page.get("metadata") or {}
            rv = str(page_meta.get("resourceVersion") or "")
            token = page_meta.get("continue")
            if not token:
                break
        self._missing.discard(coll.path)
        self._versions[coll.path] = rv
        self._replace(coll, items)

    def _replace(self, coll: Collection, items: list[dict[str, Any]]) -> None:
        in_scope = self._scope(coll)
        if coll.role == "app":
            gone = [r for r in self.apps if r.kind == coll.kind and in_scope(r.namespace)]
            for ref in gone:
                del self.apps[ref]
        elif coll.role == "executor":
            for ns in [ns for ns in self.executors if in_scope(ns)]:
                for name in self.executors.pop(ns):
                    self._executor_changed(ns, name)
        else:
            for ns, kids in self.children.items():
                if in_scope(ns):
                    for key in [k for k in kids if k[0] == coll.kind]:
                        owner = _owner(kids.pop(key))
                        if owner is not None:
                            self.dirty.setdefault(owner, 0.0)
        for obj in items:
            obj.setdefault("kind", coll.kind)
            self._put(coll, obj)

    def _scope(self, coll: Collection) -> Callable[[str], bool]:
        marker = "/namespaces/"
        if marker not in coll.path:
            return lambda ns: True
        ns = coll.path.split(marker, 1)[1].split("/", 1)[0]
        return lambda other: other == ns

    def _put(self, coll: Collection, obj: dict[str, Any], deleted: bool = False) -> None:
        m = meta(obj)
        ns, name = str(m.get("namespace") or ""), str(m.get("name") or "")
        if coll.role == "app":
            ref = Ref(coll.kind, ns, name)
            if deleted:
                self.apps.pop(ref, None)
                self.dirty.pop(ref, None)
                self._failures.pop(ref, None)
            else:
                obj.setdefault("kind", coll.kind)
                self.apps[ref] = obj
                self.dirty.setdefault(ref, 0.0)
        elif coll.role == "executor":
            if deleted:
                self.executors.get(ns, {}).pop(name, None)
            else:
                self.executors.setdefault(ns, {})[name] = obj
            self._executor_changed(ns, name)
        else:
            labels = m.get("labels") or {}
            if labels.get(n.LABEL_MANAGED_BY) != n.COMPONENT:  # a server that ignored the label selector
                return
            kids = self.children.setdefault(ns, {})
            if deleted:
                kids.pop((coll.kind, name), None)
            else:
                obj.setdefault("kind", coll.kind)
                kids[(coll.kind, name)] = obj
            owner = _owner(obj)
            if owner is not None and owner in self.apps:
                self.dirty.setdefault(owner, 0.0)

    def _executor_changed(self, namespace: str, name: str) -> None:
        for ref in self.apps:
            if ref.kind == n.SPINAPP and ref.namespace == namespace:
                self.dirty.setdefault(ref, 0.0)

    def handle(self, item: Change | Relist) -> None:
        coll = self._by_path.get(item.path)
        if coll is None:
            return
        if isinstance(item, Relist):
            self._watches.pop(item.path, None)
            try:
                self.list_collection(coll)
            except ApiError as exc:
                log.error("relist failed", extra={"fields": {"path": coll.path, "error": str(exc)}})
                time.sleep(min(self.options.backoff_cap, 1.0))
            self._start_watch(coll)
            return
        obj = item.obj
        rv = meta(obj).get("resourceVersion")
        if rv:
            self._versions[coll.path] = str(rv)
        self._put(coll, obj, deleted=item.type == "DELETED")

    # --- reconciling and writing ----------------------------------------------------------------------------

    def due(self) -> list[Ref]:
        now = self.monotonic()
        return [ref for ref, at in self.dirty.items() if at <= now]

    def next_due(self) -> float | None:
        return min(self.dirty.values()) if self.dirty else None

    def process(self, refs: list[Ref] | None = None) -> int:
        """Reconcile the due apps and carry out their plans; returns how many apps were reconciled."""
        refs = self.due() if refs is None else refs
        if not refs:
            return 0
        for ref in refs:
            self.dirty.pop(ref, None)
        self._refresh_stale(refs)
        now = self.clock()
        pending: list[_Pending] = []
        for ref in refs:
            obj = self.apps.get(ref)
            if obj is None:
                continue
            try:
                plan = reconcile(
                    obj,
                    ref.kind,
                    self.executors.get(ref.namespace, {}),
                    self.children.get(ref.namespace, {}),
                    now,
                    self.settings,
                )
            except Exception:  # a bug must not stop the other apps
                log.exception("reconcile failed", extra={"fields": {"object": str(ref)}})
                self.stats.errors += 1
                self._requeue(ref)
                continue
            self.stats.reconciles += 1
            if self.on_reconcile is not None:
                self.on_reconcile(ref, plan)
            if not plan.idle:
                pending.append(_Pending(ref, plan, obj))
        if pending:
            try:
                self._write(pending, now)
            except Exception:  # a client bug or a broken connection: retry these apps, keep the loop alive
                log.exception("writes failed", extra={"fields": {"apps": len(pending)}})
                for p in pending:
                    self.stats.errors += 1
                    self._requeue(p.ref)
        return len(refs)

    def _refresh_stale(self, refs: list[Ref]) -> None:
        """Apps whose last write met a 409 are read again before they are decided again."""
        for ref in [r for r in refs if r in self._stale]:
            self._stale.discard(ref)
            try:
                obj = self.api.get(_app_path(ref))
            except ApiError as exc:
                if exc.status == 404:
                    self.apps.pop(ref, None)
                continue
            obj.setdefault("kind", ref.kind)
            self.apps[ref] = obj

    def _write(self, pending: list[_Pending], now: datetime) -> None:
        first: list[Request] = []
        for p in pending:
            plan = p.plan
            if plan.finalizers is not None and not p.plan.app.deleting:
                fin: dict[str, Any] = {"finalizers": plan.finalizers}
                version = meta(p.obj).get("resourceVersion")
                if version:  # a precondition: a concurrent writer makes this a 409, then re-read
                    fin["resourceVersion"] = version
                body = {"metadata": fin}
                p.first.append(len(first))
                first.append(Request("PATCH", _app_path(p.ref), encode(body), MERGE_PATCH))
            for d in plan.delete:
                plural = _PLURALS[d.kind]
                p.first.append(len(first))
                first.append(Request("DELETE", object_path(d.api_version, plural, d.namespace, d.name)))
            for manifest in plan.apply:
                query = f"?fieldManager={n.FIELD_MANAGER}&force=true"
                p.first.append(len(first))
                first.append(Request("PATCH", _child_path(manifest) + query, encode(manifest), APPLY_PATCH))
        results = self.api.send_all(first) if first else []
        second: list[Request] = []
        owners: list[_Pending] = []
        for p in pending:
            plan = p.plan
            for i in p.first:
                result, request = results[i], first[i]
                if isinstance(result, ApiError):
                    if request.method == "DELETE" and result.status == 404:
                        self._forget_child(request.target)
                        continue
                    p.errors.append(result)
                elif request.method == "DELETE":
                    self._forget_child(request.target)
                elif isinstance(result, dict) and request.content_type == APPLY_PATCH:
                    self._learn(request.target, result)
                elif isinstance(result, dict):  # the finalizer added: the app as it is now
                    result.setdefault("kind", p.ref.kind)
                    self.apps[p.ref] = p.obj = result
            self.stats.applies += len(plan.apply)
            self.stats.deletes += len(plan.delete)
            events = list(plan.events)
            if p.errors:
                self.stats.errors += 1
                conflict = all(e.status == 409 for e in p.errors)
                message = "; ".join(str(e) for e in p.errors)[:1000]
                log.warning("writes failed", extra={"fields": {"object": str(p.ref), "error": message}})
                if conflict:
                    self._stale.add(p.ref)
                else:
                    second.append(self._status_request(p.ref, failed(plan, message, now, p.obj.get("status") or {})))
                    owners.append(p)
                    ready = find(p.obj.get("status") or {}, READY) or {}
                    if (ready.get("reason"), ready.get("message")) != ("ApplyFailed", message):  # once per message
                        events.append(Event("Warning", "ApplyFailed", message))
                self._requeue(p.ref)
            else:
                self._failures.pop(p.ref, None)
                new_status = self._status_after_apply(p, now) if plan.apply else plan.status
                if new_status is not None:
                    second.append(self._status_request(p.ref, new_status))
                    owners.append(p)
                    self.stats.status_writes += 1
                if plan.app.deleting and plan.finalizers is not None:
                    body = {"metadata": {"finalizers": plan.finalizers}}
                    second.append(Request("PATCH", _app_path(p.ref), encode(body), MERGE_PATCH))
                    owners.append(p)
            for event in events:
                second.append(self._event_request(p.plan, event, now))
                owners.append(p)
                self.stats.events += 1
        if not second:
            return
        for p, request, result in zip(owners, second, self.api.send_all(second), strict=True):
            if isinstance(result, ApiError):
                if "/events" in request.target:
                    log.warning("event not recorded", extra={"fields": {"object": str(p.ref), "error": str(result)}})
                    continue
                if result.status == 404:  # the app is gone
                    continue
                self.stats.errors += 1
                self._requeue(p.ref)
            elif isinstance(result, dict) and "/events" not in request.target:
                result.setdefault("kind", p.ref.kind)
                if p.ref in self.apps:
                    self.apps[p.ref] = result

    def _status_after_apply(self, p: _Pending, now: datetime) -> dict[str, Any] | None:
        """The status as it stands once the children just applied exist (decided again on the cache the
        answers updated, as if the planned status were stored): one status write instead of "Creating" now
        and "Progressing" after the watch echo."""
        plan = p.plan
        planned = plan.status if plan.status is not None else p.obj.get("status") or {}
        staged = {
            **p.obj,
            "metadata": {**meta(p.obj), "finalizers": plan.finalizers or list(plan.app.finalizers)},
            "status": {k: v for k, v in planned.items() if v is not None},
        }
        namespace = p.ref.namespace
        again = reconcile(
            staged, p.ref.kind, self.executors.get(namespace, {}), self.children.get(namespace, {}), now, self.settings
        )
        if again.apply or again.status is None:
            return plan.status
        return again.status

    def _status_request(self, ref: Ref, status: dict[str, Any]) -> Request:
        return Request("PATCH", _app_path(ref, "/status"), encode({"status": status}), MERGE_PATCH)

    def _event_request(self, plan: Plan, event: Event, now: datetime) -> Request:
        app = plan.app
        stamp = timestamp(now)
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{app.ref.name}.{uuid.uuid4().hex[:16]}", "namespace": app.ref.namespace},
            "involvedObject": {
                "apiVersion": app.api_version,
                "kind": app.ref.kind,
                "name": app.ref.name,
                "namespace": app.ref.namespace,
                "uid": app.uid,
            },
            "reason": event.reason,
            "message": event.message[:1024],
            "type": event.type,
            "source": {"component": n.COMPONENT},
            "reportingComponent": n.COMPONENT,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        path = f"/api/v1/namespaces/{path_segment(app.ref.namespace)}/events"
        return Request("POST", path, encode(body))

    def _learn(self, target: str, obj: dict[str, Any]) -> None:
        """Cache what a server-side apply returned, so the next decision sees it without waiting for a watch."""
        path = target.split("?", 1)[0]
        kind = "Deployment" if "/deployments/" in path else "Service"
        obj.setdefault("kind", kind)
        m = meta(obj)
        self.children.setdefault(str(m.get("namespace") or ""), {})[(kind, str(m.get("name") or ""))] = obj

    def _forget_child(self, target: str) -> None:
        parts = target.split("?", 1)[0].split("/")
        ns, plural, name = parts[-3], parts[-2], parts[-1]
        kind = "Deployment" if plural == "deployments" else "Service"
        self.children.get(ns, {}).pop((kind, name), None)

    def _requeue(self, ref: Ref) -> None:
        failures = self._failures.get(ref, 0)
        self._failures[ref] = failures + 1
        delay = min(self.options.backoff_cap, self.options.backoff_base * (2**failures))
        self.dirty[ref] = self.monotonic() + delay
        self.stats.requeues += 1

    # --- running ----------------------------------------------------------------------------------------------

    def sync(self) -> None:
        """List every collection (executors and children before apps, so first decisions see them)."""
        order = sorted(self.collections, key=lambda c: {"executor": 0, "child": 1, "app": 2}[c.role])
        for coll in order:
            self.list_collection(coll)

    def run_once(self, *, max_rounds: int = 8) -> Stats:
        """One pass: list, reconcile everything, write; apps that failed are retried (backoff) a few rounds."""
        self.sync()
        for ref in self.apps:
            self.dirty.setdefault(ref, 0.0)
        for _ in range(max_rounds):
            if not self.dirty:
                break
            wake = self.next_due()
            if wake is not None and wake > self.monotonic():
                time.sleep(wake - self.monotonic())
            self.process()
        return self.stats

    def _start_watch(self, coll: Collection) -> None:
        if self.stop.is_set() or coll.path in self._missing:
            return
        selector = MANAGED if coll.role == "child" else ""
        w = Watch(
            self.api_client,
            coll.path,
            self._versions.get(coll.path, ""),
            self.queue,
            self.stop,
            label_selector=selector,
        )
        self._watches[coll.path] = w
        w.start()

    def run(self) -> None:
        """List, watch and reconcile until :attr:`stop` is set. A collection that cannot be listed at start
        (the API server not reachable yet, RBAC still being applied) is retried, and the others go on."""
        order = sorted(self.collections, key=lambda c: {"executor": 0, "child": 1, "app": 2}[c.role])
        for coll in order:
            try:
                self.list_collection(coll)
            except ApiError as exc:
                log.error("list failed", extra={"fields": {"path": coll.path, "error": str(exc)}})
                self.queue.put(Relist(coll.path))
                continue
            self._start_watch(coll)
        next_resync = self.monotonic() + self.options.resync
        try:
            while not self.stop.is_set():
                self.process()
                now = self.monotonic()
                if now >= next_resync:
                    self._resync()
                    next_resync = now + self.options.resync
                    continue
                wake = self.next_due()
                timeout = min(next_resync, wake if wake is not None else next_resync) - now
                try:
                    item = self.queue.get(timeout=max(0.0, min(timeout, 5.0)))
                except queue.Empty:
                    continue
                self.handle(item)
                while True:  # drain what arrived meanwhile: one batch of writes for all of it
                    try:
                        self.handle(self.queue.get_nowait())
                    except queue.Empty:
                        break
        finally:
            self.close()

    def _resync(self) -> None:
        for coll in self.collections:
            try:
                self.list_collection(coll)
            except ApiError as exc:
                log.error("resync list failed", extra={"fields": {"path": coll.path, "error": str(exc)}})
            if coll.path not in self._watches:
                self._start_watch(coll)
        for ref in self.apps:
            self.dirty.setdefault(ref, 0.0)

    def close(self) -> None:
        """Stop :meth:`run` (from any thread) and its watch streams."""
        self.stop.set()
        self.queue.put(Relist(""))  # wakes the loop at once; the empty path is no collection
        for w in list(self._watches.values()):
            w.close()
        self._watches.clear()
