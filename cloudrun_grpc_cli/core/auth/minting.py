"""Minting ID tokens and access tokens with google-auth, one callable per kind of credentials.

Owns every use of google-auth for minting: service-account keys (JWT-bearer
grant to the key's token_uri), a gcloud user's refresh token, the metadata
server, and IAM Credentials `generateIdToken` (made here, with the source's
access token, so that its endpoint can be overridden). google.auth is
imported inside the functions only, so that importing this module is free and
a token-cache hit never loads it.

Every mint runs over its own bounded HTTP transport (`http.BoundedSession`:
10 s to connect, 30 s in all, answers cut at 1 MiB, through core.egress's proxy
decision: --proxy or the proxy variables, the metadata server always direct),
and every message built from what an endpoint answered goes through
`scrub.scrub` (no request secret in any error). `AccessMint` mints the OAuth
access token (scope cloud-platform) of the same credentials, for the Cloud Run
Admin API.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ...errors import CredentialsError, CrgrpcError
from .scrub import scrub

if TYPE_CHECKING:
    from .http import Exchange

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
DEFAULT_IAM_ENDPOINT = "https://iamcredentials.googleapis.com"
_IMPERSONATION_URL_RE = re.compile(r"/serviceAccounts/([^/:]+):generateAccessToken$")


def one_line(text: object, limit: int = 300) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def google_reason(exc: BaseException) -> str:
    """google-auth's own reason, on one line and scrubbed (RefreshError carries
    (message, response))."""
    args = getattr(exc, "args", ())
    if args and isinstance(args[0], str):
        return one_line(scrub(args[0]))
    if args and isinstance(args[0], BaseException):
        return google_reason(args[0])
    return one_line(scrub(str(exc))) or type(exc).__name__


class Transport:
    """The bounded transport of one mint: google-auth's Request and the session under it."""

    def __init__(self, timeout: float | None, proxy: str | None = None) -> None:
        from .http import HttpBounds, google_request

        bounds = HttpBounds.within(timeout) if timeout else HttpBounds()
        self.request, self.session = google_request(bounds, proxy=proxy)

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.session.close()

    def failure(self, exc: BaseException, expect: str | None = None) -> tuple[str, bool]:
        """Why the mint failed, from what the endpoint last answered; and whether the
        endpoint itself misbehaved (no answer, not JSON, no `expect` field)."""
        last = self.session.last
        if last is None:
            return google_reason(exc), False
        if last.problem:
            return f"{last.url}: {last.problem}", True
        if last.status == 200:
            if last.url.endswith("/identity"):  # the metadata server answers the token as text
                return f"{last.url} {last.answered}, not an ID token", True
            if expect == "access_token" and last.url.endswith(":generateAccessToken"):
                expect = "accessToken"
            data = last.json()
            if data is None:
                return f"{last.url} {last.answered}, not JSON", True
            if not isinstance(data, dict):
                return f"{last.url} {last.answered}, not a JSON object", True
            if expect and not data.get(expect):
                return f"{last.url} {last.answered} without {expect}", True
            return f"{last.url} {last.answered}, but {google_reason(exc)}", True
        if last.json() is None:
            text = last.text()
            return f"{last.url} {last.answered}" + (f": {text}" if text else ""), False
        return google_reason(exc), False


def _refresh(
    creds: Any,
    what: str,
    *hints: str,
    timeout: float | None,
    expect: str | None = None,
    endpoint_hint: str = "",
    proxy: str | None = None,
    kind: str = "an ID token",
) -> Exchange | None:
    """Refresh creds over a bounded transport; the last exchange, for what it answered.
    A proxy that refuses is core.egress's ConnectError (exit 4), raised as it is."""
    with Transport(timeout, proxy) as transport:
        try:
            creds.refresh(transport.request)
        except CrgrpcError:
            raise
        except Exception as exc:  # google-auth meets odd answers with TypeError & co. too
            reason, misbehaved = transport.failure(exc, expect)
            raise CredentialsError(
                f"{what}: could not mint {kind}: {reason}",
                *((endpoint_hint,) if misbehaved and endpoint_hint else hints),
            ) from exc
        return transport.session.last


