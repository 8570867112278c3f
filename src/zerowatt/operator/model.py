"""The three resources as plain data: SpinApp and WasmApp read into one :class:`AppSpec`, and SpinAppExecutor.

SpinKube's resources are read field by field as its Go types define them (spinframework/spin-operator,
``api/v1alpha1/spinapp_types.go`` and ``spinappexecutor_types.go``), so a SpinKube user's manifests work
unchanged. Every field is either used or refused with a :class:`~zerowatt.operator.fields.Problem` naming it;
none is silently ignored (``docs/operator.md`` has the table). Pure: the objects come in as dicts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from zerowatt.errors import UsageError
from zerowatt.operator import names as n
from zerowatt.operator.fields import Problem, Reader

#: Spin's variable names: lowercase letters, digits and underscores, starting with a letter (spin.toml's rule).
_VARIABLE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
#: Spin's component ids (kebab-case words).
_COMPONENT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")

SPINAPP_FIELDS = frozenset(
    {
        "executor",
        "image",
        "imagePullSecrets",
        "checks",
        "replicas",
        "enableAutoscaling",
        "runtimeConfig",
        "volumes",
        "volumeMounts",
        "variables",
        "serviceAnnotations",
        "deploymentAnnotations",
        "podAnnotations",
        "podLabels",
        "resources",
        "components",
        "serviceAccountName",
        "invocationLimits",
    }
)
#: WasmApp: zerowatt's own spelling (``component`` for the image, ``autoscaling`` instead of annotations).
WASMAPP_FIELDS = (SPINAPP_FIELDS - {"executor", "image", "enableAutoscaling", "runtimeConfig", "invocationLimits"}) | {
    "component",
    "autoscaling",
}
_RUNTIME_CONFIG_FIELDS = frozenset({"loadFromSecret", "sqliteDatabases", "keyValueStores", "llmCompute"})
_RUNTIME_CONFIG_WHY = {
    "loadFromSecret": "zerowatt up reads no Spin runtime-config file",
    "sqliteDatabases": "zerowatt provides no Spin SQLite databases",
    "keyValueStores": "zerowatt provides no Spin key-value stores",
    "llmCompute": "zerowatt provides no Spin LLM inferencing",
}
_PROBE_FIELDS = frozenset(
    {"httpGet", "initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"}
)
#: SpinKube's probe defaults (the CRD's ``+kubebuilder:default`` markers).
_PROBE_DEFAULTS = {
    "initialDelaySeconds": 10,
    "timeoutSeconds": 1,
    "periodSeconds": 10,
    "successThreshold": 1,
    "failureThreshold": 3,
}
_EXECUTOR_FIELDS = frozenset({"createDeployment", "deploymentConfig"})
_DEPLOYMENT_CONFIG_FIELDS = frozenset(
    {"runtimeClassName", "spinImage", "caCertSecret", "installDefaultCACerts", "otel"}
)


@dataclass(frozen=True)
class Ref:
    """Which app an object is: kind, namespace, name (the work queue's key)."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class Autoscaling:
    """Who owns ``spec.replicas`` and how the activator scales (the Deployment's annotations)."""

    enabled: bool = False
    policy: str = n.DEFAULT_POLICY
    params: Mapping[str, float] = field(default_factory=dict)
    min_scale: int = n.DEFAULT_MIN_SCALE
    max_scale: int = n.DEFAULT_MAX_SCALE


@dataclass(frozen=True)
class Probe:
    """An HTTP probe of the app (SpinKube's ``checks.readiness``/``checks.liveness``)."""

    path: str
    headers: tuple[tuple[str, str], ...] = ()
    timings: Mapping[str, int] = field(default_factory=lambda: dict(_PROBE_DEFAULTS))


@dataclass(frozen=True)
class AppSpec:
    """What an app asks for, whichever kind spelt it. ``problems`` not empty: the app is refused."""

    ref: Ref
    api_version: str
    uid: str
    generation: int
    image: str = ""
    executor: str = ""
    replicas: int = 1
    autoscaling: Autoscaling = field(default_factory=Autoscaling)
    resources: Mapping[str, Any] = field(default_factory=dict)
    env: tuple[Mapping[str, Any], ...] = ()  # the runtime container's env entries for the variables
    volumes: tuple[Mapping[str, Any], ...] = ()
    volume_mounts: tuple[Mapping[str, Any], ...] = ()
    pull_secrets: tuple[str, ...] = ()
    readiness: Probe | None = None
    liveness: Probe | None = None
    service_annotations: Mapping[str, str] = field(default_factory=dict)
    deployment_annotations: Mapping[str, str] = field(default_factory=dict)
    pod_annotations: Mapping[str, str] = field(default_factory=dict)
    pod_labels: Mapping[str, str] = field(default_factory=dict)
    components: tuple[str, ...] = ()
    service_account: str = ""
    deleting: bool = False
    finalizers: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class ExecutorSpec:
    """A SpinAppExecutor as zerowatt uses it."""

    name: str
    create_deployment: bool = True
    ca_cert_secret: str = ""
    notes: tuple[str, ...] = ()  # fields accepted but without effect here (shown in the Ready message)
    problems: tuple[Problem, ...] = ()


def meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    value = obj.get("metadata")
    return value if isinstance(value, Mapping) else {}


def ref_of(obj: Mapping[str, Any], kind: str | None = None) -> Ref:
    m = meta(obj)
    return Ref(kind or str(obj.get("kind", "")), str(m.get("namespace") or ""), str(m.get("name") or ""))


# --- the shared fields ------------------------------------------------------------------------------------


def _variables(r: Reader, value: Any) -> tuple[Mapping[str, Any], ...]:
    """``variables`` → env entries ``SPIN_VARIABLE_<NAME>`` (what ``zerowatt up`` and Spin read)."""
    env: list[Mapping[str, Any]] = []
    seen: set[str] = set()
    for i, item in enumerate(r.sequence(value, "spec.variables")):
        path = f"spec.variables[{i}]"
        var = r.mapping(item, path)
        r.only(var, path, frozenset({"name", "value", "valueFrom"}))
        name = r.string(var.get("name"), f"{path}.name", required=True)
        if name and not _VARIABLE_NAME.match(name):
            r.bad(f"{path}.name", f"{name!r}: expected lowercase letters, digits and _ starting with a letter")
            continue
        if name in seen:
            r.bad(f"{path}.name", f"{name!r} is given twice")
        seen.add(name)
        env_name = "SPIN_VARIABLE_" + name.upper()
        if var.get("valueFrom") is not None:
            if var.get("value") not in (None, ""):
                r.bad(path, "set either value or valueFrom, not both")
            source = _value_from(r, var["valueFrom"], f"{path}.valueFrom")
            if source is not None and name:
                env.append({"name": env_name, "valueFrom": source})
        elif name:
            env.append({"name": env_name, "value": r.string(var.get("value"), f"{path}.value")})
    return tuple(env)


def _value_from(r: Reader, value: Any, path: str) -> Mapping[str, Any] | None:
    source = r.mapping(value, path)
    kinds = [k for k in ("configMapKeyRef", "secretKeyRef") if source.get(k) is not None]
    other = sorted(set(source) - {"configMapKeyRef", "secretKeyRef"})
    for key in other:
        r.bad(f"{path}.{key}", "not supported: expected configMapKeyRef or secretKeyRef", unsupported=True)
    if len(kinds) != 1:
        if not other:
            r.bad(path, "expected exactly one of configMapKeyRef or secretKeyRef")
        return None
    kind = kinds[0]
    sel_path = f"{path}.{kind}"
    selector = r.mapping(source[kind], sel_path)
    r.only(selector, sel_path, frozenset({"name", "key", "optional"}))
    before = len(r.problems)
    out: dict[str, Any] = {
        "name": r.name(selector.get("name"), f"{sel_path}.name"),
        "key": r.string(selector.get("key"), f"{sel_path}.key", required=True),
    }
    if selector.get("optional") is not None:
        out["optional"] = r.boolean(selector.get("optional"), f"{sel_path}.optional")
    return None if len(r.problems) > before else {kind: out}


def _resources(r: Reader, value: Any) -> Mapping[str, Any]:
    res = r.mapping(value, "spec.resources")
    r.only(res, "spec.resources", frozenset({"limits", "requests"}))
    out: dict[str, Any] = {}
    for part in ("limits", "requests"):
        quantities: dict[str, Any] = {}
        for key, q in r.mapping(res.get(part), f"spec.resources.{part}").items():
            if isinstance(q, bool) or not isinstance(q, str | int | float):
                r.bad(f"spec.resources.{part}.{key}", f"expected a quantity, got {q!r}")
            else:
                quantities[str(key)] = q
        if quantities:
            out[part] = quantities
    return out


def _probe(r: Reader, value: Any, path: str) -> Probe | None:
    if value is None:
        return None
    probe = r.mapping(value, path)
    r.only(probe, path, _PROBE_FIELDS)
    http = r.mapping(probe.get("httpGet"), f"{path}.httpGet")
    r.only(http, f"{path}.httpGet", frozenset({"path", "httpHeaders"}))
    url_path = r.string(http.get("path"), f"{path}.httpGet.path", required=True)
    if url_path and not url_path.startswith("/"):
        r.bad(f"{path}.httpGet.path", f"{url_path!r}: expected an absolute path starting with /")
    headers = []
    for i, h in enumerate(r.sequence(http.get("httpHeaders"), f"{path}.httpGet.httpHeaders")):
        hp = f"{path}.httpGet.httpHeaders[{i}]"
        header = r.mapping(h, hp)
        headers.append((r.string(header.get("name"), f"{hp}.name", required=True), r.string(header.get("value"), hp)))
    timings = {k: r.integer(probe.get(k), f"{path}.{k}", d, minimum=0) for k, d in _PROBE_DEFAULTS.items()}
    return Probe(url_path or "/", tuple(headers), timings)


def _volumes(r: Reader, spec: Mapping[str, Any]) -> tuple[tuple[Mapping[str, Any], ...], tuple[Mapping[str, Any], ...]]:
    """Volumes and mounts pass through as Kubernetes defines them; only clashes with the operator's own."""
    volumes = r.sequence(spec.get("volumes"), "spec.volumes")
    names: set[str] = set()
    for i, v in enumerate(volumes):
        vol = r.mapping(v, f"spec.volumes[{i}]")
        name = r.string(vol.get("name"), f"spec.volumes[{i}].name", required=True)
        if name == n.APP_VOLUME or name.startswith("zerowatt-"):
            r.bad(f"spec.volumes[{i}].name", f"{name!r} is reserved for the operator's own volumes")
        names.add(name)
    mounts = r.sequence(spec.get("volumeMounts"), "spec.volumeMounts")
    for i, m in enumerate(mounts):
        mount = r.mapping(m, f"spec.volumeMounts[{i}]")
        name = r.string(mount.get("name"), f"spec.volumeMounts[{i}].name", required=True)
        where = r.string(mount.get("mountPath"), f"spec.volumeMounts[{i}].mountPath", required=True)
        if name and name not in names:
            r.bad(f"spec.volumeMounts[{i}].name", f"no volume named {name!r} in spec.volumes")
        if where.rstrip("/") == n.APP_DIR or where.startswith(n.APP_DIR + "/"):
            r.bad(f"spec.volumeMounts[{i}].mountPath", f"{where!r}: {n.APP_DIR} holds the pulled app")
    return tuple(volumes), tuple(mounts)


def _pull_secrets(r: Reader, value: Any) -> tuple[str, ...]:
    out = []
    for i, item in enumerate(r.sequence(value, "spec.imagePullSecrets")):
        ref = r.mapping(item, f"spec.imagePullSecrets[{i}]")
        name = r.name(ref.get("name"), f"spec.imagePullSecrets[{i}].name")
        if name:
            out.append(name)
    return tuple(out)


def _user_map(r: Reader, value: Any, path: str, *, labels: bool = False) -> dict[str, str]:
    """Annotations or labels the user adds; the ``zerowatt.dev/`` ones are the operator's to write."""
    out = r.string_map(value, path)
    for key in sorted(out):
        if key.startswith(n.RESERVED_PREFIX) or (labels and key in (n.LABEL_NAME, n.LABEL_MANAGED_BY)):
            r.bad(f"{path}[{key!r}]", "reserved: the operator sets this key")
            del out[key]
        elif labels:
            r.label_value(out[key], f"{path}[{key!r}]")
    return out


def _components(r: Reader, value: Any) -> tuple[str, ...]:
    items = r.sequence(value, "spec.components")
    if value is not None and not items:
        r.bad("spec.components", "expected at least one component id (omit the field to run all)")
    out = []
    for i, item in enumerate(items):
        cid = r.string(item, f"spec.components[{i}]", required=True)
        if cid and not _COMPONENT_ID.match(cid):
            r.bad(f"spec.components[{i}]", f"{cid!r} is not a Spin component id")
        elif cid:
            out.append(cid)
    return tuple(out)


def _autoscaling(r: Reader, enabled: bool, values: Mapping[str, Any], where: Mapping[str, str]) -> Autoscaling:
    """Policy, parameters and bounds (``where`` names each key's field in problems)."""
    policy = values.get("policy")
    if policy is None or policy == "":
        policy = n.DEFAULT_POLICY
    if policy not in n.POLICIES:
        r.bad(where["policy"], f"{policy!r}: expected one of {', '.join(n.POLICIES)}")
        policy = n.DEFAULT_POLICY
    params = _policy_params(r, str(policy), values.get("params"), where["params"])
    bounds = []
    for key, default in (("minScale", n.DEFAULT_MIN_SCALE), ("maxScale", n.DEFAULT_MAX_SCALE)):
        raw = values.get(key)
        if isinstance(raw, str):
            try:
                raw = int(raw.strip())
            except ValueError:
                r.bad(where[key], f"{raw!r}: expected a whole number")
                raw = None
        bounds.append(r.integer(raw, where[key], default, minimum=0))
    lo, hi = bounds
    if hi < lo or hi == 0:
        r.bad(where["maxScale"], f"{hi}: expected at least 1 and at least minScale ({lo})")
    return Autoscaling(enabled, str(policy), params, lo, hi)


def _policy_params(r: Reader, policy: str, raw: Any, path: str) -> Mapping[str, float]:
    """The policy's parameters, checked as ``zerowatt up --policy-option`` checks them."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            r.bad(path, f"not JSON: {exc}")
            return {}
    if not isinstance(raw, Mapping):
        r.bad(path, "expected a JSON object of policy parameters")
        return {}
    from zerowatt.scaling.policies import parse_policy

    values: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            r.bad(f"{path}.{key}", f"expected a number, got {value!r}")
            continue
        values[str(key)] = value
    try:
        config = parse_policy(policy, [f"{k}={v}" for k, v in values.items()])
    except UsageError as exc:
        r.bad(path, str(exc).replace("--policy-option ", ""))
        return {}
    return dict(config.options)


def _common(r: Reader, spec: Mapping[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    checks = r.mapping(spec.get("checks"), "spec.checks")
    r.only(checks, "spec.checks", frozenset({"readiness", "liveness"}))
    volumes, mounts = _volumes(r, spec)
    base.update(
        replicas=r.integer(spec.get("replicas"), "spec.replicas", 1),
        resources=_resources(r, spec.get("resources")),
        env=_variables(r, spec.get("variables")),
        volumes=volumes,
        volume_mounts=mounts,
        pull_secrets=_pull_secrets(r, spec.get("imagePullSecrets")),
        readiness=_probe(r, checks.get("readiness"), "spec.checks.readiness"),
        liveness=_probe(r, checks.get("liveness"), "spec.checks.liveness"),
        service_annotations=r.string_map(spec.get("serviceAnnotations"), "spec.serviceAnnotations"),
        deployment_annotations=_user_map(r, spec.get("deploymentAnnotations"), "spec.deploymentAnnotations"),
        pod_annotations=_user_map(r, spec.get("podAnnotations"), "spec.podAnnotations"),
        pod_labels=_user_map(r, spec.get("podLabels"), "spec.podLabels", labels=True),
        components=_components(r, spec.get("components")),
        service_account=r.name(spec.get("serviceAccountName"), "spec.serviceAccountName", required=False),
    )
    return base


def _identity(obj: Mapping[str, Any], kind: str) -> dict[str, Any]:
    m = meta(obj)
    generation = m.get("generation")
    return {
        "ref": ref_of(obj, kind),
        "api_version": str(obj.get("apiVersion") or n.APP_KINDS[kind][0]),
        "uid": str(m.get("uid") or ""),
        "generation": generation if isinstance(generation, int) else 0,
        "deleting": bool(m.get("deletionTimestamp")),
        "finalizers": tuple(str(f) for f in m.get("finalizers") or ()),
    }


# --- the kinds ---------------------------------------------------------------------------------------------


def parse_spinapp(obj: Mapping[str, Any]) -> AppSpec:
    """A SpinApp (``core.spinkube.dev/v1alpha1``) as SpinKube defines it; autoscaling from annotations."""
    r = Reader()
    spec = r.mapping(obj.get("spec"), "spec")
    r.only(spec, "spec", SPINAPP_FIELDS)
    base = _identity(obj, n.SPINAPP)
    base["image"] = r.string(spec.get("image"), "spec.image", required=True)
    base["executor"] = r.string(spec.get("executor"), "spec.executor")
    enabled = r.boolean(spec.get("enableAutoscaling"), "spec.enableAutoscaling")
    annotations = r.string_map(meta(obj).get("annotations"), "metadata.annotations")
    keys = {
        "policy": n.ANN_POLICY,
        "params": n.ANN_POLICY_PARAMS,
        "minScale": n.ANN_MIN_SCALE,
        "maxScale": n.ANN_MAX_SCALE,
    }
    base["autoscaling"] = _autoscaling(
        r,
        enabled,
        {k: annotations.get(a) for k, a in keys.items()},
        {k: f"metadata.annotations[{a!r}]" for k, a in keys.items()},
    )
    runtime_config = r.mapping(spec.get("runtimeConfig"), "spec.runtimeConfig")
    r.only(runtime_config, "spec.runtimeConfig", _RUNTIME_CONFIG_FIELDS)
    for key, why in _RUNTIME_CONFIG_WHY.items():
        if runtime_config.get(key) not in (None, "", [], {}):
            r.bad(f"spec.runtimeConfig.{key}", f"not supported: {why}", unsupported=True)
    if spec.get("invocationLimits"):
        for key in sorted(r.string_map(spec.get("invocationLimits"), "spec.invocationLimits")):
            r.bad(
                f"spec.invocationLimits[{key!r}]",
                "not supported: zerowatt's per-request limits are runtime flags, not per app",
                unsupported=True,
            )
    _common(r, spec, base)
    return AppSpec(**base, problems=tuple(r.problems))


def parse_wasmapp(obj: Mapping[str, Any]) -> AppSpec:
    """A WasmApp (``zerowatt.dev/v1alpha1``): SpinApp's fields plus ``component`` and ``autoscaling``."""
    r = Reader()
    spec = r.mapping(obj.get("spec"), "spec")
    r.only(spec, "spec", WASMAPP_FIELDS)
    base = _identity(obj, n.WASMAPP)
    base["image"] = r.string(spec.get("component"), "spec.component", required=True)
    auto = r.mapping(spec.get("autoscaling"), "spec.autoscaling")
    r.only(auto, "spec.autoscaling", frozenset({"enabled", "policy", "params", "minScale", "maxScale"}))
    enabled = r.boolean(auto.get("enabled"), "spec.autoscaling.enabled")
    base["autoscaling"] = _autoscaling(
        r, enabled, auto, {k: f"spec.autoscaling.{k}" for k in ("policy", "params", "minScale", "maxScale")}
    )
    _common(r, spec, base)
    return AppSpec(**base, problems=tuple(r.problems))


def parse_app(obj: Mapping[str, Any], kind: str) -> AppSpec:
    return parse_spinapp(obj) if kind == n.SPINAPP else parse_wasmapp(obj)


def parse_executor(obj: Mapping[str, Any]) -> ExecutorSpec:
    """A SpinAppExecutor. zerowatt runs every app in its own runtime image, so SpinKube's runtime choices
    (``runtimeClassName``, ``spinImage``) have no effect here and are named in the app's status; what would
    change the app's behaviour and cannot be honoured (``otel``) refuses the app."""
    r = Reader()
    spec = r.mapping(obj.get("spec"), "spec")
    r.only(spec, "spec", _EXECUTOR_FIELDS)
    create = r.boolean(spec.get("createDeployment"), "spec.createDeployment", default=True)
    config = r.mapping(spec.get("deploymentConfig"), "spec.deploymentConfig")
    r.only(config, "spec.deploymentConfig", _DEPLOYMENT_CONFIG_FIELDS)
    notes = []
    for key in ("runtimeClassName", "spinImage"):
        if r.string(config.get(key), f"spec.deploymentConfig.{key}"):
            notes.append(f"deploymentConfig.{key} has no effect: apps run in zerowatt's runtime image")
    r.boolean(config.get("installDefaultCACerts"), "spec.deploymentConfig.installDefaultCACerts")
    ca = r.name(config.get("caCertSecret"), "spec.deploymentConfig.caCertSecret", required=False)
    otel = r.mapping(config.get("otel"), "spec.deploymentConfig.otel")
    if otel:
        r.bad("spec.deploymentConfig.otel", "not supported: zerowatt up exports no OpenTelemetry", unsupported=True)
    name = str(meta(obj).get("name") or "")
    return ExecutorSpec(name, create, ca, tuple(notes), tuple(r.problems))
