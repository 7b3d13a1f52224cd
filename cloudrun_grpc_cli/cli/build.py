"""CommonOptions (what the user typed) → Settings and Target (what core reads)."""

from __future__ import annotations

from ..core.target import Target, parse_target
from ..errors import UsageError
from ..render.env import Environment
from ..settings import (
    AuthSettings,
    ChannelSettings,
    CloudRunSettings,
    OutputMode,
    OutputSettings,
    SchemaSettings,
    Settings,
)
from .console import OUTPUT_MODES, choose_mode
from .options import ROWS, CommonOptions

COLOR_MODES = ("auto", "always", "never")


def output_mode(opts: CommonOptions, env: Environment, allowed: tuple[str, ...]) -> OutputMode:
    return choose_mode(opts.output, env, allowed)  # type: ignore[return-value]


# Each reflection request's deadline when --timeout is not given.
REFLECTION_TIMEOUT = 10.0


def build_settings(
    opts: CommonOptions, env: Environment, *, allowed_modes: tuple[str, ...] = OUTPUT_MODES
) -> Settings:
    if opts.color not in COLOR_MODES:
        raise UsageError(f"unknown --color {opts.color!r}", "use auto, always or never")
    from ..core.channel import parse_header, validate_retry_codes  # grpc: not for token commands

    headers = tuple(parse_header(h) for h in opts.header)
    retry_on = validate_retry_codes(opts.retry_on)
    channel = ChannelSettings(
        plaintext=opts.plaintext,
        insecure=opts.insecure,
        cacert=opts.cacert,
        cert=opts.cert,
        key=opts.key,
        authority=opts.authority,
        connect_timeout=opts.connect_timeout,
        timeout=opts.timeout,
        reflection_timeout=REFLECTION_TIMEOUT if opts.timeout is None else opts.timeout,
        max_msg_size=opts.max_msg_size,
        headers=headers,
        retries=opts.retries,
        retry_on=retry_on,
        proxy=proxy_setting(opts),
    )
    auth = auth_settings(opts)
    from ..core.auth.named import header_for

    header_for(auth)  # an unknown --auth-header, or one --serverless-auth contradicts: exit 2
    output = OutputSettings(
        mode=output_mode(opts, env, allowed_modes),
        emit_defaults=opts.emit_defaults,
        proto_names=opts.proto_names,
        color=opts.color,  # type: ignore[arg-type]
        verbose=opts.verbose,
        debug=opts.debug,
    )
    schema = SchemaSettings(
        protos=tuple(opts.proto),
        import_paths=tuple(opts.import_path),
        protosets=tuple(opts.protoset),
        protoset_out=opts.protoset_out,
        schema_cache=not opts.no_schema_cache,
    )
    return Settings(
        channel=channel,
        auth=auth,
        output=output,
        schema=schema,
        cloudrun=cloudrun_settings(opts),
        cache_dir=env.cache_dir,
    )


def proxy_setting(opts: CommonOptions) -> str | None:
    """--proxy, checked now (exit 2 before anything is sent); "" is none."""
    text = (opts.proxy or "").strip()
    if not text:
        return None
    from ..core.egress import parse_proxy

    parse_proxy(text)
    return text


def cloudrun_settings(opts: CommonOptions) -> CloudRunSettings:
    return CloudRunSettings(
        project=(opts.project or "").strip() or None,
        region=(opts.region or "").strip() or None,
        run_api=(opts.run_api or "").strip() or None,
    )


def auth_settings(opts: CommonOptions, audience: str | None = None) -> AuthSettings:
    """The token sources and rules the user chose (audience: `token` commands pass theirs)."""
    from_env = (opts.origins or {}).get("token") == "env"
    return AuthSettings(
        token=opts.token,
        token_file=opts.token_file,
        token_label=ROWS["token"].env if from_env else "--token",
        key_file=opts.key_file,
        impersonate_service_account=opts.impersonate_service_account,
        include_email=opts.include_email,
        audience=audience or opts.audience,
        auth=opts.auth,
        serverless_auth=opts.serverless_auth,
        allow_plaintext_token=opts.allow_plaintext_token,
        token_cache=not opts.no_token_cache,
        iam_endpoint=opts.iam_endpoint,
        show_token=opts.show_token,
        mint_timeout=opts.mint_timeout,
        auth_header=(opts.auth_header or "").strip().lower() or None,
        proxy=proxy_setting(opts),
    )


def build_target(text: str, opts: CommonOptions) -> Target:
    return parse_target(text, plaintext=opts.plaintext)
