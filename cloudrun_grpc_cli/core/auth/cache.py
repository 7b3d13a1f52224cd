"""The on-disk ID-token cache: $XDG_CACHE_HOME/crgrpc/tokens/ (README: Security).

One JSON file per (identity, audience, header), named by a hash of the three,
reused until CACHE_MARGIN seconds before the token's `exp`. The directory is
0700 and the files 0600, written atomically (temporary file + os.replace).
Corrupt, foreign (another key's, another user's, group- or world-readable) and
expired files are ignored, never fatal: a cache problem only costs a mint.
Special files (FIFOs, sockets, devices, symlinks) are never opened nor
followed, and replaced on the next store (core.cachefiles).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from pathlib import Path

from ..cachefiles import cache_root, dir_is_ours, read_private, write_private

CACHE_MARGIN = 300  # reuse a cached token until 5 minutes before exp
_VERSION = 1


class TokenCache:
    def __init__(self, directory: Path | None = None, *, root: Path | None = None) -> None:
        """directory: the tokens directory itself; else root/tokens, root defaulting to
        cache_root() ($XDG_CACHE_HOME/crgrpc)."""
        if directory is None:
            directory = (root if root is not None else cache_root()) / "tokens"
        self.directory = directory
        self.root = root  # the cache root whose directories are checked (None: cache_root())

    @staticmethod
    def key(identity: str, audience: str, header: str) -> str:
        blob = json.dumps([identity, audience, header.lower()], separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:40]

    def path(self, identity: str, audience: str, header: str) -> Path:
        return self.directory / f"{self.key(identity, audience, header)}.json"

    def load(self, identity: str, audience: str, header: str) -> str | None:
        """The cached token, when present, ours, intact and not within CACHE_MARGIN of exp."""
        raw = read_private(self.path(identity, audience, header), root=self.root)
        if raw is None:
            return None
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
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

    def find(self, audience: str, header: str = "authorization") -> str | None:
        """A fresh token for this audience and header from any identity (never mints).

        Shell completion uses it: it may send a token already cached, nothing more.
        """
        if not dir_is_ours(self.directory, root=self.root):
            return None
        with contextlib.suppress(OSError):
            for path in sorted(self.directory.glob("*.json")):
                raw = read_private(path, root=self.root)
                try:
                    data = json.loads(raw) if raw is not None else None
                except (ValueError, UnicodeDecodeError):
                    continue
                if not isinstance(data, dict):
                    continue
                identity = data.get("identity")
                if data.get("audience") == audience and isinstance(identity, str):
                    token = self.load(identity, audience, header)
                    if token:
                        return token
        return None

    def store(self, identity: str, audience: str, header: str, token: str, exp: int) -> bool:
        """Write atomically with mode 0600; False (never an exception) when it cannot."""
        data = {
            "version": _VERSION,
            "identity": identity,
            "audience": audience,
            "header": header.lower(),
            "exp": exp,
            "token": token,
        }
        return write_private(
            self.path(identity, audience, header), json.dumps(data).encode(), root=self.root
        )

    def clear(self) -> int:
        """Remove every cached token; the number removed."""
        n = 0
        if not dir_is_ours(self.directory, root=self.root):
            return 0  # a symlink or another user's directory: not ours to empty
        with contextlib.suppress(OSError):
            for p in self.directory.glob("*.json"):
                with contextlib.suppress(OSError):
                    p.unlink()
                    n += 1
        return n
