"""Token sources in their documented order (README: Authenticating), their conflicts, and the one TokenProvider they give.

Owns: which source applies (static token, --key-file, impersonation, ADC file,
metadata server), the checks made before any minting (conflicts, readable and
well-formed files, static tokens), the cache identity of each source and its
human description. Reading files and finding ADC need no google.auth; only
probing the metadata server and minting (in `minting`) load it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import CredentialsError
from ...settings import AuthSettings
from .cache import TokenCache
from .jwt import humanize_delta
from .minting import (
    DEFAULT_IAM_ENDPOINT,
    AccessMint,
    AuthorizedUserMint,
    GenerateIdTokenMint,
    KeyFileMint,
    MetadataMint,
    SourceCredentials,
    endpoint_of_impersonation_url,
    metadata_host,
    metadata_server_available,
    target_from_impersonation_url,
)
from .named import explicit_sources, header_for
from .scrub import remember_fields
from .token import IdToken, MintingProvider, StaticProvider, TokenProvider

ADC_FILE_NAME = "application_default_credentials.json"
_ADC_TYPES = (
    "service_account",
    "authorized_user",
    "impersonated_service_account",
    "external_account",
)
_KEY_HINT = "a service-account key is the JSON file from `gcloud iam service-accounts keys create`"


def iam_endpoint(auth: AuthSettings) -> str | None:
    """The IAM Credentials endpoint the user set, if any."""
    value = (auth.iam_endpoint or "").strip()
    return value.rstrip("/") if value else None


def _digest(data: object) -> str:
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:24]


# --- 1. a token the user already has ---------------------------------------------------


def check_static_token(value: str, source: str, *, now: float | None = None) -> IdToken:
    """A static token must be an unexpired JWT: CredentialsError otherwise."""
    try:
        token = IdToken.parse(value, source)
    except CredentialsError as exc:
        raise CredentialsError(f"{source}: {exc.message}", *exc.hints) from None
    left = token.seconds_left(now)
    if left is not None and left <= 0:
        assert token.expiry is not None
        when = dt.datetime.fromtimestamp(token.expiry, dt.timezone.utc).strftime(
            "%Y-%m-%d %H:%M:%S UTC"
        )
        raise CredentialsError(
            f"{source}: the token expired {humanize_delta(left)} ago ({when})",
            f"mint a new one, or drop {source.split(maxsplit=1)[0]} and let crgrpc mint one "
            "from your credentials",
        )
    return token


def static_provider(auth: AuthSettings) -> StaticProvider:
    if auth.token_file is not None:
        source = f"--token-file {auth.token_file}"
        try:
            value = Path(auth.token_file).expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise CredentialsError(
                f"cannot read --token-file {auth.token_file}: {reason}"
            ) from None
    else:
        source = auth.token_label
        value = auth.token or ""
    return StaticProvider(check_static_token(value, source))


# --- credentials files -----------------------------------------------------------------


_READ: dict[tuple[object, ...], str] = {}


def _read_once(path: Path) -> str:
    """The file's text, read once per process for as long as it is unchanged: a run://
    target reads --key-file for the Admin API and for the ID token, and a pipe (<(…))
    can be read only once."""
    import os
    import stat

    st = os.stat(path)
    key: tuple[object, ...] = (
        (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
        if stat.S_ISREG(st.st_mode)
        else (str(path), "special")
    )
    if key not in _READ:
        _READ[key] = path.read_text(encoding="utf-8")
    return _READ[key]


def read_credentials_file(path: Path, what: str) -> dict[str, Any]:
    """A credentials JSON object, or CredentialsError saying what is wrong with the file."""
    try:
        text = _read_once(Path(path).expanduser())
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CredentialsError(f"cannot read {what} {path}: {reason}") from None
    try:
        info = json.loads(text)
    except ValueError as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise CredentialsError(f"{what} {path} is not JSON ({reason})", _KEY_HINT) from None
    if not isinstance(info, dict):
        raise CredentialsError(f"{what} {path} is not a JSON object", _KEY_HINT)
    remember_fields(info)  # client_secret, refresh_token, private_key: never in a message
    return info


def _require(info: dict[str, Any], fields: tuple[str, ...], what: str, path: Path) -> None:
    for name in fields:
        if not isinstance(info.get(name), str) or not info[name]:
            raise CredentialsError(f"{what} {path} has no {name}", _KEY_HINT)


def read_key_file(path: Path) -> dict[str, Any]:
    info = read_credentials_file(path, "--key-file")
    kind = info.get("type")
    if kind != "service_account":
        hint = (
            "point GOOGLE_APPLICATION_CREDENTIALS at it to use it as ADC"
            if kind in _ADC_TYPES
            else _KEY_HINT
        )
        raise CredentialsError(
            f"--key-file {path} is not a service-account key (type {kind!r})", hint
        )
    _require(info, ("client_email", "private_key", "token_uri"), "--key-file", path)
    return info


def key_identity(info: dict[str, Any]) -> str:
    return (
        f"service_account:{info.get('client_email')}:{info.get('private_key_id', '')}:"
        f"{info.get('token_uri')}"
    )


# --- ADC ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdcFile:
    path: Path
    origin: str  # "GOOGLE_APPLICATION_CREDENTIALS" or "gcloud ADC file"
    info: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.info.get("type"))


def gcloud_adc_path() -> Path:
    """gcloud's ADC file: $CLOUDSDK_CONFIG or ~/.config/gcloud (%APPDATA%\\gcloud on Windows)."""
    config = os.environ.get("CLOUDSDK_CONFIG")
    if config:
        return Path(config) / ADC_FILE_NAME
    if sys.platform == "win32":
        base = os.environ.get("APPDATA") or os.environ.get("SYSTEMDRIVE", "C:") + "\\"
        return Path(base) / "gcloud" / ADC_FILE_NAME
    return Path.home() / ".config" / "gcloud" / ADC_FILE_NAME


