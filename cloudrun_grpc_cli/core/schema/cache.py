"""The schema cache: what reflection found, per target, for a short TTL.

Owns $XDG_CACHE_HOME/crgrpc/schema/ (default ~/.cache/crgrpc/schema/):
directory 0700, files 0600, written atomically; corrupt, foreign or stale
files are ignored, and special files (FIFOs, sockets, devices, symlinks)
are never opened nor followed, and replaced on the next store
(core.cachefiles). One JSON file per cache key holds the service list (when
listed) and a FileDescriptorSet of the files loaded. A source over the cache
serves list/find from it while fresh; any miss (unknown service, method or
symbol) refetches once from the server before failing, and every successful
fetch is stored. Shell completion reads it without dialing.
"""

from __future__ import annotations

import base64
import json
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple, TypeVar

import grpc
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.descriptor_pool import DescriptorPool

from ...errors import SchemaError
from ..cachefiles import cache_root, read_private, write_private
from .assemble import Assembler
from .reflection import Metadata, ReflectionSource
from .resolve import method_name
from .source import PoolSource, SchemaNotFound, SchemaSource, Symbol, describable_names

FORMAT = "crgrpc-schema-cache/1"
DEFAULT_TTL = 300.0
_T = TypeVar("_T")


def cache_dir(root: Path | None = None) -> Path:
    """root/schema; root is the crgrpc cache directory (default cache_root())."""
    return (root if root is not None else cache_root()) / "schema"


def cache_path(cache_key: str, *, root: Path | None = None) -> Path:
    """The file of cache_key. Its name only spreads the keys over files: an entry
    holds its own key and is ignored under another's (read_entry), so two keys of
    one name cost a refetch, never a wrong schema. Hence zlib's checksums, which
    cost nothing at start, not hashlib's, whose import alone is ~1.5% of a call."""
    raw = cache_key.encode()
    return cache_dir(root) / f"{zlib.crc32(raw):08x}{zlib.adler32(raw):08x}.json"


class CacheEntry(NamedTuple):
    key: str
    created: float
    services: list[str] | None
    files: list[descriptor_pb2.FileDescriptorProto]


def read_entry(
    cache_key: str, ttl: float = DEFAULT_TTL, *, root: Path | None = None
) -> CacheEntry | None:
    """The fresh entry for cache_key, or None (missing, stale, corrupt or foreign)."""
    data = read_private(cache_path(cache_key, root=root), root=root)  # None when missing or foreign
    if data is None:
        return None
    try:
        raw = json.loads(data.decode())
        if not isinstance(raw, dict) or raw.get("format") != FORMAT or raw.get("key") != cache_key:
            return None
        created = float(raw["created"])
        now = time.time()
        if not (0 <= now - created <= ttl):
            return None
        services = raw.get("services")
        if services is not None and not (
            isinstance(services, list) and all(isinstance(s, str) for s in services)
        ):
            return None
        fds = descriptor_pb2.FileDescriptorSet.FromString(base64.b64decode(raw["protoset"]))
    except (OSError, ValueError, KeyError, TypeError, RuntimeError):
        return None
    except Exception:  # a decode error of any kind: the file is corrupt
        return None
    return CacheEntry(cache_key, created, services, list(fds.file))


def write_entry(
    cache_key: str,
    services: Sequence[str] | None,
    files: Sequence[descriptor_pb2.FileDescriptorProto],
    *,
    root: Path | None = None,
) -> None:
    """Store an entry atomically (0600 in a 0700 directory); failures are ignored."""
    fds = descriptor_pb2.FileDescriptorSet()
    for fdp in files:
        fds.file.add().CopyFrom(fdp)
    doc = {
        "format": FORMAT,
        "key": cache_key,
        "created": time.time(),
        "services": sorted(services) if services is not None else None,
        "protoset": base64.b64encode(fds.SerializeToString()).decode(),
    }
    write_private(cache_path(cache_key, root=root), json.dumps(doc).encode(), root=root)


def read_cached_services(cache_key: str, ttl: float = DEFAULT_TTL) -> list[str] | None:
    """Services of a fresh cache entry (for completion: reads only, never dials)."""
    entry = read_entry(cache_key, ttl)
    if entry is None:
        return None
    source = _pool_source(entry)  # an entry whose files do not assemble is corrupt
    if source is None:
        return None
    return list(entry.services) if entry.services is not None else source.list_services()


