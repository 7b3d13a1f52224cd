"""Every option of every command, declared once: the table `OPTIONS`.

Each row names an option's flags, Python type, default, allowed range, CRGRPC_*
variable, config-file key (None: not in the config file), help panel, help
text and metavar. From the table come the typer parameters (`with_options`),
the environment variables, the defaults, and the config file's conversion and
validation (cli/config.py), so a value from a flag, a CRGRPC_* variable or
the config file gets exactly the same checks.

`common_options` adds the options list, describe, call and config show share
to a command's signature (typer reads `__signature__`) and hands the command
one `CommonOptions` object; rows outside CommonOptions (call's -d, serve's
--port…) reach the command as keyword arguments of their own.
"""

import functools
import inspect
import math
import os
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, Optional, TypeVar

import typer

F = TypeVar("F", bound=Callable[..., Any])

CONN = "Connection"
AUTH = "Authentication"
SCHEMA = "Schema"
OUTPUT = "Output"
REQUEST = "Request"
VERIFY = "Verification"
SERVER = "Server"
CLOUD_RUN = "Cloud Run"
LOAD = "Load"
PROXY = "Proxy"

# Deadlines: grpcio takes up to about 7e9 s (beyond, its absolute deadline
# overflows: an immediate DEADLINE_EXCEEDED), and the grpc-timeout header has at
# most 8 digits; 99999999 s (over 3 years) is far inside both.
TIMEOUT_MIN, TIMEOUT_MAX = 0.001, 99_999_999.0
INT32_MAX = 2**31 - 1  # gRPC's channel arguments are C ints


class Opt(NamedTuple):
    """One option: a row of the table."""

    name: str  # unique; the CommonOptions field, else the row's own name
    flags: tuple[str, ...]
    pytype: Any  # the Python type typer reads: bool, Optional[float], list[Path]…
    default: Any
    help: str  # without the range, which help_text adds
    panel: str | None
    metavar: str | None
    env: str  # CRGRPC_*
    config_key: str | None  # key in [defaults] / [targets.NAME]; None: not allowed there
    min: float | None = None
    max: float | None = None
    dest: str = ""  # the command's parameter name (default: name)
    show_default: bool = True
    # For a text row with a grammar of its own (bench's --warmup): text → value,
    # ValueError(what the text must be) otherwise; typer then reports it like a range.
    check: Callable[[str], Any] | None = None

    @property
    def param(self) -> str:
        return self.dest or self.name

    @property
    def kind(self) -> Any:
        """The scalar type: bool, int, float, str or Path (of each item for lists)."""
        t = self.pytype
        if typing.get_origin(t) is list:
            t = typing.get_args(t)[0]
        args = [a for a in typing.get_args(t) if a is not type(None)]
        if typing.get_origin(t) is not None and len(args) == 1:  # Optional[X]
            t = args[0]
        return t

    @property
    def is_list(self) -> bool:
        return typing.get_origin(self.pytype) is list

    @property
    def is_number(self) -> bool:
        return self.kind in (int, float)

    @property
    def range_text(self) -> str:
        """'a finite number from 0.001 to 99999999', 'a whole number from 0 to 4'."""
        what = "a whole number" if self.kind is int else "a finite number"
        return f"{what} from {_num(self.min)} to {_num(self.max)}"

    @property
    def help_text(self) -> str:
        if not self.is_number:
            return self.help
        return f"{self.help.rstrip('.')} ({_num(self.min)}-{_num(self.max)})."

    def option(self) -> Any:
        """The typer.Option of this row, holding its default (typer's default style:
        the parameter's default, where an Annotated[...] per option would cost
        start-up ~40 us each to build)."""
        kw: dict[str, Any] = {}
        if self.is_number:
            kw["parser"] = _NumberParser(self)
        elif self.check is not None:
            kw["parser"] = _TextParser(self)
        if not self.show_default:
            kw["show_default"] = False
        return typer.Option(
            list(self.default) if isinstance(self.default, list) else self.default,
            *self.flags,
            help=self.help_text,
            envvar=self.env,
            show_envvar=True,
            rich_help_panel=self.panel,
            metavar=self.metavar,
            **kw,
        )

    def parse(self, value: object) -> Any:
        """A number from a flag's or variable's text or a config file's value,
        checked against the range; ValueError(range_text) otherwise."""
        number: int | float
        if isinstance(value, str):
            try:
                number = int(value.strip()) if self.kind is int else float(value)
            except ValueError:
                raise ValueError(self.range_text) from None
        elif (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or (self.kind is int and not isinstance(value, int))
        ):
            raise ValueError(self.range_text)
        else:
            number = value
        if self.kind is float:
            number = float(number)
        assert self.min is not None and self.max is not None
        if not math.isfinite(number) or not self.min <= number <= self.max:
            raise ValueError(self.range_text)
        return number


