"""The resource kinds the downscaler handles and how each one is turned down and back up.

Every kind is reduced to one integer, its *level*: replicas for Deployments, ``minReplicas`` for HPAs,
``1``/``0`` for things that are on or off (a CronJob not suspended / suspended). The decision logic in
:mod:`zerowatt.kube.decide` compares levels exactly as kube-downscaler compares "replicas", and each kind
here knows how to read its level and how to write a down or up change as a JSON merge patch. Patches carry
the state annotation ``downscaler/original-replicas`` so the state lives only in the cluster: a restart (or
a switch to or from kube-downscaler) in the middle of a downtime loses nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from zerowatt.errors import SettingError, ValidationError
from zerowatt.kube import annotations as ann

Obj = Mapping[str, Any]
Patch = dict[str, Any]


_EMPTY: Mapping[str, Any] = {}


def meta(obj: Obj) -> Mapping[str, Any]:
    m = obj.get("metadata")
    # ``type(...) is dict`` first: decoded JSON is always a dict, and the ABC check costs 10x more.
    return m if type(m) is dict or isinstance(m, Mapping) else _EMPTY


def annotations_of(obj: Obj) -> Mapping[str, str]:
    a = meta(obj).get("annotations")
    return a if type(a) is dict or isinstance(a, Mapping) else _EMPTY


def labels_of(obj: Obj) -> Mapping[str, str]:
    lab = meta(obj).get("labels")
    return lab if type(lab) is dict or isinstance(lab, Mapping) else _EMPTY


def where(obj: Obj) -> str:
    m = meta(obj)
    ns = m.get("namespace")
    return f"{obj.get('kind', '?')} {ns}/{m.get('name')}" if ns else f"{obj.get('kind', '?')} {m.get('name')}"


def _spec(obj: Obj) -> Mapping[str, Any]:
    s = obj.get("spec")
    return s if isinstance(s, Mapping) else {}


def _with_state(patch: Patch, original: int | None, extra: Mapping[str, str | None] | None = None) -> Patch:
    """Add the ``original-replicas`` annotation (``None`` removes it, as a merge patch does) to ``patch``."""
    annos: dict[str, str | None] = {ann.ORIGINAL_REPLICAS: None if original is None else str(original)}
    if extra:
        annos.update(extra)
    patch.setdefault("metadata", {}).setdefault("annotations", {}).update(annos)
    return patch


# --- level readers and patch writers, one set per family of kinds ------------------------------------------


def _replicas_level(obj: Obj) -> int:
    value = _spec(obj).get("replicas", 1)  # the API server defaults an absent spec.replicas to 1
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(where(obj), f"spec.replicas is {value!r}, expected an integer")
    return value


def _replicas_down(obj: Obj, target: int, original: int) -> Patch:
    return _with_state({"spec": {"replicas": target}}, original)


def _replicas_up(obj: Obj, original: int) -> Patch:
    return _with_state({"spec": {"replicas": original}}, None)


def _hpa_level(obj: Obj) -> int:
    value = _spec(obj).get("minReplicas", 1)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(where(obj), f"spec.minReplicas is {value!r}, expected an integer")
    return value


def _hpa_down(obj: Obj, target: int, original: int) -> Patch:
    # minReplicas may not be 0 (unless the HPAScaleToZero feature gate is on), so never go below 1.
    return _with_state({"spec": {"minReplicas": max(1, target)}}, original)


def _hpa_up(obj: Obj, original: int) -> Patch:
    max_replicas = _spec(obj).get("maxReplicas")
    restored = min(original, max_replicas) if isinstance(max_replicas, int) and max_replicas >= 1 else original
    return _with_state({"spec": {"minReplicas": max(1, restored)}}, None)


def _suspend_level(obj: Obj) -> int:
    return 0 if _spec(obj).get("suspend") is True else 1


def _suspend_down(obj: Obj, target: int, original: int) -> Patch:
    return _with_state({"spec": {"suspend": True}}, original)


def _suspend_up(obj: Obj, original: int) -> Patch:
    return _with_state({"spec": {"suspend": False}}, None)


def _node_selector(obj: Obj) -> Mapping[str, Any]:
    template = _spec(obj).get("template") or {}
    pod_spec = template.get("spec") or {} if isinstance(template, Mapping) else {}
    sel = pod_spec.get("nodeSelector") if isinstance(pod_spec, Mapping) else None
    return sel if isinstance(sel, Mapping) else {}


def _daemonset_level(obj: Obj) -> int:
    # Judged by zerowatt's own marker rather than status.desiredNumberScheduled: a DaemonSet whose nodes
    # are all tainted away is not "down" in the downscaler's sense and must not be "restored".
    return 0 if ann.DAEMONSET_NODE_SELECTOR_KEY in _node_selector(obj) else 1


def _daemonset_down(obj: Obj, target: int, original: int) -> Patch:
    patch = {"spec": {"template": {"spec": {"nodeSelector": {ann.DAEMONSET_NODE_SELECTOR_KEY: "true"}}}}}
    return _with_state(patch, original)


def _daemonset_up(obj: Obj, original: int) -> Patch:
    patch = {"spec": {"template": {"spec": {"nodeSelector": {ann.DAEMONSET_NODE_SELECTOR_KEY: None}}}}}
    return _with_state(patch, None)


def _pdb_field(obj: Obj) -> str | None:
    spec = _spec(obj)
    if "minAvailable" in spec:
        return "minAvailable"
    if "maxUnavailable" in spec:
        return "maxUnavailable"
    return None


def _pdb_level(obj: Obj) -> int:
    field = _pdb_field(obj)
    if field is None:
        return 0
    value = _spec(obj)[field]
    if not isinstance(value, int) or isinstance(value, bool):
        # A percentage cannot be kept in original-replicas, which every downscaler reads as an integer.
        raise ValidationError(
            where(obj), f"spec.{field} is {value!r}; only integer PodDisruptionBudgets can be downscaled"
        )
    return value


def _pdb_down(obj: Obj, target: int, original: int) -> Patch:
    field = _pdb_field(obj) or "minAvailable"
    return _with_state({"spec": {field: target}}, original)


def _pdb_up(obj: Obj, original: int) -> Patch:
    field = _pdb_field(obj) or "minAvailable"
    return _with_state({"spec": {field: original}}, None)


def _keda_level(obj: Obj) -> int:
    paused = annotations_of(obj).get(ann.KEDA_PAUSED_REPLICAS)
    if paused is None:
        return 1  # KEDA scales it: "on"
    try:
        return int(paused)
    except ValueError:
        raise ValidationError(
            where(obj), f"annotation {ann.KEDA_PAUSED_REPLICAS}={paused!r} is not an integer"
        ) from None


def _keda_down(obj: Obj, target: int, original: int) -> Patch:
    annos = annotations_of(obj)
    extra: dict[str, str | None] = {ann.KEDA_PAUSED_REPLICAS: str(target)}
    if ann.KEDA_PAUSED_REPLICAS in annos:  # the user had paused it at some level: keep theirs for the upscale
        extra[ann.ORIGINAL_PAUSE_REPLICAS] = annos[ann.KEDA_PAUSED_REPLICAS]
    return _with_state({}, original, extra)


def _keda_up(obj: Obj, original: int) -> Patch:
    annos = annotations_of(obj)
    kept = annos.get(ann.ORIGINAL_PAUSE_REPLICAS)
    extra: dict[str, str | None] = {ann.KEDA_PAUSED_REPLICAS: kept, ann.ORIGINAL_PAUSE_REPLICAS: None}
    return _with_state({}, None, extra)


def _vm_level(obj: Obj) -> int:
    spec = _spec(obj)
    strategy = spec.get("runStrategy")
    if strategy is not None:
        return 0 if strategy == "Halted" else 1
    return 1 if spec.get("running") is True else 0


def _vm_down(obj: Obj, target: int, original: int) -> Patch:
    spec = _spec(obj)
    if "runStrategy" in spec:
        return _with_state(
            {"spec": {"runStrategy": "Halted"}}, original, {ann.ORIGINAL_RUN_STRATEGY: str(spec["runStrategy"])}
        )
    return _with_state({"spec": {"running": False}}, original, {ann.ORIGINAL_RUN_STRATEGY: "running"})


def _vm_up(obj: Obj, original: int) -> Patch:
    kept = annotations_of(obj).get(ann.ORIGINAL_RUN_STRATEGY)
    if kept == "running" or (kept is None and "runStrategy" not in _spec(obj)):
        return _with_state({"spec": {"running": True}}, None, {ann.ORIGINAL_RUN_STRATEGY: None})
    return _with_state({"spec": {"runStrategy": kept or "Always"}}, None, {ann.ORIGINAL_RUN_STRATEGY: None})


@dataclass(frozen=True)
class Kind:
    """One resource kind: where it lives in the API and how its level is read and changed."""

    plural: str  # the name used by --include-resources (kube-downscaler's)
    kind: str
    group: str  # "" for the core group
    version: str
    level: Callable[[Obj], int]
    down: Callable[[Obj, int, int], Patch]
    up: Callable[[Obj, int], Patch]
    #: On/off kinds go to 0 whatever --downtime-replicas says; HPAs never below 1.
    on_off: bool = False
    floor: int = 0

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def collection_path(self, namespace: str | None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        return f"{base}/namespaces/{namespace}/{self.plural}" if namespace else f"{base}/{self.plural}"

    def object_path(self, namespace: str, name: str) -> str:
        return f"{self.collection_path(namespace)}/{name}"

    def downtime_target(self, downtime_replicas: int) -> int:
        """The level this kind is set to in downtime for a configured ``downtime-replicas``."""
        return 0 if self.on_off else max(self.floor, downtime_replicas)


KINDS: dict[str, Kind] = {
    k.plural: k
    for k in (
        Kind("deployments", "Deployment", "apps", "v1", _replicas_level, _replicas_down, _replicas_up),
        Kind("statefulsets", "StatefulSet", "apps", "v1", _replicas_level, _replicas_down, _replicas_up),
        Kind("rollouts", "Rollout", "argoproj.io", "v1alpha1", _replicas_level, _replicas_down, _replicas_up),
        Kind("wasmapps", "WasmApp", "zerowatt.dev", "v1alpha1", _replicas_level, _replicas_down, _replicas_up),
        Kind(
            "horizontalpodautoscalers",
            "HorizontalPodAutoscaler",
            "autoscaling",
            "v2",
            _hpa_level,
            _hpa_down,
            _hpa_up,
            floor=1,
        ),
        Kind("cronjobs", "CronJob", "batch", "v1", _suspend_level, _suspend_down, _suspend_up, on_off=True),
        Kind("jobs", "Job", "batch", "v1", _suspend_level, _suspend_down, _suspend_up, on_off=True),
        Kind("daemonsets", "DaemonSet", "apps", "v1", _daemonset_level, _daemonset_down, _daemonset_up, on_off=True),
        Kind("poddisruptionbudgets", "PodDisruptionBudget", "policy", "v1", _pdb_level, _pdb_down, _pdb_up),
        Kind("scaledobjects", "ScaledObject", "keda.sh", "v1alpha1", _keda_level, _keda_down, _keda_up),
        Kind("virtualmachines", "VirtualMachine", "kubevirt.io", "v1", _vm_level, _vm_down, _vm_up, on_off=True),
    )
}

#: The order of a pass: autoscalers first, so an HPA/ScaledObject is lowered before (or in the same pass as)
#: the workload it would otherwise scale straight back up.
ORDER = (
    "horizontalpodautoscalers",
    "scaledobjects",
    "deployments",
    "statefulsets",
    "rollouts",
    "wasmapps",
    "daemonsets",
    "cronjobs",
    "jobs",
    "poddisruptionbudgets",
    "virtualmachines",
)


def parse_include_resources(value: str) -> tuple[Kind, ...]:
    """``deployments,statefulsets`` → the kinds, in pass order; unknown names are a usage error."""
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in KINDS]
    if unknown or not names:
        raise SettingError(
            "include_resources",
            f"unknown resource {', '.join(unknown) or '(none)'}; expected a comma-separated list of {', '.join(ORDER)}",
        )
    return tuple(KINDS[n] for n in ORDER if n in names)
