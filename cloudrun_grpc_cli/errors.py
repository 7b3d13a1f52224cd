"""Error classes (a message plus hints) and the exit codes of the contract.

Every failure crgrpc reports is a CrgrpcError subclass; its class names the
exit code. Only cli.main turns them into exit codes and stderr lines. This
module must stay import-light: it is loaded on every start.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    INTERNAL = 1
    USAGE = 2
    CREDENTIALS = 3
    CONNECTION = 4
    SCHEMA = 5
    REQUEST_DATA = 6
    GRPC_BASE = 64  # + the gRPC status code
    DEADLINE = 68  # 64 + DEADLINE_EXCEEDED
    TOO_LARGE = 72  # 64 + RESOURCE_EXHAUSTED
    INTERRUPTED = 130
    PIPE_CLOSED = 141


def one_line(text: str, limit: int = 300) -> str:
    """text on one line (white space runs folded to one space), at most limit characters."""
    folded = " ".join(text.split())
    return folded if len(folded) <= limit else folded[: limit - 1] + "…"


class CrgrpcError(Exception):
    """A failure with a one-line message and optional hint lines."""

    exit_code: int = ExitCode.INTERNAL

    def __init__(self, message: str, *hints: str) -> None:
        super().__init__(message)
        self.message = message
        self.hints: tuple[str, ...] = tuple(h for h in hints if h)

    def __str__(self) -> str:
        return self.message

    # The session the failure happened in (what was sent), attached by
    # core.session; core.hints reads it. None for failures before any session.
    session: object | None = None
    explained: bool = False  # core.hints.explain ran

    def with_hints(self, *hints: str) -> CrgrpcError:
        new = tuple(h for h in hints if h and h not in self.hints)
        self.hints = self.hints + new
        return self


class UsageError(CrgrpcError):
    exit_code = ExitCode.USAGE


class CredentialsError(CrgrpcError):
    exit_code = ExitCode.CREDENTIALS


class ConnectError(CrgrpcError):
    """No HTTP/2 answer at all: refused, DNS, TLS, connect timeout."""

    exit_code = ExitCode.CONNECTION

    def __init__(self, message: str, *hints: str, reason: str = "", details: str = "") -> None:
        super().__init__(message, *hints)
        self.reason = reason  # the short classification ("connection refused")
        self.details = details  # gRPC's own words, scrubbed


class SchemaError(CrgrpcError):
    exit_code = ExitCode.SCHEMA


class RequestDataError(CrgrpcError):
    exit_code = ExitCode.REQUEST_DATA
    cancelled = False  # True when a bad message cancelled a call already made


class RpcStatusError(CrgrpcError):
    """The server (or a front end) answered with a non-OK gRPC status."""

    def __init__(
        self, code: int, name: str, details: str, *hints: str, phase: str = "call"
    ) -> None:
        text = f"{name}: {details}" if details else name
        super().__init__(text, *hints)
        self.code = code
        self.name = name
        self.details = details
        self.phase = phase  # "call", or "reflection" for the schema's requests
        self.status_details: list[dict[str, object]] = []  # google.rpc.Status details, as JSON

    @property
    def exit_code(self) -> int:  # type: ignore[override]
        return ExitCode.GRPC_BASE + self.code
