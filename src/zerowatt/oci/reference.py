"""What ``zerowatt pull`` is asked to fetch: an OCI reference or a digest-pinned HTTP(S) URL.

OCI references follow the grammar of the distribution project's ``reference`` package (the one Docker,
``oci-client`` and therefore ``spin registry push`` parse): ``[REGISTRY/]REPOSITORY[:TAG][@DIGEST]``, the
registry being the first component when it contains ``.`` or ``:`` or is ``localhost``, Docker Hub
(``docker.io``, API host ``registry-1.docker.io``, ``library/`` for one-component names) otherwise.
Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from zerowatt.errors import ValidationError

#: ``sha256:`` and 64 lower-case hex digits: the only digest algorithm zerowatt verifies.
DIGEST = re.compile(r"sha256:[0-9a-f]{64}\Z")
# distribution/reference: path components, tags (regexp.go).
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*\Z")
_TAG = re.compile(r"[\w][\w.-]{0,127}\Z")
_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?\Z"
)
DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
#: Hosts served over plain HTTP without ``--insecure`` (as Docker treats them): nothing leaves the machine.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


@dataclass(frozen=True, slots=True)
class OciReference:
    """A parsed OCI reference. ``tag`` is ``latest`` when neither tag nor digest is given."""

    registry: str  # as written (docker.io for Docker Hub)
    repository: str
    tag: str | None
    digest: str | None

    @property
    def api_host(self) -> str:
        """Where the registry's HTTP API lives (``host[:port]``)."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def manifest_ref(self) -> str:
        """What goes after ``/manifests/``: the digest when pinned, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def loopback(self) -> bool:
        host = self.registry.rsplit(":", 1)[0] if not self.registry.endswith("]") else self.registry
        return host in LOOPBACK_HOSTS

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


@dataclass(frozen=True, slots=True)
class UrlReference:
    """An HTTP(S) URL of an app archive, with the sha256 digest it must have (from ``#sha256=HEX``)."""

    url: str  # without the fragment
    digest: str

    def __str__(self) -> str:
        return f"{self.url}#{self.digest.replace(':', '=')}"


def parse_reference(text: str) -> OciReference | UrlReference:
    """``text`` → a reference; errors (exit 2) quote it and say what was expected."""
    if "://" in text:
        return _parse_url(text)
    return parse_oci_reference(text)


def _parse_url(text: str) -> UrlReference:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError(
            text, "expected an https:// (or http://) URL, or an OCI reference like ghcr.io/org/app:1.0"
        )
    fragment = parts.fragment
    if not fragment.startswith("sha256="):
        raise ValidationError(
            text, "a URL must carry the digest of what it serves: expected '#sha256=<64 hex digits>' at its end"
        )
    digest = "sha256:" + fragment[len("sha256=") :]
    if not DIGEST.match(digest):
        raise ValidationError(text, f"expected '#sha256=' and 64 lower-case hex digits, got '#{fragment}'")
    return UrlReference(url=text.split("#", 1)[0], digest=digest)


def parse_oci_reference(text: str) -> OciReference:
    """``[REGISTRY/]REPOSITORY[:TAG][@DIGEST]`` → :class:`OciReference`."""
    if not text or len(text) > 4096 or any(c.isspace() for c in text):
        raise ValidationError(repr(text), "expected an OCI reference like ghcr.io/org/app:1.0 (no spaces)")
    rest, digest = text, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not DIGEST.match(digest):
            raise ValidationError(text, f"expected '@sha256:' and 64 lower-case hex digits, got '@{digest}'")
    tag = None
    last_slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > last_slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG.match(tag):
            raise ValidationError(text, f"expected a tag of letters, digits, '_', '.', '-' (at most 128), got {tag!r}")
    first, _, remainder = rest.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        registry, path = first, remainder
        if not _HOST.match(registry):
            raise ValidationError(text, f"expected a registry host[:port], got {registry!r}")
    else:
        registry, path = DOCKER_HUB, rest
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    for component in path.split("/"):
        if not _COMPONENT.match(component):
            raise ValidationError(
                text, f"expected repository path components of lower-case letters and digits, got {component!r}"
            )
    if tag is None and digest is None:
        tag = "latest"
    return OciReference(registry=registry, repository=path, tag=tag, digest=digest)