def find_adc(tried: list[str]) -> AdcFile | None:
    """GOOGLE_APPLICATION_CREDENTIALS, then gcloud's ADC file (google.auth.default's order)."""
    env = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS", "").strip()
    tried.append("GOOGLE_APPLICATION_CREDENTIALS")
    if env:
        path = Path(env).expanduser()
        if not path.exists():
            raise CredentialsError(
                f"GOOGLE_APPLICATION_CREDENTIALS is {env}, which does not exist",
                "unset it, or point it at a credentials file",
            )
        adc = AdcFile(
            path,
            "GOOGLE_APPLICATION_CREDENTIALS",
            read_credentials_file(path, "GOOGLE_APPLICATION_CREDENTIALS file"),
        )
    else:
        path = gcloud_adc_path()
        tried.append("gcloud ADC file")
        if not path.is_file():
            return None
        adc = AdcFile(path, "gcloud ADC file", read_credentials_file(path, "gcloud ADC file"))
    if adc.kind not in _ADC_TYPES:
        raise CredentialsError(
            f"{adc.origin} {adc.path} has type {adc.kind!r}, which cannot mint ID tokens",
            "types that can: " + ", ".join(_ADC_TYPES),
        )
    return adc


def _impersonation_target(adc: AdcFile) -> tuple[str, str | None]:
    url = adc.info.get("service_account_impersonation_url")
    if not isinstance(url, str) or not url:
        if adc.kind == "external_account":
            raise CredentialsError(
                f"{adc.origin} {adc.path}: external_account credentials without "
                "service_account_impersonation_url cannot mint an ID token",
                "create the configuration with --service-account "
                "(gcloud iam workload-identity-pools create-cred-config)",
            )
        raise CredentialsError(f"{adc.origin} {adc.path} has no service_account_impersonation_url")
    target = target_from_impersonation_url(url)
    if target is None:
        raise CredentialsError(
            f"{adc.origin} {adc.path}: cannot read the service account from "
            f"service_account_impersonation_url {url}"
        )
    return target, endpoint_of_impersonation_url(url)