def target_from_impersonation_url(url: str) -> str | None:
    """The service-account email of a `…/serviceAccounts/EMAIL:generateAccessToken` URL."""
    m = _IMPERSONATION_URL_RE.search(url)
    return m.group(1) if m else None


def endpoint_of_impersonation_url(url: str) -> str | None:
    """`https://host[/prefix]` of an IAM Credentials URL (everything before /v1/projects/)."""
    head, sep, _ = url.partition("/v1/projects/")
    return head if sep and head.startswith(("https://", "http://")) else None


_TOKEN_URI_HINT = (
    "the credentials file's token_uri names this endpoint "
    "(Google's is https://oauth2.googleapis.com/token)"
)
_METADATA_HINT = "GCE_METADATA_HOST names the metadata server; unset it to use the real one"
_SOURCE_HINT = (
    "the credentials file names this endpoint (token_uri, token_url or "
    "service_account_impersonation_url)"
)


# --- service-account keys -------------------------------------------------------------


class KeyFileMint:
    """service_account.IDTokenCredentials from a key, refreshed per mint.

    From the key's info as read once by `sources` (never the path again: a
    --key-file may be a pipe, `<(…)`, that only reads once)."""

    def __init__(
        self,
        audience: str,
        *,
        info: Mapping[str, Any],
        what: str,
        timeout: float | None = None,
        proxy: str | None = None,
    ) -> None:
        self.audience = audience
        self.info = info
        self.what = what
        self.timeout = timeout
        self.proxy = proxy
        self._creds: Any = None

    def _load(self) -> Any:
        from google.oauth2 import service_account

        try:
            return service_account.IDTokenCredentials.from_service_account_info(
                dict(self.info), target_audience=self.audience
            )
        except (ValueError, KeyError, OSError, TypeError) as exc:
            raise CredentialsError(
                f"{self.what}: cannot load the service-account key: {google_reason(exc)}",
                "the private_key must be the PEM key of a service-account key file "
                "(gcloud iam service-accounts keys create)",
            ) from exc

    def __call__(self) -> str:
        if self._creds is None:
            self._creds = self._load()
        _refresh(
            self._creds,
            self.what,
            "check that the key is still active (gcloud iam service-accounts keys list)",
            timeout=self.timeout,
            expect="id_token",
            endpoint_hint=_TOKEN_URI_HINT,
            proxy=self.proxy,
        )
        return str(self._creds.token)


# --- a gcloud user (authorized_user) ---------------------------------------------------


def authorized_user_credentials(info: Mapping[str, Any]) -> Any:
    """google.oauth2 user credentials; a `token_uri` in the file overrides Google's endpoint
    (from_authorized_user_info ignores it)."""
    from google.oauth2 import credentials

    creds = credentials.Credentials.from_authorized_user_info(dict(info))
    token_uri = info.get("token_uri")
    if isinstance(token_uri, str) and token_uri:
        creds = creds.with_token_uri(token_uri)
    return creds


class AuthorizedUserMint:
    """The refresh_token grant of a gcloud user; its id_token's aud is the OAuth client."""

    def __init__(
        self,
        info: Mapping[str, Any],
        *,
        what: str,
        timeout: float | None = None,
        proxy: str | None = None,
    ) -> None:
        self.info = info
        self.what = what
        self.timeout = timeout
        self.proxy = proxy
        self._creds: Any = None

    def __call__(self) -> str:
        if self._creds is None:
            try:
                self._creds = authorized_user_credentials(self.info)
            except ValueError as exc:
                raise CredentialsError(
                    f"{self.what}: {google_reason(exc)}",
                    "run `gcloud auth application-default login` again",
                ) from exc
        last = _refresh(
            self._creds,
            self.what,
            "run `gcloud auth application-default login` again",
            timeout=self.timeout,
            expect="access_token",
            endpoint_hint=_TOKEN_URI_HINT,
            proxy=self.proxy,
        )
        token = getattr(self._creds, "id_token", None)
        if not token:
            answered = f"{last.url} {last.answered}" if last else "the token endpoint answered"
            raise CredentialsError(
                f"{self.what}: could not mint an ID token: {answered} without id_token",
                "run `gcloud auth application-default login` again (the openid scope is needed)",
            )
        return str(token)


