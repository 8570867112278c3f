"""A Spin locked app (``spin.lock`` JSON, as ``spin registry push`` stores it) → what zerowatt writes on disk.

The model is Spin's ``crates/locked-app/src/locked.rs`` (spinframework/spin, Apache-2.0): ``triggers``
(``trigger_type`` + ``trigger_config``), ``components`` (``source`` with a ``digest`` and maybe base64
``inline`` bytes, ``env``, ``config`` (component variables), ``files`` (one ``{digest|inline, path}`` per
file, ``path`` relative to the guest's ``/``), ``metadata.allowed_outbound_hosts``), app ``variables``
and ``metadata`` (``name``, ``version``, ``trigger.base``). The plan lays the app out as
``wasm/<hex>.wasm`` and ``files/<component>/<path>`` and renders a version-2 ``spin.toml`` that
zerowatt's loader reads. Everything zerowatt cannot serve (component dependencies, middleware, host
requirements, key-value stores, non-HTTP triggers) is refused here, naming the component or trigger, so
a pod's ``pull`` fails rather than its runtime. Pure: bytes in, a plan out.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from zerowatt.errors import ValidationError
from zerowatt.oci import tomlwrite
from zerowatt.oci.manifest import MAX_LOCKED_APP_BYTES, verify_digest
from zerowatt.oci.reference import DIGEST
from zerowatt.wasm.manifest.parse import COMPONENT_ID

#: Largest depth of a static file's path, and the longest path, in a files mount.
MAX_PATH_DEPTH = 64
MAX_PATH_CHARS = 1024
#: Locked component metadata naming host services zerowatt does not provide.
_UNSUPPORTED_METADATA = {
    "key_value_stores": "zerowatt provides no key-value store",
    "databases": "zerowatt provides no SQLite databases",
    "ai_models": "zerowatt provides no AI models",
}


@dataclass(frozen=True, slots=True)
class Content:
    """A piece of content the locked app names: by digest, maybe with its bytes inline (≤ 128 bytes in Spin)."""

    digest: str | None
    inline: bytes | None


@dataclass(frozen=True, slots=True)
class StaticFile:
    """One static file of a component: where it goes under ``files/<component>/`` and its content."""

    component: str
    path: str  # relative, '/'-separated, checked
    content: Content


@dataclass(frozen=True, slots=True)
class AppPlan:
    """What to write: ``wasm/<hex>.wasm`` per digest, each static file, and the ``spin.toml`` text."""

    name: str
    wasm: Mapping[str, Content]  # digest → content
    files: tuple[StaticFile, ...]
    manifest: str
    components: tuple[str, ...] = field(default=())

    def needed_digests(self) -> set[str]:
        """Digests whose bytes must come from layers (everything not inline)."""
        needed = {d for d, c in self.wasm.items() if c.inline is None}
        needed |= {f.content.digest for f in self.files if f.content.inline is None and f.content.digest}
        return needed


def wasm_path(digest: str) -> str:
    """Where a component's Wasm goes, relative to the pull directory."""
    return f"wasm/{digest.removeprefix('sha256:')}.wasm"


def safe_relative_path(path: object, where: str) -> str:
    """A static file's path as Spin's loader requires it (only normal components: no ``/`` root, no ``..``,
    no ``.``), and no backslash, NUL or empty segment; anything else is a hostile artifact."""
    if not isinstance(path, str) or not path:
        raise ValidationError(where, f"expected a relative file path, got {path!r}")
    text = path.removeprefix("./") if path.startswith("./") and len(path) > 2 else path
    segments = text.split("/")
    if (
        len(text) > MAX_PATH_CHARS
        or len(segments) > MAX_PATH_DEPTH
        or any(s in ("", ".", "..") for s in segments)
        or "\\" in text
        or "\0" in text
    ):
        raise ValidationError(
            where, f"unsafe file path {path!r}: expected a relative path without '..', '.', '//' or a leading '/'"
        )
    return text


def _content(raw: object, where: str) -> Content:
    if not isinstance(raw, dict):
        raise ValidationError(where, "expected a content object with a digest")
    digest = raw.get("digest")
    if digest is not None and (not isinstance(digest, str) or not DIGEST.match(digest)):
        raise ValidationError(f"{where}.digest", f"expected 'sha256:' and 64 lower-case hex digits, got {digest!r}")
    inline = None
    if raw.get("inline") is not None:
        text = raw["inline"]
        try:
            inline = base64.b64decode(text, validate=True) if isinstance(text, str) else None
        except binascii.Error:
            inline = None
        if inline is None:
            raise ValidationError(f"{where}.inline", "expected base64 text")
        if digest is not None:
            verify_digest(inline, digest, f"{where}.inline")
    if digest is None and inline is None:
        source = raw.get("source")
        hint = f" (it names {source!r}, a local source: was this app pushed?)" if source else ""
        raise ValidationError(where, f"expected a 'digest' or 'inline' content{hint}")
    return Content(digest=digest, inline=inline)