def adc_provider(
    adc: AdcFile, auth: AuthSettings, audience: str, header: str, cache: TokenCache | None
) -> MintingProvider:
    info = adc.info
    where = f"{adc.origin} {adc.path}"
    if adc.kind == "service_account":
        _require(info, ("client_email", "private_key", "token_uri"), adc.origin, adc.path)
        return MintingProvider(
            source=f"ADC service_account {info['client_email']}",
            mint=KeyFileMint(audience, info=info, what=where, timeout=auth.mint_timeout, proxy=auth.proxy),
            identity=key_identity(info),
            audience=audience,
            header=header,
            cache=cache,
        )
    if adc.kind == "authorized_user":
        _require(info, ("client_id", "client_secret", "refresh_token"), adc.origin, adc.path)
        return MintingProvider(
            source="ADC authorized_user (gcloud user; aud is the OAuth client, not chosen)",
            mint=AuthorizedUserMint(info, what=where, timeout=auth.mint_timeout, proxy=auth.proxy),
            identity=f"authorized_user:{info['client_id']}:{_digest(info['refresh_token'])}",
            audience=audience,
            header=header,
            cache=cache,
            audience_bound=False,
        )
    target, file_endpoint = _impersonation_target(adc)
    endpoint = iam_endpoint(auth) or file_endpoint or DEFAULT_IAM_ENDPOINT
    if adc.kind == "impersonated_service_account":
        src = info.get("source_credentials")
        if not isinstance(src, dict):
            raise CredentialsError(f"{where} has no source_credentials")
        delegates = [str(d) for d in info.get("delegates") or []]
        source = SourceCredentials(f"{where} source_credentials", info=src)
        desc = f"ADC impersonated_service_account (impersonating {target})"
    else:  # external_account: STS exchange by google-auth, then generateIdToken
        sts_info = {
            k: v
            for k, v in info.items()
            if k not in ("service_account_impersonation_url", "service_account_impersonation")
        }
        delegates = []
        source = SourceCredentials(f"{where} (STS exchange)", info=sts_info)
        desc = f"ADC external_account (workload identity federation as {target})"
    return MintingProvider(
        source=desc,
        mint=GenerateIdTokenMint(
            source=source,
            target=target,
            audience=audience,
            endpoint=endpoint,
            include_email=auth.include_email,
            delegates=delegates,
            timeout=auth.mint_timeout,
            proxy=auth.proxy,
        ),
        identity=f"{adc.kind}:{_digest(info)}:{endpoint}:{auth.include_email}",
        audience=audience,
        header=header,
        cache=cache,
    )


def metadata_provider(
    audience: str, header: str, cache: TokenCache | None, timeout: float | None = None
) -> MintingProvider:
    return MintingProvider(
        source="metadata server",
        mint=MetadataMint(audience, timeout=timeout),
        identity=f"metadata:{metadata_host()}",
        audience=audience,
        header=header,
        cache=cache,
    )


# --- the sources, in order ---------------------------------------------------------------


def _need_audience(audience: str | None, what: str) -> str:
    if not audience:
        raise CredentialsError(
            f"no audience to mint a token for ({what})",
            "a unix:// target has no host to derive it from: give --audience "
            "(e.g. --audience https://SERVICE-HASH-REGION.a.run.app)",
        )
    return audience


def _impersonation_source(auth: AuthSettings) -> tuple[SourceCredentials, str, str]:
    """The source credentials of --impersonate-service-account: (source, described, identity)."""
    target = auth.impersonate_service_account
    if auth.key_file is not None:
        info = read_key_file(auth.key_file)  # read once: it may be a pipe (<(…))
        source = SourceCredentials(f"--key-file {auth.key_file}", info=info)
        return source, f"service-account key {auth.key_file}", key_identity(info)
    tried: list[str] = []
    adc = find_adc(tried)
    if adc is not None:
        source = SourceCredentials(f"{adc.origin} {adc.path}", info=adc.info)
        return source, f"ADC {adc.kind}", f"adc:{_digest(adc.info)}"
    if metadata_server_available(auth.metadata_timeout):
        source = SourceCredentials("metadata server", metadata=True)
        return source, "metadata server", f"metadata:{metadata_host()}"
    tried.append("metadata server")
    raise CredentialsError(
        f"--impersonate-service-account {target} needs source credentials; none found "
        f"(tried: {', '.join(tried)})",
        "add --key-file, or run `gcloud auth application-default login`",
    )


