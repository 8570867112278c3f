"""Parse a Spin manifest (version 2) document into a validated, not yet resolved, :class:`ManifestSpec`.

This is the pure half of loading: it checks every key and type of the TOML document and reports the
first problem as ``ValidationError("<file>: <dotted.key>", "expected ...")``, but touches no file.
``zerowatt build`` stops here (the modules it builds do not exist yet); :mod:`zerowatt.wasm.manifest.load`
resolves a spec into a servable :class:`~zerowatt.wasm.model.App`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from zerowatt.errors import ValidationError
from zerowatt.wasm.manifest.files import FilesEntry, GlobFiles, MappedFiles
from zerowatt.wasm.manifest.variables import VARIABLE_NAME, Template, parse_template
from zerowatt.wasm.model import BuildSpec, ExecutorKind, Limits, Route, Variable, WagiOptions
from zerowatt.wasm.router import effective_prefix

#: Spin's application names: letters, digits, '-' and '_'.
APP_NAME = re.compile(r"[A-Za-z0-9_-]+\Z")
#: Spin's component ids are kebab-case; digits and '_' are tolerated as Spin's own parser does.
COMPONENT_ID = re.compile(r"[a-z0-9_]+(?:-[a-z0-9_]+)*\Z")
#: A single-segment route parameter's name (``/users/:id``): what Spin's router captures and its guests see as
#: ``spin-path-match-<name>`` (wasi:http) or ``X_PATH_MATCH_<NAME>`` (WAGI).
ROUTE_PARAMETER = re.compile(r"[A-Za-z0-9_]+\Z")
#: Guests see component variable ``name`` as the environment variable ``SPIN_VARIABLE_<NAME>``.
GUEST_VARIABLE_PREFIX = "SPIN_VARIABLE_"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}\Z")
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|K|M|G|T|)B?\s*\Z")
_SIZE_FACTORS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_SIZE_FACTORS.update({"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40})
#: Largest byte size accepted: 1 PiB (wasmtime's limiter takes a signed 64-bit count; "1e400" must not reach it).
MAX_BYTE_SIZE = 2**50

#: Spin component keys zerowatt does not implement, with what to do instead.
_UNSUPPORTED_COMPONENT_KEYS = {
    "allowed_http_hosts": "it is Spin's deprecated form; use allowed_outbound_hosts = ['https://host']",
    "key_value_stores": "zerowatt provides no key-value store",
    "sqlite_databases": "zerowatt provides no SQLite databases",
    "ai_models": "zerowatt provides no AI models",
    "dependencies": "component dependencies are not supported by zerowatt",
    "dependencies_inherit_configuration": "component dependencies are not supported by zerowatt",
}

#: Spin trigger keys zerowatt does not implement.
_UNSUPPORTED_TRIGGER_KEYS = {
    "dependencies": "trigger-level component dependencies are not supported by zerowatt (docs/manifest.md)",
    "components": "trigger-level component maps (middleware chains) are not supported by zerowatt (docs/manifest.md)",
    "static_response": "static responses are not supported by zerowatt; serve the content from a component",
}


def _other_triggers(table: _Table) -> dict[str, str]:
    """The reason for every trigger type but HTTP (``redis``, ``timer``, ``cron``, ``sqs``, ...)."""
    return {name: "zerowatt serves HTTP triggers only" for name in table.data if name != "http"}


def parse_byte_size(value: object, where: str) -> int:
    """``134217728``, ``"128Mi"``, ``"1Gi"``, ``"500M"`` → bytes (a positive integer, at most 1 PiB)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 < value <= MAX_BYTE_SIZE:
            raise ValidationError(where, f"expected a positive number of bytes up to 2^50 (1 PiB), got {value}")
        return value
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            size = float(match.group(1)) * _SIZE_FACTORS[match.group(2)]  # inf for 400 digits: no exception
            if size > MAX_BYTE_SIZE:
                raise ValidationError(where, f"expected a size up to 1Pi, got {value[:40]!r}")
            if size >= 1:
                return int(size)
    raise ValidationError(where, f"expected bytes as an integer or a size like '64Mi', '1Gi', '500M', got {value!r}")


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """``source``: a local path, or a ``{ url, digest }`` table (only ``file://`` URLs are loaded)."""

    where: str
    path: str | None = None
    url: str | None = None
    digest: str | None = None


