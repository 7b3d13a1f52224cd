"""Immutable settings handed from the CLI to the core.

NamedTuples (cheap to define: this module loads on every start); the core
reads these, never typer objects. Defaults are the contract's defaults.
"""

from pathlib import Path
from typing import Literal, NamedTuple

OutputMode = Literal["pretty", "json", "full", "events"]
ColorMode = Literal["auto", "always", "never"]

# A header value is text, or bytes for `-bin` names.
Header = tuple[str, "str | bytes"]


class ChannelSettings(NamedTuple):
    plaintext: bool = False
    insecure: bool = False
    cacert: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    authority: str | None = None
    connect_timeout: float = 10.0
    timeout: float | None = None
    max_msg_size: int | None = None
    headers: tuple[Header, ...] = ()
    retries: int = 0
    retry_on: tuple[str, ...] = ()
    reflection_timeout: float = 10.0
    proxy: str | None = None  # --proxy: an HTTP CONNECT proxy URL (else the proxy variables)


class AuthSettings(NamedTuple):
    """Token sources and the rules of when a token is sent (README: Authenticating)."""

    token: str | None = None
    token_file: Path | None = None
    token_label: str = "--token"  # how messages name `token` (the CLI: its flag or variable)
    key_file: Path | None = None
    impersonate_service_account: str | None = None
    include_email: bool = False
    audience: str | None = None
    auth: bool | None = None  # --auth True, --no-auth False, unset None
    serverless_auth: bool = False
    allow_plaintext_token: bool = False
    token_cache: bool = True
    iam_endpoint: str | None = None
    show_token: bool = False
    metadata_timeout: float = 1.0
    # One mint, every request it takes (token endpoint, STS, IAM Credentials,
    # metadata server), in seconds; a connection within min(10 s, this).
    mint_timeout: float = 30.0
    # --auth-header: the header that carries the token; None: authorization, or
    # x-serverless-authorization with serverless_auth (its short form).
    auth_header: str | None = None
    proxy: str | None = None  # --proxy for the HTTP requests of minting (token endpoint, IAM, STS)


class OutputSettings(NamedTuple):
    mode: OutputMode = "json"
    emit_defaults: bool = False
    proto_names: bool = False
    color: ColorMode = "auto"
    verbose: bool = False
    debug: bool = False


class SchemaSettings(NamedTuple):
    protos: tuple[Path, ...] = ()
    import_paths: tuple[Path, ...] = ()
    protosets: tuple[Path, ...] = ()
    protoset_out: Path | None = None
    schema_cache: bool = True


class CloudRunSettings(NamedTuple):
    """Where `run://` targets are looked up (the Cloud Run Admin API v2)."""

    project: str | None = None  # --project; else gcloud's settings
    region: str | None = None  # --region; else gcloud's settings
    run_api: str | None = None  # --run-api; None: https://run.googleapis.com
    resolve_cache: bool = True  # read and write the 5-minute resolution cache


class Settings(NamedTuple):
    channel: ChannelSettings = ChannelSettings()
    auth: AuthSettings = AuthSettings()
    output: OutputSettings = OutputSettings()
    schema: SchemaSettings = SchemaSettings()
    cloudrun: CloudRunSettings = CloudRunSettings()
    # The crgrpc cache directory (tokens/, schema/); None: $XDG_CACHE_HOME/crgrpc.
    cache_dir: Path | None = None
    # The config file's named targets (a hint lists them when a bare name fails DNS).
    named_targets: tuple[str, ...] = ()


class ProxySettings(NamedTuple):
    """`crgrpc proxy`: where it listens and how long it lets calls finish on stop."""

    bind: str = "127.0.0.1"
    port: int = 8080
    grace: float = 5.0
