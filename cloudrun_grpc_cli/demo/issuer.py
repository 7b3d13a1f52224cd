"""A local token issuer standing in for Google's OAuth token endpoint, for `crgrpc demo`.

A threaded http.server on 127.0.0.1 (port 0) signing RS256 tokens with keys
generated at run time (google-auth's RSASigner and jwt.encode). It serves
only what the demo's service-account key needs:

- the OAuth token endpoint, POST /token: the JWT-bearer grant of a
  service-account key's assertion (checked against the key's public key),
  with a `target_audience` → {"id_token"}, or with a `scope` → an OAuth
  access token (`access_tokens` maps each to its principal: the Cloud Run
  Admin API stand-in, demo/runapi.py, checks the tokens it is sent);
- certs: GET /oauth2/v1/certs (PEM map) and /oauth2/v3/certs (JWKS), for the
  Echo service's token check.

Every request is recorded (method, path, query, headers, body), and
`id_tokens` counts the ID tokens minted, so the demo can say how often. The tests extend this issuer with
the other Google endpoints crgrpc's auth talks to (tests/support/issuer.py).
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt
from google.auth import jwt as gjwt

from .httpserver import LocalHttp

GOOGLE_ISSUER = "https://accounts.google.com"
# google-auth puts this in every assertion's aud, whatever the key's token_uri
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


_KEYS: dict[str, bytes] = {}
_KEYS_LOCK = threading.Lock()


def private_key_pem(name: str) -> bytes:
    """An RSA-2048 private key (PKCS#8 PEM), generated once per name per process.
    Under a lock: a mint and the first certs fetch, in two threads, must never
    make two keys for one name (each would then reject the other's tokens)."""
    with _KEYS_LOCK:
        pem = _KEYS.get(name)
        if pem is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = _KEYS[name] = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        return pem


def public_key_pem(name: str) -> str:
    key = serialization.load_pem_private_key(private_key_pem(name), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@functools.cache
def certificate_pem(name: str) -> str:
    """A self-signed certificate for the key `name`, as Google's v1 certs URL serves them."""
    key = serialization.load_pem_private_key(private_key_pem(name), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def jwk(name: str, kid: str) -> dict[str, str]:
    key = serialization.load_pem_private_key(private_key_pem(name), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    nums = key.public_key().public_numbers()

    def b64(n: int) -> str:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return {
        "kty": "RSA",
        "alg": "RS256",
        "use": "sig",
        "kid": kid,
        "n": b64(nums.n),
        "e": b64(nums.e),
    }


@functools.cache
def _signer(key_name: str, kid: str | None) -> crypt.RSASigner:
    return crypt.RSASigner.from_string(private_key_pem(key_name), key_id=kid)


def sign(
    claims: dict[str, Any],
    *,
    key_name: str = "issuer",
    kid: str | None = "issuer-key-1",
    header: dict[str, Any] | None = None,
) -> str:
    """An RS256 JWT of `claims`, signed with the key `key_name` (google-auth's signer)."""
    token: bytes = gjwt.encode(_signer(key_name, kid), claims, header=dict(header or {}))
    return token.decode()


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(self.body.decode()))

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


_Answer = tuple[int, Any, str, "dict[str, str]"]


@dataclass
class Issuer(LocalHttp):
    """Start with .start(); .url is http://127.0.0.1:PORT. Subclasses add routes via _route."""

    lifetime: int = 3600
    issuer: str = GOOGLE_ISSUER
    kid: str = "issuer-key-1"
    requests: list[Recorded] = field(default_factory=list)
    service_accounts: dict[str, dict[str, str]] = field(default_factory=dict)  # email → {kid: PEM}
    access_tokens: dict[str, str] = field(default_factory=dict)  # token → principal
    id_tokens: int = 0  # ID tokens minted through the token endpoint

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> Issuer:
        self._serve(self._handle)
        return self

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    @property
    def certs_url(self) -> str:
        return f"{self.url}/oauth2/v1/certs"

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/oauth2/v3/certs"

    # --- what the demo (and tests) look at -----------------------------------------------

    def count(self, path_prefix: str = "", method: str | None = None) -> int:
        with self._lock:
            return sum(
                1
                for r in self.requests
                if r.path.startswith(path_prefix) and (method is None or r.method == method)
            )

    def last(self, path_prefix: str = "") -> Recorded:
        with self._lock:
            return [r for r in self.requests if r.path.startswith(path_prefix)][-1]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def certs_pem_map(self) -> dict[str, str]:
        return {self.kid: certificate_pem("issuer")}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [jwk("issuer", self.kid)]}

    # --- tokens -------------------------------------------------------------------------

    def id_token(
        self,
        audience: str,
        *,
        email: str | None = None,
        sub: str | None = None,
        lifetime: int | None = None,
        extra: dict[str, Any] | None = None,
        now: int | None = None,
    ) -> str:
        """An ID token as Google would issue it, signed with the issuer's key."""
        now = int(time.time()) if now is None else now
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": audience,
            "azp": email or sub or "anonymous",
            "sub": sub or str(abs(hash(email or "x")) % 10**21),
            "iat": now,
            "exp": now + (self.lifetime if lifetime is None else lifetime),
        }
        if email:
            claims["email"] = email
            claims["email_verified"] = True
        claims.update(extra or {})
        return sign(claims, kid=self.kid)

    # --- credentials files -----------------------------------------------------------

    def write_service_account_key(
        self, path: Path, email: str, *, key_name: str = "sa", key_id: str = "sa-key-1"
    ) -> Path:
        """A service-account key file for `email` whose token_uri is this issuer."""
        self.service_accounts.setdefault(email, {})[key_id] = public_key_pem(key_name)
        info = {
            "type": "service_account",
            "project_id": "test-project",
            "private_key_id": key_id,
            "private_key": private_key_pem(key_name).decode(),
            "client_email": email,
            "client_id": "1234567890",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri,
        }
        path.write_text(json.dumps(info))
        return path

    # --- HTTP ---------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = urllib.parse.urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        rec = Recorded(
            method=method,
            path=url.path,
            query=dict(urllib.parse.parse_qsl(url.query)),
            headers={k.lower(): v for k, v in h.headers.items()},
            body=body,
        )
        with self._lock:
            self.requests.append(rec)
        try:
            status, payload, ctype, extra = self._route(rec)
        except Exception as exc:  # a bug in the setup: answer, do not hang
            status, payload, ctype, extra = 500, {"error": repr(exc)}, "application/json", {}
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        for k, v in extra.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def _json(self, status: int, payload: Any) -> _Answer:
        return status, payload, "application/json", {}

    def _route(self, r: Recorded) -> _Answer:
        if r.method == "POST" and r.path == "/token":
            return self._oauth(r)
        if r.path == "/oauth2/v1/certs":
            return self._json(200, self.certs_pem_map())
        if r.path == "/oauth2/v3/certs":
            return self._json(200, self.jwks())
        return self._json(404, {"error": "not_found", "path": r.path})

    def _oauth(self, r: Recorded) -> _Answer:
        form = r.form
        if form.get("grant_type") != JWT_BEARER:
            return self._json(400, {"error": "unsupported_grant_type"})
        assertion = form.get("assertion", "")
        try:
            unverified = gjwt.decode(assertion, verify=False)
            email = str(unverified["iss"])
            keys = self.service_accounts[email]
            claims = gjwt.decode(assertion, certs=keys, audience=[self.token_uri, GOOGLE_TOKEN_URI])
        except Exception as exc:
            return self._json(
                400,
                {"error": "invalid_grant", "error_description": f"Invalid JWT Signature. ({exc})"},
            )
        return self._jwt_bearer(email, claims)

    def _access_token(self, principal: str) -> str:
        import secrets

        token = "ya29.test-" + secrets.token_urlsafe(24)
        with self._lock:
            self.access_tokens[token] = principal
        return token

    def _jwt_bearer(self, email: str, claims: dict[str, Any]) -> _Answer:
        """The answer to a verified service-account assertion: an ID token for its
        target_audience, or an access token for its scope."""
        if not claims.get("target_audience"):
            if not claims.get("scope"):
                return self._json(
                    400,
                    {"error": "invalid_scope", "error_description": "no scope and no target_audience"},
                )
            return self._json(
                200,
                {
                    "access_token": self._access_token(email),
                    "expires_in": self.lifetime,
                    "token_type": "Bearer",
                },
            )
        token = self.id_token(str(claims["target_audience"]), email=email, sub="1234567890")
        with self._lock:
            self.id_tokens += 1
        return self._json(200, {"id_token": token})