# --- the metadata server ---------------------------------------------------------------


@contextlib.contextmanager
def _quiet_metadata_logger() -> Iterator[None]:
    """google-auth logs a WARNING per failed metadata attempt; a laptop is not an error."""
    logger = logging.getLogger("google.auth.compute_engine._metadata")
    old = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(old)


def sync_metadata_host() -> None:
    """google-auth reads GCE_METADATA_HOST once, at import; honour its current value."""
    from google.auth.compute_engine import _metadata

    host = os.environ.get("GCE_METADATA_HOST") or os.environ.get("GCE_METADATA_ROOT")
    _metadata._GCE_METADATA_HOST = host or _metadata._GCE_DEFAULT_HOST


def metadata_host() -> str:
    return (
        os.environ.get("GCE_METADATA_HOST")
        or os.environ.get("GCE_METADATA_ROOT")
        or "metadata.google.internal"
    )


_probed: dict[tuple[str, str], bool] = {}


_GOOGLE_RUNTIME_VARS = (
    "K_SERVICE",  # Cloud Run services, Cloud Functions (2nd gen)
    "CLOUD_RUN_JOB",
    "FUNCTION_TARGET",
    "GAE_ENV",
    "KUBERNETES_SERVICE_HOST",  # GKE (DMI may be hidden in some sandboxes)
)


def may_be_on_google() -> bool:
    """Whether a metadata server could be there at all, before any packet is sent.

    A laptop or a CI runner outside Google is told apart locally (the machine's
    DMI product name, the runtime's environment), so it never waits for a
    ping to time out. An explicit GCE_METADATA_HOST/IP always probes.
    """
    if any(os.environ.get(v) for v in ("GCE_METADATA_HOST", "GCE_METADATA_IP", "GCE_METADATA_ROOT")):
        return True
    if any(os.environ.get(v) for v in _GOOGLE_RUNTIME_VARS):
        return True
    if not sys.platform.startswith("linux"):
        return True  # no cheap local signal elsewhere: probe
    try:
        with open("/sys/class/dmi/id/product_name", encoding="utf-8") as f:
            return "Google" in f.read()
    except OSError:
        return True  # cannot tell: probe


def metadata_server_available(timeout: float) -> bool:
    """Ping the metadata server once per process and address, with a short timeout."""
    if os.environ.get("NO_GCE_CHECK") == "true" or not may_be_on_google():
        return False
    key = (os.environ.get("GCE_METADATA_IP", "169.254.169.254"), metadata_host())
    if key not in _probed:
        from google.auth.compute_engine import _metadata

        sync_metadata_host()
        with _quiet_metadata_logger(), Transport(timeout) as transport:
            try:
                _probed[key] = bool(
                    _metadata.ping(transport.request, timeout=timeout, retry_count=1)
                )
            except Exception:
                _probed[key] = False
    return _probed[key]


class MetadataMint:
    """compute_engine.IDTokenCredentials on the metadata identity endpoint (format=full)."""

    def __init__(
        self, audience: str, *, what: str = "metadata server", timeout: float | None = None
    ) -> None:
        self.audience = audience
        self.what = what
        self.timeout = timeout
        self._creds: Any = None

    def __call__(self) -> str:
        from google.auth.compute_engine import IDTokenCredentials

        sync_metadata_host()
        with _quiet_metadata_logger():
            if self._creds is None:
                with Transport(self.timeout) as transport:
                    try:
                        self._creds = IDTokenCredentials(
                            transport.request,
                            target_audience=self.audience,
                            use_metadata_identity_endpoint=True,
                        )
                    except Exception as exc:  # odd answers raise TypeError & co. too
                        reason, misbehaved = transport.failure(exc)
                        raise CredentialsError(
                            f"{self.what}: cannot read the default service account: {reason}",
                            _METADATA_HINT
                            if misbehaved
                            else "is a service account attached to this instance or service?",
                        ) from exc
            _refresh(
                self._creds, self.what, timeout=self.timeout, endpoint_hint=_METADATA_HINT
            )
        return str(self._creds.token)


# --- access-token credentials (sources for generateIdToken) ---------------------------


