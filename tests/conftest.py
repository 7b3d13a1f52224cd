"""Shared fixtures. Autouse: isolate every test from the user's machine and the network.

Area-specific fixtures live in tests/support/<area>.py and are imported by
the test modules that need them.
"""

from __future__ import annotations

import os
import socket

# Tests fork children (pexpect's pty spawns) from this process while gRPC's threads
# run in it. With gRPC's fork support on, its pthread_atfork handler restarts a poller
# in the child before exec, and the child can abort ("Check failed: next_worker->state
# == KICKED", "epoll_wait error: Bad file descriptor"): seen in CI, and about 1 in 150
# spawns under load in a stress run. Nothing in crgrpc forks with gRPC loaded (the load
# workers are spawned), so the tests turn it off before grpc is first imported.
os.environ["GRPC_ENABLE_FORK_SUPPORT"] = "false"
from collections.abc import Iterator
from pathlib import Path

import pytest


def _closed_loopback_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """No test reaches Google or reads the user's config, cache or gcloud files."""
    home = tmp_path_factory.mktemp("home")
    port = _closed_loopback_port()
    monkeypatch.setenv("GCE_METADATA_HOST", f"127.0.0.1:{port}")
    monkeypatch.setenv("GCE_METADATA_IP", f"127.0.0.1:{port}")
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(home / "gcloud"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("NO_COLOR", raising=False)
    for name in list(os.environ):
        if name.startswith("CRGRPC_"):
            monkeypatch.delenv(name, raising=False)
    yield home