def _impersonation_provider(
    auth: AuthSettings, audience: str, header: str, cache: TokenCache | None
) -> MintingProvider:
    target = auth.impersonate_service_account
    assert target
    endpoint = iam_endpoint(auth) or DEFAULT_IAM_ENDPOINT
    source, via, identity = _impersonation_source(auth)
    return MintingProvider(
        source=f"impersonating {target} (source: {via})",
        mint=GenerateIdTokenMint(
            source=source,
            target=target,
            audience=audience,
            endpoint=endpoint,
            include_email=auth.include_email,
            timeout=auth.mint_timeout,
            proxy=auth.proxy,
        ),
        identity=f"impersonate:{target}:{endpoint}:{auth.include_email}:{identity}",
        audience=audience,
        header=header,
        cache=cache,
    )


def resolve(
    auth: AuthSettings, audience: str | None, *, cache_dir: Path | None = None
) -> tuple[TokenProvider | None, list[str]]:
    """The provider of the first source that applies, and the sources tried.

    cache_dir: the crgrpc cache directory for the token cache (default cache_root()).
    """
    header = header_for(auth)
    names = explicit_sources(auth)
    cache = TokenCache(root=cache_dir) if auth.token_cache else None
    if auth.token is not None or auth.token_file is not None:
        return static_provider(auth), names
    if auth.impersonate_service_account:
        aud = _need_audience(audience, "--impersonate-service-account")
        return _impersonation_provider(auth, aud, header, cache), names
    if auth.key_file is not None:
        aud = _need_audience(audience, "--key-file")
        info = read_key_file(auth.key_file)
        return (
            MintingProvider(
                source=f"service-account key {auth.key_file}",
                mint=KeyFileMint(
                    aud,
                    info=info,  # read once: --key-file may be a pipe (<(…))
                    what=f"--key-file {auth.key_file}",
                    timeout=auth.mint_timeout,
                    proxy=auth.proxy,
                ),
                identity=key_identity(info),
                audience=aud,
                header=header,
                cache=cache,
            ),
            names,
        )
    tried: list[str] = []
    adc = find_adc(tried)
    if adc is not None:
        return adc_provider(adc, auth, _need_audience(audience, adc.origin), header, cache), tried
    tried.append("metadata server")
    if metadata_server_available(auth.metadata_timeout):
        aud = _need_audience(audience, "metadata server")
        return metadata_provider(aud, header, cache, auth.mint_timeout), tried
    return None, tried


def build_provider(
    auth: AuthSettings, audience: str, *, cache_dir: Path | None = None
) -> tuple[TokenProvider | None, list[str]]:
    """The provider for `token print|show` (no channel rules) and the sources tried."""
    return resolve(auth, audience, cache_dir=cache_dir)


# --- OAuth access tokens: the Cloud Run Admin API ------------------------------------------

ACCESS_MARGIN = 60  # an access token is minted again this long before it expires


class AccessProvider:
    """An OAuth access token (scope cloud-platform) of the credentials a call uses, minted
    on first use and reused in memory (never written to disk: it is worth more than an ID
    token). `identity` names the credentials without a secret (the resolution cache key);
    `email` is the identity's email when the credentials name it."""

    def __init__(
        self, *, source: str, identity: str, email: str | None, mint: AccessMint
    ) -> None:
        self.source = source
        self.identity = identity
        self.email = email
        self.mints = 0
        self._mint = mint
        self._token: str | None = None
        self._expiry: float | None = None

    def get(self) -> str:
        import time

        from ..secrets import SECRETS

        if self._token is not None and (
            self._expiry is None or self._expiry - time.time() > ACCESS_MARGIN
        ):
            return self._token
        token, expiry = self._mint()
        self.mints += 1
        SECRETS.add(token)
        self._token, self._expiry = token, expiry
        return token


