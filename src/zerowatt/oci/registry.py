"""The HTTP adapter: GET manifests and blobs from a registry (distribution API v2) or a plain URL.

Authentication as Spin's client (``oci-client``) and Docker do it: try anonymously; on ``401`` read the
challenge and either fetch a Bearer token from the realm (with basic credentials when the pull secrets
have some for this registry) or send basic credentials; retry once. Redirects (registries hand blobs to
object storage) are followed by hand, at most 5, and the ``Authorization`` header never leaves the
registry's host. Every body is read in chunks under a byte cap (the descriptor's size when known), so a
hostile server cannot make the pull hold more than it allowed.
"""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import httpx

from zerowatt.errors import ValidationError, ZerowattError
from zerowatt.oci.auth import Credentials, parse_challenge, token_from_response, token_url
from zerowatt.oci.manifest import MANIFEST_ACCEPT
from zerowatt.oci.reference import OciReference

MAX_REDIRECTS = 5
_CHUNK = 1 << 16


class FetchError(ZerowattError):
    """The registry or server could not be reached or failed (exit 1: worth retrying, unlike bad content)."""


class HttpFetcher:
    """GETs with a byte cap and manual redirects over one keep-alive ``httpx.Client``."""

    def __init__(self, *, timeout: float, user_agent: str = "zerowatt-pull") -> None:
        self.client = httpx.Client(timeout=timeout, follow_redirects=False, headers={"User-Agent": user_agent})

    def close(self) -> None:
        self.client.close()

    def get(self, url: str, *, headers: dict[str, str], max_bytes: int, what: str) -> tuple[int, dict[str, str], bytes]:
        """``(status, headers, body)`` of a GET (after redirects); the body is capped at ``max_bytes``."""
        origin = urlsplit(url).netloc
        for _ in range(MAX_REDIRECTS + 1):
            sent = dict(headers)
            if urlsplit(url).netloc != origin:
                sent.pop("Authorization", None)
            try:
                with self.client.stream("GET", url, headers=sent) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    length = response.headers.get("content-length")
                    declared = int(length) if length and length.isascii() and length.isdigit() else 0
                    if response.status_code == 200 and declared > max_bytes:
                        raise ValidationError(what, f"is {length} bytes; expected at most {max_bytes}")
                    body = bytearray()
                    for chunk in response.iter_bytes(_CHUNK):
                        body += chunk
                        if len(body) > max_bytes:
                            if response.status_code != 200:
                                break
                            raise ValidationError(what, f"is more than {max_bytes} bytes (the size limit)")
                    return response.status_code, {k.lower(): v for k, v in response.headers.items()}, bytes(body)
            except httpx.HTTPError as exc:
                raise FetchError(f"{what}: cannot fetch {url}: {exc}") from None
        raise FetchError(f"{what}: more than {MAX_REDIRECTS} redirects from {url}")


class RegistryClient:
    """Manifests and blobs of one repository, authenticated as the registry asks."""

    def __init__(
        self, ref: OciReference, credentials: Credentials | None, fetcher: HttpFetcher, *, insecure: bool
    ) -> None:
        scheme = "http" if insecure or ref.loopback else "https"
        self.ref = ref
        self.base = f"{scheme}://{ref.api_host}/v2/{ref.repository}"
        self.credentials = credentials
        self.fetcher = fetcher
        self.authorization: str | None = None

    def manifest(self, max_bytes: int) -> bytes:
        return self._get(f"{self.base}/manifests/{self.ref.manifest_ref}", MANIFEST_ACCEPT, max_bytes, f"{self.ref}")

    def blob(self, digest: str, max_bytes: int, what: str) -> bytes:
        return self._get(f"{self.base}/blobs/{digest}", "*/*", max_bytes, what)

    def _get(self, url: str, accept: str, max_bytes: int, what: str) -> bytes:
        for attempt in (1, 2):
            headers = {"Accept": accept}
            if self.authorization:
                headers["Authorization"] = self.authorization
            status, response_headers, body = self.fetcher.get(url, headers=headers, max_bytes=max_bytes, what=what)
            if status == 200:
                return body
            if status == 401 and attempt == 1 and "www-authenticate" in response_headers:
                self._authenticate(response_headers["www-authenticate"], what)
                continue
            raise self._error(status, body, what)
        raise AssertionError("unreachable")  # pragma: no cover

    def _authenticate(self, header: str, what: str) -> None:
        challenge = parse_challenge(header)
        if challenge.scheme == "basic":
            if self.credentials is None:
                raise ValidationError(what, self._no_credentials())
            self.authorization = self.credentials.basic_header()
            return
        if challenge.scheme != "bearer":
            raise ValidationError(what, f"registry asks for unsupported authentication {challenge.scheme!r}")
        url = token_url(challenge, self.ref.repository, where=what)
        headers = {"Accept": "application/json"}
        if self.credentials is not None:
            headers["Authorization"] = self.credentials.basic_header()
        status, _, body = self.fetcher.get(url, headers=headers, max_bytes=1 << 20, what=f"{what}: token")
        if status != 200:
            reason = (
                self._no_credentials()
                if self.credentials is None
                else f"credentials from {self.credentials.source} were refused"
            )
            raise ValidationError(what, f"token endpoint {url.split('?')[0]} answered {status}: {reason}")
        self.authorization = "Bearer " + token_from_response(body, where=what)

    def _no_credentials(self) -> str:
        return (
            f"the registry requires authentication and no pull secret has credentials for {self.ref.registry} "
            "(--auth-file, or an imagePullSecret mounted under --pull-secrets)"
        )

    def _error(self, status: int, body: bytes, what: str) -> ZerowattError:
        detail = body[:300].decode("utf-8", "replace").strip()
        if status == 401:
            who = self.credentials.source if self.credentials else "anonymous"
            return ValidationError(what, f"authentication failed (HTTP 401, credentials: {who}): {detail}")
        if status in (403, 404):
            return ValidationError(what, f"not found or not allowed (HTTP {status}): {detail}")
        return FetchError(f"{what}: registry answered HTTP {status}: {detail}")