def _object(value: object, where: str) -> dict[str, object]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError(where, f"expected an object, got {type(value).__name__}")
    return value


def _string_map(value: object, where: str) -> dict[str, str]:
    result = _object(value, where)
    for k, v in result.items():
        if not isinstance(v, str):
            raise ValidationError(f"{where}.{k}", f"expected a string, got {v!r}")
    return result  # type: ignore[return-value]


def _strings(value: object, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise ValidationError(where, "expected an array of strings")
    return value


def _application(metadata: dict[str, object], where: str) -> dict[str, object]:
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        raise ValidationError(f"{where}.metadata.name", "expected the application's name")
    app: dict[str, object] = {"name": name}
    for k in ("version", "description"):
        if isinstance(metadata.get(k), str) and metadata[k]:
            app[k] = metadata[k]
    authors = _strings(metadata.get("authors"), f"{where}.metadata.authors")
    if authors:
        app["authors"] = authors
    return app


def _base(metadata: dict[str, object], where: str) -> str | None:
    """Spin 2's ``[application.trigger.http] base``, kept in ``metadata.trigger`` (or ``triggers.http``)."""
    single = _object(metadata.get("trigger"), f"{where}.metadata.trigger")
    http = _object(_object(metadata.get("triggers"), f"{where}.metadata.triggers").get("http"), where)
    base = single.get("base") if single.get("type") == "http" else None
    base = base if base is not None else http.get("base")
    if base is not None and not isinstance(base, str):
        raise ValidationError(f"{where}.metadata.trigger.base", f"expected a path, got {base!r}")
    return base if base not in (None, "/") else None


def _variables(raw: object, where: str) -> dict[str, object]:
    result: dict[str, object] = {}
    for name, spec in _object(raw, f"{where}.variables").items():
        var = _object(spec, f"{where}.variables.{name}")
        entry: dict[str, object] = {}
        if isinstance(var.get("default"), str):
            entry["default"] = var["default"]
        else:
            entry["required"] = True
        if var.get("secret") is True:
            entry["secret"] = True
        if isinstance(var.get("description"), str) and var["description"]:
            entry["description"] = var["description"]
        result[name] = entry
    return result


def _trigger(raw: object, index: int, where: str) -> dict[str, object]:
    trig = _object(raw, f"{where}.triggers[{index}]")
    here = f"{where}.triggers[{index}] ({trig.get('id', '?')})"
    if trig.get("trigger_type") != "http":
        raise ValidationError(here, f"trigger type {trig.get('trigger_type')!r}: zerowatt serves HTTP triggers only")
    if trig.get("trigger_dependencies"):
        raise ValidationError(here, "trigger dependencies (middleware) are not supported by zerowatt")
    config = dict(_object(trig.get("trigger_config"), f"{here}.trigger_config"))
    if isinstance(trig.get("id"), str):
        config = {"id": trig["id"], **{k: v for k, v in config.items() if k != "id"}}
    return config


def _component(raw: object, index: int, where: str) -> tuple[str, dict[str, object], Content, list[StaticFile]]:
    comp = _object(raw, f"{where}.components[{index}]")
    cid = comp.get("id")
    if not isinstance(cid, str) or not COMPONENT_ID.match(cid):
        raise ValidationError(f"{where}.components[{index}].id", f"expected a kebab-case component id, got {cid!r}")
    here = f"{where}.components[{index}] ({cid})"
    if comp.get("dependencies"):
        raise ValidationError(
            f"{here}.dependencies",
            "component dependencies are not supported by zerowatt; push with composition (Spin's default)",
        )
    if comp.get("trigger_dependencies"):
        raise ValidationError(f"{here}.trigger_dependencies", "middleware is not supported by zerowatt")
    if comp.get("host_requirements"):
        raise ValidationError(f"{here}.host_requirements", f"not supported by zerowatt: {comp['host_requirements']!r}")
    source = _object(comp.get("source"), f"{here}.source")
    wasm = _content(source, f"{here}.source")
    if wasm.digest is None:
        raise ValidationError(f"{here}.source", "expected the Wasm's digest")
    metadata = _object(comp.get("metadata"), f"{here}.metadata")
    for k, reason in _UNSUPPORTED_METADATA.items():
        if metadata.get(k):
            raise ValidationError(f"{here}.metadata.{k}", f"{reason} (the app uses {metadata[k]!r})")
    table: dict[str, object] = {"source": wasm_path(wasm.digest)}
    if isinstance(metadata.get("description"), str) and metadata["description"]:
        table["description"] = metadata["description"]
    env = _string_map(comp.get("env"), f"{here}.env")
    if env:
        table["environment"] = env
    config = _string_map(comp.get("config"), f"{here}.config")
    if config:
        table["variables"] = config
    hosts = _strings(metadata.get("allowed_outbound_hosts"), f"{here}.metadata.allowed_outbound_hosts")
    if hosts:
        table["allowed_outbound_hosts"] = hosts
    files_raw = comp.get("files") or []
    if not isinstance(files_raw, list):
        raise ValidationError(f"{here}.files", "expected an array of {digest, path} objects")
    files: list[StaticFile] = []
    seen: set[str] = set()
    for j, item in enumerate(files_raw):
        at = f"{here}.files[{j}]"
        entry = _object(item, at)
        path = safe_relative_path(entry.get("path"), f"{at}.path")
        if path in seen or any(p.startswith(path + "/") or path.startswith(p + "/") for p in seen):
            raise ValidationError(f"{at}.path", f"{path!r} clashes with another file of the component")
        seen.add(path)
        files.append(StaticFile(component=cid, path=path, content=_content(entry, at)))
    if files:
        table["files"] = [{"source": f"files/{cid}", "destination": "/"}]
    return cid, table, wasm, files


def plan_app(locked_bytes: bytes, *, where: str) -> AppPlan:
    """The locked app's bytes → :class:`AppPlan`. ``where`` names the reference (``REF: spin.lock``)."""
    if len(locked_bytes) > MAX_LOCKED_APP_BYTES:
        raise ValidationError(
            where, f"locked app is {len(locked_bytes)} bytes; expected at most {MAX_LOCKED_APP_BYTES}"
        )
    try:
        doc = json.loads(locked_bytes)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationError(where, f"the locked app is not JSON: {exc}") from None
    if not isinstance(doc, dict) or "spin_lock_version" not in doc:
        raise ValidationError(where, "not a Spin application (no spin_lock_version): a plain Wasm package?")
    if doc.get("host_requirements") or doc.get("must_understand"):
        required = doc.get("host_requirements") or doc.get("must_understand")
        raise ValidationError(f"{where}.host_requirements", f"not supported by zerowatt: {required!r}")
    metadata = _object(doc.get("metadata"), f"{where}.metadata")
    application = _application(metadata, where)
    parts = ["spin_manifest_version = 2\n", tomlwrite.table("application", application, f"{where}.metadata")]
    base = _base(metadata, where)
    if base is not None:
        parts.append(tomlwrite.table("application.trigger.http", {"base": base}, f"{where}.metadata.trigger"))
    variables = _variables(doc.get("variables"), where)
    if variables:
        parts.append(tomlwrite.table("variables", variables, f"{where}.variables"))
    triggers = doc.get("triggers")
    components = doc.get("components")
    if not isinstance(triggers, list) or not isinstance(components, list) or not components:
        raise ValidationError(where, "expected 'triggers' and a non-empty 'components' array")
    for i, raw in enumerate(triggers):
        parts.append(tomlwrite.table("trigger.http", _trigger(raw, i, where), f"{where}.triggers[{i}]", array=True))
    wasm: dict[str, Content] = {}
    files: list[StaticFile] = []
    ids: list[str] = []
    for i, raw in enumerate(components):
        cid, table, content, comp_files = _component(raw, i, where)
        if cid in ids:
            raise ValidationError(f"{where}.components[{i}].id", f"duplicate component id {cid!r}")
        ids.append(cid)
        assert content.digest is not None
        if content.inline is not None or content.digest not in wasm:
            wasm[content.digest] = content
        files.extend(comp_files)
        parts.append(tomlwrite.table(f"component.{tomlwrite.string(cid)}", table, f"{where}.components[{i}]"))
    return AppPlan(
        name=str(application["name"]), wasm=wasm, files=tuple(files), manifest="\n".join(parts), components=tuple(ids)
    )