def read_cached_methods(
    cache_key: str, service: str | None = None, ttl: float = DEFAULT_TTL
) -> list[str] | None:
    """Methods as "pkg.Service/Method" from a fresh entry: of service, or of every cached service.

    None when there is no fresh entry, or service is not in it (reads only, never dials).
    """
    entry = read_entry(cache_key, ttl)
    if entry is None:
        return None
    source = _pool_source(entry)
    if source is None:
        return None
    names = [service] if service else source.list_services()
    out: list[str] = []
    for name in names:
        try:
            svc = source.find_service(name)
        except SchemaError:
            if service:
                return None
            continue
        out.extend(method_name(m) for m in svc.methods)
    return sorted(out)


def read_cached_symbols(cache_key: str, ttl: float = DEFAULT_TTL) -> list[str] | None:
    """Services, methods, messages and enums of a fresh entry's files (for completion of
    `describe`: reads only, never dials); None without a fresh entry."""
    entry = read_entry(cache_key, ttl)
    if entry is None:
        return None
    source = _pool_source(entry)
    if source is None:
        return None
    return describable_names(source)


def _pool_source(entry: CacheEntry) -> PoolSource | None:
    asm = Assembler("schema cache")
    try:
        asm.add(entry.files)
    except SchemaError:
        return None
    return PoolSource(asm)


class CachedReflectionSource:
    """Reflection behind the schema cache: fresh cached data first, the server on a
    miss (see the module docstring). cache_dir: the crgrpc cache directory (entries
    under cache_dir/schema/); default cache_root()."""

    def __init__(
        self,
        channel: grpc.Channel,
        *,
        metadata: Metadata,
        timeout: float,
        address: str,
        cache_key: str,
        ttl: float = DEFAULT_TTL,
        enabled: bool = True,
        cache_dir: Path | None = None,
    ) -> None:
        self._live = ReflectionSource(channel, metadata=metadata, timeout=timeout, address=address)
        self._key = cache_key
        self._enabled = enabled
        self._root = cache_dir
        self._cached: PoolSource | None = None
        self._cached_services: list[str] | None = None
        self._refetched = False
        self._relist = False  # the replaced entry had a service list: keep one fresh
        if enabled:
            entry = read_entry(cache_key, ttl, root=cache_dir)
            if entry is not None:
                self._cached = _pool_source(entry)
                if self._cached is not None:
                    self._cached_services = entry.services

    @property
    def live(self) -> ReflectionSource:
        return self._live

    @property
    def from_cache(self) -> bool:
        """Whether answers still come from the cache (no refetch so far)."""
        return self._cached is not None

    @property
    def pool(self) -> DescriptorPool:
        return self._cached.pool if self._cached is not None else self._live.pool

    def list_services(self) -> list[str]:
        if self._cached is not None and self._cached_services is not None:
            return list(self._cached_services)
        services = self._live.list_services()
        self._store()
        return services

    def find_service(self, name: str) -> ServiceDescriptor:
        return self._find(lambda source: source.find_service(name))

    def find_symbol(self, name: str) -> Symbol:
        return self._find(lambda source: source.find_symbol(name))

    def _find(self, lookup: Callable[[SchemaSource], _T]) -> _T:
        """From the cache; a miss there refetches once from the server (then stores)."""
        if self._cached is not None:
            try:
                return lookup(self._cached)
            except SchemaNotFound:
                self.refetch()
        found = lookup(self._live)
        self._store()
        return found

    def load_services(self, names: Sequence[str]) -> None:
        if self._cached is not None:
            cached = self._cached
            if all(_has_service(cached, n) for n in names):
                return
            self.refetch()
        self._live.load_services(names)
        self._store()

    def settle(self, timeout: float) -> None:
        self._live.settle(timeout)

    def file_descriptor_set(self) -> descriptor_pb2.FileDescriptorSet:
        if self._cached is not None:
            return self._cached.file_descriptor_set()
        return self._live.file_descriptor_set()

    def refetch(self) -> bool:
        """Drop the cached data and ask the server from now on; False if already live."""
        if self._cached is None or self._refetched:
            return False
        self._refetched = True
        self._relist = self._cached_services is not None
        self._cached = None
        self._cached_services = None
        return True

    def _store(self) -> None:
        if not self._enabled:
            return
        live = self._live
        listed = live.services_listed or self._relist
        services = live.list_services() if listed else None
        files = list(live.file_descriptor_set().file)
        if self._cached is not None:  # keep what the cache still serves
            names = {f.name for f in files}
            files += [f for f in self._cached.file_descriptor_set().file if f.name not in names]
            if services is None:
                services = self._cached_services
        write_entry(self._key, services, files, root=self._root)


def _has_service(source: PoolSource, name: str) -> bool:
    try:
        source.find_service(name)
    except SchemaError:
        return False
    return True
