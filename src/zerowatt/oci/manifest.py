"""OCI image manifests as ``spin registry push`` writes them: media types, descriptors, limits, digests.

Media types and layout from Spin's ``crates/oci/src/client.rs`` (spinframework/spin, Apache-2.0): the
locked app (``spin.lock`` JSON) is a layer of type :data:`SPIN_APPLICATION` (Spin before 2.0 put it in the
manifest's *config* instead, with that same media type; both are read), each component's Wasm is a
:data:`WASM_LAYER` (or ``application/wasm`` from ``wkg``), each static file a :data:`DATA_LAYER` (files
of at most 128 bytes are inlined in the locked app and get no layer) or, when an app has more than 499
layers or ``SPIN_OCI_ARCHIVE_LAYERS`` is set, one gzip'd tar :data:`ARCHIVE_LAYER` per files mount.
The locked app names every Wasm and file by its sha256 digest. Pure: bytes in, checked values out.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from zerowatt.errors import ValidationError
from zerowatt.oci.reference import DIGEST

SPIN_APPLICATION = "application/vnd.fermyon.spin.application.v1+config"
DATA_LAYER = "application/vnd.wasm.content.layer.v1+data"
ARCHIVE_LAYER = "application/vnd.wasm.content.bundle.v1.tar+gzip"
WASM_LAYER = "application/vnd.wasm.content.layer.v1+wasm"
WASM_LAYER_WKG = "application/wasm"
#: Container image layers: apps packaged ``FROM scratch`` with ``spin.toml`` and the Wasm at the root, the
#: other form containerd-shim-spin (SpinKube's runtime) accepts.
IMAGE_LAYERS = frozenset(
    {
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
    }
)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
#: The ``Accept`` header of a manifest request: the two single-image forms (an index is refused).
MANIFEST_ACCEPT = ", ".join((OCI_MANIFEST, DOCKER_MANIFEST))

#: The distribution registry refuses manifests over 4 MiB; so does zerowatt.
MAX_MANIFEST_BYTES = 4 * 2**20
#: Spin's own cap on layers per app (``MAX_LAYER_COUNT``, the lowest known registry limit, ECR's 500).
MAX_LAYERS = 500
#: Largest locked app (``spin.lock`` JSON) read.
MAX_LOCKED_APP_BYTES = 16 * 2**20


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def verify_digest(data: bytes, expected: str, what: str) -> None:
    """Refuse ``data`` unless its sha256 is ``expected``; the error names ``what``."""
    actual = sha256_digest(data)
    if actual != expected:
        raise ValidationError(what, f"digest mismatch: expected {expected}, got {actual}; refusing the content")


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A content descriptor: what a blob is, its digest and its size in bytes."""

    media_type: str
    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class ImageManifest:
    """A single-image manifest: its config and layers, and the digest of the manifest bytes."""

    digest: str
    config: Descriptor
    layers: tuple[Descriptor, ...]

    def is_container_image(self) -> bool:
        """Whether every layer is a file system layer (an app image built ``FROM scratch``)."""
        return bool(self.layers) and all(layer.media_type in IMAGE_LAYERS for layer in self.layers)

    def locked_app_descriptor(self) -> Descriptor | None:
        """The layer holding the locked app, or the config when it is one (pre-2.0 Spin); None if neither."""
        for layer in self.layers:
            if layer.media_type == SPIN_APPLICATION:
                return layer
        return self.config if self.config.media_type == SPIN_APPLICATION else None


def _descriptor(value: object, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise ValidationError(where, "expected a descriptor object with mediaType, digest and size")
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise ValidationError(f"{where}.mediaType", f"expected a media type string, got {media_type!r}")
    if not isinstance(digest, str) or not DIGEST.match(digest):
        raise ValidationError(f"{where}.digest", f"expected 'sha256:' and 64 lower-case hex digits, got {digest!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValidationError(f"{where}.size", f"expected a byte count, got {size!r}")
    return Descriptor(media_type=media_type, digest=digest, size=size)


def parse_manifest(data: bytes, *, where: str, expected_digest: str | None) -> ImageManifest:
    """Manifest bytes → :class:`ImageManifest`, verified against ``expected_digest`` when the reference pins one.

    ``where`` names the reference in errors. An index (multi-platform list) is refused: Spin never pushes one.
    """
    if len(data) > MAX_MANIFEST_BYTES:
        raise ValidationError(where, f"manifest is {len(data)} bytes; expected at most {MAX_MANIFEST_BYTES}")
    digest = sha256_digest(data)
    if expected_digest is not None and digest != expected_digest:
        raise ValidationError(where, f"manifest digest mismatch: expected {expected_digest}, got {digest}")
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationError(where, f"manifest is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValidationError(where, "expected a manifest JSON object")
    media_type = doc.get("mediaType")
    if media_type in (OCI_INDEX, DOCKER_LIST) or "manifests" in doc:
        raise ValidationError(where, "is an image index (a multi-platform list), not a Spin application manifest")
    if doc.get("schemaVersion") != 2:
        raise ValidationError(where, f"expected schemaVersion 2, got {doc.get('schemaVersion')!r}")
    if media_type not in (None, OCI_MANIFEST, DOCKER_MANIFEST):
        raise ValidationError(where, f"expected an image manifest ({OCI_MANIFEST}), got media type {media_type!r}")
    config = _descriptor(doc.get("config"), f"{where}: config")
    raw_layers = doc.get("layers")
    if not isinstance(raw_layers, list):
        raise ValidationError(f"{where}: layers", "expected an array of descriptors")
    if len(raw_layers) > MAX_LAYERS:
        raise ValidationError(
            f"{where}: layers", f"{len(raw_layers)} layers; expected at most {MAX_LAYERS} (Spin's cap)"
        )
    layers = tuple(_descriptor(layer, f"{where}: layers[{i}]") for i, layer in enumerate(raw_layers))
    return ImageManifest(digest=digest, config=config, layers=layers)
