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

#: The level of a ScaledObject that KEDA scales (no ``paused-replicas``): above any downtime target, as
#: py-kube-downscaler's ``KUBERNETES_MAX_ALLOWED_REPLICAS + 1`` (scaler.py). Stored as ``original-replicas:
#: "-1"``, upstream's placeholder, so either tool can restore what the other paused.
KEDA_ACTIVE = 2**31
KEDA_ACTIVE_STATE = "-1"


class Percent(int):
    """A replica count given as a percentage (``"20%"``): PodDisruptionBudgets only, as in py-kube-downscaler.

    An ``int`` so levels compare as upstream compares them (``20%`` equals ``20``: it strips the sign);
    ``str()`` gives the ``"20%"`` that goes into ``spec`` and ``original-replicas``.
    """

    def __str__(self) -> str:
        return f"{int(self)}%"

    __repr__ = __str__


def _digits(s: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts "²" and other scripts' digits, which ``int()`` refuses or
    reads as numbers no Kubernetes user wrote."""
    return s.isascii() and s.isdigit()


def parse_replicas(text: str, *, key: str, negative_ok: bool = False) -> int:
    """``"3"`` or ``"20%"`` (0–100) → an int or :class:`Percent` (py-kube-downscaler's ``parse_int_or_percent``)."""
    s = str(text).strip()
    if len(s) > 12:  # replicas are int32: a longer string is no count (and int() refuses 4,300+ digits)
        raise ValidationError(key, f"{s[:20]!r}... is not a replica count (too long)")
    if s.endswith("%"):
        digits = s[:-1].strip()
        if not _digits(digits) or int(digits) > 100:
            raise ValidationError(key, f"{text!r} is not a percentage from 0% to 100%")
        return Percent(int(digits))
    if _digits(s) or (negative_ok and s.startswith("-") and _digits(s[1:])):
        return int(s)
    if s.startswith("-") and _digits(s[1:]):
        raise ValidationError(key, f"{text!r} is negative")
    raise ValidationError(key, f"{text!r} is not an integer (or a percentage such as '20%')")


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


def merge_patch(target: Any, patch: Any) -> Any:
    """``patch`` applied to ``target`` as a JSON merge patch (RFC 7386): ``None`` deletes; a copy, not in place."""
    if type(patch) is not dict and not isinstance(patch, Mapping):  # type() first: the ABC check is slow
        return patch
    out = dict(target) if type(target) is dict or isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def where(obj: Obj) -> str:
    m = meta(obj)
    ns = m.get("namespace")
    return f"{obj.get('kind', '?')} {ns}/{m.get('name')}" if ns else f"{obj.get('kind', '?')} {m.get('name')}"


def _spec(obj: Obj) -> Mapping[str, Any]:
    s = obj.get("spec")
    return s if type(s) is dict or isinstance(s, Mapping) else _EMPTY


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
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):  # "75%": kept as "75%" in original-replicas, as py-kube-downscaler does
        return parse_replicas(value, key=f"{where(obj)}: spec.{field}")
    raise ValidationError(where(obj), f"spec.{field} is {value!r}, expected an integer or a percentage")


def _int_or_str(value: int) -> int | str:
    """A PDB field's value: ``20`` or ``"20%"``."""
    return str(value) if isinstance(value, Percent) else int(value)


def _pdb_down(obj: Obj, target: int, original: int) -> Patch:
    field = _pdb_field(obj) or "minAvailable"
    return _with_state({"spec": {field: _int_or_str(target)}}, original)


def _pdb_up(obj: Obj, original: int) -> Patch:
    field = _pdb_field(obj) or "minAvailable"
    return _with_state({"spec": {field: _int_or_str(original)}}, None)


def _keda_level(obj: Obj) -> int:
    paused = annotations_of(obj).get(ann.KEDA_PAUSED_REPLICAS)
    if paused is None:
        return KEDA_ACTIVE  # KEDA scales it: "on", above any downtime target
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
    patch = _with_state({}, None if original == KEDA_ACTIVE else original, extra)
    if original == KEDA_ACTIVE:
        patch["metadata"]["annotations"][ann.ORIGINAL_REPLICAS] = KEDA_ACTIVE_STATE
    return patch


def _keda_up(obj: Obj, original: int) -> Patch:
    annos = annotations_of(obj)
    kept = annos.get(ann.ORIGINAL_PAUSE_REPLICAS)
    extra: dict[str, str | None] = {ann.KEDA_PAUSED_REPLICAS: kept, ann.ORIGINAL_PAUSE_REPLICAS: None}
    return _with_state({}, None, extra)


def _stack_max_replicas(obj: Obj) -> int | None:
    """The Stack's autoscaler ``maxReplicas`` (stackset-controller's ``autoscaler`` or ``horizontalPodAutoscaler``)."""
    spec = _spec(obj)
    for key in ("autoscaler", "horizontalPodAutoscaler"):
        section = spec.get(key)
        if isinstance(section, Mapping):
            value = section.get("maxReplicas", 0)
            return value if isinstance(value, int) else 0
    return None


def _stack_level(obj: Obj) -> int:
    # py-kube-downscaler's Stack.replicas: spec.replicas, else the autoscaler's maxReplicas.
    value = _spec(obj).get("replicas")
    if value is None:
        value = _stack_max_replicas(obj)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(where(obj), "Stack has neither an integer spec.replicas nor an autoscaler")
    return value


def _stack_set(obj: Obj, value: int) -> Patch:
    """Setting a Stack's replicas to its autoscaler's maximum hands it back to the autoscaler (upstream's rule)."""
    if value == _stack_max_replicas(obj):
        return {"spec": {"replicas": None}} if "replicas" in _spec(obj) else {}
    return {"spec": {"replicas": value}}


def _stack_down(obj: Obj, target: int, original: int) -> Patch:
    return _with_state(_stack_set(obj, target), original)


def _stack_up(obj: Obj, original: int) -> Patch:
    return _with_state(_stack_set(obj, original), None)


def _runners_level(obj: Obj) -> int:
    value = _spec(obj).get("minRunners", 0)  # ARC's default warm pool is 0
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(where(obj), f"spec.minRunners is {value!r}, expected an integer")
    return value


def _runners_down(obj: Obj, target: int, original: int) -> Patch:
    return _with_state({"spec": {"minRunners": target}}, original)


def _runners_up(obj: Obj, original: int) -> Patch:
    return _with_state({"spec": {"minRunners": original}}, None)


# KubeVirt (kubevirt/kubevirt staging/src/kubevirt.io/api/core/v1/types.go, VirtualMachineRunStrategy; the VM
# admitter pkg/virt-api/webhooks/validating-webhook/admitters/vms-admitter.go validRunStrategies; the controller
# pkg/virt-controller/watch/vm/vm.go syncRunStrategy). Only the strategies whose meaning is known are acted on:
#: KubeVirt keeps a VMI running whatever its state (a stopped or finished VMI is started again).
VM_ALWAYS_ON = frozenset({"Always"})
#: Strategies under which the VM may be stopped while the strategy stays: Manual (started and stopped only through
#: the start/stop subresources), RerunOnFailure (not restarted after success), Once (never restarted). Whether
#: they run is read from ``status``; halting one that is stopped would release nothing, and restoring
#: RerunOnFailure or Once would start (re-run) a VM that had finished.
VM_MAY_BE_STOPPED = frozenset({"Manual", "RerunOnFailure", "Once"})
VM_RESTORABLE = VM_ALWAYS_ON | VM_MAY_BE_STOPPED
#: The state value for the deprecated boolean ``spec.running: true``.
VM_RUNNING = "running"
#: ``PUT .../virtualmachines/NAME/start`` here asks virt-api to start a Manual VM (a start request in its status).
VM_SUBRESOURCES = "/apis/subresources.kubevirt.io/v1"


class UnsupportedObject(ValidationError):
    """An object zerowatt cannot handle safely (reported with an ``UnsupportedObject`` Warning Event)."""

    event = "UnsupportedObject"


def _vm_running_now(obj: Obj) -> bool:
    """A VMI exists and has not finished (vm.go ``updateStatus``: ``created``; ``printableStatus`` is Stopped once
    the VMI is final)."""
    status = obj.get("status")
    if not isinstance(status, Mapping):
        return False
    return status.get("created") is True and status.get("printableStatus") != "Stopped"


def _vm_strategy(obj: Obj) -> str:
    """The VM's run strategy (``running`` for the deprecated boolean), or an error naming the object."""
    spec = _spec(obj)
    has_running, has_strategy = "running" in spec, "runStrategy" in spec
    if has_running and has_strategy:
        raise UnsupportedObject(where(obj), "spec.running and spec.runStrategy are both set (KubeVirt rejects that)")
    if has_running:
        if not isinstance(spec["running"], bool):
            raise UnsupportedObject(where(obj), f"spec.running is {spec['running']!r}, expected true or false")
        return VM_RUNNING if spec["running"] else "Halted"
    if not has_strategy:
        raise UnsupportedObject(where(obj), "neither spec.running nor spec.runStrategy is set; left as it is")
    strategy = spec["runStrategy"]
    if not isinstance(strategy, str):
        raise UnsupportedObject(where(obj), f"spec.runStrategy is {strategy!r}, expected a string; left as it is")
    if strategy == "WaitAsReceiver":
        raise UnsupportedObject(
            where(obj), "runStrategy WaitAsReceiver (a live-migration receiver) is never halted; left as it is"
        )
    if strategy != "Halted" and strategy not in VM_RESTORABLE:
        raise UnsupportedObject(
            where(obj),
            f"runStrategy {strategy!r} is not one of Always, RerunOnFailure, Once, Manual, Halted; left as it is",
        )
    return str(strategy)


def _vm_level(obj: Obj) -> int:
    strategy = _vm_strategy(obj)
    if strategy == "Halted":
        return 0
    if strategy in VM_MAY_BE_STOPPED:
        return 1 if _vm_running_now(obj) else 0
    return 1  # Always, running: true


def _vm_down(obj: Obj, target: int, original: int) -> Patch:
    strategy = _vm_strategy(obj)
    kept = annotations_of(obj).get(ann.ORIGINAL_RUN_STRATEGY)
    if (
        strategy == "Always"
        and isinstance(kept, str)
        and kept in VM_MAY_BE_STOPPED
        and ann.ORIGINAL_REPLICAS in annotations_of(obj)
    ):
        # Started by hand while halted: virt-api's start turns Halted into Always (lifecycle.go). Halting it
        # again keeps the owner's own strategy, or the VM would come back as Always for good.
        strategy = kept
    if strategy == VM_RUNNING:
        return _with_state({"spec": {"running": False}}, original, {ann.ORIGINAL_RUN_STRATEGY: VM_RUNNING})
    return _with_state({"spec": {"runStrategy": "Halted"}}, original, {ann.ORIGINAL_RUN_STRATEGY: strategy})


def _vm_kept(obj: Obj) -> str:
    """The stored run strategy, validated before it is written back (a forged or foreign value is an error)."""
    kept = annotations_of(obj).get(ann.ORIGINAL_RUN_STRATEGY)
    if kept is None:
        if "running" in _spec(obj) and "runStrategy" not in _spec(obj):
            return VM_RUNNING  # a boolean has one "on" value: nothing to guess
        raise UnsupportedObject(
            where(obj), f"annotation {ann.ORIGINAL_RUN_STRATEGY} is missing; cannot tell which run strategy to restore"
        )
    if not isinstance(kept, str) or (kept != VM_RUNNING and kept not in VM_RESTORABLE):
        raise UnsupportedObject(
            where(obj),
            f"annotation {ann.ORIGINAL_RUN_STRATEGY}={kept!r} is not one of "
            f"{', '.join(sorted(VM_RESTORABLE))}, {VM_RUNNING}; not restored",
        )
    return kept


def _vm_up(obj: Obj, original: int) -> Patch:
    kept = _vm_kept(obj)
    spec: dict[str, Any]
    if kept == VM_RUNNING:
        # The owner may have moved from the deprecated field to runStrategy meanwhile: Always is what
        # running: true means (VirtualMachine.RunStrategy()), and the two fields are mutually exclusive.
        spec = {"runStrategy": "Always"} if "runStrategy" in _spec(obj) else {"running": True}
    else:
        spec = {"runStrategy": kept, "running": None} if "running" in _spec(obj) else {"runStrategy": kept}
    return _with_state({"spec": spec}, None, {ann.ORIGINAL_RUN_STRATEGY: None})


def _vm_after_up(obj: Obj) -> str | None:
    """After restoring ``Manual``, the ``start`` subresource: KubeVirt starts a Manual VM only on request (vm.go),
    and ``start`` on a Halted VM would switch it to Always (pkg/virt-api/rest/lifecycle.go), hence patch first."""
    return "start" if annotations_of(obj).get(ann.ORIGINAL_RUN_STRATEGY) == "Manual" else None


# SpinKube (spinkube/spin-operator api/v1alpha1/spinapp_types.go): with enableAutoscaling the operator leaves the
# Deployment's replicas to an HPA or KEDA (constructDeployment sets none) and its webhook rejects spec.replicas
# (internal/webhook/spinapp_validating.go validateReplicas), so the SpinApp has no replica count to lower.
def _spinapp_hands_off(obj: Obj) -> str | None:
    if _spec(obj).get("enableAutoscaling") is True:
        return (
            "enableAutoscaling: its Deployment's replicas belong to an HPA or KEDA ScaledObject; "
            "include deployments and horizontalpodautoscalers or scaledobjects to downscale it"
        )
    return None


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
    #: Why an object of this kind must be left alone (e.g. a SpinApp whose replicas an autoscaler owns), or None.
    hands_off: Callable[[Obj], str | None] | None = None
    #: A subresource to ``PUT`` once the upscale patch has landed (KubeVirt's ``start``), or None.
    after_up: Callable[[Obj], str | None] | None = None
    #: Where that subresource is served when it is not under the kind's own group (``subresources.kubevirt.io``).
    subresource_api: str | None = None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def collection_path(self, namespace: str | None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        return f"{base}/namespaces/{namespace}/{self.plural}" if namespace else f"{base}/{self.plural}"

    def object_path(self, namespace: str, name: str) -> str:
        return f"{self.collection_path(namespace)}/{name}"

    def subresource_path(self, namespace: str, name: str, subresource: str) -> str:
        """``namespace`` and ``name`` as for :meth:`object_path` (already escaped for a path)."""
        base = self.subresource_api or self.collection_path(None).rsplit("/", 1)[0]
        return f"{base}/namespaces/{namespace}/{self.plural}/{name}/{subresource}"

    def downtime_target(self, downtime_replicas: int) -> int:
        """The level this kind is set to in downtime for a configured ``downtime-replicas``."""
        if self.on_off:
            return 0
        return downtime_replicas if downtime_replicas >= self.floor else self.floor

    def decode_original(self, text: str, *, key: str) -> int:
        """``original-replicas`` as written by any downscaler: an integer, a PDB percentage, or KEDA's ``-1``."""
        if self.plural == "scaledobjects" and str(text).strip() == KEDA_ACTIVE_STATE:
            return KEDA_ACTIVE
        return parse_replicas(text, key=key)


KINDS: dict[str, Kind] = {
    k.plural: k
    for k in (
        Kind("deployments", "Deployment", "apps", "v1", _replicas_level, _replicas_down, _replicas_up),
        Kind("statefulsets", "StatefulSet", "apps", "v1", _replicas_level, _replicas_down, _replicas_up),
        Kind("stacks", "Stack", "zalando.org", "v1", _stack_level, _stack_down, _stack_up),
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
        Kind(
            "virtualmachines",
            "VirtualMachine",
            "kubevirt.io",
            "v1",
            _vm_level,
            _vm_down,
            _vm_up,
            on_off=True,
            after_up=_vm_after_up,
            subresource_api=VM_SUBRESOURCES,
        ),
        Kind(
            "spinapps",
            "SpinApp",
            "core.spinkube.dev",
            "v1alpha1",
            _replicas_level,
            _replicas_down,
            _replicas_up,
            hands_off=_spinapp_hands_off,
        ),
        Kind(
            "autoscalingrunnersets",
            "AutoscalingRunnerSet",
            "actions.github.com",
            "v1alpha1",
            _runners_level,
            _runners_down,
            _runners_up,
        ),
    )
}

#: The order of a pass: autoscalers first, so an HPA/ScaledObject is lowered before (or in the same pass as)
#: the workload it would otherwise scale straight back up.
ORDER = (
    "horizontalpodautoscalers",
    "scaledobjects",
    "deployments",
    "statefulsets",
    "stacks",
    "rollouts",
    "wasmapps",
    "spinapps",
    "daemonsets",
    "cronjobs",
    "jobs",
    "poddisruptionbudgets",
    "virtualmachines",
    "autoscalingrunnersets",
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
