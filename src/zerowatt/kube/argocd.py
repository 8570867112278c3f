"""What the downscaler reads of Argo CD: which Application manages an object, and whether its self-heal can pause.

Pure functions over decoded JSON, checked against argoproj/argo-cd:

* tracking (``docs/user-guide/resource_tracking.md``, ``util/argo/resource_tracking.go``): with the
  ``annotation`` and ``annotation+label`` methods (the default since Argo CD 3.0) the owner is the annotation
  ``argocd.argoproj.io/tracking-id: APP:GROUP/KIND:NAMESPACE/NAME`` (a value not of that shape, or one that
  names another object, does not make the object managed); with ``label`` (the default of 2.x) it is the label
  ``application.instanceLabelKey`` of ``argocd-cm``, ``app.kubernetes.io/instance`` unless changed
  (``common/common.go`` ``LabelKeyAppInstance``). Either value is ``AppInstanceName`` (``util/argo/argo.go``):
  the Application's name, or ``NAMESPACE_NAME`` for an Application outside Argo CD's own namespace;
* self-heal (``docs/user-guide/auto_sync.md``): on when ``spec.syncPolicy.automated.selfHeal`` is true and
  ``automated.enabled`` is not false;
* ApplicationSets (``docs/operator-manual/applicationset/Controlling-Resource-Modification.md``): the
  ApplicationSet controller puts a generated Application's ``spec.syncPolicy`` back unless the ApplicationSet's
  ``ignoreApplicationDifferences`` covers it, so only then can self-heal be paused on the Application.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zerowatt.errors import ValidationError
from zerowatt.kube.kinds import Obj, annotations_of, labels_of, meta

TRACKING_ID = "argocd.argoproj.io/tracking-id"
#: Argo CD's default ``application.instanceLabelKey``.
DEFAULT_INSTANCE_LABEL = "app.kubernetes.io/instance"
APPLICATION_SET = "ApplicationSet"
#: What ``ignoreApplicationDifferences`` must cover for zerowatt's patch of ``selfHeal`` to survive.
SELF_HEAL_POINTERS = frozenset(
    {"/spec", "/spec/syncPolicy", "/spec/syncPolicy/automated", "/spec/syncPolicy/automated/selfHeal"}
)
SELF_HEAL_JQ = frozenset(
    {".spec", ".spec.syncPolicy", ".spec.syncPolicy.automated", ".spec.syncPolicy.automated.selfHeal"}
)
#: The advice given for a generated Application whose ApplicationSet does not ignore ``/spec/syncPolicy``.
APPSET_ADVICE = "add ignoreApplicationDifferences: [{jsonPointers: [/spec/syncPolicy]}] to the ApplicationSet"


def _app_key(instance: str, default_namespace: str) -> tuple[str, str] | None:
    """``util/argo/argo.go`` ``ParseInstanceName``: ``NAMESPACE_NAME`` or ``NAME``; empty parts name no Application."""
    ns, sep, name = instance.partition("_")
    key = (ns, name) if sep else (default_namespace, instance)
    return key if key[0] and key[1] else None


def tracked_app(obj: Obj, default_namespace: str, label_key: str = DEFAULT_INSTANCE_LABEL) -> tuple[str, str] | None:
    """(namespace, name) of the Application that manages ``obj``, or None.

    A well-formed tracking-id that names this very object wins; one that names another object (a copy made by
    another tool) means "not managed", as in Argo CD. Without a usable annotation, the instance label counts.
    """
    tracking = annotations_of(obj).get(TRACKING_ID)
    if isinstance(tracking, str):
        parts = tracking.split(":", 2)
        if len(parts) == 3 and parts[0] and parts[1].count("/") == 1 and parts[2].count("/") == 1:
            _, kind = parts[1].split("/")
            ns, name = parts[2].split("/")
            m = meta(obj)
            if kind != obj.get("kind") or name != m.get("name") or ns not in ("", m.get("namespace", "")):
                return None
            return _app_key(parts[0], default_namespace)
    label = labels_of(obj).get(label_key)
    return _app_key(label, default_namespace) if isinstance(label, str) and label else None


def app_where(key: tuple[str, str]) -> str:
    return f"Application {key[0]}/{key[1]}"


def self_heal_on(app: Obj) -> bool:
    """Whether automated sync with self-heal is on; a :class:`ValidationError` naming the app if unreadable."""
    m = meta(app)
    where = app_where((str(m.get("namespace")), str(m.get("name"))))
    spec = app.get("spec")
    if spec is None:
        return False
    if not isinstance(spec, Mapping):
        raise ValidationError(where, f"spec is {spec!r}, expected an object")
    policy: Any = spec.get("syncPolicy")
    if policy is None:
        return False
    if not isinstance(policy, Mapping):
        raise ValidationError(where, f"spec.syncPolicy is {policy!r}, expected an object")
    automated: Any = policy.get("automated")
    if automated is None:
        return False
    if not isinstance(automated, Mapping):
        raise ValidationError(where, f"spec.syncPolicy.automated is {automated!r}, expected an object")
    return automated.get("selfHeal") is True and automated.get("enabled") is not False


def generated_by(app: Obj) -> str | None:
    """The name of the ApplicationSet that generated ``app`` (its owner reference), or None."""
    refs = meta(app).get("ownerReferences")
    for ref in refs if isinstance(refs, list) else ():
        if (
            isinstance(ref, Mapping)
            and ref.get("kind") == APPLICATION_SET
            and str(ref.get("apiVersion", "")).startswith("argoproj.io/")
        ):
            return str(ref.get("name"))
    return None


def appset_ignores_sync_policy(appset: Obj, app_name: str) -> bool:
    """Whether the ApplicationSet leaves ``spec.syncPolicy.automated.selfHeal`` of ``app_name`` alone."""
    spec = appset.get("spec")
    rules = spec.get("ignoreApplicationDifferences") if isinstance(spec, Mapping) else None
    for rule in rules if isinstance(rules, list) else ():
        if not isinstance(rule, Mapping) or rule.get("name") not in (None, "", app_name):
            continue
        pointers = rule.get("jsonPointers") or []
        jq = rule.get("jqPathExpressions") or []
        if any(p in SELF_HEAL_POINTERS for p in pointers if isinstance(p, str)):
            return True
        if any(e.strip() in SELF_HEAL_JQ for e in jq if isinstance(e, str)):
            return True
    return False
