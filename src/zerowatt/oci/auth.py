"""Registry credentials and challenges, as Docker and the distribution token spec define them.

- ``.dockerconfigjson`` files (the ``kubernetes.io/dockerconfigjson`` Secret type that SpinApp's
  ``imagePullSecrets`` name): ``{"auths": {"HOST": {"auth": base64("user:pass")}}}`` or ``username`` and
  ``password``; keys may be URLs (``https://index.docker.io/v1/``) and are matched by host.
- ``WWW-Authenticate`` challenges (RFC 7235): ``Bearer realm="…",service="…",scope="…"`` (the
  distribution project's token authentication: the client asks the realm for a token, with basic
  credentials when it has some) or ``Basic realm="…"``.
Pure: texts in, values out.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from zerowatt.errors import ValidationError
from zerowatt.oci.reference import DOCKER_HUB, DOCKER_HUB_API

_DOCKER_HUB_NAMES = {DOCKER_HUB, DOCKER_HUB_API, "index.docker.io"}
_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


@dataclass(frozen=True, slots=True)
class Credentials:
    """A user name and password (or token) for one registry, and which file they came from."""

    username: str
    password: str
    source: str

    def basic_header(self) -> str:
        """The ``Authorization`` value for basic authentication."""
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()

    def __repr__(self) -> str:  # never print the password
        return f"Credentials(username={self.username!r}, source={self.source!r})"


@dataclass(frozen=True, slots=True)
class Challenge:
    """A parsed ``WWW-Authenticate`` header: the scheme (lower case) and its parameters."""

    scheme: str
    params: dict[str, str]


def _host_of(key: str) -> str:
    host = urlsplit(key).netloc if "://" in key else key.split("/", 1)[0]
    host = host.lower()
    return DOCKER_HUB if host in _DOCKER_HUB_NAMES else host


def credentials_for(registry: str, configs: list[tuple[str, str]]) -> Credentials | None:
    """The first credentials for ``registry`` in ``configs`` (``(file name, JSON text)``, in priority order).

    A file that is not a Docker config is an error naming it (a mounted Secret of the wrong type).
    """
    wanted = _host_of(registry)
    for source, text in configs:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(source, f"expected a .dockerconfigjson document: {exc}") from None
        auths = doc.get("auths") if isinstance(doc, dict) else None
        if not isinstance(auths, dict):
            raise ValidationError(source, 'expected a .dockerconfigjson document with an "auths" object')
        for key, entry in auths.items():
            if _host_of(key) != wanted or not isinstance(entry, dict):
                continue
            user, password = entry.get("username"), entry.get("password")
            if isinstance(entry.get("auth"), str) and entry["auth"]:
                try:
                    user, _, password = base64.b64decode(entry["auth"], validate=True).decode().partition(":")
                except (binascii.Error, UnicodeDecodeError):
                    raise ValidationError(f"{source}: auths.{key}.auth", "expected base64 of 'user:password'") from None
            if isinstance(user, str) and isinstance(password, str) and user:
                return Credentials(username=user, password=password, source=source)
    return None


def parse_challenge(header: str) -> Challenge:
    """``Bearer realm="https://auth/token",service="reg",scope="repository:x:pull"`` → :class:`Challenge`."""
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        match = _PARAM.match(rest, pos)
        if not match or match.end() == pos:
            break
        quoted, bare = match.group(2), match.group(3)
        params[match.group(1).lower()] = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare or ""
        pos = match.end()
    return Challenge(scheme=scheme.lower(), params=params)


def token_url(challenge: Challenge, repository: str, *, where: str) -> str:
    """The realm URL to ask for a pull token of ``repository`` (the challenge's scope when it names one)."""
    realm = challenge.params.get("realm", "")
    if urlsplit(realm).scheme not in ("http", "https"):
        raise ValidationError(where, f"registry's token challenge has no usable realm: {realm!r}")
    query = {}
    if challenge.params.get("service"):
        query["service"] = challenge.params["service"]
    query["scope"] = challenge.params.get("scope") or f"repository:{repository}:pull"
    return realm + ("&" if "?" in realm else "?") + urlencode(query)


def token_from_response(body: bytes, *, where: str) -> str:
    """The token of a token endpoint's JSON answer (``token``, or OAuth2's ``access_token``)."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        doc = None
    token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
    if not isinstance(token, str) or not token:
        raise ValidationError(where, "the registry's token endpoint answered without a token")
    return token
