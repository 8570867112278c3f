"""A test pusher that lays a Spin app out in a registry exactly as ``spin registry push`` does.

From Spin's ``crates/oci/src/client.rs`` and ``crates/loader/src/local.rs`` (spinframework/spin): the
app is locked (metadata ``name``/``version``/``description``/``trigger``/``triggers``, triggers with
``trigger_config``, components whose files are copied under one mount root and then listed one by one
relative to it), each component's Wasm becomes a ``…layer.v1+wasm`` layer, each file a ``…layer.v1+data``
layer unless it is at most 128 bytes (then inlined as base64 and not pushed) or, in archive mode, one
``…bundle.v1.tar+gzip`` layer per mount; the locked app is the last layer (``…spin.application.v1+config``)
and the OCI config carries its digest in the label ``com.fermyon.spin.lockedAppDigest``. Pushed through
the distribution API's upload endpoints (POST, then PUT with the digest; manifest PUT).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from zerowatt.oci import manifest as mt

INLINE_MAX = 128


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Artifact:
    """What a push sends: the layers (media type, bytes), the locked app, the config and the manifest."""

    locked: dict[str, Any]
    layers: list[tuple[str, bytes]] = field(default_factory=list)
    legacy: bool = False  # Spin < 2.0: the locked app is the manifest's config

    def locked_bytes(self) -> bytes:
        return json.dumps(self.locked, separators=(",", ":")).encode()

    def config_bytes(self) -> bytes:
        if self.legacy:
            return self.locked_bytes()
        config = {
            "architecture": "wasm",
            "os": "wasip1",
            "config": {"Labels": {"com.fermyon.spin.lockedAppDigest": digest(self.locked_bytes())}},
            "rootfs": {"type": "layers", "diff_ids": []},
        }
        return json.dumps(config).encode()

    def all_layers(self) -> list[tuple[str, bytes]]:
        if self.legacy:
            return list(self.layers)
        return [*self.layers, (mt.SPIN_APPLICATION, self.locked_bytes())]

    def manifest_bytes(self) -> bytes:
        config = self.config_bytes()
        config_type = mt.SPIN_APPLICATION if self.legacy else "application/vnd.oci.image.config.v1+json"
        doc = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": config_type, "digest": digest(config), "size": len(config)},
            "layers": [{"mediaType": m, "digest": digest(b), "size": len(b)} for m, b in self.all_layers()],
            "annotations": {"org.opencontainers.image.title": self.locked["metadata"]["name"]},
        }
        return json.dumps(doc).encode()


def content_ref(data: bytes) -> dict[str, str]:
    ref = {"digest": digest(data)}
    if len(data) <= INLINE_MAX:
        ref["inline"] = base64.b64encode(data).decode()
    return ref


def _mount_files(app_dir: Path, files: list[Any]) -> dict[str, bytes]:
    """Spin's Copy strategy: every mount copied under one root; ``{source, destination}`` or globs."""
    out: dict[str, bytes] = {}
    for entry in files:
        if isinstance(entry, dict):
            src, dest = app_dir / entry["source"], entry["destination"].strip("/")
            paths = [p for p in sorted(src.rglob("*")) if p.is_file()] if src.is_dir() else [src]
            for p in paths:
                rel = p.relative_to(src).as_posix() if src.is_dir() else p.name
                out[f"{dest}/{rel}" if dest else rel] = p.read_bytes()
        else:
            for p in sorted(app_dir.glob(entry)):
                if p.is_file():
                    out[p.relative_to(app_dir).as_posix()] = p.read_bytes()
    return out


