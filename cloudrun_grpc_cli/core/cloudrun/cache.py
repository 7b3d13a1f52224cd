"""The resolution cache: run:// → the service's URLs, per identity and service, 5 minutes.

Like the schema cache (core/cachefiles.py): $XDG_CACHE_HOME/crgrpc/run/, the
directory 0700 and each file 0600, written atomically; a corrupt, foreign,
stale or mismatched file is ignored (it only costs an Admin API request). The
key is the identity of the credentials, the Admin API's base URL and the
service's full name; an entry holds only RunService.cached() (no template).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from ..cachefiles import cache_root, read_private, write_private

FORMAT = "crgrpc-run-cache/1"
TTL = 300.0


def cache_key(identity: str, api: str, name: str) -> list[str]:
    return [identity, api, name]


def cache_path(key: list[str], *, root: Path | None = None) -> Path:
    digest = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:40]
    return (root if root is not None else cache_root()) / "run" / f"{digest}.json"


def load(key: list[str], *, root: Path | None = None, ttl: float = TTL) -> dict[str, Any] | None:
    """The cached service (RunService.cached()) when fresh and ours, else None."""
    raw = read_private(cache_path(key, root=root))
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("key") != key:
        return None
    created, service = doc.get("created"), doc.get("service")
    if not isinstance(created, (int, float)) or not isinstance(service, dict):
        return None
    if not 0 <= time.time() - created <= ttl:
        return None
    if not isinstance(service.get("uri"), str) or not service["uri"]:
        return None
    return service


def store(key: list[str], service: dict[str, Any], *, root: Path | None = None) -> bool:
    doc = {"format": FORMAT, "key": key, "created": time.time(), "service": service}
    return write_private(cache_path(key, root=root), json.dumps(doc).encode())
