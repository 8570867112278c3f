"""Token authentication for the loopback registry, as the distribution project specifies it: the registry
answers ``401`` with ``WWW-Authenticate: Bearer realm=…,service=…,scope=…``; a token server (here a small
real HTTP server on loopback) checks the client's basic credentials and issues a JWT (RS256, signed with
``openssl``) that grants the requested actions; the registry trusts tokens whose ``kid`` is the libtrust
key id of a certificate in its ``rootcertbundle``."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import subprocess
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ISSUER = "zerowatt-test-issuer"
SERVICE = "zerowatt-test-registry"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenIssuer:
    """An RSA key and self-signed certificate made with ``openssl``, and JWTs signed with them."""

    def __init__(self, root: Path) -> None:
        self.key = root / "token.key"
        self.cert = root / "token.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(self.key), "-out",
             str(self.cert), "-days", "2", "-subj", "/CN=zerowatt-test-token"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        spki = subprocess.run(
            ["openssl", "x509", "-in", str(self.cert), "-pubkey", "-noout"], check=True, capture_output=True
        ).stdout
        der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=spki, check=True,
                             capture_output=True).stdout  # fmt: skip
        # libtrust's key id: base32 of the first 240 bits of SHA-256(DER SubjectPublicKeyInfo), in groups of 4.
        encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
        self.kid = ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))

    def token(self, subject: str, access: list[dict[str, object]]) -> str:
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "kid": self.kid}
        claims = {"iss": ISSUER, "sub": subject, "aud": SERVICE, "exp": now + 3600, "nbf": now - 60,
                  "iat": now - 60, "jti": secrets.token_hex(8), "access": access}  # fmt: skip
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.key)], input=signing_input.encode(), check=True,
            capture_output=True, timeout=30,
        ).stdout  # fmt: skip
        return f"{signing_input}.{_b64url(signature)}"


class TokenServer:
    """The realm: ``GET /token?service=…&scope=repository:NAME:ACTIONS`` with basic auth → ``{"token": …}``."""

    def __init__(self, issuer: TokenIssuer, users: dict[str, str]) -> None:
        self.requests: list[dict[str, str]] = []
        handler = _handler(issuer, users, self.requests.append)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/token"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(
    issuer: TokenIssuer, users: dict[str, str], record: Callable[[dict[str, str]], None]
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
            header = self.headers.get("Authorization", "")
            user = None
            if header.startswith("Basic "):
                name, _, password = base64.b64decode(header[6:]).decode().partition(":")
                user = name if users.get(name) == password else None
            record({**query, "user": user or ""})
            if user is None or query.get("service") != SERVICE:
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            access = []
            if query.get("scope", "").startswith("repository:"):
                _, name, actions = query["scope"].split(":", 2)
                access.append({"type": "repository", "name": name, "actions": actions.split(",")})
            body = json.dumps({"token": issuer.token(user, access)}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
