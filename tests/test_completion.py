"""Shell completion: committed scripts are current; METHOD/SERVICE/SYMBOL come from the server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .support.cli import run
from .support.servers import echo_server

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_committed_completion_scripts_are_current(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import gen_completions
    finally:
        sys.path.pop(0)
    for path in gen_completions.generate(tmp_path):
        committed = ROOT / "completions" / path.name
        assert committed.read_text() == path.read_text(), f"{path.name} is stale: run python tools/gen_completions.py"


def test_show_completion_prints_a_committed_script() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cloudrun_grpc_cli", "--show-completion"],
        capture_output=True, text=True, timeout=60, check=False, env={**os.environ, "SHELL": "/bin/bash"},
    )
    assert proc.returncode == 0
    scripts = {p.read_text().strip() for p in (ROOT / "completions").iterdir()}
    assert proc.stdout.strip() in scripts


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_source_shell_prints_the_committed_script(shell: str) -> None:
    """`_CRGRPC_COMPLETE=source_<shell>` (Click's way) serves crgrpc's scripts too, not typer's."""
    proc = subprocess.run(
        [sys.executable, "-m", "cloudrun_grpc_cli"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "_CRGRPC_COMPLETE": f"source_{shell}"},
    )
    name = {"bash": "crgrpc.bash", "zsh": "_crgrpc", "fish": "crgrpc.fish"}[shell]
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.strip() == (ROOT / "completions" / name).read_text().strip()


def complete(words: str, cword: int, env: dict[str, str] | None = None) -> tuple[list[str], float]:
    """What crgrpc offers for COMP_WORDS/COMP_CWORD, as bash asks it."""
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "cloudrun_grpc_cli"],
        env={**os.environ, "_CRGRPC_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword), **(env or {})},
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0
    assert proc.stderr == ""
    return [line for line in proc.stdout.splitlines() if line], time.monotonic() - started


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with echo_server() as s:
        yield s.address


METHODS = [
    "echo.EchoServer/SayHello",
    "echo.EchoServer/SayHelloBidi",
    "echo.EchoServer/SayHelloClientStream",
    "echo.EchoServer/SayHelloStream",
]


def test_method_completion_from_live_server(server: str) -> None:
    offered, _ = complete(f"crgrpc call --plaintext {server} echo.", 4)
    assert offered == METHODS


def test_bare_method_completion(server: str) -> None:
    offered, _ = complete(f"crgrpc call --plaintext {server} SayHelloS", 4)
    assert offered == ["SayHelloStream"]


def test_service_completion_for_list(server: str) -> None:
    offered, _ = complete(f"crgrpc list --plaintext {server} ", 4)
    assert offered == ["echo.EchoServer", "grpc.reflection.v1alpha.ServerReflection"]


def test_symbol_completion_for_describe(server: str) -> None:
    offered, _ = complete(f"crgrpc describe --plaintext {server} echo.EchoServer.SayHelloC", 4)
    assert offered == ["echo.EchoServer.SayHelloClientStream"]


def test_symbol_completion_offers_messages(server: str) -> None:
    offered, _ = complete(f"crgrpc describe --plaintext {server} echo.EchoRe", 4)
    assert offered == ["echo.EchoReply", "echo.EchoRequest"]


def test_symbol_completion_offers_nested_enums_not_fields_nor_map_entries() -> None:
    from .support.hostile import types_server

    with types_server() as t:
        offered, _ = complete(f"crgrpc describe http://127.0.0.1:{t.port} hostile.Scalars", 3)
        assert offered == ["hostile.Scalars", "hostile.Scalars.Color"]
        # From the schema cache the completion above filled, with the server gone.
        address = t.port
    offered, _ = complete(f"crgrpc describe http://127.0.0.1:{address} hostile.Scalars", 3)
    assert offered == ["hostile.Scalars", "hostile.Scalars.Color"]


def test_completion_uses_the_schema_cache(tmp_path: Path) -> None:
    with echo_server() as s:
        address = s.address
        assert run("list", "--plaintext", address, "echo.EchoServer").code == 0  # fills the cache
    # The server is gone: only the cache can answer.
    offered, _ = complete(f"crgrpc call --plaintext {address} echo.", 4)
    assert offered == METHODS


def test_dead_server_offers_nothing_quickly() -> None:
    offered, elapsed = complete("crgrpc call --plaintext 127.0.0.1:1 ", 4)
    assert offered == []
    assert elapsed < 20  # generous: the connect deadline is 1 s


def test_garbage_target_offers_nothing() -> None:
    offered, _ = complete("crgrpc call ::::nonsense ", 3)
    assert offered == []


def test_completion_sends_a_cached_token_and_never_mints(tmp_path: Path) -> None:
    from cloudrun_grpc_cli.demo.tokencheck import TokenCheck

    from .support.issuer import Issuer
    from .support.tls import make_certs

    issuer = Issuer().start()
    try:
        key = issuer.write_service_account_key(tmp_path / "sa.json")
        certs = make_certs(tmp_path / "tls")
        check = TokenCheck("https://localhost", certs=issuer.certs_url)
        with echo_server(tls=certs, interceptors=(check,)) as s:
            target = f"https://localhost:{s.port}"
            # Without a cached token the server refuses reflection: nothing offered, nothing minted.
            line = f"crgrpc call {target} --cacert {certs.ca} --key-file {key} echo."
            offered, _ = complete(line, 7)
            assert offered == [] and issuer.count("/token") == 0
            # A call with the key mints and caches a token (not the schema).
            r = run("list", target, "--cacert", str(certs.ca), "--key-file", str(key), "--no-schema-cache")
            assert r.code == 0 and issuer.count("/token") == 1
            offered, _ = complete(line, 7)
            assert offered == METHODS
            assert issuer.count("/token") == 1  # completion reused it, never minted
            # The cached token is the key's: completing without the key sends none.
            offered, _ = complete(f"crgrpc call {target} --cacert {certs.ca} --no-schema-cache echo.", 6)
            assert offered == [] and issuer.count("/token") == 1
    finally:
        issuer.stop()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_install_completion_writes_the_committed_script(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cloudrun_grpc_cli", "--install-completion"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "HOME": str(tmp_path), "SHELL": "/bin/bash"},
    )
    assert proc.returncode == 0, proc.stderr
    installed = tmp_path / ".bash_completions" / "crgrpc.sh"
    assert installed.read_text().strip() == (ROOT / "completions" / "crgrpc.bash").read_text().strip()
    assert f"source '{installed}'" in (tmp_path / ".bashrc").read_text()


def test_completion_resolves_named_targets(server: str, isolated_env: Path) -> None:
    config = isolated_env / "config" / "crgrpc" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'[targets.local]\naddress = "http://{server}"\n')
    offered, _ = complete("crgrpc call local SayHelloB", 3)
    assert offered == ["SayHelloBidi"]
