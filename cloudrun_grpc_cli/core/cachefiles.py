"""Private cache files under $XDG_CACHE_HOME/crgrpc (default ~/.cache/crgrpc),
or the cache directory the caller names (`root`; Settings.cache_dir).

Every directory from crgrpc/ down is 0700, every file 0600, written
atomically (a temporary file, then a rename). The token cache and the schema
cache both go through here; neither raises on a cache problem.

Whatever is found in the cache is distrusted (issue 10, item 3). A file is
read only when it is a regular file, ours and private: it is looked at with
lstat first (a FIFO, a socket, a device or a symlink is never opened), then
opened with O_NOFOLLOW | O_NONBLOCK and checked again with fstat (the same
file, S_ISREG, our uid, no group or other bits, readable by its owner) before
a byte is read. Every directory from crgrpc/ down to the file is checked with
lstat: a real directory, ours, writable by nobody else. Anything else is
ignored; a write replaces it when that is safe — a file entry by the atomic
rename (which never opens or follows what it replaces), a directory entry
that is not a directory (a symlink, FIFO, socket, device or file) in a
directory of ours by unlinking it first. crgrpc/ itself when it is not a
real directory (a symlink to elsewhere, say), and a directory of another
user, are left alone: the cache is then neither read nor written.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

# A cache file larger than this is not one we wrote (the schema cache of a
# large API is a few MiB); reading stops there.
MAX_CACHE_FILE = 64 << 20


def cache_root() -> Path:
    """$XDG_CACHE_HOME/crgrpc (default ~/.cache/crgrpc); a relative XDG path is ignored."""
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    return root / "crgrpc"


def _ours(st: os.stat_result) -> bool:
    return os.name != "posix" or st.st_uid == os.getuid()


def is_private(st: os.stat_result) -> bool:
    """Owned by us and neither readable nor writable by group or others."""
    if os.name != "posix":
        return True
    return _ours(st) and not st.st_mode & (stat.S_IRWXG | stat.S_IRWXO)


def _chain(directory: Path, root: Path | None = None) -> list[Path]:
    """The directories to check for `directory`, outermost first: the cache root
    (`root`, default cache_root()) down to it when it is under the root, else just
    itself (tests pass their own)."""
    root = root if root is not None else cache_root()
    ours = [d for d in [directory, *directory.parents] if d == root or root in d.parents]
    return list(reversed(ours)) if ours else [directory]


def _trusted_dir(st: os.stat_result) -> bool:
    """A real directory (not a symlink to one), ours, writable by nobody else."""
    if not stat.S_ISDIR(st.st_mode):
        return False
    if os.name != "posix":
        return True
    return _ours(st) and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def dir_is_ours(directory: Path, *, root: Path | None = None) -> bool:
    """Whether directory and those above it up to the cache root (crgrpc/) are real
    directories of ours, writable by nobody else (lstat: a symlink is not followed)."""
    for d in _chain(directory, root):
        try:
            st = os.lstat(d)
        except OSError:
            return False
        if not _trusted_dir(st):
            return False
    return True


def private_dir(directory: Path, *, root: Path | None = None) -> bool:
    """Create directory and its parents up to the cache root (crgrpc/) as 0700;
    False when not ours.

    A directory entry that is not a directory (symlink, FIFO, socket, device,
    file) inside a directory of ours is replaced by a directory; a directory of
    another user makes it False.
    """
    top = root if root is not None else cache_root()
    chain = _chain(directory, top)
    try:
        if chain[0] == top:
            top.parent.mkdir(parents=True, exist_ok=True)  # ~/.cache: not ours to restrict
        else:
            directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        for i, d in enumerate(chain):
            try:
                st = os.lstat(d)
            except FileNotFoundError:
                os.mkdir(d, 0o700)
                st = os.lstat(d)
            if not stat.S_ISDIR(st.st_mode):
                if i == 0:
                    return False  # crgrpc/ itself (or a directory of the caller's): leave it
                os.unlink(d)  # a symlink, FIFO, socket, device or file in our directory
                os.mkdir(d, 0o700)
                st = os.lstat(d)
            if os.name == "posix":
                if st.st_uid != os.getuid():
                    return False
                if stat.S_IMODE(st.st_mode) != 0o700:
                    os.chmod(d, 0o700)  # a directory: lstat said so
    except OSError:
        return False
    return True


def write_private(path: Path, data: bytes, *, root: Path | None = None) -> bool:
    """Write data to path atomically with mode 0600; False (never raises) on failure.

    The rename replaces whatever entry is at path (a FIFO, a symlink, another
    user's file) without opening or following it; a directory there makes it False.
    """
    if not private_dir(path.parent, root=root):
        return False
    import tempfile  # writes are rare; reads (every call) do not need it

    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=path.suffix, dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(data)
        os.replace(tmp, path)
        tmp = None
    except OSError:
        return False
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return True


_READ_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


def read_private(path: Path, *, root: Path | None = None) -> bytes | None:
    """The file's bytes when it is a regular file, ours and private, in directories
    that are ours; else None. Never blocks, never follows a symlink (module docstring)."""
    try:
        before = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(before.st_mode) or not _readable(before):
        return None  # a FIFO, socket, device, symlink or directory is never opened
    if not dir_is_ours(path.parent, root=root):
        return None
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino) or not (
            stat.S_ISREG(st.st_mode) and _readable(st)
        ):
            return None  # swapped between lstat and open
        if st.st_size > MAX_CACHE_FILE:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_CACHE_FILE:
                return None
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def _readable(st: os.stat_result) -> bool:
    """Private (ours, no group or other bits) and readable by its owner: a file
    whose mode says 0000 is not read even by root."""
    return is_private(st) and (os.name != "posix" or bool(st.st_mode & stat.S_IRUSR))
