"""One app's reconcile decision: (app, its namespace's executors, observed children, now) → :class:`Plan`.

Pure, like the downscaler's ``decide``: the controller lists and watches, passes what it saw, and carries the
plan out (server-side apply, deletes, the finalizer, the status subresource, Events). Rules:

* a live app gets the operator's finalizer first, so its children are always cleaned up;
* a valid app gets its three children applied when one is missing, differs from what the operator would
  apply (drift: someone edited or deleted it), or the app's generation is not yet observed;
* an invalid app (a bad field, an unsupported one, an unknown executor, a child owned by someone else)
  gets no writes to its children — a typo never tears down a running app — but a ``Accepted=False``
  condition and a Warning Event, both naming every field at fault; the Event is planned only when the
  condition's message changes, so a restart or a resync does not repeat it;
* an app being deleted gets its children deleted and the finalizer removed;
* the status (``readyReplicas``, ``activeScheduler``, ``deploymentName``, ``serviceName``, conditions with
  ``observedGeneration``, and a top-level ``observedGeneration`` for WasmApps) is written only when it
  differs from the stored one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from zerowatt.operator import conditions as cond
from zerowatt.operator import names as n
from zerowatt.operator.children import Manifest, Settings, children
from zerowatt.operator.fields import Problem
from zerowatt.operator.model import AppSpec, ExecutorSpec, meta, parse_app, parse_executor

#: (kind, name) of an observed child in the app's namespace.
ChildKey = tuple[str, str]


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class Delete:
    api_version: str
    kind: str
    namespace: str
    name: str


@dataclass
class Plan:
    """What to write for one app; empty lists and ``None`` mean nothing to do."""

    app: AppSpec
    apply: list[Manifest] = field(default_factory=list)
    delete: list[Delete] = field(default_factory=list)
    finalizers: list[str] | None = None  # the new metadata.finalizers, when it changes
    status: dict[str, Any] | None = None  # the new status, when it changes
    events: list[Event] = field(default_factory=list)

    @property
    def idle(self) -> bool:
        return not (self.apply or self.delete or self.finalizers is not None or self.status is not None or self.events)


def child_keys(name: str) -> list[tuple[str, str, str]]:
    """(apiVersion, kind, name) of each child of app ``name``."""
    return [("apps/v1", "Deployment", name), ("v1", "Service", name), ("v1", "Service", f"{name}-pods")]


def contains(observed: Any, desired: Any) -> bool:
    """Whether ``observed`` already holds everything in ``desired`` (extra fields are other managers' or the
    API server's defaults). Lists must match item by item; numbers and their strings compare equal, as
    quantities do after the API server normalises them (``1`` → ``"1"``)."""
    if isinstance(desired, Mapping):
        return isinstance(observed, Mapping) and all(contains(observed.get(k), v) for k, v in desired.items())
    if isinstance(desired, list):
        return (
            isinstance(observed, list)
            and len(observed) == len(desired)
            and all(contains(o, d) for o, d in zip(observed, desired, strict=True))
        )
    if isinstance(desired, bool) or isinstance(observed, bool):
        return bool(observed == desired and type(observed) is type(desired))
    if isinstance(desired, int | float) and isinstance(observed, str):
        return observed == str(desired)
    return bool(observed == desired)


def _controller_uid(obj: Mapping[str, Any]) -> str | None:
    for ref in meta(obj).get("ownerReferences") or ():
        if isinstance(ref, Mapping) and ref.get("controller"):
            return str(ref.get("uid"))
    return None


def pick_executor(
    app: AppSpec, executors: Mapping[str, Mapping[str, Any]]
) -> tuple[ExecutorSpec | None, list[Problem]]:
    """The app's executor: the one it names, else (as SpinKube's defaulting webhook) the first by name."""
    if app.ref.kind != n.SPINAPP:
        return None, []
    name = app.executor or (min(executors) if executors else "")
    if not name:
        return None, [Problem("spec.executor", f"no SpinAppExecutor in namespace {app.ref.namespace!r} to default to")]
    obj = executors.get(name)
    if obj is None:
        return None, [Problem("spec.executor", f"no SpinAppExecutor named {name!r} in namespace {app.ref.namespace!r}")]
    executor = parse_executor(obj)
    return executor, [Problem(f"executor {name}: {p.field}", p.message, p.unsupported) for p in executor.problems]


def _reason(problems: Sequence[Problem]) -> str:
    fields = [p.field for p in problems]
    if any(f == "spec.executor" or f.startswith("executor ") for f in fields):
        return "UnknownExecutor" if any(f == "spec.executor" for f in fields) else "UnsupportedExecutor"
    if any(f.startswith("child ") for f in fields):
        return "ChildConflict"
    return "UnsupportedField" if all(p.unsupported for p in problems) else "InvalidSpec"


def reconcile(
    obj: Mapping[str, Any],
    kind: str,
    executors: Mapping[str, Mapping[str, Any]],
    observed: Mapping[ChildKey, Mapping[str, Any]],
    now: datetime,
    settings: Settings,
) -> Plan:
    """Decide what to write for app ``obj`` (a SpinApp or WasmApp) given what the cluster holds."""
    app = parse_app(obj, kind)
    plan = Plan(app)
    ours = child_keys(app.ref.name)
    existing = {(k, name): observed[(k, name)] for _, k, name in ours if (k, name) in observed}
    owned = {key: child for key, child in existing.items() if _controller_uid(child) == app.uid}

    if app.deleting:
        if n.FINALIZER in app.finalizers:
            plan.delete = [Delete(v, k, app.ref.namespace, name) for v, k, name in ours if (k, name) in owned]
            plan.finalizers = [f for f in app.finalizers if f != n.FINALIZER]
        return plan
    if n.FINALIZER not in app.finalizers:
        plan.finalizers = [*app.finalizers, n.FINALIZER]

    executor, problems = pick_executor(app, executors)
    problems = [*app.problems, *problems]
    for (k, name), child in existing.items():
        uid = _controller_uid(child)
        if uid is not None and uid != app.uid:
            problems.append(Problem(f"child {k} {name}", "exists and is controlled by another object"))

    status_before: Mapping[str, Any] = obj.get("status") if isinstance(obj.get("status"), Mapping) else {}  # type: ignore[assignment]
    conditions: list[cond.Condition] = []
    if problems:
        reason = _reason(problems)
        message = "; ".join(str(p) for p in problems)
        conditions.append(cond.Condition(cond.ACCEPTED, False, reason, message))
        conditions.append(cond.Condition(cond.READY, False, reason, "the spec is not accepted; see Accepted"))
        old = cond.find(status_before, cond.ACCEPTED)
        if old is None or old.get("message") != message or old.get("status") != "False":
            plan.events.append(Event("Warning", reason, message))
    elif executor is not None and not executor.create_deployment:
        message = f"executor {executor.name} has createDeployment: false; the operator creates no children"
        conditions.append(cond.Condition(cond.ACCEPTED, True, "Accepted", message))
        conditions.append(cond.Condition(cond.READY, False, "NoDeployment", message))
    else:
        notes = "; ".join(executor.notes) if executor is not None else ""
        conditions.append(cond.Condition(cond.ACCEPTED, True, "Accepted", notes or "all fields accepted"))
        generation_seen = observed_generation(status_before) == app.generation
        for manifest in children(app, executor, settings):
            key = (manifest["kind"], manifest["metadata"]["name"])
            if not generation_seen or key not in owned or not contains(owned[key], manifest):
                plan.apply.append(manifest)
        conditions.append(_ready(app, owned.get(("Deployment", app.ref.name))))

    deployment_status = (owned.get(("Deployment", app.ref.name)) or {}).get("status") or {}
    status: dict[str, Any] = {
        "readyReplicas": int(deployment_status.get("readyReplicas") or 0),
        "conditions": cond.render(conditions, status_before.get("conditions") or (), app.generation, now),
    }
    if app.ref.kind == n.WASMAPP:  # SpinKube's status schema has no such field (the server would prune it)
        status["observedGeneration"] = app.generation
    # None removes a key (the status is written as a merge patch).
    status["activeScheduler"] = executor.name if executor is not None else None
    deployed = not problems and (executor is None or executor.create_deployment)
    status["deploymentName"] = status["serviceName"] = app.ref.name if deployed else None
    if any(status_before.get(k) != v for k, v in status.items()):
        plan.status = status
    return plan


def observed_generation(status: Mapping[str, Any]) -> int | None:
    """The generation the last written status describes: the ``Accepted`` condition's (every status the
    operator writes has one; SpinApp's schema keeps conditions' ``observedGeneration``, not a top-level one)."""
    accepted = cond.find(status, cond.ACCEPTED)
    value = accepted.get("observedGeneration") if accepted is not None else None
    return value if isinstance(value, int) else None


def _ready(app: AppSpec, deployment: Mapping[str, Any] | None) -> cond.Condition:
    if deployment is None:
        return cond.Condition(cond.READY, False, "Creating", "the Deployment is being created")
    status = deployment.get("status") or {}
    ready = int(status.get("readyReplicas") or 0)
    wanted = (deployment.get("spec") or {}).get("replicas")
    if ready > 0:
        return cond.Condition(cond.READY, True, "Ready", f"{ready} ready replica(s)")
    if app.autoscaling.enabled and not wanted:
        return cond.Condition(
            cond.READY, True, "ScaledToZero", "at zero replicas: the activator starts one on a request"
        )
    if wanted == 0:
        return cond.Condition(cond.READY, True, "ScaledToZero", "spec.replicas is 0")
    for c in status.get("conditions") or ():
        # The Deployment controller's own verdicts: pods that cannot be created (quota, admission), or a
        # rollout past its progress deadline (pods that never become ready: a bad image or reference).
        if not isinstance(c, Mapping):
            continue
        if c.get("type") == "ReplicaFailure" and c.get("status") == "True":
            return cond.Condition(cond.READY, False, "ReplicaFailure", str(c.get("message") or c.get("reason")))
        if c.get("type") == "Progressing" and c.get("status") == "False":
            return cond.Condition(
                cond.READY, False, str(c.get("reason") or "NotProgressing"), str(c.get("message") or "")
            )
    return cond.Condition(cond.READY, False, "Progressing", "waiting for a ready replica")


def failed(plan: Plan, message: str, now: datetime, observed_status: Mapping[str, Any]) -> dict[str, Any]:
    """The status after the plan's writes failed (``Ready=False``, reason ``ApplyFailed``)."""
    conditions = [cond.Condition(cond.READY, False, "ApplyFailed", message)]
    kept = [
        c for c in observed_status.get("conditions") or () if isinstance(c, Mapping) and c.get("type") != cond.READY
    ]
    rendered = cond.render(conditions, observed_status.get("conditions") or (), plan.app.generation, now)
    return {**observed_status, "conditions": [*kept, *rendered]}
