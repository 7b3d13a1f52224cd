"""The local token issuer the tests use, and its pytest fixture.

Extends the demo's issuer (cloudrun_grpc_cli.demo.issuer: keys, signing,
certs, the OAuth token endpoint for a service-account key's ID token) with
every other Google endpoint crgrpc's auth talks to:

- the OAuth token endpoint, POST /token: also the JWT-bearer grant with a
  `scope` (→ an access token) and the refresh_token grant
  (→ {"id_token", "access_token"}, aud = the OAuth client);
- the metadata server: GET / and /computeMetadata/v1/ (ping, Metadata-Flavor:
  Google), .../service-accounts/default/?recursive=true, .../identity,
  .../token;
- IAM Credentials: POST /v1/projects/-/serviceAccounts/EMAIL:generateIdToken
  and :generateAccessToken (a bearer access token it issued is required);
- STS: POST /v1/token (token exchange of a subject token).

`failures` makes a path answer an error; `minted` holds every ID token
issued. Helpers write the credentials files tests need (authorized_user,
impersonated_service_account, external_account).
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cloudrun_grpc_cli.demo import issuer as demo
from cloudrun_grpc_cli.demo.issuer import (
    GOOGLE_ISSUER,
    GOOGLE_TOKEN_URI,
    JWT_BEARER,
    Recorded,
    certificate_pem,
    jwk,
    private_key_pem,
    public_key_pem,
    sign,
)

__all__ = [
    "DEFAULT_SA",
    "GOOGLE_ISSUER",
    "GOOGLE_TOKEN_URI",
    "JWT_BEARER",
    "KEY_SA",
    "TARGET_SA",
    "TOKEN_EXCHANGE",
    "USER_CLIENT_ID",
    "USER_EMAIL",
    "WIF_AUDIENCE",
    "Issuer",
    "Recorded",
    "certificate_pem",
    "issuer_fixture",
    "jwk",
    "private_key_pem",
    "public_key_pem",
    "sign",
]

DEFAULT_SA = "default-sa@test-project.iam.gserviceaccount.com"
KEY_SA = "sa@test-project.iam.gserviceaccount.com"
TARGET_SA = "target@test-project.iam.gserviceaccount.com"
USER_EMAIL = "user@example.com"
USER_CLIENT_ID = "764086051850-6qr4p6gpi6hn506pt8ejuq83di341hur.apps.googleusercontent.com"
WIF_AUDIENCE = (
    "//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/"
    "gh-pool/providers/github"
)
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"

_Answer = tuple[int, Any, str, "dict[str, str]"]


@dataclass
class Issuer(demo.Issuer):
    """Start with .start() (or the `issuer` fixture); .url is http://127.0.0.1:PORT."""

    default_sa: str = DEFAULT_SA
    subject_token: str | None = None  # what STS expects, when set
    failures: dict[str, tuple[int, Any]] = field(default_factory=dict)  # path → (status, body)
    denied: set[str] = field(default_factory=set)  # principals refused by IAM (403)
    refresh_tokens: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    minted: list[str] = field(default_factory=list)  # every ID token issued

    def start(self) -> Issuer:
        super().start()
        return self

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
        """An ID token as Google would issue it, signed with the issuer's key (recorded)."""
        token = super().id_token(
            audience, email=email, sub=sub, lifetime=lifetime, extra=extra, now=now
        )
        with self._lock:
            self.minted.append(token)
        return token

    # --- credentials files -----------------------------------------------------------

    def write_service_account_key(
        self, path: Path, email: str = KEY_SA, *, key_name: str = "sa", key_id: str = "sa-key-1"
    ) -> Path:
        return super().write_service_account_key(path, email, key_name=key_name, key_id=key_id)

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

    def _route(self, r: Recorded) -> _Answer:
        if r.path in self.failures:
            status, payload = self.failures[r.path]
            return self._json(status, payload)
        if r.path in ("/", "/computeMetadata/v1/", "/computeMetadata/v1") or r.path.startswith(
            "/computeMetadata/"
        ):
            return self._metadata(r)
        if r.method == "POST" and r.path == "/v1/token":
            return self._sts(r)
        if r.method == "POST" and r.path.startswith("/v1/projects/-/serviceAccounts/"):
            return self._iam(r)
        return super()._route(r)

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
        if form.get("grant_type") != "refresh_token":
            return super()._oauth(r)
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


@pytest.fixture(name="issuer")
def issuer_fixture() -> Iterator[Issuer]:
    """A running Issuer (import `issuer_fixture` to use the `issuer` fixture)."""
    with Issuer() as server:
        yield server
