"""One downscaler pass against the API: list, decide (pure), then apply patches, Events and Argo CD marks.

A pass is *plan, then apply*: every object of every included kind is listed (paged) and decided by
:func:`zerowatt.kube.decide.decide` without any write; then the Argo CD Applications that own an object
about to go down get self-heal paused (``--argocd-pause-self-heal``), the patches are sent, and
Applications none of whose objects stay down get self-heal back. Only objects whose level changes are
patched, so a steady cluster costs lists and no writes.

Each patch is a JSON merge patch carrying ``metadata.resourceVersion``: the API server answers 409 if the
object changed since it was listed, and the object is then re-read, re-decided and patched again (bounded),
so neither our update nor the other writer's is lost. Throttling and server errors are retried in
:class:`zerowatt.kube.api.KubeApi`. A failure on one object (an invalid annotation, a 404, a 403) is logged
(and, with Events enabled, reported on the object) and the pass goes on with the others.
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from zerowatt.errors import ValidationError
from zerowatt.kube import annotations as ann
from zerowatt.kube import argocd
from zerowatt.kube.api import MERGE_PATCH, METADATA_ONLY, ApiError, KubeApi, encode, path_segment
from zerowatt.kube.decide import Decision, Matcher, NamespaceView, decide, namespace_filtered
from zerowatt.kube.kinds import Kind, Obj, annotations_of, merge_patch, meta, where
from zerowatt.kube.savings import Released, released_replicas, requests_per_pod
from zerowatt.kube.settings import Settings
from zerowatt.kube.wire import Request

log = logging.getLogger("zerowatt.kube")

COMPONENT = "zerowatt-downscaler"
CONFLICT_RETRIES = 3
ARGO_APPS = "/apis/argoproj.io/v1alpha1"
RUNNING_PODS = "status.phase!=Succeeded,status.phase!=Failed"


@dataclass(frozen=True)
class Options:
    """How a pass touches the cluster (as opposed to :class:`Settings`, which say what it decides)."""

    namespaces: tuple[str, ...] = ()  # empty: all namespaces
    dry_run: bool = False
    enable_events: bool = False
    argocd_pause_self_heal: bool = False
    argocd_namespace: str = "argocd"
    #: Argo CD's ``application.instanceLabelKey`` (label tracking); the tracking-id annotation is always read.
    argocd_instance_label_key: str = argocd.DEFAULT_INSTANCE_LABEL
    #: Look for running pods annotated ``downscaler/force-uptime`` (kube-downscaler does, every pass).
    pod_force_uptime: bool = True
    #: ``--max-retries-on-conflict``: re-read, re-decide and patch again after a 409, at most this often.
    conflict_retries: int = CONFLICT_RETRIES
    #: Price what a downtime releases (pod requests × replicas) in each report: for metrics and ``--json``.
    savings: bool = True


@dataclass
class Change:
    kind: str
    namespace: str
    name: str
    action: str
    reason: str
    level: int | None
    target: int | None
    applied: bool


@dataclass
class PassReport:
    """What a pass saw and did; feeds logs, ``--json`` output and the Prometheus metrics."""

    objects: int = 0
    changes: list[Change] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    down: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, namespace) -> objects down
    released: Released = field(default_factory=Released)
    argocd_paused: list[str] = field(default_factory=list)
    argocd_restored: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "objects": self.objects,
            "changes": [c.__dict__ for c in self.changes],
            "errors": [{"object": w, "error": e} for w, e in self.errors],
            "down": [{"kind": k, "namespace": n, "objects": c} for (k, n), c in sorted(self.down.items())],
            "released": self.released.__dict__,
            "argocd_paused": self.argocd_paused,
            "argocd_restored": self.argocd_restored,
        }


@dataclass
class _Item:
    kind: Kind
    obj: dict[str, Any]
    ns: NamespaceView
    decision: Decision


class Downscaler:
    """The controller: runs passes against a :class:`KubeApi` with injected settings and schedule matcher."""

    def __init__(self, api: KubeApi, settings: Settings, matches: Matcher, options: Options | None = None) -> None:
        self.api = api
        self.settings = settings
        self.matches = matches
        self.options = options or Options()
        self._event_seq = itertools.count()
        #: (uid or where, message) of invalid configurations already reported by an Event: the log repeats
        #: every pass, the Event only once per process and object, so a broken annotation does not flood.
        self._warned: set[tuple[str, str]] = set()
        self._events: list[tuple[str, Request]] = []
        self._forced: str | None = None

    # --- reading ----------------------------------------------------------------------------------------

    def _namespaces(self) -> dict[str, NamespaceView]:
        if self.options.namespaces:
            raw = []
            for name in self.options.namespaces:
                try:
                    raw.append(self.api.get(f"/api/v1/namespaces/{path_segment(name)}"))
                except ApiError as exc:
                    if exc.status != 404:
                        raise
                    log.warning("namespace not found", extra={"fields": {"namespace": name}})
        else:
            raw = list(self.api.list("/api/v1/namespaces"))
        forced = self._forced = self._pod_forcing_uptime()
        views = {}
        for ns in raw:
            name = str(meta(ns).get("name"))
            views[name] = NamespaceView(name, dict(annotations_of(ns)), self._filtered(name), forced)
        return views

    def _filtered(self, namespace: str) -> bool:
        """``--exclude-namespaces``; with ``--namespace`` the list given wins over it, as in py-kube-downscaler."""
        return not self.options.namespaces and namespace_filtered(namespace, self.settings)

    def _pod_forcing_uptime(self) -> str | None:
        """``NAMESPACE/NAME`` of a running pod annotated ``downscaler/force-uptime: "true"``, if any.

        As in py-kube-downscaler (``pods_force_uptime``), one such pod puts the whole cluster (or the
        ``--namespace`` list) in uptime, except namespaces whose own ``force-uptime`` says otherwise.

        Annotations cannot be selected on by the API server, so this is one list of the pods' metadata
        (``PartialObjectMetadataList``: no spec, no status) with a field selector that drops finished pods;
        a server that ignores either still gives a correct answer, because the phase is checked here too.
        """
        if not self.options.pod_force_uptime:
            return None
        paths = (
            [f"/api/v1/namespaces/{path_segment(n)}/pods" for n in self.options.namespaces]
            if self.options.namespaces
            else ["/api/v1/pods"]
        )
        try:
            for path in paths:
                for pod in self.api.list(path, accept=METADATA_ONLY, fieldSelector=RUNNING_PODS):
                    if str(annotations_of(pod).get(ann.FORCE_UPTIME, "")).strip().lower() != "true":
                        continue
                    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                        continue
                    m = meta(pod)
                    forced = f"{m.get('namespace', '')}/{m.get('name', '')}"
                    log.info("forced uptime by pod", extra={"fields": {"pod": forced}})
                    return forced
        except ApiError as exc:  # e.g. RBAC without "list pods": the pass goes on without this rule
            log.error("cannot list pods for force-uptime", extra={"fields": {"error": str(exc)}})
        return None

    def _objects(self, kind: Kind, namespaces: Iterable[str]) -> Iterable[dict[str, Any]]:
        if self.options.namespaces:
            for ns in namespaces:
                yield from self.api.list(kind.collection_path(ns))
        else:
            yield from self.api.list(kind.collection_path(None))

    def plan(self, now: datetime) -> list[_Item]:
        """List everything and decide, without writing anything."""
        namespaces = self._namespaces()
        items = []
        debug = log.isEnabledFor(logging.DEBUG)
        for kind in self.settings.kinds:
            try:
                objects = list(self._objects(kind, namespaces))
            except ApiError as exc:
                # A kind whose CRD is not installed (404) must not stop the others.
                log.error("cannot list", extra={"fields": {"kind": kind.plural, "error": str(exc)}})
                continue
            for obj in objects:
                ns_name = str(meta(obj).get("namespace", ""))
                ns = namespaces.get(ns_name) or NamespaceView(ns_name, {}, self._filtered(ns_name), self._forced)
                obj.setdefault("kind", kind.kind)
                obj.setdefault("apiVersion", kind.api_version)
                decision = decide(obj, kind, ns, self.settings, now, self.matches)
                items.append(_Item(kind, obj, ns, decision))
                if debug:
                    log.debug(
                        "decided",
                        extra={"fields": {"object": where(obj), "action": decision.action, "reason": decision.reason}},
                    )
        return items

    # --- writing ----------------------------------------------------------------------------------------

    def run_pass(self, now: datetime) -> PassReport:
        report = PassReport()
        items = self.plan(now)
        report.objects = len(items)
        argo = self.options.argocd_pause_self_heal
        if argo:
            going_down = {app for it in items if it.decision.action == "down" and (app := self._app_of(it.obj))}
            blocked = self._pause_apps(going_down, report, now)
            for it in items:
                if it.decision.action == "down" and (app := self._app_of(it.obj)) in blocked:
                    # Scaling down while self-heal stays on would start a fight with Argo CD every few seconds.
                    reason = f"not scaled down: {blocked[app]}"
                    it.decision = Decision("error", reason, level=it.decision.level, event="ArgoCDSelfHealNotPaused")
        self._apply_all(items, now, report)
        for it in items:
            self._account(it, report)
        if argo:
            still_down = {
                app for it in items if ann.ORIGINAL_REPLICAS in annotations_of(it.obj) and (app := self._app_of(it.obj))
            }
            self._restore_apps(still_down, report)
        return report

    def _app_of(self, obj: Obj) -> tuple[str, str] | None:
        return argocd.tracked_app(obj, self.options.argocd_namespace, self.options.argocd_instance_label_key)

    def _apply_all(self, items: list[_Item], now: datetime, report: PassReport) -> None:
        """Report errors, then send every patch of the pass pipelined, then handle the answers in order.

        A 409 on the pipelined attempt falls back to :meth:`_resolve_conflict` for that object alone; Events
        are queued while answers are handled and sent as one more batch at the end.
        """
        writes: list[tuple[_Item, Change, str]] = []
        for it in items:
            prepared = self._prepare(it, now, report)
            if prepared is not None:
                writes.append(prepared)
        requests = [
            Request("PATCH", path, encode(self._with_version(it.obj, it.decision)), MERGE_PATCH)
            for it, _, path in writes
        ]
        # The answers are the patched objects; decoding 10,000 of them costs more than applying the patch
        # here (RFC 7386) to what was listed, which gives the same annotations and levels.
        results = self.api.send_all(requests, decode=False) if requests else []
        then: list[tuple[_Item, str]] = []
        for (it, change, path), result in zip(writes, results, strict=True):
            try:
                if isinstance(result, ApiError):
                    if result.status != 409:
                        raise result
                    obj, final = self._resolve_conflict(it, path, now)
                else:
                    obj, final = merge_patch(it.obj, it.decision.patch), it.decision
            except ApiError as exc:
                w = where(it.obj)
                report.errors.append((w, str(exc)))
                log.error("update failed", extra={"fields": {"object": w, "error": str(exc)}})
                it.decision = Decision("error", str(exc))  # not changed: not counted as down
                continue
            self._applied(it, change, obj, final, now, report)
            if final.action == "up" and final.then:
                m = meta(obj)
                ns, name = path_segment(str(m.get("namespace"))), path_segment(str(m.get("name")))
                then.append((it, it.kind.subresource_path(ns, name, final.then)))
        self._then(then, now, report)
        self._flush_events()

    def _then(self, then: list[tuple[_Item, str]], now: datetime, report: PassReport) -> None:
        """``PUT`` the subresources the upscales asked for (a Manual VM's ``start``), pipelined, after the patches.

        A failure is an error on the object: its run strategy is back but it was not started, and the state
        annotations are gone, so the next pass will not try again; the message says how to start it by hand.
        """
        if not then:
            return
        results = self.api.send_all([Request("PUT", path, b"{}") for _, path in then])
        for (it, path), result in zip(then, results, strict=True):
            w = where(it.obj)
            if isinstance(result, ApiError):
                message = f"restored, but {path.rsplit('/', 1)[-1]} failed ({result}); start it with virtctl start"
                report.errors.append((w, message))
                log.error("subresource failed", extra={"fields": {"object": w, "error": message}})
                self._event(it.obj, "StartFailed", message, "Warning", now)
            else:
                log.info("subresource done", extra={"fields": {"object": w, "subresource": path.rsplit("/", 1)[-1]}})

    def _prepare(self, it: _Item, now: datetime, report: PassReport) -> tuple[_Item, Change, str] | None:
        """Errors reported and dry runs logged here; a real change comes back as (item, change, path)."""
        d = it.decision
        w = where(it.obj)
        if d.action == "error":
            report.errors.append((w, d.reason))
            log.error("invalid configuration", extra={"fields": {"object": w, "error": d.reason}})
            key = (str(meta(it.obj).get("uid") or w), d.reason)
            if key not in self._warned:
                self._warned.add(key)
                self._event(it.obj, d.event, d.reason, "Warning", now)
            return None
        if d.action not in ("down", "up", "clear"):
            return None
        m = meta(it.obj)
        change = Change(
            it.kind.plural,
            str(m.get("namespace", "")),
            str(m.get("name", "")),
            d.action,
            d.reason,
            d.level,
            d.target,
            False,
        )
        if self.options.dry_run:
            log.info(
                "dry run: would scale",
                extra={
                    "fields": {
                        "object": w, "action": d.action, "from": d.level, "to": d.target, "reason": d.reason,
                        **({"then": d.then} if d.then else {}),
                    }
                },
            )  # fmt: skip
            report.changes.append(change)
            return None
        return it, change, it.kind.object_path(str(m.get("namespace")), path_segment(str(m.get("name"))))

    def _applied(
        self, it: _Item, change: Change, obj: dict[str, Any], final: Decision, now: datetime, report: PassReport
    ) -> None:
        it.obj, it.decision = obj, final
        if final.action not in ("down", "up", "clear"):
            return  # after a conflict, the fresh object needed nothing any more
        change.action, change.level, change.target, change.applied = final.action, final.level, final.target, True
        report.changes.append(change)
        if final.action == "clear":
            log.info(final.reason, extra={"fields": {"object": where(obj), "action": "clear"}})
            return
        verb = "Scaling down" if final.action == "down" else "Scaling up"
        message = f"{verb} {it.kind.kind} from {final.level} to {final.target}, reason: {final.reason}"
        log.info(
            message,
            extra={"fields": {"object": where(obj), "action": final.action, "from": final.level, "to": final.target}},
        )
        self._event(obj, "ScaleDown" if final.action == "down" else "ScaleUp", message, "Normal", now)

    @staticmethod
    def _with_version(obj: Obj, decision: Decision) -> dict[str, Any]:
        """The decision's merge patch plus ``metadata.resourceVersion``: the server answers 409 if the object
        changed since it was read (optimistic concurrency), so no other writer's update is overwritten."""
        patch = dict(decision.patch or {})
        rv = meta(obj).get("resourceVersion")
        if rv:
            patch["metadata"] = {**patch.get("metadata", {}), "resourceVersion": rv}
        return patch

    def _resolve_conflict(self, it: _Item, path: str, now: datetime) -> tuple[dict[str, Any], Decision]:
        """After a 409: re-read, re-decide and patch again, at most ``CONFLICT_RETRIES`` times."""
        obj: dict[str, Any] = dict(it.obj)
        retries = self.options.conflict_retries
        if retries <= 0:
            raise ApiError("PATCH", path, 409, "conflict (--max-retries-on-conflict 0: retried next pass)")
        for attempt in range(retries):
            log.info("conflict, re-reading", extra={"fields": {"object": where(obj), "attempt": attempt + 1}})
            obj = self.api.get(path)
            obj.setdefault("kind", it.kind.kind)
            obj.setdefault("apiVersion", it.kind.api_version)
            decision = decide(obj, it.kind, it.ns, self.settings, now, self.matches)
            if decision.action == "error":
                raise ApiError("PATCH", path, 409, decision.reason)
            if decision.patch is None:
                return obj, decision
            try:
                return self.api.patch(path, self._with_version(obj, decision)), decision
            except ApiError as exc:
                if exc.status != 409 or attempt + 1 == retries:
                    raise
        raise AssertionError("unreachable")

    def _account(self, it: _Item, report: PassReport) -> None:
        """Count what is down after this pass (dry run: what would be) and the requests it releases."""
        d = it.decision
        annos = annotations_of(it.obj)
        if d.action == "down":
            level, original = d.target or 0, d.level
        elif d.action == "up":
            return
        elif ann.ORIGINAL_REPLICAS in annos and d.level is not None and d.action != "clear":
            level = d.level
            try:
                original = it.kind.decode_original(str(annos[ann.ORIGINAL_REPLICAS]), key="")
            except ValidationError:
                return
        else:
            return
        m = meta(it.obj)
        report.down[(it.kind.plural, str(m.get("namespace", "")))] += 1
        if not self.options.savings:
            return
        replicas = released_replicas(it.kind, level, original)
        if replicas:
            report.released.add(replicas, requests_per_pod(it.obj, it.kind))

    def _event(self, obj: Obj, reason: str, message: str, type_: str, now: datetime) -> None:
        if not self.options.enable_events or self.options.dry_run:
            return
        m = meta(obj)
        ns = str(m.get("namespace") or "default")
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{m.get('name')}.{int(now.timestamp() * 1e6):x}{next(self._event_seq):x}",
                "namespace": ns,
            },
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"),
                "kind": obj.get("kind"),
                "name": m.get("name"),
                "namespace": ns,
                "uid": m.get("uid"),
                "resourceVersion": m.get("resourceVersion"),
            },
            "reason": reason,
            "message": message[:1024],
            "type": type_,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        self._events.append(
            (where(obj), Request("POST", f"/api/v1/namespaces/{path_segment(ns)}/events", encode(body)))
        )

    def _flush_events(self) -> None:
        """Send the queued Events as one pipelined batch; a failed Event is logged, never fatal."""
        queued, self._events = self._events, []
        if not queued:
            return
        for (w, _), result in zip(queued, self.api.send_all([r for _, r in queued]), strict=True):
            if isinstance(result, ApiError):
                log.warning("cannot create event", extra={"fields": {"object": w, "error": str(result)}})

    # --- Argo CD --------------------------------------------------------------------------------------

    def _apps(self) -> list[dict[str, Any]] | str:
        """All Applications, or why they cannot be listed."""
        try:
            return [a for a in self.api.list(f"{ARGO_APPS}/applications") if isinstance(a, dict)]
        except ApiError as exc:
            log.error("cannot list Argo CD Applications", extra={"fields": {"error": str(exc)}})
            return str(exc)

    def _pause_apps(
        self, wanted: set[tuple[str, str]], report: PassReport, now: datetime
    ) -> dict[tuple[str, str], str]:
        """Switch self-heal off on the Applications in ``wanted``; return those where it stays on, with why.

        An Application that cannot be read (a malformed ``spec.syncPolicy``), one generated by an ApplicationSet
        that would put ``syncPolicy`` back, or one whose patch fails is reported (log, pass report, a Warning
        Event on it) and only the objects it manages are held back; the rest of the pass goes on.
        """
        blocked: dict[tuple[str, str], str] = {}
        if not wanted:
            return blocked
        apps = self._apps()
        if isinstance(apps, str):  # nothing can be paused: hold every object an Application may manage
            return {key: f"Argo CD Applications cannot be listed ({apps})" for key in wanted}
        for app in apps:
            key = (str(meta(app).get("namespace")), str(meta(app).get("name")))
            if key not in wanted or ann.ARGOCD_SELF_HEAL_PAUSED in annotations_of(app):
                continue
            try:
                if not argocd.self_heal_on(app):
                    continue
            except ValidationError as exc:
                blocked[key] = str(exc)
                self._app_error(app, key, "InvalidApplication", str(exc), report, now)
                continue
            appset = argocd.generated_by(app)
            if appset is not None and not self._appset_allows(key, appset):
                problem = (
                    f"{argocd.app_where(key)} is generated by ApplicationSet {key[0]}/{appset}, which puts its "
                    f"spec.syncPolicy back, so its self-heal cannot be paused; {argocd.APPSET_ADVICE} "
                    "(or use ignoreDifferences without --argocd-pause-self-heal, see docs/downscaler.md)"
                )
                blocked[key] = problem
                self._app_error(app, key, "ApplicationSetOwnsSyncPolicy", problem, report, now)
                continue
            patch = {
                "metadata": {"annotations": {ann.ARGOCD_SELF_HEAL_PAUSED: "true"}},
                "spec": {"syncPolicy": {"automated": {"selfHeal": False}}},
            }
            if self._patch_app(key, patch):
                report.argocd_paused.append(f"{key[0]}/{key[1]}")
            else:
                blocked[key] = f"the self-heal of {argocd.app_where(key)} could not be paused"
        return blocked

    def _appset_allows(self, key: tuple[str, str], appset: str) -> bool:
        path = f"{ARGO_APPS}/namespaces/{path_segment(key[0])}/applicationsets/{path_segment(appset)}"
        try:
            return argocd.appset_ignores_sync_policy(self.api.get(path), key[1])
        except ApiError as exc:
            log.error("cannot read ApplicationSet", extra={"fields": {"object": path, "error": str(exc)}})
            return False

    def _app_error(
        self, app: Obj, key: tuple[str, str], reason: str, message: str, report: PassReport, now: datetime
    ) -> None:
        w = argocd.app_where(key)
        report.errors.append((w, message))
        log.error("Argo CD self-heal not paused", extra={"fields": {"object": w, "error": message}})
        seen = (str(meta(app).get("uid") or w), message)
        if seen not in self._warned:
            self._warned.add(seen)
            self._event(
                {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", **app}, reason, message, "Warning", now
            )

    def _restore_apps(self, still_down: set[tuple[str, str]], report: PassReport) -> None:
        apps = self._apps()
        for app in apps if isinstance(apps, list) else ():
            key = (str(meta(app).get("namespace")), str(meta(app).get("name")))
            if key in still_down or ann.ARGOCD_SELF_HEAL_PAUSED not in annotations_of(app):
                continue
            patch = {
                "metadata": {"annotations": {ann.ARGOCD_SELF_HEAL_PAUSED: None}},
                "spec": {"syncPolicy": {"automated": {"selfHeal": True}}},
            }
            if self._patch_app(key, patch):
                report.argocd_restored.append(f"{key[0]}/{key[1]}")

    def _patch_app(self, key: tuple[str, str], patch: Mapping[str, Any]) -> bool:
        verb = "pause" if patch["spec"]["syncPolicy"]["automated"]["selfHeal"] is False else "restore"
        if self.options.dry_run:
            log.info(
                f"dry run: would {verb} Argo CD self-heal", extra={"fields": {"application": f"{key[0]}/{key[1]}"}}
            )
            return True
        try:
            self.api.patch(
                f"{ARGO_APPS}/namespaces/{path_segment(key[0])}/applications/{path_segment(key[1])}", dict(patch)
            )
        except ApiError as exc:
            log.error(
                f"cannot {verb} Argo CD self-heal",
                extra={"fields": {"application": f"{key[0]}/{key[1]}", "error": str(exc)}},
            )
            return False
        log.info(f"Argo CD self-heal {verb}d", extra={"fields": {"application": f"{key[0]}/{key[1]}"}})
        return True
