"""The token cache under concurrency: 20 `crgrpc token print` processes sharing one
cache all succeed, and leave one valid cache file, 0600 in 0700 directories,
never seen half-written.

The minting source is a service-account key whose token_uri points at the local
issuer (tests/support/issuer.py).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from cloudrun_grpc_cli.core.auth.jwt import decode_jwt

from .support.cli import run
from .support.issuer import Issuer, issuer_fixture  # noqa: F401

AUDIENCE = "https://concurrent.example"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_twenty_concurrent_token_prints_share_one_cache(issuer: Issuer, tmp_path: Path, isolated_env: Path) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    cache = isolated_env / "cache" / "crgrpc"
    argv = [sys.executable, "-m", "cloudrun_grpc_cli", "token", "print", "--audience", AUDIENCE, "--key-file", str(key)]

    # A reader racing the writers: whatever it finds must be whole JSON.
    torn: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for f in cache.rglob("*.json") if cache.exists() else []:
                if f.name.startswith(".tmp-"):
                    continue
                try:
                    data = f.read_bytes()
                except OSError:
                    continue
                try:
                    json.loads(data)
                except ValueError:
                    torn.append(f"{f}: {data[:80]!r}")

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        procs = [
            subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))
            for _ in range(20)
        ]
        results = [(p.wait(120), *p.communicate()) for p in procs]
    finally:
        stop.set()
        watcher.join(10)

    tokens = set()
    for code, out, err in results:
        assert code == 0, err.decode()
        assert err == b""
        lines = out.decode().splitlines()
        assert len(lines) == 1
        claims = decode_jwt(lines[0]).claims
        assert claims["aud"] == AUDIENCE
        tokens.add(lines[0])
    assert not torn, torn
    assert 1 <= issuer.count("/token") <= 20

    # One cache file holding one of the tokens printed; private modes; no leftovers.
    files = [f for f in cache.rglob("*") if f.is_file()]
    assert not [f for f in files if f.name.startswith(".tmp-")], files
    token_files = [f for f in files if f.parent.name == "tokens"]
    assert len(token_files) == 1, files
    entry = json.loads(token_files[0].read_text())
    assert entry["token"] in tokens
    for d in [cache, *(p for p in cache.rglob("*") if p.is_dir())]:
        assert _mode(d) == 0o700, (d, oct(_mode(d)))
    for f in files:
        assert _mode(f) == 0o600, (f, oct(_mode(f)))

    # The next process is served from the cache: no request to the issuer.
    before = issuer.count("/token")
    r = run("token", "print", "--audience", AUDIENCE, "--key-file", str(key))
    assert r.code == 0 and r.stdout.strip() == entry["token"]
    assert issuer.count("/token") == before


def test_cache_written_when_the_cache_home_does_not_exist_yet(
    issuer: Issuer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # XDG_CACHE_HOME may name a directory nobody has created yet (a fresh CI runner).
    home = tmp_path / "fresh" / "cache-home"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    r = run("token", "print", "--audience", AUDIENCE, "--key-file", str(key))
    assert r.code == 0, r
    token_files = list((home / "crgrpc").rglob("*.json"))
    assert len(token_files) == 1, list(home.rglob("*"))
    assert _mode(home / "crgrpc") == 0o700
    assert _mode(token_files[0]) == 0o600
