"""Secrets never leak: every command, in every output mode, with -v and --debug,
on success and on failure, keeps the token (and its signature) out of stdout and
stderr — except `token print` and `--show-token`, which exist to show it.

The token is a valid, unexpired RS256 ID token minted here with google-auth and a
key generated for the test (tests/support/hostile.mint_jwt), given by --token or
CRGRPC_TOKEN. Failures: a refused connection, a TLS failure, an app answering
UNAUTHENTICATED (on the call, and on reflection), a status from the server.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from .support.cli import Result, run, run_process
from .support.hostile import EchoTokenBack, Reject, free_port, mint_jwt
from .support.servers import echo_server, make_certs

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def leaks(text: str, token: str) -> list[str]:
    """Where text shows the token or part of its signature (also across wrapped lines)."""
    found = []
    flat = re.sub(r"[\s│┃|]+", "", ANSI.sub("", text))
    signature = token.rsplit(".", 1)[1]
    if token in text or token in flat:
        found.append("the token")
    if signature in flat:
        found.append("the signature")
    # Any 16-character run of the signature: a truncated or partial leak.
    for i in range(0, len(signature) - 16, 8):
        if signature[i : i + 16] in flat:
            found.append(f"signature[{i}:{i + 16}]")
            break
    return found


@dataclass(frozen=True)
class Servers:
    echo: str
    reject: str  # the app answers UNAUTHENTICATED; reflection works
    reject_all: str  # reflection refused too
    tls_port: int
    closed: int


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    certs = make_certs(tmp_path_factory.mktemp("certs"))
    with (
        echo_server() as echo,
        echo_server(interceptors=(Reject(),)) as reject,
        echo_server(interceptors=(Reject(grpc.StatusCode.UNAUTHENTICATED, "token rejected", reflection=True),)) as reject_all,
        echo_server(tls=certs) as tls,
    ):
        yield Servers(echo.address, reject.address, reject_all.address, tls.port, free_port())


@pytest.fixture(scope="module")
def token() -> str:
    return mint_jwt("https://127.0.0.1")


# (id, argv, code, pretty-capable): {echo}, {reject}, {reject_all}, {tls}, {closed} are filled in.
COMMANDS: list[tuple[str, list[str], int]] = [
    ("list", ["list", "--plaintext", "{echo}"], 0),
    ("list-service", ["list", "--plaintext", "{echo}", "echo.EchoServer"], 0),
    ("describe", ["describe", "--plaintext", "{echo}", "echo.EchoServer"], 0),
    ("call-json", ["call", "--plaintext", "{echo}", "SayHello", "-d", '{"name":"x"}', "-o", "json"], 0),
    ("call-full", ["call", "--plaintext", "{echo}", "SayHello", "-d", '{"name":"x"}', "-o", "full"], 0),
    ("call-events", ["call", "--plaintext", "{echo}", "SayHelloStream", "-o", "events"], 0),
    ("call-pretty", ["call", "--plaintext", "{echo}", "SayHelloStream", "-o", "pretty"], 0),
    ("call-bidi-stdin", ["call", "--plaintext", "{echo}", "SayHelloBidi", "-d", "@-"], 0),
    ("call-status-16", ["call", "--plaintext", "{echo}", "SayHello", "-d", '{"fail_code":16}', "-o", "full"], 80),
    ("call-status-7-pretty", ["call", "--plaintext", "{echo}", "SayHello", "-d", '{"fail_code":7}', "-o", "pretty"], 71),
    ("call-app-401", ["call", "--plaintext", "{reject}", "SayHello", "-o", "events"], 80),
    ("call-app-401-pretty", ["call", "--plaintext", "{reject}", "SayHello", "-o", "pretty"], 80),
    ("list-reflection-401", ["list", "--plaintext", "{reject_all}"], 80),
    ("call-refused", ["call", "--plaintext", "127.0.0.1:{closed}", "SayHello", "-o", "full"], 4),
    ("call-tls-untrusted", ["call", "localhost:{tls}", "SayHello", "--audience", "https://127.0.0.1", "--connect-timeout", "5"], 4),
    ("token-show-json", ["token", "show", "{echo}", "-o", "json"], 0),
    ("token-show-pretty", ["token", "show", "{echo}", "-o", "pretty"], 0),
    ("config-show-json", ["config", "show", "-o", "json"], 0),
    ("config-show-pretty", ["config", "show", "-o", "pretty"], 0),
]
VERBOSITY = {"plain": [], "v": ["-v"], "debug": ["--debug"], "v-debug": ["-v", "--debug"]}


def _argv(argv: list[str], s: Servers) -> list[str]:
    values = {"echo": s.echo, "reject": s.reject, "reject_all": s.reject_all, "tls": str(s.tls_port), "closed": str(s.closed)}
    out = []
    for arg in argv:
        filled = arg
        for k, v in values.items():
            filled = filled.replace("{" + k + "}", v)
        out.append(filled)
    return out


def _check(r: Result, token: str, expected_code: int) -> None:
    assert r.code == expected_code, r
    assert not leaks(r.stdout, token), f"stdout leaks {leaks(r.stdout, token)}: {r.stdout}"
    assert not leaks(r.stderr, token), f"stderr leaks {leaks(r.stderr, token)}: {r.stderr}"
    # --debug tracebacks come from traceback.format_exc: frames and source, never locals.
    assert "locals" not in r.stderr.lower()


@pytest.mark.parametrize("source", ["flag", "env"])
@pytest.mark.parametrize("verbosity", list(VERBOSITY))
@pytest.mark.parametrize(("name", "argv", "code"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_token_never_printed(
    name: str, argv: list[str], code: int, verbosity: str, source: str,
    servers: Servers, token: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    flags = VERBOSITY[verbosity]
    if argv[:2] == ["token", "show"]:
        flags = [f for f in flags if f != "-v"]  # token show has no -v: it shows everything but the token
    args = [*_argv(argv, servers), *flags]
    if source == "flag":
        args += ["--token", token]
    else:
        monkeypatch.setenv("CRGRPC_TOKEN", token)
    pretty = "pretty" in args
    r = run(*args, stdin='{"name":"a"}\n{"name":"b"}\n', tty=pretty, color="always" if pretty else "never")
    _check(r, token, code)
    if "debug" in verbosity and code not in (0,):
        assert "Traceback (most recent call last)" in r.stderr, r


@pytest.mark.parametrize(
    "argv",
    [
        ["call", "--plaintext", "{reject}", "SayHello", "-v", "--debug"],
        ["list", "--plaintext", "{reject_all}", "--debug"],
        ["call", "--plaintext", "127.0.0.1:{closed}", "SayHello", "--debug", "-o", "events"],
        ["call", "--plaintext", "{echo}", "SayHelloBidi", "-d", "@-", "--debug", "-v", "-o", "pretty"],
    ],
    ids=["app-401", "reflection-401", "refused", "bidi-pretty"],
)
def test_token_never_printed_by_a_real_process_with_grpc_logging(
    argv: list[str], servers: Servers, token: str
) -> None:
    # A process: --debug turns gRPC's C-core logging on, which an in-process run cannot show.
    r = run_process(*_argv(argv, servers), input='{"name":"a"}\n', env={"CRGRPC_TOKEN": token})
    assert r.code in (0, 4, 80), r
    assert not leaks(r.stdout + r.stderr, token), r


def test_token_not_in_any_cache_file_but_the_token_cache(servers: Servers, token: str, isolated_env: Path) -> None:
    for argv in (["list", "--plaintext", servers.echo], ["call", "--plaintext", servers.echo, "SayHello"]):
        assert run(*argv, "--token", token).code == 0
    cache = isolated_env / "cache"
    for f in cache.rglob("*") if cache.exists() else []:
        if f.is_file() and "tokens" not in f.parts:
            assert token not in f.read_text(errors="replace"), f


# -- the two places a token is shown on purpose (and proof that leaks() would notice) ---------


def test_token_print_prints_exactly_the_token(servers: Servers, token: str) -> None:
    r = run("token", "print", servers.echo, "--token", token)
    assert (r.code, r.stdout, r.stderr) == (0, token + "\n", "")
    assert leaks(r.stdout, token)


def test_show_token_shows_it_with_v(servers: Servers, token: str) -> None:
    r = run("call", "--plaintext", servers.echo, "SayHello", "-v", "--show-token", "--token", token, "-o", "pretty", tty=True)
    assert r.code == 0, r
    assert leaks(r.stdout, token)
    # ...but not in the request metadata, which stays redacted.
    assert "authorization: Bearer <redacted>" in r.stdout


def test_a_server_never_sees_a_token_it_was_not_meant_for(servers: Servers, token: str) -> None:
    # Plaintext to a non-loopback host: refused before any connection (exit 3).
    r = run("call", "--plaintext", "10.255.255.1:1", "SayHello", "--token", token)
    assert r.code == 3, r
    assert not leaks(r.stdout + r.stderr, token)


@pytest.mark.parametrize("mode", ["json", "full", "events", "pretty"])
def test_token_quoted_back_by_a_careless_server_is_not_printed(mode: str, token: str) -> None:
    # The server puts "Bearer <token>" in its status message and in a trailer.
    with echo_server(interceptors=(EchoTokenBack(),)) as s:
        r = run("call", "--plaintext", s.address, "SayHello", "--token", token, "-o", mode, "-v", tty=mode == "pretty")
    assert r.code == 80, r
    assert not leaks(r.stdout + r.stderr, token), r
    assert "bad credentials: Bearer <redacted>" in r.stderr


def test_token_quoted_back_on_reflection_is_not_printed(token: str) -> None:
    with echo_server(interceptors=(EchoTokenBack(reflection=True),)) as s:
        r = run("list", "--plaintext", s.address, "--token", token, "--debug")
    assert r.code == 80, r
    assert not leaks(r.stdout + r.stderr, token), r
