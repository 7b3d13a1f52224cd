"""Start-up costs, proved through the modules a real crgrpc process imports (issue 5).

Each case runs crgrpc as a process under `python -X importtime` and reads the
list of imported modules from its log: never a timing. Also: a second `token
print` while the cached token has more than 5 minutes left makes no request
to the issuer, and a call with a cached token never loads google-auth.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .support.issuer import Issuer, issuer_fixture  # noqa: F401
from .support.servers import CertFiles, echo_server, make_certs

_IMPORT_LINE = re.compile(r"^import time:\s+\d+\s+\|\s+\d+\s+\|\s*(\S+)\s*$")


def crgrpc_imports(*argv: str, timeout: float = 60) -> tuple[int, str, set[str]]:
    """Run `python -X importtime -m cloudrun_grpc_cli ARGV`: (exit code, stdout, modules)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cloudrun_grpc_cli", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
        env=dict(os.environ),
    )
    modules = {m.group(1) for line in proc.stderr.splitlines() if (m := _IMPORT_LINE.match(line))}
    assert modules, f"no -X importtime output: {proc.stderr[-2000:]}"
    other = "\n".join(line for line in proc.stderr.splitlines() if not _IMPORT_LINE.match(line))
    assert proc.returncode == 0, f"exit {proc.returncode}: {other[-2000:]}"
    return proc.returncode, proc.stdout, modules


def loaded(modules: set[str], package: str) -> list[str]:
    return sorted(m for m in modules if m == package or m.startswith(package + "."))


def unsigned_jwt(claims: dict[str, object]) -> str:
    def part(obj: dict[str, object]) -> str:
        raw = json.dumps(obj, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT', 'kid': 'k1'})}.{part(claims)}.c2ln"


# --- start-up: no grpc, no google-auth --------------------------------------------------


def _decode_argv() -> list[str]:
    now = int(time.time())
    token = unsigned_jwt({"iss": "https://accounts.google.com", "aud": "https://x.run.app",
                          "sub": "1", "iat": now, "exp": now + 3600})
    return ["token", "decode", token, "-o", "json"]


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["--version"], _decode_argv()],
    ids=["help", "version", "token-decode"],
)
def test_startup_imports_neither_grpc_nor_google_auth(argv: list[str]) -> None:
    _, out, modules = crgrpc_imports(*argv)
    assert out.strip()
    assert loaded(modules, "grpc") == []
    assert loaded(modules, "google.auth") == []


# --- machine output: no rich ------------------------------------------------------------


@pytest.fixture(scope="module")
def plain_server() -> Iterator[str]:
    with echo_server() as s:
        yield s.address


@pytest.mark.parametrize(
    ("method", "data", "mode"),
    [
        ("echo.EchoServer/SayHello", '{"name": "x"}', "json"),
        ("echo.EchoServer/SayHello", '{"name": "x"}', "full"),
        ("echo.EchoServer/SayHello", '{"name": "x"}', "events"),
        ("echo.EchoServer/SayHelloStream", '{"name": "x", "count": 3}', "json"),
        ("echo.EchoServer/SayHelloStream", '{"name": "x", "count": 3}', "events"),
    ],
)
def test_machine_output_imports_no_rich(plain_server: str, method: str, data: str, mode: str) -> None:
    _, out, modules = crgrpc_imports("call", plain_server, "--plaintext", method, "-d", data, "-o", mode)
    assert "Hello x" in out
    assert loaded(modules, "rich") == []


def test_list_json_imports_no_rich(plain_server: str) -> None:
    _, out, modules = crgrpc_imports("list", plain_server, "--plaintext", "-o", "json")
    assert "echo.EchoServer" in out
    assert loaded(modules, "rich") == []


@pytest.mark.parametrize("extra", [[], ["--no-auth"]])
def test_a_call_that_sends_no_token_loads_no_token_machinery(plain_server: str, extra: list[str]) -> None:
    """Deciding that no token is sent (plaintext, --no-auth) takes core/auth/named and
    policy only: not the sources, the token types, minting, the cache or JWT decoding."""
    _, out, modules = crgrpc_imports(
        "call", plain_server, "--plaintext", "echo.EchoServer/SayHello", "-d", '{"name": "x"}', "-o", "json", *extra
    )
    assert "Hello x" in out
    assert loaded(modules, "cloudrun_grpc_cli.core.auth") == [
        "cloudrun_grpc_cli.core.auth",
        "cloudrun_grpc_cli.core.auth.named",
        "cloudrun_grpc_cli.core.auth.policy",
        "cloudrun_grpc_cli.core.auth.texts",
    ]


# --- a cached token: no google-auth, no request ------------------------------------------


