"""The downscaler's decision for one object: pure, with kube-downscaler's exact precedence.

Given an object, its namespace's annotations, the settings and ``now``, :func:`decide` answers nothing /
down / up / error. Values come from the workload's annotations first, then its namespace's annotations,
then the flags (whose defaults are the environment variables). The rules follow hjacobs/kube-downscaler's
``scaler.autoscale_resource`` (and py-kube-downscaler's additions: ``force-downtime``, ``grace-period``
annotations, more kinds) so that the same cluster state leads to the same action:

* excluded (``downscaler/exclude`` not ``false``, or ``exclude-until`` in the future, on the object or its
  namespace) and never downscaled → nothing; excluded but carrying ``original-replicas`` → scaled back up;
* ``force-uptime`` (true / a schedule) → up; a running pod of the namespace annotated ``force-uptime:
  true`` → up; else ``force-downtime`` → down;
* ``upscale-period``/``downscale-period`` set (not ``never``): up inside the first, down inside the second,
  nothing outside both or where they overlap;
* else uptime = ``uptime`` matches and ``downtime`` does not;
* up only when the level equals the downtime target and ``original-replicas`` > 0 (a workload changed by
  hand during downtime is left alone); down only when the level is above the target and the object is out
  of its grace period (since creation, or the ``--deployment-time-annotation`` time).

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
from zerowatt.kube.kinds import Kind, Obj, Patch, annotations_of, labels_of, meta, where
from zerowatt.kube.settings import Settings
from zerowatt.parsing import GO_UNITS, parse_duration, parse_timestamp

#: ``(spec, now) -> bool``; raises :class:`ValidationError` for a spec it cannot read.
Matcher = Callable[[str, datetime], bool]

Action = Literal["none", "down", "up", "error", "skip"]


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
    #: A running pod in the namespace annotated ``downscaler/force-uptime: "true"`` (its name): the whole
    #: namespace is in uptime, as in kube-downscaler.
    forced_by_pod: str | None = None


def grace_seconds(value: str, *, key: str) -> float:
    """A grace period: seconds (``900``) or a Go-style duration (``15m``, ``1h30m``; no days), as the forks take."""
    return parse_duration(value, key=key, units=GO_UNITS, allow_zero=True)


def _int_annotation(obj_where: str, annos: Mapping[str, str], key: str) -> int | None:
    value = annos.get(key)
    if value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{obj_where}: annotation {key}", f"{value!r} is not an integer") from None
    if number < 0:
        raise ValidationError(f"{obj_where}: annotation {key}", f"{value!r} is negative")
    return number


def is_excluded(obj_where: str, annos: Mapping[str, str], now: datetime) -> bool:
    """``exclude`` (any value but ``false`` excludes, to be on the safe side) or ``exclude-until`` ahead."""
    if annos.get(ann.EXCLUDE, "false").lower() != "false":
        return True
    until = annos.get(ann.EXCLUDE_UNTIL)
    return bool(until) and now < parse_timestamp(str(until), key=f"{obj_where}: annotation {ann.EXCLUDE_UNTIL}")


def _forced(
    obj_where: str,
    key: str,
    annos: Mapping[str, str],
    ns_annos: Mapping[str, str],
    default: bool,
    now: datetime,
    matches: Matcher,
) -> bool:
    """``true``/``false``, or a schedule meaning "forced while it matches"; object first, then namespace."""
    value = annos.get(key, ns_annos.get(key))
    if value is None:
        return default
    text = str(value).strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if not text:
        return default
    return _match(f"{obj_where}: {key}", text, now, matches)


def _match(where_: str, spec: str, now: datetime, matches: Matcher) -> bool:
    try:
        return matches(spec, now)
    except ValidationError as exc:
        raise ValidationError(where_, str(exc)) from None


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


def _decide(obj: Obj, kind: Kind, ns: NamespaceView, settings: Settings, now: datetime, matches: Matcher) -> Decision:
    name = str(meta(obj).get("name", ""))
    w = where(obj)
    if name in settings.exclude_names:
        return Decision("skip", "excluded by --exclude-deployments")
    if settings.matching_labels and not label_matches(settings.matching_labels, labels_of(obj)):
        return Decision("skip", "no label matches --matching-labels")
    if kind.hands_off is not None and (why_not := kind.hands_off(obj)):
        return Decision("skip", why_not)
    if ns.excluded_by_flag and settings.upscale_target_only:
        return Decision("skip", "namespace excluded by --exclude-namespaces (--upscale-target-only)")

    annos = annotations_of(obj)
    ns_annos = ns.annotations
    ns_where = f"Namespace {ns.name}"
    original = _int_annotation(w, annos, ann.ORIGINAL_REPLICAS)
    excluded = ns.excluded_by_flag or is_excluded(ns_where, ns_annos, now) or is_excluded(w, annos, now)
    if excluded and not original:
        return Decision("skip", "excluded")

    downtime_replicas = settings.downtime_replicas
    for source_where, source in ((ns_where, ns_annos), (w, annos)):  # the object's own value wins
        for key in (ann.DOWNSCALE_REPLICAS, ann.DOWNTIME_REPLICAS):
            value = _int_annotation(source_where, source, key)
            if value is not None:
                downtime_replicas = value
    target = kind.downtime_target(downtime_replicas)

    ignore = False
    if excluded or _forced(w, ann.FORCE_UPTIME, annos, ns_annos, settings.forced_uptime, now, matches):
        is_uptime, why = True, "forced uptime" if not excluded else "excluded, restoring"
    elif ns.forced_by_pod:
        is_uptime, why = True, f"forced uptime by pod {ns.name}/{ns.forced_by_pod}"
    elif _forced(w, ann.FORCE_DOWNTIME, annos, ns_annos, False, now, matches):
        is_uptime, why = False, "forced downtime"
    else:
        up_period = annos.get(ann.UPSCALE_PERIOD, ns_annos.get(ann.UPSCALE_PERIOD, settings.upscale_period))
        down_period = annos.get(ann.DOWNSCALE_PERIOD, ns_annos.get(ann.DOWNSCALE_PERIOD, settings.downscale_period))
        if up_period != "never" or down_period != "never":
            in_up = _match(f"{w}: upscale-period", up_period, now, matches)
            in_down = _match(f"{w}: downscale-period", down_period, now, matches)
            ignore = in_up == in_down  # overlap, or outside both periods: leave it as it is
            is_uptime = in_up
            why = f"upscale period {up_period!r}" if in_up else f"downscale period {down_period!r}"
        else:
            uptime = annos.get(ann.UPTIME, ns_annos.get(ann.UPTIME, settings.default_uptime))
            downtime = annos.get(ann.DOWNTIME, ns_annos.get(ann.DOWNTIME, settings.default_downtime))
            in_uptime = _match(f"{w}: uptime", uptime, now, matches)
            in_downtime = _match(f"{w}: downtime", downtime, now, matches)
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
        return Decision("none", why, level=level, original=original)
    if level > 0 and level > target:
        grace_value = annos.get(ann.GRACE_PERIOD, ns_annos.get(ann.GRACE_PERIOD))
        grace = (
            grace_seconds(grace_value, key=f"{w}: annotation {ann.GRACE_PERIOD}")
            if grace_value is not None
            else settings.grace_period
        )
        if within_grace_period(obj, grace, now, settings.deployment_time_annotation):
            return Decision("none", f"within grace period ({grace:g}s)", level=level)
        return Decision("down", why, kind.down(obj, target, level), level=level, target=target, original=level)
    return Decision("none", why, level=level, original=original)
