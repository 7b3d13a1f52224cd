"""The on-disk ID-token cache: $XDG_CACHE_HOME/crgrpc/tokens/ (DESIGN.md, Files).

One JSON file per (identity, audience, header), named by a hash of the three,
reused until CACHE_MARGIN seconds before the token's `exp`. The directory is
0700 and the files 0600, written atomically (temporary file + os.replace).
Corrupt, foreign (another key's, another user's, group- or world-readable) and
expired files are ignored, never fatal: a cache problem only costs a mint.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
import time
from pathlib import Path

CACHE_MARGIN = 300  # reuse a cached token until 5 minutes before exp
_VERSION = 1


def cache_root() -> Path:
    """$XDG_CACHE_HOME/crgrpc (default ~/.cache/crgrpc)."""
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    return root / "crgrpc"


def _private(st: os.stat_result) -> bool:
    """Owned by us and not readable or writable by group or others."""
    if os.name != "posix":
        return True
    return st.st_uid == os.getuid() and not st.st_mode & (stat.S_IRWXG | stat.S_IRWXO)


class TokenCache:
    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory if directory is not None else cache_root() / "tokens"

    @staticmethod
    def key(identity: str, audience: str, header: str) -> str:
        blob = json.dumps([identity, audience, header.lower()], separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:40]

    def path(self, identity: str, audience: str, header: str) -> Path:
        return self.directory / f"{self.key(identity, audience, header)}.json"

    def _ensure_dir(self) -> bool:
        """Create the directory 0700 (parents too); False when it is not ours to use."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            st = self.directory.stat()
            if os.name == "posix":
                if st.st_uid != os.getuid():
                    return False
                if stat.S_IMODE(st.st_mode) != 0o700:
                    os.chmod(self.directory, 0o700)
        except OSError:
            return False
        return True

    def load(self, identity: str, audience: str, header: str) -> str | None:
        """The cached token, when present, ours, intact and not within CACHE_MARGIN of exp."""
        path = self.path(identity, audience, header)
        try:
            with open(path, encoding="utf-8") as f:
                if not _private(os.fstat(f.fileno())):
                    return None
                data = json.load(f)
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("version") != _VERSION:
            return None
        if (data.get("identity"), data.get("audience"), data.get("header")) != (
            identity,
            audience,
            header.lower(),
        ):
            return None
        token, exp = data.get("token"), data.get("exp")
        if not isinstance(token, str) or not isinstance(exp, (int, float)):
            return None
        if exp - time.time() <= CACHE_MARGIN:
            return None
        return token

    def store(self, identity: str, audience: str, header: str, token: str, exp: int) -> bool:
        """Write atomically with mode 0600; False (never an exception) when it cannot."""
        if not self._ensure_dir():
            return False
        data = {
            "version": _VERSION,
            "identity": identity,
            "audience": audience,
            "header": header.lower(),
            "exp": exp,
            "token": token,
        }
        final = self.path(identity, audience, header)
        tmp: str | None = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=self.directory)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                os.chmod(tmp, 0o600)
                json.dump(data, f)
            os.replace(tmp, final)
            tmp = None
        except OSError:
            return False
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        return True

    def clear(self) -> int:
        """Remove every cached token; the number removed."""
        n = 0
        with contextlib.suppress(OSError):
            for p in self.directory.glob("*.json"):
                with contextlib.suppress(OSError):
                    p.unlink()
                    n += 1
        return n
