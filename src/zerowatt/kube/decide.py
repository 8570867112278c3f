"""The downscaler's decision for one object: pure, with kube-downscaler's exact precedence.

Given an object, its namespace's annotations, the settings and ``now``, :func:`decide` answers nothing /
down / up / error. Values come from the workload's annotations first, then its namespace's annotations,
then the flags (whose defaults are the environment variables). The rules follow hjacobs/kube-downscaler's
``scaler.autoscale_resource`` (and py-kube-downscaler's additions: ``force-downtime``, ``grace-period``
annotations, more kinds) so that the same cluster state leads to the same action:

* excluded (``downscaler/exclude`` not ``false``, or ``exclude-until`` in the future, on the object or its
  namespace; labels not matching ``--matching-labels``; a Deployment owned by a Stack) and never downscaled
  → nothing; excluded but carrying ``original-replicas`` → scaled back up (not with ``--upscale-target-only``);
* the namespace's ``force-uptime`` (true / a schedule; default: true while a running pod anywhere in the
  cluster is annotated ``force-uptime: true``) → up; else the namespace's ``force-downtime`` → down
  (on a workload both are ignored, as upstream ignores them);
* ``upscale-period``/``downscale-period`` set (not ``never``): up inside the first, down inside the second,
  nothing outside both or where they overlap;
* else uptime = ``uptime`` matches and ``downtime`` does not;
* up only when the level equals the downtime target and ``original-replicas`` > 0 (a workload changed by
  hand during downtime is left alone); an object already back at its ``original-replicas`` loses that stale
  mark; down only when the level is above the target and the object is out of its grace period (since
  creation, or the ``--deployment-time-annotation`` time; the object's ``grace-period`` may shorten it).

The schedule grammar is injected as a :data:`Matcher` so this module never parses specs itself.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from zerowatt.errors import ValidationError
from zerowatt.kube import annotations as ann
from zerowatt.kube.kinds import Kind, Obj, Patch, Percent, annotations_of, labels_of, meta, parse_replicas, where
from zerowatt.kube.settings import Settings
from zerowatt.parsing import GO_UNITS, parse_duration, parse_timestamp

#: ``(spec, now) -> bool``; raises :class:`ValidationError` for a spec it cannot read.
Matcher = Callable[[str, datetime], bool]

Action = Literal["none", "down", "up", "clear", "error", "skip"]


@dataclass(frozen=True)
class Decision:
    """What to do with one object, and why (the reason goes into logs and Events)."""

    action: Action
    reason: str
    patch: Patch | None = None
    level: int | None = None  # the level now
    target: int | None = None  # the level after the patch
    original: int | None = None
    #: A subresource of the object to ``PUT`` once the patch has landed (KubeVirt's ``start`` for Manual VMs).
    then: str | None = None
    #: The reason of the Warning Event an ``error`` decision raises on the object.
    event: str = "InvalidAnnotation"


@dataclass(frozen=True)
class NamespaceView:
    """What the decision needs of a namespace: its annotations and whether a flag regex excludes it."""

    name: str
    annotations: Mapping[str, str] = field(default_factory=dict)
    excluded_by_flag: bool = False
    #: A running pod annotated ``downscaler/force-uptime: "true"`` (``NAMESPACE/NAME``), anywhere in the
    #: cluster (or in ``--namespace``): every namespace without its own ``force-uptime`` is in uptime, as in
    #: py-kube-downscaler (``pods_force_uptime`` is one flag for the whole pass).
    forced_by_pod: str | None = None


def grace_seconds(value: str, *, key: str) -> float:
    """A grace period: seconds (``900``) or a Go-style duration (``15m``, ``1h30m``; no days), as the forks take."""
    return parse_duration(value, key=key, units=GO_UNITS, allow_zero=True)


def is_excluded(obj_where: str, annos: Mapping[str, str], now: datetime) -> bool:
    """``exclude`` (any value but ``false`` excludes, to be on the safe side) or ``exclude-until`` ahead."""
    if annos.get(ann.EXCLUDE, "false").lower() != "false":
        return True
    until = annos.get(ann.EXCLUDE_UNTIL)
    return bool(until) and now < parse_timestamp(str(until), key=f"{obj_where}: annotation {ann.EXCLUDE_UNTIL}")


def _match(where_: str | Obj, spec: str, now: datetime, matches: Matcher, label: str = "") -> bool:
    """``matches(spec, now)``; an error names ``where_`` (an object's place is formatted only then)."""
    try:
        return matches(spec, now)
    except ValidationError as exc:
        place = where_ if isinstance(where_, str) else f"{where(where_)}: {label}"
        raise ValidationError(place, str(exc)) from None


def label_matches(patterns: tuple[re.Pattern[str], ...], labels: Mapping[str, str]) -> bool:
    """``--matching-labels``: some ``key=value`` of the object fully matches some pattern."""
    return any(p.fullmatch(f"{k}={v}") for p in patterns for k, v in labels.items())


def namespace_filtered(namespace: str, settings: Settings) -> bool:
    return any(p.fullmatch(namespace) for p in settings.exclude_namespaces)


def within_grace_period(obj: Obj, grace: float, now: datetime, deployment_time_annotation: str | None) -> bool:
    """Created (or deployed, per the annotation) at most ``grace`` seconds ago."""
    created = meta(obj).get("creationTimestamp")
    times = []
    if created:
        times.append(parse_timestamp(str(created), key=f"{where(obj)}: metadata.creationTimestamp"))
    if deployment_time_annotation:
        deployed = annotations_of(obj).get(deployment_time_annotation)
        if deployed:
            # kube-downscaler ignores an unreadable deployment time and falls back to creation.
            with contextlib.suppress(ValidationError):
                times.append(parse_timestamp(str(deployed), key=""))
    if not times:
        return False  # unknown age (the API always sets creationTimestamp): not protected
    return (now - max(times)).total_seconds() <= grace


def decide(
    obj: Obj, kind: Kind, namespace: NamespaceView, settings: Settings, now: datetime, matches: Matcher
) -> Decision:
    """The action for ``obj`` at ``now``; an invalid annotation gives an ``error`` decision, never an exception."""
    try:
        return _decide(obj, kind, namespace, settings, now, matches)
    except ValidationError as exc:
        return Decision("error", str(exc), event=getattr(exc, "event", "InvalidAnnotation"))


def _replicas_annotation(source_where: str, annos: Mapping[str, str], key: str) -> int | None:
    value = annos.get(key)
    return None if value is None else parse_replicas(str(value), key=f"{source_where}: annotation {key}")


def _namespace_forced(
    ns_where: str, key: str, ns_annos: Mapping[str, str], default: bool, now: datetime, matches: Matcher
) -> bool:
    """A namespace's ``force-uptime``/``force-downtime``: ``true``, ``false``, empty, or a schedule.

    py-kube-downscaler reads these on the namespace only (``autoscale_resources``), with the cluster-wide
    value (a forcing pod, for ``force-uptime``) as the default an explicit annotation overrides.
    """
    value = ns_annos.get(key)
    if value is None:
        return default
    text = str(value).strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if not text:
        return False
    return _match(f"{ns_where}: {key}", text, now, matches)


def owned_by_stack(obj: Obj) -> bool:
    """A Deployment a Zalando Stack manages: py-kube-downscaler leaves it alone and scales the Stack."""
    refs = meta(obj).get("ownerReferences")
    return isinstance(refs, list) and any(
        isinstance(r, Mapping) and r.get("apiVersion") == "zalando.org/v1" and r.get("kind") == "Stack" for r in refs
    )


def grace_for(annos: Mapping[str, str], global_grace: float) -> float:
    """The object's ``downscaler/grace-period`` if it is an integer in (0, global]; else the global one.

    py-kube-downscaler's rule (``within_grace_period``): the annotation can only shorten the grace period,
    only whole seconds count, and anything else is ignored (not an error).
    """
    value = annos.get(ann.GRACE_PERIOD)
    if value is None:
        return global_grace
    try:
        seconds = int(str(value))
    except ValueError:
        return global_grace
    return float(seconds) if 0 < seconds <= global_grace else global_grace


def _decide(obj: Obj, kind: Kind, ns: NamespaceView, settings: Settings, now: datetime, matches: Matcher) -> Decision:
    name = str(meta(obj).get("name", ""))
    if name in settings.exclude_names:
        return Decision("skip", "excluded by --exclude-deployments")
    if kind.hands_off is not None and (why_not := kind.hands_off(obj)):
        return Decision("skip", why_not)
    if kind.plural == "jobs" and meta(obj).get("ownerReferences"):
        return Decision("skip", "a Job with an owner (its CronJob is downscaled instead)")  # as upstream
    if ns.excluded_by_flag:  # py-kube-downscaler skips these namespaces whole, even what is down there
        return Decision("skip", "namespace excluded by --exclude-namespaces")

    annos = annotations_of(obj)
    ns_annos = ns.annotations
    ns_where = f"Namespace {ns.name}"
    raw_original = annos.get(ann.ORIGINAL_REPLICAS)
    original = (
        None
        if raw_original is None
        else kind.decode_original(str(raw_original), key=f"{where(obj)}: annotation {ann.ORIGINAL_REPLICAS}")
    )
    # As py-kube-downscaler: labels that do not match, a Stack owner and the exclude annotations all
    # "exclude"; an excluded object that one of the downscalers had scaled down is scaled back up, unless
    # --upscale-target-only keeps every excluded object as it is.
    excluded = (
        (bool(settings.matching_labels) and not label_matches(settings.matching_labels, labels_of(obj)))
        or (kind.plural == "deployments" and owned_by_stack(obj))
        or is_excluded(ns_where, ns_annos, now)
        or ((ann.EXCLUDE in annos or ann.EXCLUDE_UNTIL in annos) and is_excluded(where(obj), annos, now))
    )
    if excluded and (not original or settings.upscale_target_only):
        return Decision("skip", "excluded")

    downtime_replicas = settings.downtime_replicas
    for source_where, source in ((ns_where, ns_annos), (obj, annos)):  # the object's own value wins
        for key in (ann.DOWNSCALE_REPLICAS, ann.DOWNTIME_REPLICAS):
            if key in source:
                place = source_where if isinstance(source_where, str) else where(obj)
                value = _replicas_annotation(place, source, key)
                if value is not None:
                    downtime_replicas = value
    if isinstance(downtime_replicas, Percent) and kind.plural != "poddisruptionbudgets":
        return Decision(
            "skip", f"downtime replicas {downtime_replicas} (a percentage) apply to PodDisruptionBudgets only"
        )
    if isinstance(original, Percent) and kind.plural != "poddisruptionbudgets":
        return Decision(
            "error",
            f"{where(obj)}: annotation {ann.ORIGINAL_REPLICAS}: {original} is a percentage;"
            " only PodDisruptionBudgets keep one",
        )
    target = downtime_replicas if isinstance(downtime_replicas, Percent) else kind.downtime_target(downtime_replicas)

    ignore = False
    pod_forced = bool(ns.forced_by_pod) or settings.forced_uptime
    if excluded or _namespace_forced(ns_where, ann.FORCE_UPTIME, ns_annos, pod_forced, now, matches):
        if excluded:
            is_uptime, why = True, "excluded, restoring"
        elif ann.FORCE_UPTIME not in ns_annos and ns.forced_by_pod:
            is_uptime, why = True, f"forced uptime by pod {ns.forced_by_pod}"
        else:
            is_uptime, why = True, "forced uptime"
    elif _namespace_forced(ns_where, ann.FORCE_DOWNTIME, ns_annos, False, now, matches):
        is_uptime, why = False, "forced downtime"
    else:
        up_period = annos.get(ann.UPSCALE_PERIOD, ns_annos.get(ann.UPSCALE_PERIOD, settings.upscale_period))
        down_period = annos.get(ann.DOWNSCALE_PERIOD, ns_annos.get(ann.DOWNSCALE_PERIOD, settings.downscale_period))
        if up_period != "never" or down_period != "never":
            in_up = _match(obj, up_period, now, matches, "upscale-period")
            in_down = _match(obj, down_period, now, matches, "downscale-period")
            ignore = in_up == in_down  # overlap, or outside both periods: leave it as it is
            is_uptime = in_up
            why = f"upscale period {up_period!r}" if in_up else f"downscale period {down_period!r}"
        else:
            uptime = annos.get(ann.UPTIME, ns_annos.get(ann.UPTIME, settings.default_uptime))
            downtime = annos.get(ann.DOWNTIME, ns_annos.get(ann.DOWNTIME, settings.default_downtime))
            in_uptime = _match(obj, uptime, now, matches, "uptime")
            in_downtime = _match(obj, downtime, now, matches, "downtime")
            is_uptime = in_uptime and not in_downtime
            why = (
                f"uptime {uptime!r}"
                if is_uptime
                else f"downtime {downtime!r}"
                if in_downtime
                else f"outside uptime {uptime!r}"
            )

    level = kind.level(obj)
    if ignore:
        return Decision("none", "outside both periods or in both", level=level)
    if is_uptime:
        if original and level == target:
            then = kind.after_up(obj) if kind.after_up is not None else None
            patch = kind.up(obj, original)
            return Decision("up", why, patch, level=level, target=original, original=original, then=then)
        if original and level == original:
            # Already back at its original level (restored by someone else) but still marked: upstream
            # removes the stale mark, so a later downtime records the right level.
            patch = {"metadata": {"annotations": {ann.ORIGINAL_REPLICAS: None}}}
            return Decision(
                "clear",
                f"already at {original}, removing stale {ann.ORIGINAL_REPLICAS}",
                patch,
                level=level,
                target=level,
                original=original,
            )
        return Decision("none", why, level=level, original=original)
    if level > 0 and level > target:
        grace = grace_for(annos, settings.grace_period)
        if within_grace_period(obj, grace, now, settings.deployment_time_annotation):
            return Decision("none", f"within grace period ({grace:g}s)", level=level)
        return Decision("down", why, kind.down(obj, target, level), level=level, target=target, original=level)
    return Decision("none", why, level=level, original=original)
