"""`crgrpc token print|show|decode`: mint, show and decode Google ID tokens.

`decode` without --verify imports neither grpc nor google.auth.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Optional

import typer

from ..errors import CredentialsError, UsageError
from .console import choose_mode, write_json_lines
from .options import (
    DECODE_OPTION_NAMES,
    MODES_BASIC,
    CommonOptions,
    token_options,
    token_print_options,
    with_options,
)

TOKEN_HELP = """Mint, show and decode Google ID tokens.

The audience is https://HOST of TARGET, or --audience; the token comes from
--key-file, --impersonate-service-account, application default credentials
or the metadata server, and is cached until 5 minutes before it expires.

Examples:

\b
  crgrpc token print https://echo-abc-uc.a.run.app --key-file sa.json
  crgrpc token show https://echo-abc-uc.a.run.app
  crgrpc token print https://x.run.app | crgrpc token decode --verify --audience https://x.run.app
"""

token_app = typer.Typer(
    help=TOKEN_HELP,
    no_args_is_help=True,
    rich_markup_mode=None,
)

PRINT_HELP = """Print a fresh (or cached) ID token and a newline, nothing else.

The audience is https://HOST of TARGET (a run:// target: the service's URL,
from the Cloud Run Admin API), or --audience.

Examples:

\b
  crgrpc token print https://echo-abc-uc.a.run.app --key-file sa.json
  crgrpc token print run://us-central1/echo
  curl -H "authorization: Bearer $(crgrpc token print --audience https://x.run.app)" ...
"""

SHOW_HELP = """Mint (or reuse) an ID token and show its source, email, audience and expiry.

Examples:

\b
  crgrpc token show https://echo-abc-uc.a.run.app
  crgrpc token show --audience https://echo-abc-uc.a.run.app -o json | jq .email
"""

DECODE_HELP = """Decode a JWT: header and claims, times humanised; --verify checks it.

TOKEN is the token, or - (or nothing, in a pipe) for standard input.

Examples:

\b
  crgrpc token print https://x.run.app | crgrpc token decode
  crgrpc token decode "$TOKEN" --verify --audience https://x.run.app