def external_account_credentials(info: Mapping[str, Any], scopes: Sequence[str]) -> Any:
    """identity_pool / aws / pluggable credentials, without google.auth.default's project
    lookup (which would call cloudresourcemanager.googleapis.com)."""
    source = info.get("credential_source")
    if info.get("subject_token_type") == "urn:ietf:params:aws:token-type:aws4_request":
        from google.auth import aws

        return aws.Credentials.from_info(dict(info), scopes=list(scopes))
    if isinstance(source, dict) and source.get("executable") is not None:
        from google.auth import pluggable

        return pluggable.Credentials.from_info(dict(info), scopes=list(scopes))
    from google.auth import identity_pool

    return identity_pool.Credentials.from_info(dict(info), scopes=list(scopes))


def access_credentials(info: Mapping[str, Any], what: str) -> Any:
    """google-auth credentials that yield access tokens (cloud-platform) from a credentials dict."""
    kind = info.get("type")
    scopes = [CLOUD_PLATFORM]
    try:
        if kind == "service_account":
            from google.oauth2 import service_account

            return service_account.Credentials.from_service_account_info(dict(info), scopes=scopes)
        if kind == "authorized_user":
            return authorized_user_credentials(info)
        if kind == "impersonated_service_account":
            from google.auth import impersonated_credentials

            url = str(info.get("service_account_impersonation_url") or "")
            target = target_from_impersonation_url(url)
            source = info.get("source_credentials")
            if target is None or not isinstance(source, dict):
                raise CredentialsError(
                    f"{what}: impersonated_service_account credentials need "
                    "source_credentials and a service_account_impersonation_url"
                )
            return impersonated_credentials.Credentials(
                source_credentials=access_credentials(source, what),
                target_principal=target,
                target_scopes=scopes,
                delegates=list(info.get("delegates") or []) or None,
                iam_endpoint_override=url,
            )
        if kind == "external_account":
            return external_account_credentials(info, scopes)
    except (ValueError, KeyError, TypeError) as exc:
        raise CredentialsError(f"{what}: {google_reason(exc)}") from exc
    raise CredentialsError(f"{what}: credentials of type {kind!r} cannot be a source here")


class SourceCredentials:
    """How to build the access-token credentials generateIdToken is called with."""

    def __init__(
        self,
        what: str,
        *,
        info: Mapping[str, Any] | None = None,
        metadata: bool = False,
    ) -> None:
        self.what = what
        self.info = info  # a credentials dict (a key's as read once, an ADC file's)
        self.metadata = metadata

    def build(self) -> Any:
        if self.info is not None:
            return access_credentials(self.info, self.what)
        if self.metadata:
            from google.auth import compute_engine

            sync_metadata_host()
            return compute_engine.Credentials()
        raise CredentialsError(f"{self.what}: no source credentials")