def _num(x: float | None) -> str:
    assert x is not None
    return str(int(x)) if float(x).is_integer() else repr(float(x))


class _NumberParser:
    """typer's parser for a numeric row: finite and in the row's range, else
    BadParameter (exit 2; Click adds the option, cli/main.py names its source)."""

    def __init__(self, row: Opt) -> None:
        self.row = row
        self.__name__ = "integer" if row.kind is int else "number"

    def __call__(self, value: Any) -> Any:
        try:
            return self.row.parse(value)
        except ValueError as e:
            shown = value.strip() if isinstance(value, str) and value.strip() else repr(value)
            raise typer.BadParameter(f"{shown} is not {e}") from None


class _TextParser:
    """typer's parser for a row with a `check`: BadParameter like a number's range."""

    def __init__(self, row: Opt) -> None:
        self.row = row
        self.__name__ = "text"

    def __call__(self, value: Any) -> Any:
        assert self.row.check is not None
        if not isinstance(value, str):
            return value  # already parsed (a default)
        try:
            return self.row.check(value)
        except ValueError as e:
            shown = value.strip() or repr(value)
            raise typer.BadParameter(f"{shown} is not {e}") from None


def _warmup(text: str) -> Any:
    from ..core.load.spec import parse_warmup

    return parse_warmup(text)


def _row(
    name: str,
    *flags: str,
    pytype: Any,
    default: Any,
    help: str,
    panel: str | None = None,
    metavar: str | None = None,
    env: str | None = None,
    config: bool = True,
    min: float | None = None,
    max: float | None = None,
    dest: str = "",
    show_default: bool = True,
    check: Callable[[str], Any] | None = None,
) -> Opt:
    return Opt(
        name=name,
        flags=flags,
        pytype=pytype,
        default=default,
        help=help,
        panel=panel,
        metavar=metavar,
        env="CRGRPC_" + (env or name).upper(),
        config_key=name if config else None,
        min=min,
        max=max,
        dest=dest,
        show_default=show_default,
        check=check,
    )


