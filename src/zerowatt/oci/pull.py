"""``zerowatt pull``: fetch a Spin app and lay it out so that ``zerowatt up DIR/spin.toml`` serves it.

The adapter around the core: it reads pull secrets, fetches through :mod:`zerowatt.oci.registry`, has
every manifest, layer, inline blob and URL archive checked against its digest, and writes into a staging
directory inside DIR that becomes DIR's content only when everything is in place (``spin.toml`` last).
DIR must be empty or hold only an earlier pull (listed in ``.zerowatt-pull.json``; a restarted init
container re-pulls cleanly): nothing else in it is ever deleted. Files are created with ``O_EXCL`` and
``O_NOFOLLOW`` under paths the core has checked, so a hostile artifact cannot write outside DIR.
"""

from __future__ import annotations

import json
import os
import shutil
import tomllib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from zerowatt.errors import ValidationError
from zerowatt.oci.archive import ArchiveFile, app_files, index_by_digest, merge_layers
from zerowatt.oci.auth import Credentials, credentials_for
from zerowatt.oci.locked import AppPlan, plan_app, wasm_path
from zerowatt.oci.manifest import (
    ARCHIVE_LAYER,
    MAX_LOCKED_APP_BYTES,
    MAX_MANIFEST_BYTES,
    Descriptor,
    ImageManifest,
    parse_manifest,
    verify_digest,
)
from zerowatt.oci.reference import OciReference, UrlReference, parse_reference
from zerowatt.oci.registry import HttpFetcher, RegistryClient
from zerowatt.wasm.manifest.parse import parse_manifest as parse_spin_manifest

#: Where the operator mounts each ``imagePullSecrets`` entry (``SECRET/.dockerconfigjson``).
PULL_SECRETS_DIR = Path("/var/run/zerowatt/pull-secrets")
RECORD = ".zerowatt-pull.json"
STAGING_PREFIX = ".zerowatt-pull-"
DEFAULT_MAX_BYTES = 512 * 2**20
#: Layers fetched at once.
PARALLEL_FETCHES = 8


@dataclass(frozen=True, slots=True)
class PullSettings:
    """How to pull: byte budget, plain HTTP for non-loopback registries, timeout, where credentials are."""

    max_bytes: int = DEFAULT_MAX_BYTES
    insecure: bool = False
    timeout: float = 30.0
    auth_files: tuple[Path, ...] = ()
    pull_secrets: Path = PULL_SECRETS_DIR


@dataclass(frozen=True, slots=True)
class PullResult:
    """What was pulled: the reference, the digest of what was fetched, the manifest to serve."""

    reference: str
    digest: str
    manifest: Path
    app: str
    components: tuple[str, ...]
    files: int
    bytes: int

    def as_dict(self) -> dict[str, object]:
        return {
            "reference": self.reference,
            "digest": self.digest,
            "manifest": str(self.manifest),
            "app": self.app,
            "components": list(self.components),
            "files": self.files,
            "bytes": self.bytes,
        }


def load_credentials(registry: str, settings: PullSettings) -> Credentials | None:
    """Credentials for ``registry``: ``--auth-file`` files first, then each mounted pull secret (sorted)."""
    configs: list[tuple[str, str]] = []
    sources = list(settings.auth_files)
    if settings.pull_secrets.is_dir():
        sources += sorted(settings.pull_secrets.glob("*/.dockerconfigjson"))
    for path in sources:
        try:
            configs.append((str(path), path.read_text()))
        except (OSError, UnicodeDecodeError) as exc:
            raise ValidationError(str(path), f"cannot read the auth file: {exc}") from None
    return credentials_for(registry, configs)


def pull(text: str, dest: Path, settings: PullSettings) -> PullResult:
    """Pull ``text`` (an OCI reference or a ``URL#sha256=…``) into ``dest``; return what was written."""
    ref = parse_reference(text)
    staging = _prepare(dest)
    fetcher = HttpFetcher(timeout=settings.timeout)
    try:
        if isinstance(ref, UrlReference):
            result = _pull_url(ref, staging, fetcher, settings, dest / "spin.toml")
        else:
            result = _pull_oci(ref, staging, fetcher, settings, dest / "spin.toml")
        _check_manifest(staging / "spin.toml", str(ref))
        _publish(staging, dest, result)
    finally:
        fetcher.close()
        shutil.rmtree(staging, ignore_errors=True)
    return result


