"""Private cache files under $XDG_CACHE_HOME/crgrpc (default ~/.cache/crgrpc).

Every directory from crgrpc/ down is 0700, every file 0600, written
atomically (a temporary file, then a rename). A file that is not ours, or
that others may read or write, is ignored on read. The token cache and the
schema cache both go through here; neither raises on a cache problem.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path


def cache_root() -> Path:
    """$XDG_CACHE_HOME/crgrpc (default ~/.cache/crgrpc); a relative XDG path is ignored."""
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    return root / "crgrpc"


def is_private(st: os.stat_result) -> bool:
    """Owned by us and neither readable nor writable by group or others."""
    if os.name != "posix":
        return True
    return st.st_uid == os.getuid() and not st.st_mode & (stat.S_IRWXG | stat.S_IRWXO)


def private_dir(directory: Path) -> bool:
    """Create directory and its parents up to crgrpc/ as 0700; False when not ours."""
    root = cache_root()
    try:
        chain = [directory, *directory.parents]
        ours = [d for d in chain if d == root or root in d.parents]
        if ours:
            root.parent.mkdir(parents=True, exist_ok=True)  # ~/.cache: not ours to restrict
        for d in reversed(ours):
            d.mkdir(mode=0o700, exist_ok=True)
            st = d.stat()
            if os.name == "posix":
                if st.st_uid != os.getuid():
                    return False
                if stat.S_IMODE(st.st_mode) != 0o700:
                    os.chmod(d, 0o700)
        if not ours:  # a directory outside the cache root (tests pass their own)
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return False
    return True


def write_private(path: Path, data: bytes) -> bool:
    """Write data to path atomically with mode 0600; False (never raises) on failure."""
    if not private_dir(path.parent):
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


def read_private(path: Path) -> bytes | None:
    """The file's bytes when it exists, is ours and is private; else None."""
    try:
        with open(path, "rb") as f:
            if not is_private(os.fstat(f.fileno())):
                return None
            return f.read()
    except OSError:
        return None