def _targz(files: dict[str, bytes]) -> bytes:
    """A gzip'd tar of ``files``, byte-for-byte reproducible (gzip header time 0, fixed member times)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo("./" + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def lock_and_assemble(manifest_path: Path, *, archive: bool = False, legacy: bool = False) -> Artifact:
    """A version-2 ``spin.toml`` (the subset the examples use) → the artifact Spin would push."""
    doc = tomllib.loads(manifest_path.read_text())
    app_dir = manifest_path.parent
    application = doc["application"]
    metadata: dict[str, Any] = {"name": application["name"], "triggers": {}, "trigger": {"type": "http"}}
    for key in ("version", "description"):
        if key in application:
            metadata[key] = application[key]
    if application.get("authors"):
        metadata["authors"] = application["authors"]
    variables = {}
    for name, spec in doc.get("variables", {}).items():
        variables[name] = {k: v for k, v in spec.items() if k in ("default", "secret", "description")}
    triggers = []
    for i, trig in enumerate(doc["trigger"]["http"]):
        config = {k: v for k, v in trig.items() if k != "id"}
        triggers.append({"id": trig.get("id", f"trigger-{i}"), "trigger_type": "http", "trigger_config": config})
    layers: list[tuple[str, bytes]] = []
    components = []
    for cid, comp in doc["component"].items():
        wasm = (app_dir / comp["source"]).read_bytes()
        layers.append((mt.WASM_LAYER, wasm))
        locked_comp: dict[str, Any] = {
            "id": cid,
            "metadata": {"allowed_outbound_hosts": comp.get("allowed_outbound_hosts", [])},
            "source": {"content_type": "application/wasm", **content_ref(wasm)},
        }
        if comp.get("environment"):
            locked_comp["env"] = comp["environment"]
        if comp.get("variables"):
            locked_comp["config"] = comp["variables"]
        mounted = _mount_files(app_dir, comp.get("files", []))
        if mounted:
            locked_comp["files"] = [{**content_ref(data), "path": path} for path, data in mounted.items()]
            if archive:
                layers.append((mt.ARCHIVE_LAYER, _targz(mounted)))
            else:
                layers += [(mt.DATA_LAYER, data) for data in mounted.values() if len(data) > INLINE_MAX]
        components.append(locked_comp)
    unique = list(dict.fromkeys(layers))  # Spin deduplicates layers
    locked = {
        "spin_lock_version": 0,
        "metadata": metadata,
        **({"variables": variables} if variables else {}),
        "triggers": triggers,
        "components": components,
    }
    return Artifact(locked=locked, layers=unique, legacy=legacy)


@dataclass
class ImageArtifact:
    """An app packaged as a container image ``FROM scratch`` (containerd-shim-spin's other format): each layer a
    gzip'd tar of files, ``spin.toml`` at the root."""

    files_per_layer: list[dict[str, bytes]]

    def config_bytes(self) -> bytes:
        return json.dumps({"architecture": "wasm", "os": "wasip1", "rootfs": {"type": "layers"}}).encode()

    def all_layers(self) -> list[tuple[str, bytes]]:
        return [("application/vnd.oci.image.layer.v1.tar+gzip", _targz(f)) for f in self.files_per_layer]

    def manifest_bytes(self) -> bytes:
        config = self.config_bytes()
        doc = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config),
                       "size": len(config)},
            "layers": [{"mediaType": m, "digest": digest(b), "size": len(b)} for m, b in self.all_layers()],
        }  # fmt: skip
        return json.dumps(doc).encode()


def push(
    base: str,
    repository: str,
    tag: str,
    artifact: Artifact | ImageArtifact,
    *,
    auth: tuple[str, str] | None = None,
    bearer: str | None = None,
) -> str:
    """Upload blobs and the manifest through the distribution API; return the manifest digest."""
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    with httpx.Client(base_url=base, auth=auth, headers=headers, timeout=30) as client:
        blobs = [artifact.config_bytes(), *(b for _, b in artifact.all_layers())]
        for blob in blobs:
            started = client.post(f"/v2/{repository}/blobs/uploads/")
            assert started.status_code == 202, started.text
            location = started.headers["location"]
            sep = "&" if "?" in location else "?"
            done = client.put(
                f"{location}{sep}digest={digest(blob)}",
                content=blob,
                headers={"Content-Type": "application/octet-stream"},
            )
            assert done.status_code == 201, done.text
        body = artifact.manifest_bytes()
        answer = client.put(
            f"/v2/{repository}/manifests/{tag}", content=body, headers={"Content-Type": mt.OCI_MANIFEST}
        )
        assert answer.status_code == 201, answer.text
        return digest(body)
