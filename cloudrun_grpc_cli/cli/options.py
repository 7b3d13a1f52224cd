"""The options list, describe and call share, declared once.

`common_options` adds them to a command's signature (typer reads
`__signature__`) and hands the command one `CommonOptions` object. Every
option has an environment variable CRGRPC_<NAME>, shown in --help.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NamedTuple, Optional, TypeVar

import typer

F = TypeVar("F", bound=Callable[..., Any])

CONN = "Connection"
AUTH = "Authentication"
SCHEMA = "Schema"
OUTPUT = "Output"


def _opt(*decls: str, help: str, panel: str, env: str | None = None, **kw: Any) -> Any:
    name = env or decls[0].lstrip("-").split("/")[0].replace("-", "_").upper()
    return typer.Option(
        *decls,
        help=help,
        envvar=f"CRGRPC_{name}",
        show_envvar=True,
        rich_help_panel=panel,
        **kw,
    )


class CommonOptions(NamedTuple):
    plaintext: bool
    insecure: bool
    cacert: Path | None
    cert: Path | None
    key: Path | None
    authority: str | None
    connect_timeout: float
    max_msg_size: int | None
    header: list[str]
    retries: int
    retry_on: list[str]
    token: str | None
    token_file: Path | None
    key_file: Path | None
    impersonate_service_account: str | None
    include_email: bool
    audience: str | None
    auth: bool | None
    serverless_auth: bool
    allow_plaintext_token: bool
    no_token_cache: bool
    iam_endpoint: str | None
    show_token: bool
    proto: list[Path]
    import_path: list[Path]
    protoset: list[Path]
    protoset_out: Path | None
    no_schema_cache: bool
    output: str | None
    emit_defaults: bool
    proto_names: bool
    color: str
    verbose: bool
    debug: bool
    config: Path | None
    # Where each option's value came from: "flag", "env" or "default" (then
    # config.py may change values and origins for the named target and file).
    origins: dict[str, str] | None = None


_SPECS: dict[str, tuple[Any, Any]] = {
    "plaintext": (bool, _opt("--plaintext", help="Use plaintext HTTP/2 (h2c) for a host:port target.", panel=CONN)),
    "insecure": (bool, _opt("--insecure", help="Trust exactly the server's own certificate (self-signed servers); warns.", panel=CONN)),
    "cacert": (Optional[Path], _opt("--cacert", help="PEM file of CA certificates to verify the server with.", panel=CONN, metavar="FILE")),
    "cert": (Optional[Path], _opt("--cert", help="Client certificate (PEM) for mutual TLS; with --key.", panel=CONN, metavar="FILE")),
    "key": (Optional[Path], _opt("--key", help="Client private key (PEM) for mutual TLS; with --cert.", panel=CONN, metavar="FILE")),
    "authority": (Optional[str], _opt("--authority", help="The :authority header and the TLS name to verify; also sets the default audience.", panel=CONN, metavar="NAME")),
    "connect_timeout": (float, _opt("--connect-timeout", help="Seconds to wait for the connection.", panel=CONN, min=0.001, metavar="SECONDS")),
    "max_msg_size": (Optional[int], _opt("--max-msg-size", help="Largest response message accepted, in bytes (default 4 MiB).", panel=CONN, min=1, metavar="BYTES")),
    "header": (list[str], _opt("-H", "--header", help="Request header 'name: value' (repeatable; sent on reflection too; -bin names take base64).", panel=CONN, metavar="'NAME: VALUE'", env="HEADER")),
    "retries": (int, _opt("--retries", help="Retry UNAVAILABLE up to N times with gRPC's retry policy (0-4).", panel=CONN, min=0, max=4, metavar="N")),
    "retry_on": (list[str], _opt("--retry-on", help="Also retry this status code (repeatable).", panel=CONN, metavar="CODE")),
    "token": (Optional[str], _opt("--token", help="An ID token you already have (checked locally first).", panel=AUTH, metavar="JWT")),
    "token_file": (Optional[Path], _opt("--token-file", help="Read the ID token from FILE.", panel=AUTH, metavar="FILE")),
    "key_file": (Optional[Path], _opt("--key-file", help="Service-account key file to mint the ID token with.", panel=AUTH, metavar="FILE")),
    "impersonate_service_account": (Optional[str], _opt("--impersonate-service-account", help="Mint the token as this service account (IAM Credentials generateIdToken).", panel=AUTH, metavar="EMAIL")),
    "include_email": (bool, _opt("--include-email", help="With impersonation: put the email claim in the token.", panel=AUTH)),
    "audience": (Optional[str], _opt("--audience", help="Token audience (default https://HOST of the target or --authority).", panel=AUTH, metavar="AUD")),
    "auth": (Optional[bool], _opt("--auth/--no-auth", help="Force sending a token (plaintext, gcloud user) or never send one.", panel=AUTH, show_default=False)),
    "serverless_auth": (bool, _opt("--serverless-auth", help="Send the token in x-serverless-authorization (Cloud Run checks it first).", panel=AUTH)),
    "allow_plaintext_token": (bool, _opt("--allow-plaintext-token", help="Allow a token over plaintext to a non-loopback host.", panel=AUTH)),
    "no_token_cache": (bool, _opt("--no-token-cache", help="Neither read nor write the token cache.", panel=AUTH)),
    "iam_endpoint": (Optional[str], _opt("--iam-endpoint", help="IAM Credentials endpoint for impersonation.", panel=AUTH, metavar="URL")),
    "show_token": (bool, _opt("--show-token", help="Show the full token with -v (it is redacted otherwise).", panel=AUTH)),
    "proto": (list[Path], _opt("--proto", help="Schema from a .proto file instead of reflection (repeatable; needs crgrpc[protos]).", panel=SCHEMA, metavar="FILE")),
    "import_path": (list[Path], _opt("-I", "--import-path", help="Import path for --proto (repeatable).", panel=SCHEMA, metavar="DIR", env="IMPORT_PATH")),
    "protoset": (list[Path], _opt("--protoset", help="Schema from a FileDescriptorSet file (repeatable).", panel=SCHEMA, metavar="FILE")),
    "protoset_out": (Optional[Path], _opt("--protoset-out", help="Write the schema used to FILE as a FileDescriptorSet.", panel=SCHEMA, metavar="FILE")),
    "no_schema_cache": (bool, _opt("--no-schema-cache", help="Neither read nor write the reflection schema cache.", panel=SCHEMA)),
    "output": (Optional[str], _opt("-o", "--output", help="pretty | json | full | events (default: pretty on a terminal, json in a pipe).", panel=OUTPUT, metavar="MODE", env="OUTPUT")),
    "emit_defaults": (bool, _opt("--emit-defaults", help="Print fields that have their default value.", panel=OUTPUT)),
    "proto_names": (bool, _opt("--proto-names", help="Print proto field names (snake_case), not JSON names.", panel=OUTPUT)),
    "color": (str, _opt("--color", help="auto | always | never (NO_COLOR is honoured).", panel=OUTPUT, metavar="WHEN")),
    "verbose": (bool, _opt("-v", "--verbose", help="Show request metadata (redacted) and the token panel.", panel=OUTPUT, env="VERBOSE")),
    "debug": (bool, _opt("--debug", help="Show tracebacks and gRPC's own logging.", panel=OUTPUT)),
    "config": (Optional[Path], _opt("--config", help="Config file (default $XDG_CONFIG_HOME/crgrpc/config.toml).", panel=OUTPUT, metavar="FILE")),
}

_DEFAULTS: dict[str, Any] = {
    "plaintext": False, "insecure": False, "cacert": None, "cert": None, "key": None,
    "authority": None, "connect_timeout": 10.0, "max_msg_size": None, "header": [],
    "retries": 0, "retry_on": [], "token": None, "token_file": None, "key_file": None,
    "impersonate_service_account": None, "include_email": False, "audience": None,
    "auth": None, "serverless_auth": False, "allow_plaintext_token": False,
    "no_token_cache": False, "iam_endpoint": None, "show_token": False, "proto": [],
    "import_path": [], "protoset": [], "protoset_out": None, "no_schema_cache": False,
    "output": None, "emit_defaults": False, "proto_names": False, "color": "auto",
    "verbose": False, "debug": False, "config": None,
}

OPTION_NAMES = tuple(f for f in CommonOptions._fields if f != "origins")
assert set(OPTION_NAMES) == set(_SPECS) == set(_DEFAULTS)


def with_options(*names: str) -> Callable[[F], F]:
    """Add the named shared options to fn's CLI signature; fn receives `opts`
    (a CommonOptions with defaults for the options it does not take)."""

    def decorate(fn: F) -> F:
        sig = inspect.signature(fn)
        hints = typing.get_type_hints(fn, include_extras=True)
        own = [
            p.replace(annotation=hints.get(p.name, p.annotation))
            for p in sig.parameters.values()
            if p.name != "opts"
        ]
        extra = [
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=_DEFAULTS[name],
                annotation=Annotated[_SPECS[name][0], _SPECS[name][1]],
            )
            for name in names
        ]

        ctx_param = inspect.Parameter(
            "crgrpc_ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context
        )

        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> Any:
            ctx = kwargs.pop("crgrpc_ctx")
            given = {name: kwargs.pop(name) for name in names}
            origins = {name: _origin(ctx, name) for name in names}
            for name in names:
                if origins[name] == "env" and isinstance(given[name], list):
                    given[name] = _env_list(name)
            opts = CommonOptions(**{**_DEFAULTS, **given}, origins=origins)
            return fn(opts=opts, **kwargs)

        wrapper.__signature__ = sig.replace(parameters=[*own, *extra, ctx_param])  # type: ignore[attr-defined]
        ann = {p.name: p.annotation for p in own}
        if "return" in hints:
            ann["return"] = hints["return"]
        for p in extra:
            ann[p.name] = p.annotation
        ann["crgrpc_ctx"] = typer.Context
        wrapper.__annotations__ = ann
        return wrapper  # type: ignore[return-value]

    return decorate


PATH_LISTS = frozenset({"proto", "import_path", "protoset"})  # repeatable options of paths


def _env_list(name: str) -> list[Any]:
    """Repeatable options in CRGRPC_* variables are newline-separated (values may hold spaces)."""
    import os

    raw = os.environ.get(f"CRGRPC_{name.upper()}", "")
    items = [line.strip() for line in raw.splitlines() if line.strip()]
    return [Path(i) for i in items] if name in PATH_LISTS else items


def _origin(ctx: typer.Context, name: str) -> str:
    source = ctx.get_parameter_source(name)
    label = getattr(source, "name", "DEFAULT")
    return {"COMMANDLINE": "flag", "ENVIRONMENT": "env"}.get(label, "default")


common_options = with_options(*OPTION_NAMES)
TOKEN_OPTION_NAMES = (
    "token", "token_file", "key_file", "impersonate_service_account", "include_email",
    "audience", "no_token_cache", "iam_endpoint", "output", "color", "debug", "config",
)
token_options = with_options(*TOKEN_OPTION_NAMES)
