"""`crgrpc demo` in this process: it passes its own cache directory to every step and changes
no process-wide setting (no XDG_CACHE_HOME of its own, nothing in the user's cache)."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import pytest

from cloudrun_grpc_cli.cli.main import main
from cloudrun_grpc_cli.core.cachefiles import cache_root
from cloudrun_grpc_cli.render.env import Environment

FINISHED = (
    "demo finished: every step behaved as expected; the token was minted 1 time "
    "and reused from the cache\n"
)


def test_demo_in_process_keeps_os_environ_and_the_users_cache(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_cache = isolated_env / "cache"
    assert os.environ["XDG_CACHE_HOME"] == str(user_cache)
    # What main() itself sets on every run (gRPC's C-core logging), set beforehand so that
    # anything else the demo changed in os.environ shows.
    monkeypatch.setenv("GRPC_VERBOSITY", "NONE")
    monkeypatch.setenv("GLOG_minloglevel", "3")
    monkeypatch.delenv("GRPC_TRACE", raising=False)
    before = dict(os.environ)

    # Another thread of this process keeps looking at the cache root while the demo runs.
    roots: set[Path] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            roots.add(cache_root())
            done.wait(0.001)

    watcher = threading.Thread(target=watch, daemon=True)
    out, err = io.StringIO(), io.StringIO()
    env = Environment(
        stdout=out, stderr=err, stdin=io.StringIO(), stdout_isatty=False, stderr_isatty=False,
        stdin_isatty=False, color="never",
    )
    watcher.start()
    try:
        code = main(["demo"], env=env)
    finally:
        done.set()
        watcher.join(5)

    assert code == 0, out.getvalue()
    assert out.getvalue().endswith("\n" + FINISHED)
    assert out.getvalue().count("\n== ") == 13
    assert err.getvalue() == (
        "error: UNAUTHENTICATED: missing bearer token\nhint: no token was sent (--no-auth)\n"
    )
    assert dict(os.environ) == before
    assert roots == {user_cache / "crgrpc"}
    assert not user_cache.exists()
    assert env.cache_dir is None  # the demo's cache directory went to its own Environment