@pytest.fixture(scope="module")
def tls_certs(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_certs(tmp_path_factory.mktemp("tls"))


def test_second_token_print_makes_no_request(issuer: Issuer, tmp_path: Path) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    argv = ("token", "print", "--audience", "https://echo-abc-uc.a.run.app", "--key-file", str(key))

    _, first, modules = crgrpc_imports(*argv)
    assert issuer.count("/token") == 1
    assert loaded(modules, "google.auth")  # a mint needs google-auth

    _, second, modules = crgrpc_imports(*argv)
    assert issuer.count("/token") == 1, "the second token print went to the issuer"
    assert second == first
    assert loaded(modules, "google.auth") == []
    assert loaded(modules, "grpc") == []


def test_cached_token_call_imports_no_google_auth(
    issuer: Issuer, tls_certs: CertFiles, tmp_path: Path
) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    with echo_server(tls=tls_certs) as server:
        argv = ("call", server.address, "--cacert", str(tls_certs.ca), "--key-file", str(key),
                "echo.EchoServer/SayHello", "-d", '{"name": "x"}', "-o", "json")
        _, out, _ = crgrpc_imports(*argv)  # mints, and caches the token
        assert json.loads(out) == {"message": "Hello x from K_REVISION local"}
        assert issuer.count("/token") == 1

        _, out, modules = crgrpc_imports(*argv)
        assert json.loads(out) == {"message": "Hello x from K_REVISION local"}
        assert issuer.count("/token") == 1
        assert loaded(modules, "google.auth") == []
        assert loaded(modules, "rich") == []


def test_a_call_by_reflection_loads_only_what_its_schema_needs(plain_server: str) -> None:
    """Echo's schema uses no well-known type: none of the runtime's google/protobuf
    files is loaded, nor protoc's and protosets' module (core/schema/files)."""
    _, out, modules = crgrpc_imports(
        "call", plain_server, "--plaintext", "echo.EchoServer/SayHello", "-d", '{"name": "x"}',
        "-o", "json", "--no-schema-cache",
    )
    assert json.loads(out) == {"message": "Hello x from K_REVISION local"}
    wkt = [m for m in loaded(modules, "google.protobuf") if m.endswith("_pb2") and m != "google.protobuf.descriptor_pb2"]
    assert wkt == []
    assert "cloudrun_grpc_cli.core.schema.files" not in modules
    assert "tempfile" not in modules


_GC_PROBE = """
import gc, os, sys
real_exit = os._exit
collections = []
gc.callbacks.append(lambda phase, info: collections.append(info["generation"]) if phase == "start" else None)
real_disable, real_freeze = gc.disable, gc.freeze
def disable():  # start-up begins: count from here (compiling a stale .pyc may collect before)
    collections.clear()
    real_disable()
gc.disable = disable
def freeze():
    print(f"collections during start-up: {len(collections)}", file=sys.stderr)
    real_freeze()
gc.freeze = freeze
def report(code):
    print(f"enabled={gc.isenabled()} frozen={gc.get_freeze_count() > 0}", file=sys.stderr)
    real_exit(code)
os._exit = report
sys.argv = ["crgrpc", *sys.argv[1:]]
from cloudrun_grpc_cli.cli.entry import run
run()
"""


@pytest.mark.parametrize("command", ["call", "list"])
def test_startup_runs_without_the_garbage_collector_and_turns_it_back_on(
    plain_server: str, command: str
) -> None:
    """The console script starts with Python's cyclic collector off; by the time the
    command works (call: once its method is resolved) it is on again, with start-up's
    objects frozen out of its reach."""
    argv, expected = {
        "call": (["call", plain_server, "--plaintext", "echo.EchoServer/SayHello", "-d", '{"name": "x"}'],
                 '{"message":"Hello x from K_REVISION local"}\n'),
        "list": (["list", plain_server, "--plaintext"],
                 '{"service":"echo.EchoServer"}\n{"service":"grpc.reflection.v1alpha.ServerReflection"}\n'),
    }[command]
    proc = subprocess.run(
        [sys.executable, "-c", _GC_PROBE, *argv, "-o", "json"], capture_output=True, text=True,
        timeout=60, check=False, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == expected
    assert proc.stderr.splitlines()[-2:] == ["collections during start-up: 0", "enabled=True frozen=True"]


def test_in_process_main_leaves_the_collector_alone(plain_server: str) -> None:
    """Tests and embedders call main() directly: the collector stays as they set it."""
    import gc
    import io

    from cloudrun_grpc_cli.cli.main import main
    from cloudrun_grpc_cli.render.env import Environment

    frozen = gc.get_freeze_count()
    out = io.StringIO()
    code = main(["call", plain_server, "--plaintext", "echo.EchoServer/SayHello", "-d", '{"name": "x"}',
                 "-o", "json"], Environment(stdout=out, stderr=io.StringIO(), stdin=io.StringIO()))
    assert (code, out.getvalue()) == (0, '{"message":"Hello x from K_REVISION local"}\n')
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen


def test_version_builds_no_command() -> None:
    """--version is answered before any command is looked at: no command module loads."""
    from cloudrun_grpc_cli import __version__
    from cloudrun_grpc_cli.cli.main import _MODULES

    _, out, modules = crgrpc_imports("--version")
    assert out == f"crgrpc {__version__}\n"
    assert sorted(set(_MODULES.values())) == sorted(
        ["discover", "call", "doctor", "proxy_cmd", "bench_cmd", "token", "serve", "demo_cmd", "config_cmd"]
    )
    commands = [m for m in loaded(modules, "cloudrun_grpc_cli.cli") if m.rsplit(".", 1)[-1] in _MODULES.values()]
    assert commands == []