OPTIONS: tuple[Opt, ...] = (
    # --- shared: CommonOptions fields ------------------------------------------------------
    _row("plaintext", "--plaintext", pytype=bool, default=False, panel=CONN, help="Use plaintext HTTP/2 (h2c) for a host:port target."),
    _row("insecure", "--insecure", pytype=bool, default=False, panel=CONN, help="Trust exactly the server's own certificate (self-signed servers); warns."),
    _row("cacert", "--cacert", pytype=Optional[Path], default=None, panel=CONN, metavar="FILE", help="PEM file of CA certificates to verify the server with."),
    _row("cert", "--cert", pytype=Optional[Path], default=None, panel=CONN, metavar="FILE", help="Client certificate (PEM) for mutual TLS; with --key."),
    _row("key", "--key", pytype=Optional[Path], default=None, panel=CONN, metavar="FILE", help="Client private key (PEM) for mutual TLS; with --cert."),
    _row("authority", "--authority", pytype=Optional[str], default=None, panel=CONN, metavar="NAME", help="The :authority header and the TLS name to verify; also sets the default audience."),
    _row("connect_timeout", "--connect-timeout", pytype=float, default=10.0, panel=CONN, metavar="SECONDS", min=TIMEOUT_MIN, max=TIMEOUT_MAX, help="Seconds to wait for the connection."),
    _row("timeout", "--timeout", pytype=Optional[float], default=None, panel=CONN, metavar="SECONDS", min=TIMEOUT_MIN, max=TIMEOUT_MAX, help="Deadline in seconds for the call; each reflection request gets the same deadline, by default 10 s."),
    _row("max_msg_size", "--max-msg-size", pytype=Optional[int], default=None, panel=CONN, metavar="BYTES", min=1, max=INT32_MAX, help="Largest response message accepted, in bytes; by default 4 MiB."),
    _row("header", "-H", "--header", pytype=list[str], default=[], panel=CONN, metavar="'NAME: VALUE'", help="Request header 'name: value' (repeatable; sent on reflection too; -bin names take base64)."),
    _row("retries", "--retries", pytype=int, default=0, panel=CONN, metavar="N", min=0, max=4, help="Retry UNAVAILABLE up to N times with gRPC's retry policy."),
    _row("retry_on", "--retry-on", pytype=list[str], default=[], panel=CONN, metavar="CODE", help="Also retry this status code (repeatable)."),
    _row("token", "--token", pytype=Optional[str], default=None, panel=AUTH, metavar="JWT", help="An ID token you already have (checked locally first)."),
    _row("token_file", "--token-file", pytype=Optional[Path], default=None, panel=AUTH, metavar="FILE", help="Read the ID token from FILE."),
    _row("key_file", "--key-file", pytype=Optional[Path], default=None, panel=AUTH, metavar="FILE", help="Service-account key file to mint the ID token with."),
    _row("impersonate_service_account", "--impersonate-service-account", pytype=Optional[str], default=None, panel=AUTH, metavar="EMAIL", help="Mint the token as this service account (IAM Credentials generateIdToken)."),
    _row("include_email", "--include-email", pytype=bool, default=False, panel=AUTH, help="With impersonation: put the email claim in the token."),
    _row("audience", "--audience", pytype=Optional[str], default=None, panel=AUTH, metavar="AUD", help="Token audience (default https://HOST of the target or --authority)."),
    _row("auth", "--auth/--no-auth", pytype=Optional[bool], default=None, panel=AUTH, show_default=False, help="Force sending a token (plaintext, gcloud user) or never send one."),
    _row("serverless_auth", "--serverless-auth", pytype=bool, default=False, panel=AUTH, help="Send the token in x-serverless-authorization (Cloud Run checks it first)."),
    _row("allow_plaintext_token", "--allow-plaintext-token", pytype=bool, default=False, panel=AUTH, help="Allow a token over plaintext to a non-loopback host."),
    _row("no_token_cache", "--no-token-cache", pytype=bool, default=False, panel=AUTH, help="Neither read nor write the token cache."),
    _row("iam_endpoint", "--iam-endpoint", pytype=Optional[str], default=None, panel=AUTH, metavar="URL", help="IAM Credentials endpoint for impersonation."),
    _row("mint_timeout", "--mint-timeout", pytype=float, default=30.0, panel=AUTH, metavar="SECONDS", min=1.0, max=3600.0, help="Bound on minting a token: connecting, waiting and reading every answer of the token endpoints."),
    _row("show_token", "--show-token", pytype=bool, default=False, panel=AUTH, help="Show the full token with -v (it is redacted otherwise)."),
    _row("proto", "--proto", pytype=list[Path], default=[], panel=SCHEMA, metavar="FILE", help="Schema from a .proto file instead of reflection (repeatable; needs crgrpc[protos])."),
    _row("import_path", "-I", "--import-path", pytype=list[Path], default=[], panel=SCHEMA, metavar="DIR", help="Import path for --proto (repeatable)."),
    _row("protoset", "--protoset", pytype=list[Path], default=[], panel=SCHEMA, metavar="FILE", help="Schema from a FileDescriptorSet file (repeatable)."),
    _row("protoset_out", "--protoset-out", pytype=Optional[Path], default=None, panel=SCHEMA, metavar="FILE", help="Write the schema used to FILE as a FileDescriptorSet."),
    _row("no_schema_cache", "--no-schema-cache", pytype=bool, default=False, panel=SCHEMA, help="Neither read nor write the reflection schema cache."),
    _row("output", "-o", "--output", pytype=Optional[str], default=None, panel=OUTPUT, metavar="MODE", help="auto | pretty | json | full | events: what each command takes is in its --help (auto: pretty on a terminal, json in a pipe)."),
    _row("emit_defaults", "--emit-defaults", pytype=bool, default=False, panel=OUTPUT, help="Print fields that have their default value."),
    _row("proto_names", "--proto-names", pytype=bool, default=False, panel=OUTPUT, help="Print proto field names (snake_case), not JSON names."),
    _row("color", "--color", pytype=str, default="auto", panel=OUTPUT, metavar="WHEN", help="auto | always | never (NO_COLOR is honoured)."),
    _row("verbose", "-v", "--verbose", pytype=bool, default=False, panel=OUTPUT, help="Show request metadata (redacted) and the token panel."),
    _row("debug", "--debug", pytype=bool, default=False, panel=OUTPUT, help="Show tracebacks and gRPC's own logging."),
    _row("config", "--config", pytype=Optional[Path], default=None, panel=OUTPUT, metavar="FILE", config=False, help="Config file (default $XDG_CONFIG_HOME/crgrpc/config.toml)."),
    # --- Cloud Run, IAP and proxies --------------------------------------------------------
    _row("project", "--project", pytype=Optional[str], default=None, panel=CLOUD_RUN, metavar="PROJECT", help="Project of a run:// target that names none (default: CLOUDSDK_CORE_PROJECT, then gcloud's core/project)."),
    _row("region", "--region", pytype=Optional[str], default=None, panel=CLOUD_RUN, metavar="REGION", help="Region of a run:// target that names none (default: CLOUDSDK_RUN_REGION, then gcloud's run/region)."),
    _row("run_api", "--run-api", pytype=Optional[str], default=None, panel=CLOUD_RUN, metavar="URL", help="Cloud Run Admin API endpoint for run:// targets and doctor (default https://run.googleapis.com)."),
    _row("auth_header", "--auth-header", pytype=Optional[str], default=None, panel=AUTH, metavar="HEADER", help="Header that carries the token: authorization, x-serverless-authorization (--serverless-auth) or proxy-authorization (IAP; keeps authorization for the app)."),
    _row("proxy", "--proxy", pytype=Optional[str], default=None, panel=CONN, metavar="URL", help="HTTP CONNECT proxy http://[USER:PASSWORD@]HOST:PORT for the gRPC connection and every HTTP request (default: grpc_proxy, https_proxy; no_proxy is honoured)."),
    # --- call ------------------------------------------------------------------------------
    _row("data", "-d", "--data", pytype=Optional[str], default=None, panel=REQUEST, metavar="DATA", config=False, help="Request JSON, @FILE, or @- for standard input."),
    _row("allow_unknown_fields", "--allow-unknown-fields", pytype=bool, default=False, panel=REQUEST, config=False, help="Skip request fields the schema does not know."),
    _row("each", "--each", pytype=bool, default=False, panel=REQUEST, config=False, help="One unary or server-streaming call per DATA message, over one connection with one token; results in input order."),
    _row("concurrency", "--concurrency", pytype=int, default=1, panel=REQUEST, metavar="N", config=False, min=1, max=256, help="With --each: keep up to N calls in flight."),
    # --- token decode ----------------------------------------------------------------------
    _row("verify", "--verify", pytype=bool, default=False, panel=VERIFY, config=False, help="Check signature, issuer, audience and expiry."),
    _row("verify_audience", "--audience", pytype=Optional[str], default=None, panel=VERIFY, metavar="AUD", env="AUDIENCE", config=False, dest="audience", help="With --verify: the audience the token must carry."),
    _row("certs", "--certs", pytype=Optional[str], default=None, panel=VERIFY, metavar="URL|FILE", env="CERTS_URL", config=False, help="Certs to check token signatures with: a URL or a file (PEM map or JWKS); default Google's."),
    # --- serve -----------------------------------------------------------------------------
    _row("host", "--host", pytype=str, default="::", panel=SERVER, metavar="HOST", env="SERVE_HOST", config=False, help="Interface to listen on (default: all)."),
    _row("port", "--port", pytype=Optional[int], default=None, panel=SERVER, metavar="PORT", env="SERVE_PORT", config=False, min=0, max=65535, show_default=False, help="Port, by default $PORT, else 8080."),
    _row("tls_cert", "--tls-cert", pytype=Optional[Path], default=None, panel=SERVER, metavar="FILE", config=False, help="Serve TLS with this certificate (PEM)."),
    _row("tls_key", "--tls-key", pytype=Optional[Path], default=None, panel=SERVER, metavar="FILE", config=False, help="The certificate's private key (PEM)."),
    _row("reflection", "--reflection/--no-reflection", pytype=bool, default=True, panel=SERVER, config=False, help="Offer server reflection."),
    _row("require_token", "--require-token", pytype=bool, default=False, panel=SERVER, config=False, help="Reject calls without a valid Google ID token."),
    _row("serve_audience", "--audience", pytype=Optional[str], default=None, panel=SERVER, metavar="AUD", env="AUDIENCE", config=False, dest="audience", help="With --require-token: the audience tokens must carry."),
    _row("allow_email", "--allow-email", pytype=list[str], default=[], panel=SERVER, metavar="EMAIL", config=False, help="With --require-token: only these emails (repeatable)."),
    # --- bench ---------------------------------------------------------------------------
    _row("total", "-n", "--total", pytype=Optional[int], default=None, panel=LOAD, metavar="N", env="BENCH_TOTAL", config=False, min=1, max=1_000_000_000, show_default=False, help="Send N requests (after the warmup); or give --duration."),
    _row("duration", "--duration", pytype=Optional[float], default=None, panel=LOAD, metavar="SECONDS", env="BENCH_DURATION", config=False, min=TIMEOUT_MIN, max=TIMEOUT_MAX, show_default=False, help="Send requests for this many seconds (after the warmup); or give --total."),
    _row("bench_concurrency", "-c", "--concurrency", pytype=int, default=10, panel=LOAD, metavar="C", env="BENCH_CONCURRENCY", dest="concurrency", config=False, min=1, max=100_000, help="Requests in flight at most, over all workers."),
    _row("connections", "--connections", pytype=Optional[int], default=None, panel=LOAD, metavar="K", env="BENCH_CONNECTIONS", config=False, min=1, max=10_000, show_default=False, help="Connections over all workers, to reach several instances; by default one per worker."),
    _row("rate", "--rate", pytype=Optional[float], default=None, panel=LOAD, metavar="RPS", env="BENCH_RATE", config=False, min=0.01, max=10_000_000, show_default=False, help="Start requests at this rate (open loop; latency counts from each request's due time); by default each ends before the next starts."),
    _row("warmup", "--warmup", pytype=Optional[str], default=None, panel=LOAD, metavar="N|Ns", env="BENCH_WARMUP", config=False, show_default=False, check=_warmup, help="Send N requests, or for N seconds (5s), first and leave them out of the figures."),
    _row("workers", "--workers", pytype=Optional[int], default=None, panel=LOAD, metavar="W", env="BENCH_WORKERS", config=False, min=1, max=1024, show_default=False, help="Worker processes; by default the number of CPU cores."),
    _row("max_error_rate", "--max-error-rate", pytype=float, default=0.0, panel=LOAD, metavar="R", env="BENCH_MAX_ERROR_RATE", config=False, min=0, max=1, help="Exit 0 when at most this fraction of requests failed, else 64+N for the most frequent failing status N."),
    # --- proxy -----------------------------------------------------------------------------
    _row("proxy_port", "--port", pytype=int, default=8080, panel=PROXY, metavar="PORT", env="PROXY_PORT", config=False, min=0, max=65535, dest="port", help="Port to listen on; 0 picks a free one (the first line on stdout names it)."),
    _row("bind", "--bind", pytype=Optional[str], default=None, panel=PROXY, metavar="ADDR", env="PROXY_BIND", config=False, help="Listen on ADDR instead of 127.0.0.1. Anyone who can reach a non-loopback address calls as you: it warns, and takes such an address from the flag only, not from the variable."),
    _row("grace", "--grace", pytype=float, default=5.0, panel=PROXY, metavar="SECONDS", env="PROXY_GRACE", config=False, min=0, max=TIMEOUT_MAX, help="On Ctrl-C or SIGTERM, let calls in flight finish for up to SECONDS, then cancel them."),
)

