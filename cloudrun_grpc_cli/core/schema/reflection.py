"""A SchemaSource that asks the server by gRPC server reflection.

Owns the reflection protocol: grpc.reflection.v1 first, falling back to
v1alpha on UNIMPLEMENTED (the two are wire-compatible, so v1alpha's
generated messages serve both), remembering the version that worked. Every
RPC carries metadata() (called per RPC) and the deadline `timeout`. Lazy:
list_services asks only for the list; find_* fetch the file holding the
symbol and its missing imports on demand, one bidi stream per operation.

Tolerates grpcio's server, which cannot find a method's symbol (pkg.Svc.Method:
the enclosing service is asked for instead), and through assemble.py the
non-conforming descriptors of grpc-node's @grpc/reflection.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeAlias

import grpc
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha import reflection_pb2

from ...errors import SchemaError
from ..rpcerrors import from_rpc_error
from .assemble import FDP, Assembler, parse_file
from .source import (
    Symbol,
    all_symbol_names,
    lookup_service,
    lookup_symbol,
    normalize_symbol,
    not_found,
    register_files,
)

Metadata = Callable[[], Sequence[tuple[str, "str | bytes"]]]

METHODS = {
    "v1": "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "v1alpha": "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
}
REFLECTION_SERVICES = frozenset(
    {"grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"}
)
NO_REFLECTION_HINT = (
    "give the schema with --proto FILE (and -I DIR for its imports) or --protoset FILE instead"
)
_NOT_FOUND = grpc.StatusCode.NOT_FOUND.value[0]
#: Requests one operation may make (a server feeding endless imports is cut off).
MAX_REQUESTS = 500
#: Enclosing scopes tried when the server cannot find a symbol itself.
MAX_PARENT_TRIES = 4

# grpcio-reflection ships no type stubs: its messages are typed loosely here.
Request: TypeAlias = Any
Response: TypeAlias = Any
_REQUEST: Any = reflection_pb2.ServerReflectionRequest
_RESPONSE: Any = reflection_pb2.ServerReflectionResponse


class _Stream:
    """One ServerReflectionInfo call: ask() sends a request and waits for its answer."""

    def __init__(
        self, channel: grpc.Channel, method: str, metadata: Metadata, timeout: float
    ) -> None:
        self._queue: queue.Queue[Request | None] = queue.Queue()
        self.requests = 0
        stub = channel.stream_stream(
            method,
            request_serializer=_REQUEST.SerializeToString,
            response_deserializer=_RESPONSE.FromString,
        )
        self._call: Any = stub(self._requests(), metadata=tuple(metadata()), timeout=timeout)

    def _requests(self) -> Iterator[Request]:
        while True:
            item = self._queue.get()
            if item is None:
                return
            yield item

    def ask(self, request: Request) -> Response:
        self.requests += 1
        if self.requests > MAX_REQUESTS:
            raise SchemaError(f"reflection needed more than {MAX_REQUESTS} requests; giving up")
        self._queue.put(request)
        try:
            response: Response = next(self._call)
        except StopIteration:
            raise SchemaError("the server ended the reflection stream without answering") from None
        if response.WhichOneof("message_response") is None and self._failed_with_it():
            raise self._call  # the call's own error (it is a grpc.RpcError)
        return response

    def _failed_with_it(self, wait: float = 1.0) -> bool:
        """An empty answer that came with a failure: grpcio sometimes hands on an empty
        message from an HTTP error answer (a front end's 503 with an HTML page) before
        the call's UNAVAILABLE status. True when the call ends, within `wait`, not OK."""
        return self._ends_within(wait) and self._call.code() != grpc.StatusCode.OK

    def _ends_within(self, timeout: float) -> bool:
        """True when the call has ended, or ends within timeout seconds."""
        ended = threading.Event()
        self._call.add_done_callback(lambda _call: ended.set())
        return ended.wait(max(0.0, timeout))

    def close(self, *, cancel: bool = True) -> None:
        """End the stream: half-close it, and cancel it unless it served. A served
        stream is left for the server to end with OK while the caller goes on
        (`settle` waits for that): a server's, a front end's or crgrpc proxy's log
        then shows no CANCELLED call per reflection."""
        self._queue.put(None)
        if cancel:
            self._call.cancel()

    def settle(self, timeout: float) -> None:
        """Wait up to timeout for the server to end the stream, then cancel it."""
        if not self._ends_within(timeout):
            self._call.cancel()


class ReflectionSource:
    """Schema fetched lazily by server reflection."""

    def __init__(
        self, channel: grpc.Channel, *, metadata: Metadata, timeout: float, address: str
    ) -> None:
        self._channel = channel
        self._metadata = metadata
        self._timeout = timeout
        self.address = address
        self.version: str | None = None
        self._answered = False
        self._services: list[str] | None = None
        self._asm = Assembler(f"reflection from {address}")
        register_files(self._asm.pool, self._asm.files)
        #: Total reflection requests sent (for tests and the cache's bookkeeping).
        self.requests = 0
        self._ending: list[_Stream] = []  # served, half-closed, not yet ended by the server

    # -- SchemaSource ------------------------------------------------------------

    @property
    def pool(self) -> DescriptorPool:
        return self._asm.pool

    @property
    def services_listed(self) -> bool:
        return self._services is not None

    def list_services(self) -> list[str]:
        if self._services is None:
            stream, response = self._open(_REQUEST(list_services="*"))
            served = False
            try:
                self._services = sorted(
                    {s.name for s in self._expect(response, "list_services_response").service}
                )
                served = True
            finally:
                self._end(stream, served)
        return list(self._services)

    def find_service(self, name: str) -> ServiceDescriptor:
        name = normalize_symbol(name)
        svc = lookup_service(self.pool, name)
        if svc is None:
            self._load([name])
            svc = lookup_service(self.pool, name)
        if svc is None:
            raise not_found("service", name, self.list_services())
        return svc

    def find_symbol(self, name: str) -> Symbol:
        name = normalize_symbol(name)
        found = lookup_symbol(self.pool, name)
        if found is None:
            self._load([name])
            found = lookup_symbol(self.pool, name)
        if found is None:
            self.load_services(self.list_services())
            found = lookup_symbol(self.pool, name)
            if found is None:
                candidates = all_symbol_names(self.pool, list(self._asm.files))
                raise not_found("symbol", name, candidates)
        return found

    def file_descriptor_set(self) -> descriptor_pb2.FileDescriptorSet:
        return self._asm.file_descriptor_set()

    # -- more ------------------------------------------------------------------

    def load_services(self, names: Sequence[str]) -> None:
        """Fetch the files of several services in one stream (unknown ones are skipped)."""
        wanted = [n for n in names if lookup_service(self.pool, n) is None]
        if wanted:
            self._load(wanted, quiet=True)

    def add_files(self, files: Sequence[FDP]) -> None:
        """Seed the pool with files known from elsewhere (the schema cache)."""
        self._asm.add(files)

    def set_services(self, services: Sequence[str]) -> None:
        self._services = sorted(set(services))

    def settle(self, timeout: float) -> None:
        """Give the streams that served up to timeout in all to be ended by the server
        (they usually are by now), then cancel what is left; before the channel closes."""
        deadline = time.monotonic() + timeout
        ending, self._ending = self._ending, []
        for stream in ending:
            stream.settle(deadline - time.monotonic())

    # -- protocol --------------------------------------------------------------

    def _end(self, stream: _Stream, served: bool) -> None:
        stream.close(cancel=not served)
        if served:
            self._ending.append(stream)

    def _open(self, first: Request) -> tuple[_Stream, Response]:
        """A stream with its first answer, settling the reflection version on first use."""
        versions = [self.version] if self.version else ["v1", "v1alpha"]
        for version in versions:
            assert version is not None
            stream = _Stream(self._channel, METHODS[version], self._metadata, self._timeout)
            try:
                response = self._ask(stream, first)
            except grpc.RpcError as err:
                stream.close()
                code = err.code() if hasattr(err, "code") else None
                if code == grpc.StatusCode.UNIMPLEMENTED:
                    if version == "v1" and self.version is None:
                        continue
                    raise SchemaError(
                        "server does not support reflection", NO_REFLECTION_HINT
                    ) from None
                raise from_rpc_error(
                    err, address=self.address, connected=self._answered, what="reflection"
                ) from None
            except BaseException:
                stream.close()
                raise
            self.version = version
            return stream, response
        raise SchemaError("server does not support reflection", NO_REFLECTION_HINT)

    def _ask(self, stream: _Stream, request: Request) -> Response:
        self.requests += 1
        response = stream.ask(request)
        self._answered = True
        return response

    def _ask_more(self, stream: _Stream, request: Request) -> Response:
        try:
            return self._ask(stream, request)
        except grpc.RpcError as err:
            raise from_rpc_error(err, address=self.address, what="reflection") from None

    def _expect(self, response: Response, field: str) -> Any:
        kind = response.WhichOneof("message_response")
        if kind == "error_response":
            raise _answer_error(response)
        if kind != field:
            raise SchemaError(f"reflection: the server answered {kind} to a request for {field}")
        return getattr(response, field)

    def _files(self, response: Response) -> list[FDP] | None:
        """The files of a file_descriptor_response; None for NOT_FOUND."""
        kind = response.WhichOneof("message_response")
        if kind == "error_response":
            if response.error_response.error_code == _NOT_FOUND:
                return None
            raise _answer_error(response)
        if kind != "file_descriptor_response":
            raise SchemaError(
                f"reflection: the server answered {kind} to a request for a file descriptor"
            )
        origin = f"reflection from {self.address}"
        return [
            parse_file(data, origin)
            for data in response.file_descriptor_response.file_descriptor_proto
        ]

    def _load(self, symbols: Sequence[str], *, quiet: bool = False) -> None:
        """Fetch the files holding symbols (trying enclosing scopes), with their imports."""
        batch: dict[str, FDP] = {}
        stream: _Stream | None = None
        served = False
        try:
            for symbol in symbols:
                tries = [symbol]
                parts = symbol.split(".")
                for i in range(len(parts) - 1, max(0, len(parts) - 1 - MAX_PARENT_TRIES), -1):
                    tries.append(".".join(parts[:i]))
                for attempt in tries:
                    request = _REQUEST(file_containing_symbol=attempt)
                    if stream is None:
                        stream, response = self._open(request)
                    else:
                        response = self._ask_more(stream, request)
                    files = self._files(response)
                    if files is not None:
                        for fdp in files:
                            batch.setdefault(fdp.name, fdp)
                        break
            if not batch:
                served = True
                return
            asked: set[str] = set()
            while True:
                missing = [n for n in self._asm.missing_imports(batch.values()) if n not in asked]
                if not missing:
                    break
                for name in missing:
                    asked.add(name)
                    assert stream is not None
                    files = self._files(self._ask_more(stream, _REQUEST(file_by_filename=name)))
                    for fdp in files or ():
                        batch.setdefault(fdp.name, fdp)
            served = True
        finally:
            if stream is not None:
                self._end(stream, served)
        try:
            self._asm.add(list(batch.values()))
        except SchemaError:
            if not quiet:
                raise


def _answer_error(response: Response) -> SchemaError:
    err = response.error_response
    try:
        name = grpc.StatusCode(
            next(c for c in grpc.StatusCode if c.value[0] == err.error_code).value
        ).name
    except StopIteration:
        name = str(err.error_code)
    text = f"reflection: the server answered {name}"
    if err.error_message:
        text += f": {err.error_message}"
    return SchemaError(text)


def reflection_source(
    channel: grpc.Channel, *, metadata: Metadata, timeout: float, address: str
) -> ReflectionSource:
    """A lazy SchemaSource over server reflection (v1, falling back to v1alpha)."""
    return ReflectionSource(channel, metadata=metadata, timeout=timeout, address=address)
