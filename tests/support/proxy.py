"""The proxy's test bench: a guarded TLS Echo upstream, and `crgrpc proxy` as a process.

The upstream is the TLS Echo service (certificates made at test time) behind
TokenCheck with no clock skew, as Cloud Run would guard it, with reflection,
a recorder of every call it sees (time, method, metadata, deadline, peer),
and raw-bytes probe methods under /test.Probe/ for what Echo cannot show:
status details, deadlines, holding a stream open, cancelling from the server,
producing and draining without reading (flow control), compressed answers,
quoting the token back. Like Google's front ends it allows 100 concurrent
streams per connection.

The proxy runs as a real process (`python -m cloudrun_grpc_cli proxy`): its
first stdout line gives the address; its stderr (JSON Lines with -o json) is
read by a thread; /proc gives its threads and memory.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from cloudrun_grpc_cli.demo import echo_pb2_grpc
from cloudrun_grpc_cli.demo.echo import EchoServicer
from cloudrun_grpc_cli.demo.server import ECHO_SERVICE
from cloudrun_grpc_cli.demo.tokencheck import TokenCheck

from .issuer import Issuer
from .oracle import bearer, google_verified
from .tls import CertFiles

AUD = "https://localhost"
PROBE = "/test.Probe/"
STREAMS_PER_CONNECTION = 100  # what the upstream allows on one connection, like Google's front ends


@dataclass
class Seen:
    """One call as the upstream saw it (before the token check)."""

    at: float
    method: str
    metadata: list[tuple[str, str | bytes]]
    deadline: float | None  # seconds left when it arrived; None: no deadline
    peer: str

    def value(self, name: str) -> str | bytes | None:
        return next((v for k, v in self.metadata if k == name), None)


class Recorder(grpc.ServerInterceptor):  # type: ignore[misc]
    def __init__(self) -> None:
        self.calls: list[Seen] = []
        self._lock = threading.Lock()

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        seen = Seen(time.time(), details.method, list(details.invocation_metadata), None, "")
        with self._lock:
            self.calls.append(seen)
        return continuation(details)

    def of(self, method: str) -> list[Seen]:
        with self._lock:
            return [c for c in self.calls if c.method == method]


def status_details_bin(message: str) -> bytes:
    """A google.rpc.Status with an ErrorInfo, as a server puts in grpc-status-details-bin."""
    from google.protobuf import any_pb2
    from google.rpc import error_details_pb2, status_pb2

    info = error_details_pb2.ErrorInfo(reason="QUOTA", domain="test.example", metadata={"k": "v"})
    detail = any_pb2.Any()
    detail.Pack(info)
    return status_pb2.Status(code=8, message=message, details=[detail]).SerializeToString()


@dataclass
class Probes:
    """State the probe methods share with the tests."""

    produced: dict[str, int] = field(default_factory=dict)  # Produce: messages yielded, by tag
    drained: dict[str, int] = field(default_factory=dict)  # Drain: messages read, by tag
    release: threading.Event = field(default_factory=threading.Event)  # Drain reads on, once set
    ended: dict[str, threading.Event] = field(default_factory=dict)  # Hold: the call ended (tag)
    deadlines: list[float | None] = field(default_factory=list)  # Deadline: time_remaining seen
    peers: set[str] = field(default_factory=set)  # Hold: the proxy's connections


class ProbeHandler(grpc.GenericRpcHandler):  # type: ignore[misc]
    """Raw-bytes methods under /test.Probe/ (requests and answers are bytes, no schema)."""

    def __init__(self, state: Probes) -> None:
        self.s = state

    def service(self, details: Any) -> Any:
        name = details.method.removeprefix(PROBE) if details.method.startswith(PROBE) else None
        if name is None:
            return None
        s = self.s

        def fail_with_details(request: bytes, context: grpc.ServicerContext) -> bytes:
            context.send_initial_metadata((("probe-header", "h1"), ("probe-header-bin", b"\x00\xff")))
            context.set_trailing_metadata((
                ("probe-trailer", "t1"),
                ("probe-trailer-bin", b"\x01\x02"),
                ("grpc-status-details-bin", status_details_bin("quota exhausted")),
            ))
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "quota exhausted: " + request.decode())

        def deadline(request: bytes, context: grpc.ServicerContext) -> bytes:
            left = context.time_remaining()
            left = None if left is None or left > 1e8 else left
            s.deadlines.append(left)
            return b"none" if left is None else f"{left:.3f}".encode()

        def hold(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
            """Echo each message; record when the call ends (any way)."""
            tag = dict(context.invocation_metadata()).get("probe-tag", "")
            ended = s.ended.setdefault(str(tag), threading.Event())
            context.add_callback(ended.set)
            s.peers.add(context.peer())
            yield from requests

        def sleep(request: bytes, context: grpc.ServicerContext) -> bytes:
            time.sleep(float(request.decode()))
            return b"slept " + request

        def cancel(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
            """Answer the first message, then cancel the call from the server's side."""
            first = next(requests)
            yield first
            time.sleep(0.2)
            context.cancel()

        def produce(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
            """`TAG COUNT SIZE`: COUNT messages of SIZE bytes, counting each one yielded."""
            tag, count, size = request.decode().split()
            s.produced[tag] = 0
            chunk = b"p" * int(size)
            for i in range(int(count)):
                s.produced[tag] = i + 1
                yield i.to_bytes(4, "big") + chunk

        def drain(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
            """Read one message, then no more until `release` is set; answer the count."""
            tag = str(dict(context.invocation_metadata()).get("probe-tag", ""))
            s.drained[tag] = 0
            for _m in requests:
                s.drained[tag] += 1
                if s.drained[tag] == 1:
                    s.release.wait(60)
            return str(s.drained[tag]).encode()

        def compressed(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
            """The request back, 3 times, gzip-compressed by the server."""
            context.set_compression(grpc.Compression.Gzip)
            for _ in range(3):
                yield request

        def quote_token(request: bytes, context: grpc.ServicerContext) -> bytes:
            """A hostile answer: the status message quotes the authorization header."""
            md = dict(context.invocation_metadata())
            context.abort(grpc.StatusCode.PERMISSION_DENIED, f"denied: you sent {md.get('authorization')}")
            return b""

        unary = grpc.unary_unary_rpc_method_handler
        server_stream = grpc.unary_stream_rpc_method_handler
        bidi = grpc.stream_stream_rpc_method_handler
        table = {
            "Details": unary(fail_with_details),
            "Deadline": unary(deadline),
            "Sleep": unary(sleep),
            "QuoteToken": unary(quote_token),
            "Hold": bidi(hold),
            "Cancel": bidi(cancel),
            "Produce": server_stream(produce),
            "Drain": grpc.stream_unary_rpc_method_handler(drain),
            "Compressed": server_stream(compressed),
        }
        return table.get(name)


@dataclass
class Upstream:
    server: grpc.Server
    port: int
    recorder: Recorder
    probes: Probes
    certs: CertFiles
    issuer: Issuer

    @property
    def target(self) -> str:
        return f"localhost:{self.port}"

    def args(self, key: Path | None = None) -> list[str]:
        """The proxy's TARGET and connection options (and --key-file KEY)."""
        out = [self.target, "--cacert", str(self.certs.ca)]
        return [*out, "--key-file", str(key)] if key is not None else out

    def tokens(self, method: str | None = None, header: str = "authorization") -> list[tuple[float, str]]:
        """(time received, token) of every call (of method) the upstream saw."""
        calls = self.recorder.of(method) if method else list(self.recorder.calls)
        return [(c.at, bearer(c.value(header))) for c in calls]

    def verify_tokens(self, method: str | None = None, header: str = "authorization") -> set[str]:
        """Every token the upstream received: signed by the issuer for AUD (google-auth's
        verifier) and unexpired when it arrived. The distinct tokens."""
        received = self.tokens(method, header)
        assert received, "the upstream saw no call"
        claims = {token: verify_later(token, self.issuer) for token in {t for _, t in received}}
        for at, token in received:
            assert claims[token]["iat"] <= at + 1 and at < claims[token]["exp"], (at, claims[token])
        return set(claims)


def verify_later(token: str, issuer: Issuer) -> Any:
    """google-auth's verdict on a token that may have expired since it was used."""
    from cloudrun_grpc_cli.core.auth.jwt import decode_jwt

    exp = int(decode_jwt(token).claims["exp"])
    skew = max(0, int(time.time()) - exp + 2)
    return google_verified(token, audience=AUD, certs_url=issuer.certs_url, clock_skew=skew)


@contextmanager
def upstream(issuer: Issuer, certs: CertFiles, *, workers: int = 64) -> Iterator[Upstream]:
    """The TLS Echo service behind its token check (no clock skew), with the probes."""
    from grpc_reflection.v1alpha import reflection as refl

    recorder, probes = Recorder(), Probes()
    check = TokenCheck(AUD, certs=issuer.certs_url, clock_skew=0)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers),
        interceptors=[recorder, check],
        options=[
            ("grpc.max_concurrent_streams", STREAMS_PER_CONNECTION),
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", -1),
            # No BDP probing: it grows the server's receive window with the machine's
            # load, and the flow-control tests measure the proxy's, not the server's.
            ("grpc.http2.bdp_probe", 0),
        ],
    )
    echo_pb2_grpc.add_EchoServerServicer_to_server(EchoServicer(), server)
    refl.enable_server_reflection((ECHO_SERVICE, refl.SERVICE_NAME), server)
    server.add_generic_rpc_handlers((ProbeHandler(probes),))
    creds = grpc.ssl_server_credentials([(certs.key.read_bytes(), certs.cert.read_bytes())])
    port = server.add_secure_port("127.0.0.1:0", creds)
    server.start()
    try:
        yield Upstream(server, port, recorder, probes, certs, issuer)
    finally:
        probes.release.set()
        server.stop(0).wait()


class ProxyProcess:
    """`crgrpc proxy ARGS` as a process; stderr lines are collected as they come."""

    def __init__(self, *args: str, home: Path, env: dict[str, str] | None = None) -> None:
        self.argv = ["proxy", *args]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cloudrun_grpc_cli", *self.argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**isolated(home), **(env or {})},
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, args=(self.proc.stderr,), daemon=True)
        self._reader.start()
        self.first_line = self.proc.stdout.readline()
        self.address = self.first_line.removeprefix("listening on ").strip()

    def _read(self, stream: Any) -> None:
        for line in stream:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def stderr(self) -> str:
        with self._lock:
            return "".join(line + "\n" for line in self.lines)

    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            lines = list(self.lines)
        return [json.loads(line) for line in lines if line.startswith("{")]

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.records() if r["event"] == kind]

    def calls(self, method: str | None = None) -> list[dict[str, Any]]:
        return [c for c in self.events("call") if method is None or c["method"] == method]

    def wait_for(self, what: Callable[[], Any], timeout: float = 15.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = what()
            if got:
                return got
            time.sleep(0.02)
        raise AssertionError(f"timed out; stderr so far:\n{self.stderr[-3000:]}")

    def proc_status(self, field_name: str) -> int:
        """A number from /proc/PID/status: Threads, VmRSS, VmHWM (kB)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
        raise KeyError(field_name)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> ProxyProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def isolated(home: Path) -> dict[str, str]:
    """This process's environment, cut off from the user's files and Google (as
    tests/conftest.py does for in-process tests; module fixtures start before it)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{s.getsockname()[1]}"
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith("CRGRPC_") and k not in ("GOOGLE_APPLICATION_CREDENTIALS", "NO_COLOR")
    }
    env.update(
        HOME=str(home), XDG_CACHE_HOME=str(home / "cache"), XDG_CONFIG_HOME=str(home / "config"),
        CLOUDSDK_CONFIG=str(home / "gcloud"), GCE_METADATA_HOST=closed, GCE_METADATA_IP=closed,
    )
    return env


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- module fixtures of the proxy tests (import the *_fixture names to use them) ---------


@pytest.fixture(name="certs", scope="module")
def proxy_certs_fixture(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    """TLS files for the module's upstream, made at test time."""
    from .tls import make_certs

    return make_certs(tmp_path_factory.mktemp("proxy-tls"))


@pytest.fixture(name="issuer", scope="module")
def proxy_issuer_fixture() -> Iterator[Issuer]:
    """One local token issuer for the module."""
    with Issuer() as server:
        yield server


@pytest.fixture(name="up", scope="module")
def proxy_upstream_fixture(issuer: Issuer, certs: CertFiles) -> Iterator[Upstream]:
    """The TLS Echo service with its token check, for the module."""
    with upstream(issuer, certs) as server:
        yield server