ROWS: dict[str, Opt] = {row.name: row for row in OPTIONS}
assert len(ROWS) == len(OPTIONS), "duplicate row names"


class CommonOptions(NamedTuple):
    plaintext: bool
    insecure: bool
    cacert: Path | None
    cert: Path | None
    key: Path | None
    authority: str | None
    connect_timeout: float
    timeout: float | None
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
    mint_timeout: float
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
    project: str | None
    region: str | None
    run_api: str | None
    auth_header: str | None
    proxy: str | None
    # Where each option's value came from: "flag", "env" or "default" (then
    # config.py may change values and origins for the named target and file).
    origins: dict[str, str] | None = None


OPTION_NAMES = tuple(f for f in CommonOptions._fields if f != "origins")
assert all(name in ROWS for name in OPTION_NAMES), "a CommonOptions field without a row"
DEFAULTS: dict[str, Any] = {name: ROWS[name].default for name in OPTION_NAMES}
PATH_LISTS = frozenset(r.name for r in OPTIONS if r.is_list and r.kind is Path)  # repeatable options of paths


def default_options() -> CommonOptions:
    """CommonOptions with every default (lists fresh)."""
    fresh: dict[str, Any] = {n: list(v) if isinstance(v, list) else v for n, v in DEFAULTS.items()}
    return CommonOptions(**fresh)