@dataclass(frozen=True, slots=True)
class ComponentSpec:
    id: str
    where: str  # "<file>: component.<id>" (or the inline trigger's key)
    source: SourceSpec
    description: str = ""
    environment: Mapping[str, str] = field(default_factory=dict)
    files: tuple[FilesEntry, ...] = ()
    exclude_files: tuple[str, ...] = ()
    variables: Mapping[str, tuple[Template, str]] = field(default_factory=dict)  # name → (template, where)
    allowed_outbound_hosts: tuple[tuple[Template, str], ...] = ()
    build: BuildSpec | None = None
    limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True, slots=True)
class TriggerSpec:
    index: int
    where: str  # "<file>: trigger.http[<index>]"
    route: Route
    component_id: str
    executor: ExecutorKind = ExecutorKind.AUTO
    wagi: WagiOptions = field(default_factory=WagiOptions)
    executor_where: str = ""  # where the executor was set explicitly ("" when AUTO)


@dataclass(frozen=True, slots=True)
class ManifestSpec:
    path: Path
    name: str
    components: Mapping[str, ComponentSpec]
    triggers: tuple[TriggerSpec, ...]
    version: str = ""
    description: str = ""
    authors: tuple[str, ...] = ()
    base: str = "/"
    variables: Mapping[str, Variable] = field(default_factory=dict)

    @property
    def directory(self) -> Path:
        return self.path.parent


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return f"a boolean ({value!r})"
    if isinstance(value, int | float):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


