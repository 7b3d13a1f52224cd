"""Private cache files: crgrpc/ and below 0700, files 0600, atomic, foreign files ignored."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cloudrun_grpc_cli.core.cachefiles import cache_root, private_dir, read_private, write_private


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_root_and_subdirectories_are_0700(isolated_env: Path) -> None:
    path = cache_root() / "tokens" / "x.json"
    assert write_private(path, b"{}")
    assert cache_root() == isolated_env / "cache" / "crgrpc"
    assert mode(cache_root()) == 0o700
    assert mode(path.parent) == 0o700
    assert mode(path) == 0o600
    assert read_private(path) == b"{}"
    assert [p.name for p in path.parent.iterdir()] == ["x.json"]  # no temporary files left


def test_loose_modes_are_tightened() -> None:
    d = cache_root() / "schema"
    d.mkdir(parents=True)
    os.chmod(cache_root(), 0o755)
    os.chmod(d, 0o755)
    assert private_dir(d)
    assert mode(cache_root()) == 0o700 and mode(d) == 0o700


def test_readable_by_others_is_ignored() -> None:
    path = cache_root() / "tokens" / "y.json"
    assert write_private(path, b"secret")
    os.chmod(path, 0o644)
    assert read_private(path) is None


def test_relative_xdg_cache_home_is_ignored(monkeypatch: pytest.MonkeyPatch, isolated_env: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")
    assert cache_root() == isolated_env / ".cache" / "crgrpc"


def test_unwritable_location_fails_quietly(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert write_private(blocker / "sub" / "z.json", b"x") is False