"""


def register(app: typer.Typer) -> None:
    app.add_typer(token_app, name="token")


def _audience(target: str | None, opts: CommonOptions, command: str = "print") -> str:
    if opts.audience:
        return opts.audience
    if not target:
        raise UsageError(
            "give a TARGET or --audience",
            f"crgrpc token {command} https://SERVICE.run.app, or --audience AUD",
        )
    from ..core.auth.policy import choose_audience
    from ..core.target import parse_target

    parsed = parse_target(target)
    if parsed.run is not None:
        from ..core.cloudrun.resolve import lookup
        from ..settings import Settings
        from .build import auth_settings, cloudrun_settings
        from .console import current_env

        settings = Settings(
            auth=auth_settings(opts), cloudrun=cloudrun_settings(opts),
            cache_dir=current_env().cache_dir,
        )
        resolution = lookup(parsed.run, settings, raw=target)
        assert resolution is not None
        return resolution.audience
    aud = choose_audience(None, parsed, None)
    if aud is None:
        raise UsageError(f"{target!r} has no host to derive an audience from", "pass --audience")
    return aud


def _mint(target: str | None, opts: CommonOptions, command: str = "print") -> Any:
    from ..core.auth import build_provider
    from .build import auth_settings
    from .config import apply_config
    from .console import current_env

    opts, target = apply_config(opts, target)
    audience = _audience(target, opts, command)
    provider, tried = build_provider(
        auth_settings(opts, audience), audience, cache_dir=current_env().cache_dir
    )
    if provider is None:
        raise CredentialsError(
            "no Google credentials found",
            f"tried: {', '.join(tried)}" if tried else "",
            "pass --key-file or --impersonate-service-account, or run "
            "'gcloud auth application-default login'",
        )
    try:
        return provider.get()
    except CredentialsError as exc:
        # google-auth's reason is in the message; say which source was used.
        if tried:
            exc.with_hints(f"tried: {', '.join(tried)}")
        raise


def _mode(opts: CommonOptions) -> str:
    from .console import current_env

    env = current_env()
    env.color = opts.color
    return choose_mode(opts.output, env, ("pretty", "json"))


@token_app.command("print", help=PRINT_HELP)
@token_print_options
def print_cmd(
    target: Annotated[Optional[str], typer.Argument(metavar="TARGET", help="The service; the audience is https://HOST (of a run:// target: the service's URL).")] = None,
    *,
    opts: CommonOptions,
) -> None:
    from .console import current_env

    token = _mint(target, opts)
    out = current_env().stdout
    out.write(token.value + "\n")
    out.flush()


def token_summary(token: Any, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    claims = token.claims
    exp = claims.get("exp")
    return {
        "source": token.source,
        "email": claims.get("email"),
        "audience": claims.get("aud"),
        "audience_bound": token.audience_bound,
        "issuer": claims.get("iss"),
        "subject": claims.get("sub"),
        "issued_at": claims.get("iat"),
        "expires_at": exp,
        "expires_in": int(exp - now) if isinstance(exp, (int, float)) else None,
        "claims": claims,
    }


@token_app.command("show", help=SHOW_HELP)
@token_options
def show_cmd(
    target: Annotated[Optional[str], typer.Argument(metavar="TARGET", help="The service; the audience is https://HOST (of a run:// target: the service's URL).")] = None,
    *,
    opts: CommonOptions,
) -> None:
    from .console import current_env

    mode = _mode(opts)
    token = _mint(target, opts, "show")
    summary = token_summary(token)
    env = current_env()
    if mode == "json":
        write_json_lines(env, [summary])
        return
    from ..render.tokens import print_token_summary

    print_token_summary(env, summary)


def _read_token(token: str | None) -> str:
    from .console import current_env

    env = current_env()
    if token is None or token == "-":
        if token is None and env.stdin_isatty:
            raise UsageError("give a TOKEN, or pipe one in", "crgrpc token print TARGET | crgrpc token decode")
        text = env.stdin.read()
    else:
        text = token
    text = text.strip()
    if text.lower().startswith("bearer "):
        text = text[7:].strip()
    if not text:
        raise CredentialsError("no token given: the input is empty")
    return text


@token_app.command("decode", help=DECODE_HELP)
@with_options(*DECODE_OPTION_NAMES, helps={"output": MODES_BASIC})
def decode_cmd(
    token: Annotated[Optional[str], typer.Argument(metavar="TOKEN|-", help="The JWT, or - for standard input.")] = None,
    *,
    verify: bool,
    audience: Optional[str],
    certs: Optional[str],
    opts: CommonOptions,
) -> None:
    from ..core.auth.jwt import decode_jwt, looks_like_access_token
    from .console import current_env

    env = current_env()
    env.color = opts.color
    mode = choose_mode(opts.output, env, ("pretty", "json"))
    text = _read_token(token)
    if looks_like_access_token(text):
        raise CredentialsError(
            "this is an OAuth access token (ya29.…), not an ID token: it cannot be decoded",
            "mint an ID token: crgrpc token print TARGET",
        )
    decoded = decode_jwt(text)
    now = time.time()
    exp = decoded.claims.get("exp")
    doc: dict[str, Any] = {
        "header": decoded.header,
        "claims": decoded.claims,
        "expired": isinstance(exp, (int, float)) and exp <= now,
        "expires_in": int(exp - now) if isinstance(exp, (int, float)) else None,
    }
    verification = None
    if verify:
        from ..core.auth.verify import verify_jwt
        from .build import proxy_setting

        verification = verify_jwt(text, certs=certs, audience=audience, proxy=proxy_setting(opts))
        doc["verification"] = {
            "ok": verification.ok,
            "checks": [{"check": n, "ok": ok, "detail": d} for n, ok, d in verification.checks],
        }
    if mode == "json":
        write_json_lines(env, [doc])
    else:
        from ..render.tokens import print_decoded

        print_decoded(env, doc)
    if verification is not None and not verification.ok:
        failed = [f"{n}: {d}" for n, ok, d in verification.checks if ok is False]
        raise CredentialsError("token verification failed: " + "; ".join(failed))