def _pull_oci(
    ref: OciReference, staging: Path, fetcher: HttpFetcher, settings: PullSettings, manifest_path: Path
) -> PullResult:
    where = str(ref)
    client = RegistryClient(ref, load_credentials(ref.registry, settings), fetcher, insecure=settings.insecure)
    manifest = parse_manifest(client.manifest(MAX_MANIFEST_BYTES), where=where, expected_digest=ref.digest)
    total = sum(layer.size for layer in manifest.layers) + manifest.config.size
    if total > settings.max_bytes:
        raise ValidationError(
            where, f"the artifact's layers add up to {total} bytes; the limit is {settings.max_bytes}"
        )
    locked_descriptor = manifest.locked_app_descriptor()
    if locked_descriptor is None and manifest.is_container_image():
        return _pull_image_layers(manifest, client, staging, settings, manifest_path, where)
    if locked_descriptor is None:
        raise ValidationError(
            where, "not a Spin application: no spin.application layer or config, and not a FROM scratch app image"
        )
    locked = _blob(client, locked_descriptor, min(MAX_LOCKED_APP_BYTES, settings.max_bytes), f"{where}: locked app")
    plan = plan_app(locked, where=f"{where}: spin.lock")
    blobs = _layers_for(plan, manifest, client, settings, where)
    written = _write_app(plan, blobs, staging, where)
    (staging / "spin.lock").write_bytes(locked)
    return PullResult(
        str(ref), manifest.digest, manifest_path, plan.name, plan.components, len(plan.files), written + len(locked)
    )


def _blob(client: RegistryClient, layer: Descriptor, cap: int, what: str) -> bytes:
    what = f"{what} {layer.digest}"
    if layer.size > cap:
        raise ValidationError(what, f"is {layer.size} bytes; expected at most {cap}")
    data = client.blob(layer.digest, layer.size, what)
    if len(data) != layer.size:
        raise ValidationError(what, f"is {len(data)} bytes; the manifest says {layer.size}")
    verify_digest(data, layer.digest, what)
    return data


def _layers_for(
    plan: AppPlan, manifest: ImageManifest, client: RegistryClient, settings: PullSettings, where: str
) -> dict[str, bytes]:
    """The bytes of every digest the plan needs: from its own layer, else from the archive layers.

    Layers are fetched :data:`PARALLEL_FETCHES` at a time (Spin's client fetches 16): an app with a layer
    per static file is otherwise one registry round trip per file.
    """
    needed = plan.needed_digests()
    direct: dict[str, Descriptor] = {}
    for layer in manifest.layers:
        if layer.digest in needed and layer.media_type != ARCHIVE_LAYER:
            direct.setdefault(layer.digest, layer)
    archives = [layer for layer in manifest.layers if layer.media_type == ARCHIVE_LAYER]
    if not needed - direct.keys():
        archives = []
    fetched = _fetch_all(client, [*direct.values(), *archives], settings.max_bytes, where)
    blobs = {d: fetched[d] for d in direct}
    budget = settings.max_bytes
    for layer in archives:
        found = index_by_digest(fetched[layer.digest], where=f"{where}: archive layer {layer.digest}", max_bytes=budget)
        budget -= sum(len(v) for v in found.values())
        blobs.update({d: v for d, v in found.items() if d in needed})
    missing = needed - blobs.keys()
    if missing:
        raise ValidationError(where, f"the locked app names content no layer holds: {', '.join(sorted(missing))}")
    return blobs


def _fetch_all(client: RegistryClient, layers: list[Descriptor], cap: int, where: str) -> dict[str, bytes]:
    """Each layer's verified bytes by digest, fetched in parallel; the first failure is raised."""
    unique = list({layer.digest: layer for layer in layers}.values())
    if len(unique) <= 1:
        return {layer.digest: _blob(client, layer, cap, f"{where}: layer") for layer in unique}
    with ThreadPoolExecutor(max_workers=min(PARALLEL_FETCHES, len(unique))) as pool:
        data = list(pool.map(lambda layer: _blob(client, layer, cap, f"{where}: layer"), unique))
    return {layer.digest: blob for layer, blob in zip(unique, data, strict=True)}