def with_options(*names: str, helps: dict[str, str] | None = None) -> Callable[[F], F]:
    """Add the named rows to fn's CLI signature. CommonOptions rows reach fn as
    `opts` (a CommonOptions with defaults for the options it does not take);
    other rows as keyword arguments named by their `param` (fn declares them,
    without typer metadata: the table has it). `helps` words a row's help for
    this command (the modes `-o` takes here, say)."""
    rows = [ROWS[n]._replace(help=(helps or {})[n]) if n in (helps or {}) else ROWS[n] for n in names]
    params = {r.param for r in rows}
    assert len(params) == len(rows), f"two rows with one parameter name in {names}"

    def decorate(fn: F) -> F:
        sig = inspect.signature(fn)
        hints = typing.get_type_hints(fn, include_extras=True)
        takes_opts = "opts" in sig.parameters
        takes_origins = "origins" in sig.parameters  # where each of its own rows came from
        own = [
            p.replace(annotation=hints.get(p.name, p.annotation))
            for p in sig.parameters.values()
            if p.name not in ("opts", "origins") and p.name not in params
        ]
        missing = [r.param for r in rows if r.name not in OPTION_NAMES and r.param not in sig.parameters]
        assert not missing, f"{fn.__name__} does not take {missing}"
        extra = [
            inspect.Parameter(r.param, inspect.Parameter.KEYWORD_ONLY, default=r.option(), annotation=r.pytype)
            for r in rows
        ]
        ctx_param = inspect.Parameter(
            "crgrpc_ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context
        )

        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> Any:
            ctx = kwargs.pop("crgrpc_ctx")
            given = {r.name: kwargs.pop(r.param) for r in rows}
            origins = {r.name: _origin(ctx, r.param) for r in rows}
            for r in rows:
                if origins[r.name] == "env" and r.is_list:
                    given[r.name] = env_list(r)
            if takes_opts:
                common = {n: given[n] for n in given if n in DEFAULTS}
                kwargs["opts"] = default_options()._replace(
                    **common, origins={n: origins[n] for n in common}
                )
            for r in rows:
                if r.name not in DEFAULTS:
                    kwargs[r.param] = given[r.name]
            if takes_origins:
                kwargs["origins"] = {r.name: origins[r.name] for r in rows if r.name not in DEFAULTS}
            return fn(**kwargs)

        wrapper.__signature__ = sig.replace(parameters=[*own, *extra, ctx_param])  # type: ignore[attr-defined]
        # typer reads each parameter's type from __signature__, where every one
        # is resolved already; it resolves __annotations__ again (typing's
        # get_type_hints, twice a start) only for what the signature leaves as
        # a string, so there is nothing for it to do there.
        wrapper.__annotations__ = {"return": hints["return"]} if "return" in hints else {}
        return wrapper  # type: ignore[return-value]

    return decorate


