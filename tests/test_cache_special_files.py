"""Special files in the caches (issue 10, item 3).

A cache file that is a FIFO, a socket, a device or a symlink, belongs to
another user, cannot be read or holds truncated JSON — and a cache directory
that is a FIFO, a file, a symlink, another user's or writable by others — is
ignored: never opened in a blocking way, never followed. Where that is safe
the next store replaces it, and the run after that is a cache hit again.
Checked on the token cache (`token print` twice, counting the issuer's
mints) and the schema cache (`list` and `call` against a local reflection server,
counting its reflection requests: `list` always asks and stores, `call`
reads the cache first).

Key and token files given by the user are another matter: `--key-file
<(cat sa.json)` and `--token-file <(…)` are pipes, and keep working (a real
FIFO, filled by a writer thread).
"""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cloudrun_grpc_cli.core.auth.cache import TokenCache
from cloudrun_grpc_cli.core.cachefiles import cache_root, read_private, write_private
from tests.support.cli import run
from tests.support.issuer import Issuer, issuer_fixture  # noqa: F401
from tests.support.reflection_servers import ReflectionServer, start_server
from tests.support.servers import echo_server

AUD = "https://svc-abc-uc.a.run.app"
OTHER_UID = 65534  # nobody
IS_ROOT = os.geteuid() == 0

FILE_KINDS = [
    "fifo",
    "socket",
    "device",
    "symlink-to-valid",
    "symlink-to-dev-zero",
    "symlink-dangling",
    "foreign",
    "unreadable",
    "group-readable",
    "truncated",
    "empty",
    "directory",
]
# Kinds a store cannot replace: a directory where the file goes.
NOT_REPLACED = {"directory"}

DIR_KINDS = ["dir-fifo", "dir-file", "dir-symlink", "dir-foreign", "dir-others-writable", "root-symlink"]
# Directories a store leaves alone: another user's; crgrpc/ itself when it is a symlink.
DIR_NOT_REPLACED = {"dir-foreign", "root-symlink"}


