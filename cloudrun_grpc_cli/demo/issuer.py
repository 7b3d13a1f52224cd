"""A local token issuer standing in for every Google endpoint crgrpc's auth talks to.

Used by `crgrpc demo` (the offline walkthrough) and by the tests.

A threaded http.server on 127.0.0.1 (port 0) signing RS256 tokens with keys
generated at test time (google-auth's RSASigner and jwt.encode). It serves:

- the OAuth token endpoint, POST /token: the JWT-bearer grant (a service-account
  key's assertion, checked against the key's public key; `target_audience` →
  {"id_token"}, `scope` → an access token) and the refresh_token grant
  (→ {"id_token", "access_token"}, aud = the OAuth client);
- the metadata server: GET / and /computeMetadata/v1/ (ping, Metadata-Flavor:
  Google), .../service-accounts/default/?recursive=true, .../identity,
  .../token;
- IAM Credentials: POST /v1/projects/-/serviceAccounts/EMAIL:generateIdToken
  and :generateAccessToken (a bearer access token it issued is required);
- STS: POST /v1/token (token exchange of a subject token);
- certs: GET /oauth2/v1/certs (PEM map) and /oauth2/v3/certs (JWKS).

Every request is recorded (method, path, query, headers, body) so tests can
count them. `lifetime` sets how long issued tokens live; `failures` makes a
path answer an error. Helpers write the credentials files tests need.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt
from google.auth import jwt as gjwt

GOOGLE_ISSUER = "https://accounts.google.com"
# google-auth puts this in every assertion's aud, whatever the key's token_uri
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
DEFAULT_SA = "default-sa@test-project.iam.gserviceaccount.com"
KEY_SA = "sa@test-project.iam.gserviceaccount.com"
TARGET_SA = "target@test-project.iam.gserviceaccount.com"
USER_EMAIL = "user@example.com"
USER_CLIENT_ID = "764086051850-6qr4p6gpi6hn506pt8ejuq83di341hur.apps.googleusercontent.com"
WIF_AUDIENCE = (
    "//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/"
    "gh-pool/providers/github"
)
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


@functools.cache
def private_key_pem(name: str) -> bytes:
    """An RSA-2048 private key (PKCS#8 PEM), generated once per name per test session."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


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
class Issuer:
    """Start with .start() (or the `issuer` fixture); .url is http://127.0.0.1:PORT."""

    lifetime: int = 3600
    issuer: str = GOOGLE_ISSUER
    kid: str = "issuer-key-1"
    default_sa: str = DEFAULT_SA
    subject_token: str | None = None  # what STS expects, when set
    requests: list[Recorded] = field(default_factory=list)
    failures: dict[str, tuple[int, Any]] = field(default_factory=dict)  # path → (status, body)
    denied: set[str] = field(default_factory=set)  # principals refused by IAM (403)
    service_accounts: dict[str, dict[str, str]] = field(default_factory=dict)  # email → {kid: PEM}
    refresh_tokens: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    access_tokens: dict[str, str] = field(default_factory=dict)  # token → principal
    minted: list[str] = field(default_factory=list)  # every ID token issued

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> Issuer:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                issuer._handle(self, "GET")

            def do_POST(self) -> None:
                issuer._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    @property
    def certs_url(self) -> str:
        return f"{self.url}/oauth2/v1/certs"

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/oauth2/v3/certs"

    # --- what tests look at ------------------------------------------------------------

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
        token = sign(claims, kid=self.kid)
        with self._lock:
            self.minted.append(token)
        return token

    def _access_token(self, principal: str) -> str:
        token = "ya29.test-" + secrets.token_urlsafe(24)
        with self._lock:
            self.access_tokens[token] = principal
        return token

    # --- credentials files -----------------------------------------------------------

    def write_service_account_key(
        self, path: Path, email: str = KEY_SA, *, key_name: str = "sa", key_id: str = "sa-key-1"
    ) -> Path:
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

    def authorized_user_info(self, email: str = USER_EMAIL) -> dict[str, Any]:
        refresh = "1//test-refresh-" + secrets.token_urlsafe(12)
        secret = "test-secret"
        self.refresh_tokens[refresh] = (USER_CLIENT_ID, secret, email)
        return {
            "type": "authorized_user",
            "client_id": USER_CLIENT_ID,
            "client_secret": secret,
            "refresh_token": refresh,
            "token_uri": self.token_uri,
            "quota_project_id": "test-project",
        }

    def write_authorized_user(self, path: Path, email: str = USER_EMAIL) -> Path:
        path.write_text(json.dumps(self.authorized_user_info(email)))
        return path

    def impersonation_url(self, target: str) -> str:
        return f"{self.url}/v1/projects/-/serviceAccounts/{target}:generateAccessToken"

    def write_impersonated_adc(
        self, path: Path, target: str = TARGET_SA, *, source: dict[str, Any] | None = None
    ) -> Path:
        info = {
            "type": "impersonated_service_account",
            "service_account_impersonation_url": self.impersonation_url(target),
            "source_credentials": source or self.authorized_user_info(),
            "delegates": [],
        }
        path.write_text(json.dumps(info))
        return path

    def write_external_account(
        self,
        path: Path,
        subject_token_file: Path,
        target: str | None = TARGET_SA,
        *,
        subject_token: str = "github-oidc-subject-token",
    ) -> Path:
        subject_token_file.write_text(subject_token)
        self.subject_token = subject_token
        info: dict[str, Any] = {
            "type": "external_account",
            "audience": WIF_AUDIENCE,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": f"{self.url}/v1/token",
            "credential_source": {"file": str(subject_token_file)},
        }
        if target:
            info["service_account_impersonation_url"] = self.impersonation_url(target)
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
        except Exception as exc:  # a bug in a test's setup: answer, do not hang
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
        if r.path in self.failures:
            status, payload = self.failures[r.path]
            return self._json(status, payload)
        if r.path in ("/", "/computeMetadata/v1/", "/computeMetadata/v1") or r.path.startswith(
            "/computeMetadata/"
        ):
            return self._metadata(r)
        if r.method == "POST" and r.path == "/token":
            return self._oauth(r)
        if r.method == "POST" and r.path == "/v1/token":
            return self._sts(r)
        if r.method == "POST" and r.path.startswith("/v1/projects/-/serviceAccounts/"):
            return self._iam(r)
        if r.path == "/oauth2/v1/certs":
            return self._json(200, self.certs_pem_map())
        if r.path == "/oauth2/v3/certs":
            return self._json(200, self.jwks())
        return self._json(404, {"error": "not_found", "path": r.path})

    def _metadata(self, r: Recorded) -> _Answer:
        flavor = {"Metadata-Flavor": "Google"}
        if r.headers.get("metadata-flavor") != "Google":
            return 403, "Missing Metadata-Flavor: Google header", "text/plain", flavor
        base = "/computeMetadata/v1/instance/service-accounts/default/"
        if r.path in ("/", "/computeMetadata/v1/", "/computeMetadata/v1"):
            return 200, "computeMetadata/", "application/text", flavor
        if r.path == base:
            info = {
                "aliases": ["default"],
                "email": self.default_sa,
                "scopes": ["https://www.googleapis.com/auth/cloud-platform"],
            }
            return 200, info, "application/json", flavor
        if r.path == base + "identity":
            audience = r.query.get("audience")
            if not audience:
                return 400, "non-empty audience parameter required", "text/plain", flavor
            full = r.query.get("format") == "full"
            token = self.id_token(
                audience, email=self.default_sa if full else None, sub="1000000000000000000001"
            )
            return 200, token, "text/plain", flavor
        if r.path == base + "token":
            token = self._access_token(self.default_sa)
            return (
                200,
                {"access_token": token, "expires_in": self.lifetime, "token_type": "Bearer"},
                "application/json",
                flavor,
            )
        return 404, "not found", "text/plain", flavor

    def _oauth(self, r: Recorded) -> _Answer:
        form = r.form
        grant = form.get("grant_type")
        if grant == JWT_BEARER:
            assertion = form.get("assertion", "")
            try:
                unverified = gjwt.decode(assertion, verify=False)
                email = str(unverified["iss"])
                keys = self.service_accounts[email]
                claims = gjwt.decode(
                    assertion, certs=keys, audience=[self.token_uri, GOOGLE_TOKEN_URI]
                )
            except Exception as exc:
                return self._json(
                    400,
                    {
                        "error": "invalid_grant",
                        "error_description": f"Invalid JWT Signature. ({exc})",
                    },
                )
            if claims.get("target_audience"):
                return self._json(
                    200,
                    {
                        "id_token": self.id_token(
                            str(claims["target_audience"]), email=email, sub="1234567890"
                        )
                    },
                )
            return self._json(
                200,
                {
                    "access_token": self._access_token(email),
                    "expires_in": self.lifetime,
                    "token_type": "Bearer",
                },
            )
        if grant == "refresh_token":
            known = self.refresh_tokens.get(form.get("refresh_token", ""))
            if known is None or (form.get("client_id"), form.get("client_secret")) != known[:2]:
                return self._json(
                    400,
                    {
                        "error": "invalid_grant",
                        "error_description": "Token has been expired or revoked.",
                    },
                )
            client_id, _, email = known
            return self._json(
                200,
                {
                    "access_token": self._access_token(email),
                    "expires_in": self.lifetime,
                    "scope": "openid https://www.googleapis.com/auth/userinfo.email "
                    "https://www.googleapis.com/auth/cloud-platform",
                    "token_type": "Bearer",
                    "id_token": self.id_token(client_id, email=email, sub="109876543210"),
                },
            )
        return self._json(400, {"error": "unsupported_grant_type"})

    def _sts(self, r: Recorded) -> _Answer:
        form = r.form
        if form.get("grant_type") != TOKEN_EXCHANGE:
            return self._json(
                400, {"error": "invalid_request", "error_description": "bad grant_type"}
            )
        if self.subject_token is not None and form.get("subject_token") != self.subject_token:
            return self._json(
                400,
                {"error": "invalid_grant", "error_description": "The subject token is invalid."},
            )
        principal = f"principal://{form.get('audience', '')[2:]}/subject/repo:o/r"
        return self._json(
            200,
            {
                "access_token": self._access_token(principal),
                "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                "token_type": "Bearer",
                "expires_in": self.lifetime,
            },
        )

    def _iam(self, r: Recorded) -> _Answer:
        name = r.path.rsplit("/", 1)[1]
        email, _, verb = name.partition(":")
        auth = r.headers.get("authorization", "")
        principal = self.access_tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
        if principal is None:
            return self._json(
                401,
                {
                    "error": {
                        "code": 401,
                        "status": "UNAUTHENTICATED",
                        "message": "Request had invalid authentication credentials.",
                    }
                },
            )
        if principal in self.denied:
            return self._json(
                403,
                {
                    "error": {
                        "code": 403,
                        "status": "PERMISSION_DENIED",
                        "message": "Permission 'iam.serviceAccounts.getOpenIdToken' denied on "
                        "resource (or it may not exist).",
                    }
                },
            )
        body = r.json or {}
        if verb == "generateIdToken":
            audience = body.get("audience")
            if not audience:
                return self._json(
                    400,
                    {
                        "error": {
                            "code": 400,
                            "status": "INVALID_ARGUMENT",
                            "message": "audience is required",
                        }
                    },
                )
            email_claim = email if body.get("includeEmail") else None
            return self._json(
                200,
                {"token": self.id_token(audience, email=email_claim, sub="111111111111111111111")},
            )
        if verb == "generateAccessToken":
            expire = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=self.lifetime)
            return self._json(
                200,
                {
                    "accessToken": self._access_token(email),
                    "expireTime": expire.strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
            )
        return self._json(404, {"error": {"code": 404, "message": f"unknown method {verb}"}})