def _adc_access(adc: AdcFile, auth: AuthSettings) -> AccessProvider:
    info, where = adc.info, f"{adc.origin} {adc.path}"
    identity = f"access:{adc.kind}:{_digest(info)}"
    if adc.kind == "service_account":
        _require(info, ("client_email", "private_key", "token_uri"), adc.origin, adc.path)
        return AccessProvider(
            source=f"ADC service_account {info['client_email']}",
            identity=identity,
            email=str(info["client_email"]),
            mint=AccessMint(where, info=info, proxy=auth.proxy, timeout=auth.mint_timeout),
        )
    if adc.kind == "authorized_user":
        _require(info, ("client_id", "client_secret", "refresh_token"), adc.origin, adc.path)
        return AccessProvider(
            source="ADC authorized_user (gcloud user)",
            identity=identity,
            email=None,
            mint=AccessMint(where, info=info, proxy=auth.proxy, timeout=auth.mint_timeout),
        )
    if adc.kind == "impersonated_service_account":
        target, file_endpoint = _impersonation_target(adc)
        endpoint = iam_endpoint(auth) or file_endpoint or DEFAULT_IAM_ENDPOINT
        src = info.get("source_credentials")
        if not isinstance(src, dict):
            raise CredentialsError(f"{where} has no source_credentials")
        delegates = [str(d) for d in info.get("delegates") or []]
        source = SourceCredentials(f"{where} source_credentials", info=src)
        return AccessProvider(
            source=f"ADC impersonated_service_account (impersonating {target})",
            identity=f"{identity}:{endpoint}",
            email=target,
            mint=AccessMint(
                where, impersonate=(source, target, endpoint, delegates), proxy=auth.proxy,
                timeout=auth.mint_timeout,
            ),
        )
    # external_account: google-auth's STS exchange, then the impersonation in the file
    url = info.get("service_account_impersonation_url")
    wif_target = target_from_impersonation_url(url) if isinstance(url, str) else None
    wif = dict(info)
    override = iam_endpoint(auth)
    if wif_target and override:
        wif["service_account_impersonation_url"] = (
            f"{override}/v1/projects/-/serviceAccounts/{wif_target}:generateAccessToken"
        )
    return AccessProvider(
        source="ADC external_account (workload identity federation"
        + (f" as {wif_target})" if wif_target else ")"),
        identity=f"{identity}:{override or ''}",
        email=wif_target,
        mint=AccessMint(where, info=wif, proxy=auth.proxy, timeout=auth.mint_timeout),
    )


def access_provider(auth: AuthSettings) -> tuple[AccessProvider | None, list[str]]:
    """The access-token provider of the credentials the call uses, and the sources tried.

    The same order as `resolve`: impersonation, --key-file, ADC, the metadata server. A
    static ID token (--token, --token-file) has no credentials behind it: then ADC and
    the metadata server are looked for, as gcloud would.
    """
    explicit_sources(auth)  # UsageError on a conflict
    if auth.impersonate_service_account:
        target = auth.impersonate_service_account
        endpoint = iam_endpoint(auth) or DEFAULT_IAM_ENDPOINT
        source, via, identity = _impersonation_source(auth)
        return (
            AccessProvider(
                source=f"impersonating {target} (source: {via})",
                identity=f"access:impersonate:{target}:{endpoint}:{identity}",
                email=target,
                mint=AccessMint(
                    f"impersonating {target}",
                    impersonate=(source, target, endpoint, ()),
                    proxy=auth.proxy,
                ),
            ),
            ["--impersonate-service-account"],
        )
    if auth.key_file is not None:
        info = read_key_file(auth.key_file)
        return (
            AccessProvider(
                source=f"service-account key {auth.key_file}",
                identity="access:" + key_identity(info),
                email=str(info["client_email"]),
                mint=AccessMint(
                    f"--key-file {auth.key_file}", info=info, proxy=auth.proxy,
                    timeout=auth.mint_timeout,
                ),
            ),
            ["--key-file"],
        )
    tried: list[str] = []
    adc = find_adc(tried)
    if adc is not None:
        return _adc_access(adc, auth), tried
    tried.append("metadata server")
    if metadata_server_available(auth.metadata_timeout):
        return (
            AccessProvider(
                source="metadata server",
                identity=f"access:metadata:{metadata_host()}",
                email=None,
                mint=AccessMint(
                    "metadata server", metadata=True, proxy=auth.proxy, timeout=auth.mint_timeout
                ),
            ),
            tried,
        )
    return None, tried