def make_special(path: Path, kind: str, valid: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    """Put a `kind` where the cache file `path` (whose good content is `valid`) was."""
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path, 0o600)
    elif kind == "socket":
        monkeypatch.chdir(path.parent)  # a unix socket path must be short: bind it relative
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path.name)
        s.close()  # the socket file stays
    elif kind == "device":
        try:
            os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 5))  # like /dev/zero: endless
        except PermissionError:
            pytest.skip("mknod needs CAP_MKNOD")
    elif kind == "symlink-to-valid":
        elsewhere = path.parent.parent / "elsewhere.json"
        elsewhere.write_bytes(valid)
        os.chmod(elsewhere, 0o600)
        path.symlink_to(elsewhere)
    elif kind == "symlink-to-dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "symlink-dangling":
        path.symlink_to(path.parent / "nowhere.json")
    elif kind == "foreign":
        if not IS_ROOT:
            pytest.skip("making a file of another user needs root")
        path.write_bytes(valid)
        os.chmod(path, 0o600)
        os.chown(path, OTHER_UID, OTHER_UID)
    elif kind == "unreadable":
        path.write_bytes(valid)
        os.chmod(path, 0o000)
    elif kind == "group-readable":
        path.write_bytes(valid)
        os.chmod(path, 0o640)
    elif kind == "truncated":
        path.write_bytes(valid[: len(valid) // 2])
        os.chmod(path, 0o600)
    elif kind == "empty":
        path.write_bytes(b"")
        os.chmod(path, 0o600)
    else:
        assert kind == "directory"
        path.mkdir(mode=0o700)


def make_special_dir(directory: Path, kind: str, valid_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Put a `kind` where the cache directory `directory` (holding valid_file) was."""
    valid = valid_file.read_bytes()
    if kind == "root-symlink":  # crgrpc/ itself: a symlink to a copy, valid file included
        root = cache_root()
        copy = root.parent / "crgrpc-elsewhere"
        root.rename(copy)
        root.symlink_to(copy)
        return
    for f in directory.iterdir():
        f.unlink()
    directory.rmdir()
    if kind == "dir-fifo":
        os.mkfifo(directory, 0o600)
    elif kind == "dir-file":
        directory.write_bytes(b"not a directory")
    elif kind == "dir-symlink":  # to a directory of ours holding the valid file: not followed
        elsewhere = directory.parent.parent / "elsewhere"
        elsewhere.mkdir(mode=0o700)
        (elsewhere / valid_file.name).write_bytes(valid)
        os.chmod(elsewhere / valid_file.name, 0o600)
        directory.symlink_to(elsewhere)
    elif kind == "dir-foreign":
        if not IS_ROOT:
            pytest.skip("making a directory of another user needs root")
        directory.mkdir(mode=0o700)
        (directory / valid_file.name).write_bytes(valid)
        os.chmod(directory / valid_file.name, 0o600)
        os.chown(directory, OTHER_UID, OTHER_UID)
    else:
        assert kind == "dir-others-writable"
        directory.mkdir()
        os.chmod(directory, 0o777)
        (directory / valid_file.name).write_bytes(valid)
        os.chmod(directory / valid_file.name, 0o600)


def only_file(directory: Path) -> Path:
    [path] = [p for p in directory.iterdir() if p.suffix == ".json" and not p.name.startswith(".tmp")]
    return path


# --- the token cache -----------------------------------------------------------------------


@pytest.fixture
def key(issuer: Issuer, tmp_path: Path) -> Path:
    return issuer.write_service_account_key(tmp_path / "sa.json")


def token_print(key: Path) -> str:
    r = run("token", "print", AUD, "--key-file", str(key))
    assert (r.code, r.stderr) == (0, ""), r
    assert r.stdout.count(".") == 2, r
    return r.stdout


def mints(issuer: Issuer) -> int:
    return issuer.count("/token")


@pytest.fixture
def warm_token_cache(issuer: Issuer, key: Path) -> Callable[[], Path]:
    def warm() -> Path:
        token_print(key)
        assert mints(issuer) == 1
        return only_file(cache_root() / "tokens")

    return warm


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", FILE_KINDS)
def test_token_cache_file_of_any_kind(
    kind: str, issuer: Issuer, key: Path, warm_token_cache: Callable[[], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = warm_token_cache()
    make_special(path, kind, path.read_bytes(), monkeypatch)
    token_print(key)
    assert mints(issuer) == 2  # ignored: minted again
    token_print(key)
    if kind in NOT_REPLACED:
        assert mints(issuer) == 3
    else:
        assert mints(issuer) == 2  # the store replaced it: a cache hit
        st = os.lstat(path)
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.getuid()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", DIR_KINDS)
def test_token_cache_directory_of_any_kind(
    kind: str, issuer: Issuer, key: Path, warm_token_cache: Callable[[], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = warm_token_cache()
    make_special_dir(path.parent, kind, path, monkeypatch)
    token_print(key)
    assert mints(issuer) == 2  # a directory not ours, or not one at all, is not read
    token_print(key)
    if kind in DIR_NOT_REPLACED:
        assert mints(issuer) == 3  # and never written
    else:
        assert mints(issuer) == 2
        st = os.lstat(path.parent)
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700
    if kind == "dir-foreign":
        assert os.lstat(path.parent).st_uid == OTHER_UID  # left alone
    if kind == "root-symlink":
        assert cache_root().is_symlink()


@pytest.mark.timeout(30)
def test_a_symlinked_token_directory_is_neither_searched_nor_emptied(
    warm_token_cache: Callable[[], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = warm_token_cache()
    make_special_dir(path.parent, "dir-symlink", path, monkeypatch)
    target = path.parent.resolve()
    cache = TokenCache()
    assert cache.find(AUD) is None  # completion's look-up: the valid token there is not used
    assert cache.clear() == 0
    assert [p.name for p in target.iterdir()] == [path.name]


# --- the schema cache ----------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[ReflectionServer]:
    srv = start_server(("v1alpha",))
    yield srv
    srv.stop()


def list_services(server: ReflectionServer) -> None:
    r = run("list", "--plaintext", server.address)
    assert (r.code, r.stderr) == (0, ""), r
    assert "echo.EchoServer" in r.stdout, r


def call_hello(server: ReflectionServer) -> None:
    r = run("call", "--plaintext", server.address, "echo.EchoServer/SayHello", "-d", '{"name":"x"}')
    assert (r.code, r.stderr) == (0, ""), r
    assert json.loads(r.stdout)["message"].startswith("Hello x"), r


def warm_schema_cache(server: ReflectionServer) -> Path:
    list_services(server)  # list always asks the server, and stores what it found
    assert server.total > 0
    return only_file(cache_root() / "schema")


# `list` always asks the server (and stores); `call` reads the cache first: a hit asks nothing.


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", FILE_KINDS)
def test_schema_cache_file_of_any_kind(kind: str, server: ReflectionServer, monkeypatch: pytest.MonkeyPatch) -> None:
    path = warm_schema_cache(server)
    valid = path.read_bytes()
    make_special(path, kind, valid, monkeypatch)
    before = server.total
    call_hello(server)
    assert server.total > before  # ignored: asked the server again
    after = server.total
    call_hello(server)
    if kind in NOT_REPLACED:
        assert server.total > after
        return
    assert server.total == after  # the call's store replaced it: a cache hit
    assert stat.S_ISREG(os.lstat(path).st_mode)
    # list over the same kind: exit 0 and promptly, and its store leaves a good file behind
    path.unlink()
    (path.parent.parent / "elsewhere.json").unlink(missing_ok=True)
    path.write_bytes(valid)
    make_special(path, kind, valid, monkeypatch)
    list_services(server)
    st = os.lstat(path)
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.getuid()
    assert json.loads(path.read_bytes())["services"] == ["echo.EchoServer", "grpc.reflection.v1alpha.ServerReflection"]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", DIR_KINDS)
def test_schema_cache_directory_of_any_kind(kind: str, server: ReflectionServer, monkeypatch: pytest.MonkeyPatch) -> None:
    path = warm_schema_cache(server)
    make_special_dir(path.parent, kind, path, monkeypatch)
    before = server.total
    call_hello(server)
    assert server.total > before
    after = server.total
    call_hello(server)
    if kind in DIR_NOT_REPLACED:
        assert server.total > after
    else:
        assert server.total == after
        assert stat.S_ISDIR(os.lstat(path.parent).st_mode)
    list_services(server)  # and list works all the same


# --- the module under both ----------------------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", FILE_KINDS)
def test_read_private_never_blocks_and_never_follows(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = cache_root() / "tokens" / "k.json"
    valid = b'{"ok": true}'
    assert write_private(path, valid)
    assert read_private(path) == valid
    make_special(path, kind, valid, monkeypatch)
    if kind in ("truncated", "empty"):  # regular and private: read, and its JSON rejected above
        assert read_private(path) == valid[: len(valid) // 2 if kind == "truncated" else 0]
    else:
        assert read_private(path) is None
    if kind not in NOT_REPLACED:
        assert write_private(path, valid)
        assert read_private(path) == valid


# --- key and token files given by the user: pipes keep working -----------------------------


def fill_fifo(path: Path, data: bytes) -> threading.Thread:
    """A FIFO at path that a writer thread fills once a reader opens it (like `<(cat f)`)."""
    os.mkfifo(path, 0o600)

    def write() -> None:
        with open(path, "wb") as f:
            f.write(data)

    t = threading.Thread(target=write, daemon=True)
    t.start()
    return t


@pytest.mark.timeout(30)
def test_key_file_from_a_pipe(issuer: Issuer, key: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "sa.fifo"
    writer = fill_fifo(fifo, key.read_bytes())
    r = run("token", "print", AUD, "--key-file", str(fifo), "--no-token-cache")
    assert (r.code, r.stderr) == (0, ""), r
    assert r.stdout.strip() == issuer.minted[-1]
    writer.join(5)
    assert not writer.is_alive()


@pytest.mark.timeout(30)
def test_key_file_from_a_pipe_as_impersonation_source(issuer: Issuer, key: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "sa.fifo"
    fill_fifo(fifo, key.read_bytes())
    r = run(
        "token", "print", AUD, "--key-file", str(fifo), "--no-token-cache",
        "--impersonate-service-account", "target@test-project.iam.gserviceaccount.com", "--iam-endpoint", issuer.url,
    )
    assert (r.code, r.stderr) == (0, ""), r
    assert r.stdout.strip() == issuer.minted[-1]


@pytest.mark.timeout(30)
def test_token_file_from_a_pipe(issuer: Issuer, tmp_path: Path) -> None:
    token = issuer.id_token(AUD, email="x@test-project.iam.gserviceaccount.com")
    fifo = tmp_path / "token.fifo"
    fill_fifo(fifo, token.encode() + b"\n")
    r = run("token", "print", AUD, "--token-file", str(fifo))
    assert (r.code, r.stdout, r.stderr) == (0, token + "\n", ""), r


@pytest.mark.timeout(30)
def test_call_with_a_key_file_from_a_pipe(issuer: Issuer, key: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "sa.fifo"
    fill_fifo(fifo, key.read_bytes())
    with echo_server() as echo:
        r = run("call", "--plaintext", echo.address, "SayHello", "-d", '{"name":"x"}', "--audience", AUD, "--key-file", str(fifo))
    assert r.code == 0, r
    assert json.loads(r.stdout)["message"].startswith("Hello x"), r


@pytest.mark.timeout(30)
def test_an_explicit_cache_directory_is_checked_from_its_top(tmp_path: Path) -> None:
    # Settings.cache_dir (the demo's, a test's): its directories are checked like crgrpc/'s.
    root = tmp_path / "mycache"
    path = root / "tokens" / "k.json"
    assert write_private(path, b"{}", root=root)
    assert stat.S_IMODE(os.lstat(root).st_mode) == 0o700
    assert read_private(path, root=root) == b"{}"
    os.chmod(root, 0o777)  # writable by others: not trusted
    assert read_private(path, root=root) is None
    os.chmod(root, 0o700)
    elsewhere = tmp_path / "elsewhere"
    (root / "tokens").rename(elsewhere)
    (root / "tokens").symlink_to(elsewhere)  # a symlinked subdirectory: not followed, replaced
    assert read_private(path, root=root) is None
    assert TokenCache(root=root).find(AUD) is None
    assert write_private(path, b"{}", root=root)
    assert stat.S_ISDIR(os.lstat(root / "tokens").st_mode)
    assert (elsewhere / "k.json").read_bytes() == b"{}"  # the symlink's target untouched
