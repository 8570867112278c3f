"""Load ``spin.toml`` files into servable :class:`~zerowatt.wasm.model.App` objects.

Loading is all-or-nothing: :func:`load_app` either returns an App whose sources exist and match their
digests, whose variables have values, whose files are staged and whose every trigger has a concrete
executor, or raises :class:`ValidationError` naming the file and the dotted key at fault. The pure
validation of the document lives in :mod:`zerowatt.wasm.manifest.parse`; this module is the adapter that reads
files, hashes sources, inspects modules and stages mounted files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

from zerowatt.errors import ValidationError
from zerowatt.wasm.hostapi import (
    SPIN_HTTP_EXPORT,
    both_abis_note,
    component_import_problem,
    core_import_problem,
    spin_http_only,
)
from zerowatt.wasm.manifest.files import resolve_files
from zerowatt.wasm.manifest.outbound import EMPTY_HOSTS, parse_host_pattern
from zerowatt.wasm.manifest.parse import ComponentSpec, ManifestSpec, SourceSpec, TriggerSpec, parse_manifest
from zerowatt.wasm.manifest.variables import render, resolve_variables
from zerowatt.wasm.model import App, Component, ExecutorKind, HttpTrigger, Variable
from zerowatt.wasm.modules import (
    EXECUTOR_FOR,
    WASI_HTTP_HANDLER,
    ModuleError,
    ModuleInfo,
    ModuleKind,
    inspect_module,
    wagi_provides,
)
from zerowatt.wasm.router import Router

#: Where staged files go unless the caller says otherwise: next to the manifest, git-ignored.
CACHE_DIR_NAME = ".zerowatt-cache"
_TOML_LINE = re.compile(r"at line (\d+)")


def read_manifest(path: Path) -> ManifestSpec:
    """Read and validate ``path`` without resolving anything (what ``zerowatt build`` needs)."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ValidationError(str(path), "manifest not found") from None
    except IsADirectoryError:
        raise ValidationError(str(path), "expected a spin.toml file, got a directory") from None
    except UnicodeDecodeError as exc:
        raise ValidationError(str(path), f"expected UTF-8 text: {exc}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = _TOML_LINE.search(str(exc))
        where = f"{path}:{line.group(1)}" if line else str(path)
        raise ValidationError(where, f"invalid TOML: {exc}") from None
    return parse_manifest(doc, path)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _read_source(spec: SourceSpec, directory: Path) -> tuple[Path, bytes, str]:
    """The source's absolute path, bytes and digest, verified against the manifest's digest if given."""
    if spec.url is not None:
        parts = urlsplit(spec.url)
        if parts.scheme != "file":
            raise ValidationError(
                spec.where,
                f"URL scheme {parts.scheme or '(none)'!r} is not supported: zerowatt loads only local files; "
                "expected a file:// URL or a path (download the module and point source at it)",
            )
        if parts.netloc not in ("", "localhost"):
            raise ValidationError(spec.where, f"expected a local file:// URL (no host), got {spec.url!r}")
        path = Path(unquote(parts.path))
    else:
        assert spec.path is not None
        path = directory / spec.path
    path = path.resolve()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        hint = " (does it need `zerowatt build` first?)" if spec.path is not None else ""
        raise ValidationError(spec.where, f"source file not found: {path}{hint}") from None
    except OSError as exc:
        raise ValidationError(spec.where, f"cannot read source {path}: {exc.strerror}") from None
    digest = sha256_digest(data)
    if spec.digest is not None and digest != spec.digest:
        raise ValidationError(spec.where, f"digest mismatch for {path}: expected {spec.digest}, file has {digest}")
    return path, data, digest


def _resolve_component(
    spec: ComponentSpec,
    directory: Path,
    app_values: Mapping[str, str],
    variables: Mapping[str, Variable],
    cache_dir: Path,
) -> tuple[Component, ModuleInfo]:
    source, data, digest = _read_source(spec.source, directory)
    try:
        info = inspect_module(source, data)
    except ModuleError as exc:
        raise ValidationError(spec.source.where, f"{source}: {exc}") from None
    values: dict[str, str] = {}
    secrets: set[str] = set()
    for name, (template, where) in spec.variables.items():
        values[name] = render(template, app_values, where)
        if any(variables[ref].secret for ref in template.names):
            secrets.add(name)
    outbound: list[str] = []
    for template, where in spec.allowed_outbound_hosts:
        text = render(template, app_values, where)
        if template.names and text.strip() in EMPTY_HOSTS:
            continue  # a variable left empty: Spin skips the entry (an "optional endpoint"); a literal "" is an error
        parse_host_pattern(text, where)
        outbound.append(text)
    files = resolve_files(spec.files, spec.exclude_files, directory, cache_dir, spec.where)
    component = Component(
        id=spec.id,
        source=source,
        source_digest=digest,
        environment=dict(spec.environment),
        files=files,
        variables=values,
        secret_variables=frozenset(secrets),
        allowed_outbound_hosts=tuple(outbound),
        build=spec.build,
        limits=spec.limits,
        description=spec.description,
    )
    return component, info


def _executor(
    trigger: TriggerSpec, component: Component, info: ModuleInfo, component_where: str, notes: list[str]
) -> ExecutorKind:
    """Check the module fits the trigger's executor and links; resolve AUTO from the module itself.

    A decision the operator should know about (a module with two ABIs) is appended to ``notes``.
    """
    where = trigger.executor_where or f"{component_where}.source"
    source_where = f"{component_where}.source"
    if info.kind is ModuleKind.CORE:
        if trigger.executor is ExecutorKind.WASI_HTTP:
            spin_abi = (
                f" (it exports Spin's core-module HTTP ABI {SPIN_HTTP_EXPORT!r}, which zerowatt does not implement)"
                if SPIN_HTTP_EXPORT in info.exports
                else ""
            )
            raise ValidationError(
                where,
                f"executor 'spin'/'http' needs a component exporting {WASI_HTTP_HANDLER}, but {component.source} is a "
                f'core module{spin_abi}; expected executor = {{ type = "wagi" }} for a WASI command module',
            )
        problem = core_import_problem(info.imports, wagi_provides)
        if problem:
            raise ValidationError(source_where, f"core module {component.source} {problem}")
        entrypoint = trigger.wagi.entrypoint
        spin_only = spin_http_only(info.exports, entrypoint)
        if spin_only:
            raise ValidationError(where, f"core module {component.source} {spin_only}")
        if trigger.executor is ExecutorKind.AUTO:
            note = both_abis_note(info.exports, entrypoint)
            if note and f"{component_where}: {note}" not in notes:
                notes.append(f"{component_where}: {note}")
        if entrypoint not in info.exports:
            exported = ", ".join(sorted(info.exports)) or "none"
            raise ValidationError(
                where,
                f"core module {component.source} exports no function {entrypoint!r} (exported functions: {exported}); "
                "expected a WASI command module for the WAGI executor",
            )
        return EXECUTOR_FOR[info.kind]
    if trigger.executor is ExecutorKind.WAGI:
        raise ValidationError(
            where, f"executor 'wagi' runs core modules, but {component.source} is a component; expected a core module"
        )
    problem = component_import_problem(name for name, _ in info.imports)
    if problem:
        raise ValidationError(source_where, f"component {component.source} {problem}")
    if WASI_HTTP_HANDLER not in info.exports:
        exported = ", ".join(sorted(info.exports)) or "nothing"
        raise ValidationError(
            where,
            f"component {component.source} does not export {WASI_HTTP_HANDLER} (it exports {exported}); "
            "expected a wasi:http component",
        )
    return EXECUTOR_FOR[info.kind]


def _check_unknown_values(values: Mapping[str, str], declared: Iterable[str], where: str) -> None:
    unknown = sorted(set(values) - set(declared))
    if unknown:
        known = ", ".join(sorted(set(declared))) or "none"
        raise ValidationError(where, f"unknown application variable(s) {', '.join(unknown)} (declared: {known})")


def _load(path: Path, variable_values: Mapping[str, str], env: Mapping[str, str], cache_dir: Path | None) -> App:
    spec = read_manifest(path)
    app_values = resolve_variables(spec.variables, variable_values, env, f"{path}: variables")
    cache = cache_dir if cache_dir is not None else spec.directory / CACHE_DIR_NAME
    components: dict[str, Component] = {}
    infos: dict[str, ModuleInfo] = {}
    for component_id, component_spec in spec.components.items():
        components[component_id], infos[component_id] = _resolve_component(
            component_spec, spec.directory, app_values, spec.variables, cache
        )
    notes: list[str] = []
    triggers = tuple(
        HttpTrigger(
            route=t.route,
            component_id=t.component_id,
            executor=_executor(
                t, components[t.component_id], infos[t.component_id], spec.components[t.component_id].where, notes
            ),
            wagi=t.wagi,
        )
        for t in spec.triggers
    )
    app = App(
        name=spec.name,
        manifest_path=path.resolve(),
        components=components,
        triggers=triggers,
        version=spec.version,
        description=spec.description,
        variables=dict(spec.variables),
        base=spec.base,
        authors=spec.authors,
        notes=tuple(notes),
    )
    Router([app])  # routes are unique (checked with trigger indexes by the spec); this keeps the two in step
    return app


def load_app(
    path: Path,
    *,
    variable_values: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    cache_dir: Path | None = None,
) -> App:
    """Load one manifest. ``env`` defaults to ``os.environ`` (for ``SPIN_VARIABLE_*``)."""
    values = dict(variable_values or {})
    app = _load(path, values, os.environ if env is None else env, cache_dir)
    _check_unknown_values(values, app.variables, "--variable")
    return app


def select_components(apps: Sequence[App], wanted: Sequence[str]) -> list[App]:
    """The apps reduced to the triggers (and components) of the ``wanted`` component ids.

    Why: Spin's selective deployment (``spin up --component-id``, SpinKube's ``spec.components``) runs a
    subset of an app's components in one place and the rest elsewhere. An app left with no trigger is
    dropped; an id no app has is a usage error naming it.
    """
    known = {cid for app in apps for cid in app.components}
    for cid in wanted:
        if cid not in known:
            raise ValidationError(
                "--component", f"no component {cid!r} in the apps served (components: {', '.join(sorted(known))})"
            )
    chosen = set(wanted)
    selected: list[App] = []
    for app in apps:
        triggers = tuple(t for t in app.triggers if t.component_id in chosen)
        if triggers:
            kept = {cid: c for cid, c in app.components.items() if cid in chosen}
            selected.append(dataclasses.replace(app, triggers=triggers, components=kept))
    if not selected:
        raise ValidationError("--component", f"no trigger serves {', '.join(wanted)}: nothing to serve")
    return selected


def load_apps(
    paths: Iterable[Path],
    *,
    variable_values: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    cache_dir: Path | None = None,
    components: Sequence[str] = (),
) -> list[App]:
    """Load several manifests to serve together; app names and routes must not clash across them.

    A ``--variable`` value applies to every app that declares that variable, and must be declared by
    at least one. ``components`` (``--component``): serve only the triggers of these component ids
    (Spin's selective deployment, SpinKube's ``spec.components``); each id must exist in some app.
    """
    values = dict(variable_values or {})
    environment = os.environ if env is None else env
    apps: list[App] = []
    seen: dict[str, Path] = {}
    for path in paths:
        app = _load(path, values, environment, cache_dir)
        if app.name in seen:
            raise ValidationError(
                f"{path}: application.name",
                f"app name {app.name!r} is also used by {seen[app.name]}; expected unique app names",
            )
        seen[app.name] = path
        apps.append(app)
    if not apps:
        raise ValidationError("", "no manifest given")
    _check_unknown_values(values, (name for app in apps for name in app.variables), "--variable")
    if components:
        apps = select_components(apps, components)
    Router(apps)
    return apps