def env_list(row: Opt) -> list[Any]:
    """Repeatable options in CRGRPC_* variables are newline-separated (values may hold spaces)."""
    raw = os.environ.get(row.env, "")
    items = [line.strip() for line in raw.splitlines() if line.strip()]
    return [Path(i) for i in items] if row.kind is Path else items


def _origin(ctx: typer.Context, name: str) -> str:
    source = ctx.get_parameter_source(name)
    label = getattr(source, "name", "DEFAULT")
    return {"COMMANDLINE": "flag", "ENVIRONMENT": "env"}.get(label, "default")


# What -o takes, command by command: each --help lists only its own modes.
MODES_CALL = "pretty | json | full | events (default: pretty on a terminal, json in a pipe)."
MODES_BASIC = "pretty | json (default: pretty on a terminal, json in a pipe)."
common_options = with_options(*OPTION_NAMES, helps={"output": MODES_BASIC})
TOKEN_OPTION_NAMES = (
    "token", "token_file", "key_file", "impersonate_service_account", "include_email",
    "audience", "no_token_cache", "iam_endpoint", "mint_timeout", "output", "color", "debug",
    "config", "project", "region", "run_api", "proxy",
)
token_options = with_options(*TOKEN_OPTION_NAMES, helps={"output": MODES_BASIC})
# token print writes the token alone: no output mode, no colour.
token_print_options = with_options(
    *(n for n in TOKEN_OPTION_NAMES if n not in ("output", "color"))
)
call_options = with_options("data", "allow_unknown_fields", "each", "concurrency", *OPTION_NAMES, helps={"output": MODES_CALL})
DECODE_OPTION_NAMES = ("verify", "verify_audience", "certs", "output", "color", "proxy")
SERVE_OPTION_NAMES = (
    "host", "port", "tls_cert", "tls_key", "reflection", "require_token", "serve_audience",
    "certs", "allow_email",
)
DEMO_OPTION_NAMES = ("color",)
BENCH_OPTION_NAMES = (
    "total", "duration", "bench_concurrency", "connections", "rate", "warmup", "workers",
    "max_error_rate",
)
bench_options = with_options(
    "data", "allow_unknown_fields", *BENCH_OPTION_NAMES, *OPTION_NAMES, helps={"output": MODES_BASIC}
)
# proxy: call's connection and token options, the log's output options, and its own.
PROXY_OPTION_NAMES = (
    *(n for n in OPTION_NAMES if n not in (
        "proto", "import_path", "protoset", "protoset_out", "no_schema_cache",
        "emit_defaults", "proto_names", "show_token",
    )),
    "proxy_port", "bind", "grace",
)