class _Table:
    """Typed access to one TOML table that knows its dotted position for error messages."""

    __slots__ = ("data", "file", "key")

    def __init__(self, data: Mapping[str, object], file: str, key: str) -> None:
        self.data = data
        self.file = file
        self.key = key

    def where(self, name: str | None = None) -> str:
        if name is None:
            return f"{self.file}: {self.key}" if self.key else self.file
        return f"{self.file}: {self.key}.{name}" if self.key else f"{self.file}: {name}"

    def fail(self, name: str | None, message: str) -> NoReturn:
        raise ValidationError(self.where(name), message)

    def only(self, allowed: set[str], hints: Mapping[str, str] | None = None) -> None:
        for name in self.data:
            if name not in allowed:
                hint = (hints or {}).get(name)
                if hint:
                    self.fail(name, f"key {name!r} is not supported: {hint}")
                self.fail(name, f"unknown key {name!r}; expected one of: {', '.join(sorted(allowed))}")

    def child(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def string(self, name: str, *, required: bool = False, default: str = "") -> str:
        value = self.data.get(name)
        if value is None:
            if required:
                self.fail(name, "required key is missing; expected a string")
            return default
        if not isinstance(value, str):
            self.fail(name, f"expected a string, got {_type_name(value)}")
        return value

    def boolean(self, name: str) -> bool:
        value = self.data.get(name, False)
        if not isinstance(value, bool):
            self.fail(name, f"expected true or false, got {_type_name(value)}")
        return value

    def table(self, name: str, *, required: bool = False) -> _Table | None:
        value = self.data.get(name)
        if value is None:
            if required:
                self.fail(name, "required table is missing")
            return None
        if not isinstance(value, dict):
            self.fail(name, f"expected a table, got {_type_name(value)}")
        return _Table(value, self.file, self.child(name))

    def strings(self, name: str) -> tuple[str, ...]:
        value = self.data.get(name, [])
        if not isinstance(value, list):
            self.fail(name, f"expected an array of strings, got {_type_name(value)}")
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.fail(f"{name}[{i}]", f"expected a string, got {_type_name(item)}")
        return tuple(value)

    def string_map(self, name: str) -> dict[str, str]:
        sub = self.table(name)
        if sub is None:
            return {}
        for key, value in sub.data.items():
            if not isinstance(value, str):
                sub.fail(key, f"expected a string value, got {_type_name(value)}")
        return dict(sub.data)  # type: ignore[arg-type]


def _parse_variables(top: _Table) -> dict[str, Variable]:
    table = top.table("variables")
    if table is None:
        return {}
    result: dict[str, Variable] = {}
    for name, value in table.data.items():
        if not VARIABLE_NAME.match(name):
            table.fail(name, "expected a variable name of lower-case letters, digits and '_', starting with a letter")
        if not isinstance(value, dict):
            table.fail(
                name, f'expected a table like {{ default = "..." }} or {{ required = true }}, got {_type_name(value)}'
            )
        var = _Table(value, table.file, table.child(name))
        var.only({"default", "required", "secret", "description"})
        has_default = "default" in value
        default = var.string("default") if has_default else None
        required = var.boolean("required")
        if has_default == required:
            var.fail(None, "expected exactly one of 'default = \"...\"' or 'required = true'")
        result[name] = Variable(
            name=name,
            default=default,
            required=required,
            secret=var.boolean("secret"),
            description=var.string("description"),
        )
    return result


def _parse_route(value: object, trigger: _Table) -> Route:
    if isinstance(value, dict):
        table = _Table(value, trigger.file, trigger.child("route"))
        table.only({"private"})
        if value.get("private") is not True:
            table.fail("private", "expected 'route = { private = true }' for a private endpoint")
        return Route(pattern="", private=True)
    if not isinstance(value, str):
        trigger.fail(
            "route", f"expected a path like '/hello' or '/api/...', or {{ private = true }}, got {_type_name(value)}"
        )
    if not value.startswith("/"):
        trigger.fail("route", f"expected a path starting with '/', got {value!r}")
    if any(ch in value for ch in "?# \t\r\n"):
        trigger.fail("route", f"expected a path without query, fragment or spaces, got {value!r}")
    body = value[: -len("/...")] if value.endswith("/...") else value
    if "..." in body:
        trigger.fail("route", f"'...' is only allowed as the trailing wildcard '/...', got {value!r}")
    names: set[str] = set()
    for segment in body.split("/"):
        if not segment.startswith(":"):
            continue
        name = segment[1:]
        if not ROUTE_PARAMETER.match(name):
            trigger.fail(
                "route", f"expected ':name' with letters, digits and '_' as a whole path segment, got {segment!r}"
            )
        if name in names:
            trigger.fail("route", f"parameter ':{name}' appears twice in {value!r}; expected distinct names")
        names.add(name)
    return Route(pattern=value)


def _parse_executor(trigger: _Table) -> tuple[ExecutorKind, WagiOptions, str]:
    table = trigger.table("executor")
    if table is None:
        return ExecutorKind.AUTO, WagiOptions(), ""
    kind = table.string("type", required=True)
    if kind == "wagi":
        table.only({"type", "argv", "entrypoint"})
        defaults = WagiOptions()
        options = WagiOptions(
            argv=table.string("argv", default=defaults.argv),
            entrypoint=table.string("entrypoint", default=defaults.entrypoint),
        )
        if not options.entrypoint:
            table.fail("entrypoint", "expected the name of an exported function, got ''")
        return ExecutorKind.WAGI, options, table.where()
    if kind in ("spin", "http"):
        table.only({"type"})
        return ExecutorKind.WASI_HTTP, WagiOptions(), table.where()
    table.fail("type", f"expected 'wagi', 'spin' or 'http', got {kind!r}")


def _parse_source(value: object, comp: _Table) -> SourceSpec:
    where = comp.where("source")
    if isinstance(value, str):
        if not value:
            comp.fail("source", "expected a path to a .wasm or .wat file, got ''")
        return SourceSpec(where=where, path=value)
    if isinstance(value, dict):
        table = _Table(value, comp.file, comp.child("source"))
        if "registry" in value or "package" in value:
            table.fail(None, "registry sources are not supported by zerowatt; expected a local path or { url, digest }")
        table.only({"url", "digest"})
        url = table.string("url", required=True)
        digest = table.string("digest", required=True)
        if not _DIGEST.match(digest):
            table.fail("digest", f"expected 'sha256:' and 64 lower-case hex digits, got {digest!r}")
        return SourceSpec(where=where, url=url, digest=digest)
    comp.fail(
        "source", f'expected a path string or {{ url = "file://...", digest = "sha256:..." }}, got {_type_name(value)}'
    )


def _parse_files(comp: _Table) -> tuple[FilesEntry, ...]:
    value = comp.data.get("files", [])
    if not isinstance(value, list):
        comp.fail("files", f"expected an array of globs and {{ source, destination }} tables, got {_type_name(value)}")
    entries: list[FilesEntry] = []
    for i, item in enumerate(value):
        key = f"files[{i}]"
        if isinstance(item, str):
            entries.append(GlobFiles(pattern=item, where=comp.where(key)))
        elif isinstance(item, dict):
            table = _Table(item, comp.file, comp.child(key))
            table.only({"source", "destination"})
            entries.append(
                MappedFiles(
                    source=table.string("source", required=True),
                    destination=table.string("destination", required=True),
                    where=table.where(),
                )
            )
        else:
            comp.fail(
                key, f'expected a glob string or {{ source = "dir", destination = "/path" }}, got {_type_name(item)}'
            )
    return tuple(entries)


def _build_commands(table: _Table) -> tuple[str, ...]:
    """``command``: one shell command or an array of them (Spin runs them left to right)."""
    value = table.data.get("command")
    if value is None:
        table.fail("command", "required key is missing; expected a shell command or an array of them")
    commands = (value,) if isinstance(value, str) else table.strings("command")
    if not commands or any(not c.strip() for c in commands):
        table.fail("command", f"expected a non-empty shell command or a non-empty array of them, got {value!r}")
    return commands


def _parse_build(comp: _Table, directory: Path) -> BuildSpec | None:
    table = comp.table("build")
    if table is None:
        return None
    table.only({"command", "workdir", "watch"})
    workdir = table.string("workdir")
    return BuildSpec(
        commands=_build_commands(table),
        workdir=directory / workdir if workdir else directory,
        watch=table.strings("watch"),
    )


def _check_targets(table: _Table) -> None:
    """``targets``: Spin's deployment environments (``"spin-up:3.2"``, ``{ url }``, ``{ path }``).

    ``spin build`` checks a component against them; serving does not use them, so zerowatt checks their shape
    and accepts them.
    """
    value = table.data.get("targets")
    if value is None:
        return
    if not isinstance(value, list):
        table.fail(
            "targets", f"expected an array of environment names or {{ url }}/{{ path }} tables, got {_type_name(value)}"
        )
    for i, item in enumerate(value):
        if isinstance(item, str) and item:
            continue
        if isinstance(item, dict) and len(item) == 1 and isinstance(next(iter(item.values())), str):
            _Table(item, table.file, table.child(f"targets[{i}]")).only({"url", "path"})
            continue
        table.fail(f"targets[{i}]", f'expected "name:version", {{ url = "..." }} or {{ path = "..." }}, got {item!r}')


def _check_tools(table: _Table) -> None:
    """``tool``: per-tool tables (``[application.tool.NAME]``, ``[component.ID.tool.NAME]``) that belong to them."""
    tools = table.table("tool")
    if tools is None:
        return
    for name in tools.data:
        tools.table(name)  # a table, whatever its keys: they are the tool's


def _check_profiles(comp: _Table) -> None:
    """``[component.ID.profile.NAME]``: Spin's build/run profiles; zerowatt serves the default profile.

    The keys are checked as Spin checks them, so a typo is still an error; the overrides are not applied.
    """
    profiles = comp.table("profile")
    if profiles is None:
        return
    for name in profiles.data:
        profile = profiles.table(name)
        assert profile is not None
        profile.only({"source", "environment", "dependencies", "build"})
        profile.string_map("environment")
        if "source" in profile.data:
            _parse_source(profile.data["source"], profile)
        build = profile.table("build")
        if build is not None:
            build.only({"command"})
            _build_commands(build)


def _parse_limits(comp: _Table) -> Limits:
    tools = comp.table("tool")
    if tools is None:
        return Limits()
    ours = tools.table("zerowatt")  # other tools' tables belong to them, as in Spin
    if ours is None:
        return Limits()
    ours.only({"request_timeout", "memory_limit"})
    timeout: float | None = None
    if "request_timeout" in ours.data:
        raw = ours.data["request_timeout"]
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 < raw < 86400:
            ours.fail("request_timeout", f"expected seconds as a number between 0 and 86400, got {raw!r}")
        timeout = float(raw)
    memory = (
        parse_byte_size(ours.data["memory_limit"], ours.where("memory_limit")) if "memory_limit" in ours.data else None
    )
    return Limits(request_timeout=timeout, memory_limit=memory)


def _parse_component(component_id: str, comp: _Table, directory: Path) -> ComponentSpec:
    known = {
        "description",
        "source",
        "files",
        "exclude_files",
        "environment",
        "variables",
        "allowed_outbound_hosts",
        "build",
        "tool",
        "targets",
        "profile",
    }
    comp.only(known, _UNSUPPORTED_COMPONENT_KEYS)
    _check_targets(comp)
    _check_profiles(comp)
    if "source" not in comp.data:
        comp.fail("source", "required key is missing; expected a path to a .wasm or .wat file")
    environment = comp.string_map("environment")
    for key in environment:
        if not key or "=" in key or "\0" in key:
            comp.fail(f"environment.{key}", "expected an environment variable name without '=' or NUL")
    templates: dict[str, tuple[Template, str]] = {}
    for name, text in comp.string_map("variables").items():
        where = comp.where(f"variables.{name}")
        if not VARIABLE_NAME.match(name):
            raise ValidationError(where, "expected a variable name of lower-case letters, digits and '_'")
        exposed = GUEST_VARIABLE_PREFIX + name.upper()
        if exposed in environment:
            raise ValidationError(
                where,
                f"variable {name!r} is exposed to the guest as {exposed}, which 'environment' also sets; "
                "expected distinct names",
            )
        templates[name] = (parse_template(text, where), where)
    outbound = tuple(
        (parse_template(text, comp.where(f"allowed_outbound_hosts[{i}]")), comp.where(f"allowed_outbound_hosts[{i}]"))
        for i, text in enumerate(comp.strings("allowed_outbound_hosts"))
    )
    return ComponentSpec(
        id=component_id,
        where=comp.where(),
        source=_parse_source(comp.data["source"], comp),
        description=comp.string("description"),
        environment=environment,
        files=_parse_files(comp),
        exclude_files=comp.strings("exclude_files"),
        variables=templates,
        allowed_outbound_hosts=outbound,
        build=_parse_build(comp, directory),
        limits=_parse_limits(comp),
    )


def _parse_application(top: _Table) -> tuple[_Table, str]:
    app = top.table("application", required=True)
    assert app is not None
    app.only({"name", "version", "description", "authors", "trigger", "targets", "tool"})
    _check_targets(app)
    _check_tools(app)
    name = app.string("name", required=True)
    if not APP_NAME.match(name):
        app.fail("name", f"expected letters, digits, '-' and '_', got {name!r}")
    base = "/"
    triggers = app.table("trigger")
    if triggers is not None:
        triggers.only({"http"}, _other_triggers(triggers))
        http = triggers.table("http")
        if http is not None:
            http.only({"base"})
            base = http.string("base", default="/")
            if not base.startswith("/"):
                http.fail("base", f"expected a path starting with '/', got {base!r}")
    return app, base


def _refuse_version_1(top: _Table) -> None:
    """Spin 1 manifests (``spin_version = "1"`` or ``spin_manifest_version = "1"``) get one clear error.

    Checked before the keys, so a version 1 manifest is not reported for its first version 1 key
    (``authors``, ``name``, ...) as if it were a broken version 2 one.
    """
    for key in ("spin_manifest_version", "spin_version"):
        value = top.data.get(key)
        if key in top.data and (value == "1" or (value == 1 and not isinstance(value, bool))):
            top.fail(
                key,
                "version 1 manifests are not supported: convert with `spin doctor` (Spin 2 or later) or "
                "rewrite it by hand as spin_manifest_version = 2 with an [application] table",
            )


def parse_manifest(doc: Mapping[str, object], path: Path) -> ManifestSpec:
    """Validate a parsed ``spin.toml`` (``doc``) read from ``path``; raise on the first problem."""
    file = str(path)
    top = _Table(doc, file, "")
    _refuse_version_1(top)
    top.only({"spin_manifest_version", "application", "variables", "trigger", "component"})
    version = doc.get("spin_manifest_version")
    if version != 2 or isinstance(version, bool):
        top.fail(
            "spin_manifest_version",
            f"expected 2 (Spin manifest version 2; version 1 manifests are not supported), got {version!r}",
        )
    app, base = _parse_application(top)
    variables = _parse_variables(top)
    directory = path.parent

    components: dict[str, ComponentSpec] = {}
    comp_tables = top.table("component")
    if comp_tables is not None:
        for component_id, value in comp_tables.data.items():
            if not COMPONENT_ID.match(component_id):
                comp_tables.fail(component_id, "expected a kebab-case component id (lower-case letters, digits, '-')")
            if not isinstance(value, dict):
                comp_tables.fail(component_id, f"expected a table, got {_type_name(value)}")
            table = _Table(value, file, comp_tables.child(component_id))
            components[component_id] = _parse_component(component_id, table, directory)

    trigger_tables = top.table("trigger", required=True)
    assert trigger_tables is not None
    trigger_tables.only({"http"}, _other_triggers(trigger_tables))
    http = trigger_tables.data.get("http")
    if not isinstance(http, list) or not http:
        trigger_tables.fail("http", "expected at least one [[trigger.http]] table")
    triggers: list[TriggerSpec] = []
    routes_seen: dict[tuple[str, bool], int] = {}
    for index, item in enumerate(http):
        key = f"trigger.http[{index}]"
        if not isinstance(item, dict):
            top.fail(key, f"expected a table, got {_type_name(item)}")
        trigger = _Table(item, file, key)
        trigger.only({"route", "component", "executor", "id"}, _UNSUPPORTED_TRIGGER_KEYS)
        if "route" not in item:
            trigger.fail("route", "required key is missing; expected a path like '/hello' or '/api/...'")
        route = _parse_route(item["route"], trigger)
        component = item.get("component")
        if isinstance(component, str):
            if component not in components:
                known = ", ".join(sorted(components)) or "none defined"
                trigger.fail("component", f"no [component.{component}] in this manifest (components: {known})")
            component_id = component
        elif isinstance(component, dict):
            component_id = f"{app.data['name']}-trigger-{index}".lower()
            suffix = 1
            while component_id in components:
                component_id = f"{app.data['name']}-trigger-{index}-{suffix}".lower()
                suffix += 1
            components[component_id] = _parse_component(
                component_id, _Table(component, file, trigger.child("component")), directory
            )
        else:
            trigger.fail(
                "component", f"expected a component id or an inline component table, got {_type_name(component)}"
            )
        trigger.string("id")  # Spin's optional trigger id: accepted, not used
        executor, wagi, executor_where = _parse_executor(trigger)
        if not route.private:
            route_key = effective_prefix(base, route.pattern)
            if route_key in routes_seen:
                trigger.fail(
                    "route",
                    f"duplicate route {route.pattern!r}: trigger.http[{routes_seen[route_key]}] has the same route; "
                    "expected each route at most once",
                )
            routes_seen[route_key] = index
        triggers.append(
            TriggerSpec(
                index=index,
                where=trigger.where(),
                route=route,
                component_id=component_id,
                executor=executor,
                wagi=wagi,
                executor_where=executor_where,
            )
        )

    return ManifestSpec(
        path=path,
        name=str(app.data["name"]),
        components=components,
        triggers=tuple(triggers),
        version=app.string("version"),
        description=app.string("description"),
        authors=app.strings("authors"),
        base=base,
        variables=variables,
    )