def _create(path: Path, data: bytes, *, executable: bool = False) -> None:
    """A new file (never through a symlink, never over an existing one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o755 if executable else 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _write_app(plan: AppPlan, blobs: dict[str, bytes], staging: Path, where: str) -> int:
    written = 0
    for digest, content in plan.wasm.items():
        data = content.inline if content.inline is not None else blobs[digest]
        _create(staging / wasm_path(digest), data)
        written += len(data)
    for f in plan.files:
        data = f.content.inline if f.content.inline is not None else blobs[f.content.digest or ""]
        target = staging / "files" / f.component / f.path
        if target.exists():
            raise ValidationError(f"{where}: component {f.component}", f"file {f.path!r} is listed twice")
        _create(target, data)
        written += len(data)
    _create(staging / "spin.toml", plan.manifest.encode())
    return written


def _pull_image_layers(
    manifest: ImageManifest,
    client: RegistryClient,
    staging: Path,
    settings: PullSettings,
    manifest_path: Path,
    where: str,
) -> PullResult:
    """An app packaged as a container image (``FROM scratch``, ``spin.toml`` at the root): its layers' files."""
    layers: list[list[ArchiveFile]] = []
    budget = settings.max_bytes
    fetched = _fetch_all(client, list(manifest.layers), settings.max_bytes, where)
    for layer in manifest.layers:
        files = app_files(fetched[layer.digest], where=f"{where}: layer {layer.digest}", max_bytes=budget)
        budget -= sum(len(f.data) for f in files)
        layers.append(files)
    files = merge_layers(layers, where=where)
    name = _write_files(files, staging, where)
    size = sum(len(f.data) for f in files)
    return PullResult(where, manifest.digest, manifest_path, name, (), len(files), size)


def _write_files(files: list[ArchiveFile], staging: Path, where: str) -> str:
    """Write an app directory's files; it must have ``spin.toml`` at its root. Returns the app's name."""
    paths = {f.path.split("/")[0] for f in files}
    if "spin.toml" not in {f.path for f in files}:
        raise ValidationError(where, "the archive has no spin.toml at its root")
    if RECORD in paths or any(p.startswith(STAGING_PREFIX) for p in paths):
        raise ValidationError(
            where, f"the archive has an entry named {RECORD} or {STAGING_PREFIX}*, which zerowatt owns"
        )
    for f in files:
        _create(staging / f.path, f.data, executable=f.executable)
    try:
        name = tomllib.loads((staging / "spin.toml").read_text()).get("application", {}).get("name", "")
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, AttributeError):
        name = ""
    return str(name)


def _pull_url(
    ref: UrlReference, staging: Path, fetcher: HttpFetcher, settings: PullSettings, manifest_path: Path
) -> PullResult:
    where = str(ref)
    status, _, body = fetcher.get(ref.url, headers={}, max_bytes=settings.max_bytes, what=where)
    if status != 200:
        raise ValidationError(where, f"server answered HTTP {status}")
    verify_digest(body, ref.digest, where)
    files = app_files(body, where=where, max_bytes=settings.max_bytes)
    name = _write_files(files, staging, where)
    size = sum(len(f.data) for f in files)
    return PullResult(str(ref), ref.digest, manifest_path, str(name), (), len(files), size)


def _check_manifest(path: Path, where: str) -> None:
    """The generated (or shipped) ``spin.toml`` must pass zerowatt's parser now, not when the pod starts."""
    try:
        doc = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{where}: spin.toml", f"invalid TOML: {exc}") from None
    spec = parse_spin_manifest(doc, path)
    del spec


def _prepare(dest: Path) -> Path:
    """Make DIR ready: create it, remove an earlier pull's entries and staging leftovers; refuse anything else."""
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ValidationError(str(dest), "is not a directory") from None
    ours: set[str] = set()
    record = dest / RECORD
    if record.is_file():
        try:
            entries = json.loads(record.read_text()).get("entries", [])
        except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
            raise ValidationError(str(record), "is not a record of an earlier pull; remove it") from None
        # Only plain names directly in DIR: a doctored record must not reach outside it.
        ours = {n for n in entries if isinstance(n, str) and n not in ("", ".", "..") and "/" not in n}
        ours.add(RECORD)
    others = [e.name for e in dest.iterdir() if e.name not in ours and not e.name.startswith(STAGING_PREFIX)]
    if others:
        raise ValidationError(str(dest), f"is not empty ({', '.join(sorted(others)[:5])}); expected an empty directory")
    for entry in dest.iterdir():
        _remove(entry)
    staging = dest / f"{STAGING_PREFIX}{os.getpid()}"
    staging.mkdir()
    return staging


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _publish(staging: Path, dest: Path, result: PullResult) -> None:
    """Move the staged entries into DIR, ``spin.toml`` last, and record them for the next pull."""
    entries = sorted(e.name for e in staging.iterdir())
    record = {**result.as_dict(), "entries": entries}
    _create(staging / RECORD, json.dumps(record, indent=2).encode())
    for name in _manifest_last([*entries, RECORD]):
        os.rename(staging / name, dest / name)


def _manifest_last(names: Iterable[str]) -> list[str]:
    return sorted(names, key=lambda n: n == "spin.toml")