class GenerateIdTokenMint:
    """POST {endpoint}/v1/projects/-/serviceAccounts/EMAIL:generateIdToken with the
    source's access token (refreshed by google-auth, over the same bounded transport)."""

    def __init__(
        self,
        *,
        source: SourceCredentials,
        target: str,
        audience: str,
        endpoint: str,
        include_email: bool,
        delegates: Sequence[str] = (),
        timeout: float | None = None,
        proxy: str | None = None,
    ) -> None:
        self.proxy = proxy
        self.source = source
        self.target = target
        self.audience = audience
        self.endpoint = endpoint.rstrip("/")
        self.include_email = include_email
        self.delegates = list(delegates)
        self.timeout = timeout
        self._creds: Any = None

    @property
    def url(self) -> str:
        return f"{self.endpoint}/v1/projects/-/serviceAccounts/{self.target}:generateIdToken"

    def __call__(self) -> str:
        from .http import EndpointError

        if self._creds is None:
            self._creds = self.source.build()
        body: dict[str, Any] = {"audience": self.audience, "includeEmail": self.include_email}
        if self.delegates:
            body["delegates"] = [
                d if d.startswith("projects/") else f"projects/-/serviceAccounts/{d}"
                for d in self.delegates
            ]
        creator = f"the caller needs roles/iam.serviceAccountOpenIdTokenCreator on {self.target}"
        endpoint_hint = "set the endpoint with --iam-endpoint"
        what = f"generateIdToken for {self.target}"
        with _quiet_metadata_logger(), Transport(self.timeout, self.proxy) as transport:
            headers: dict[str, str] = {}
            try:
                self._creds.before_request(transport.request, "POST", self.url, headers)
            except CrgrpcError:
                raise
            except Exception as exc:  # google-auth meets odd answers with TypeError & co. too
                reason, misbehaved = transport.failure(exc, "access_token")
                raise CredentialsError(
                    f"{self.source.what}: could not get an access token to impersonate "
                    f"{self.target}: {reason}",
                    _SOURCE_HINT if misbehaved else "",
                ) from exc
            try:
                resp = transport.session.post(self.url, json=body, headers=headers)
            except EndpointError as exc:
                raise CredentialsError(f"{what}: {exc}", endpoint_hint) from None
            last = transport.session.last
        assert last is not None
        data = last.json()
        if resp.status_code != 200:
            detail = ""
            if isinstance(data, dict) and isinstance(data.get("error"), dict):
                error = data["error"]
                detail = one_line(scrub(str(error.get("message") or error.get("status") or "")))
            elif data is None:
                detail = last.text()
            else:
                detail = one_line(scrub(json.dumps(data)))
            raise CredentialsError(
                f"{what} failed: HTTP {resp.status_code}" + (f": {detail}" if detail else ""),
                creator,
            )
        if data is None:
            raise CredentialsError(f"{what}: {last.url} {last.answered}, not JSON", endpoint_hint)
        token = data.get("token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise CredentialsError(
                f"{what}: {last.url} {last.answered} without a token", endpoint_hint
            )
        return token


# --- OAuth access tokens (scope cloud-platform), for the Cloud Run Admin API ------------


def impersonated_access_credentials(
    source: SourceCredentials, target: str, endpoint: str, delegates: Sequence[str] = ()
) -> Any:
    """google-auth's impersonated credentials: generateAccessToken at endpoint as target."""
    from google.auth import impersonated_credentials

    return impersonated_credentials.Credentials(
        source_credentials=source.build(),
        target_principal=target,
        target_scopes=[CLOUD_PLATFORM],
        delegates=list(delegates) or None,
        iam_endpoint_override=(
            f"{endpoint.rstrip('/')}/v1/projects/-/serviceAccounts/{target}:generateAccessToken"
        ),
    )


class AccessMint:
    """An OAuth access token (scope cloud-platform) of one set of credentials: a
    credentials dict (a key's, ADC of each type), impersonation of a service account, or
    the metadata server. Returns (token, expiry as epoch seconds)."""

    def __init__(
        self,
        what: str,
        *,
        info: Mapping[str, Any] | None = None,
        metadata: bool = False,
        impersonate: tuple[SourceCredentials, str, str, Sequence[str]] | None = None,
        proxy: str | None = None,
        timeout: float | None = None,
    ) -> None:
        self.what = what
        self.info = info
        self.metadata = metadata
        self.impersonate = impersonate  # (source, target, IAM endpoint, delegates)
        self.proxy = proxy
        self.timeout = timeout
        self._creds: Any = None

    def _build(self) -> Any:
        if self.impersonate is not None:
            source, target, endpoint, delegates = self.impersonate
            return impersonated_access_credentials(source, target, endpoint, delegates)
        return SourceCredentials(self.what, info=self.info, metadata=self.metadata).build()

    def __call__(self) -> tuple[str, float | None]:
        import datetime as dt

        if self._creds is None:
            self._creds = self._build()
        with _quiet_metadata_logger():
            if self.metadata or (self.impersonate is not None and self.impersonate[0].metadata):
                sync_metadata_host()
            _refresh(
                self._creds,
                self.what,
                timeout=self.timeout,
                expect="access_token",
                endpoint_hint=_SOURCE_HINT,
                proxy=self.proxy,
                kind="an access token",
            )
        token = getattr(self._creds, "token", None)
        if not token:
            raise CredentialsError(f"{self.what}: google-auth returned no access token")
        expiry = getattr(self._creds, "expiry", None)
        when = (
            expiry.replace(tzinfo=dt.timezone.utc).timestamp()
            if isinstance(expiry, dt.datetime)
            else None
        )
        return str(token), when
