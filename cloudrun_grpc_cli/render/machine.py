"""Machine output for calls: json (JSON Lines), full (one document), events.

Never imports rich. Each message is written and flushed as it arrives.
"""

from __future__ import annotations

import os
import stat
import time
from typing import IO, TYPE_CHECKING, Any

from ..core.codec import dumps, to_json
from ..core.events import Event, Headers, Message, Started, Status, Trailers, metadata_to_json
from .redact import redact_metadata

if TYPE_CHECKING:
    from .sinks import Failure, SinkOptions


def _is_regular_file(out: IO[str]) -> bool:
    try:
        return stat.S_ISREG(os.fstat(out.fileno()).st_mode)
    except (AttributeError, OSError, ValueError):
        return False


class JsonSink:
    """One compact JSON object per response message."""

    def __init__(self, out: IO[str], options: SinkOptions, err: IO[str] | None = None) -> None:
        self.out = out
        self.err = err
        self.verbose = options.verbose
        self.emit_defaults = options.emit_defaults
        self.proto_names = options.proto_names
        # Each message is flushed as it arrives to a pipe or terminal (a reader may be
        # waiting for it); a regular file is written in blocks and flushed at the end.
        self.flush_each = not _is_regular_file(out)

    def fail(self, failure: Failure) -> None:
        pass  # messages only: the error line is on stderr

    def event(self, ev: Event) -> None:
        if isinstance(ev, Started):
            if self.verbose and self.err is not None:  # -v: what is sent, on stderr
                self.err.write(dumps({"request": request_json(ev)}) + "\n")
                self.err.flush()
        elif isinstance(ev, Message):
            obj = to_json(ev.message, emit_defaults=self.emit_defaults, proto_names=self.proto_names)
            self.out.write(dumps(obj) + "\n")
            if self.flush_each:
                self.out.flush()

    def finish(self) -> None:
        self.out.flush()


def request_json(ev: Started) -> dict[str, Any]:
    """What a call sends: method, metadata (secret headers redacted), token claims."""
    return {
        "method": ev.method,
        "metadata": redact_metadata(ev.request_metadata),
        "token": dict(ev.token.claims) if ev.token is not None else None,
    }


def status_json(ev: Status) -> dict[str, Any]:
    return {"code": ev.code, "name": ev.name, "message": ev.message, "details": ev.details}


class EventsSink(JsonSink):
    """JSON Lines as things happen: headers, message*, trailers, status; a failure
    adds an `error` line (then its status, when no status was written yet)."""

    _status_written = False

    def _write(self, obj: dict[str, Any]) -> None:
        self.out.write(dumps(obj) + "\n")
        if self.flush_each:
            self.out.flush()

    def fail(self, failure: Failure) -> None:
        self._write({"event": "error", **failure.error_json()})
        if not self._status_written and failure.status is not None:
            self._write({"event": "status", **failure.status})
            self._status_written = True

    def event(self, ev: Event) -> None:
        obj: dict[str, Any]
        if isinstance(ev, Started):
            if self.verbose:
                self._write({"event": "request", **request_json(ev)})
            return
        if isinstance(ev, Headers):
            obj = {"event": "headers", "metadata": metadata_to_json(ev.metadata)}
        elif isinstance(ev, Message):
            obj = {
                "event": "message",
                "message": to_json(
                    ev.message, emit_defaults=self.emit_defaults, proto_names=self.proto_names
                ),
            }
        elif isinstance(ev, Trailers):
            obj = {"event": "trailers", "metadata": metadata_to_json(ev.metadata)}
        else:
            obj = {"event": "status", **status_json(ev)}
            self._status_written = True
        self._write(obj)


class FullSink(JsonSink):
    """One JSON document for the whole command, written at the end. The same
    keys for success and for every failure: `error` is null on success."""

    def __init__(self, out: IO[str], options: SinkOptions, *, method: str = "") -> None:
        super().__init__(out, options, None)
        self._start = time.monotonic()
        self.doc: dict[str, Any] = {
            "method": method,
            "request_metadata": {},
            "token": None,
            "headers": {},
            "messages": [],
            "trailers": {},
            "status": None,
            "elapsed_ms": 0,
            "error": None,
        }

    def event(self, ev: Event) -> None:
        if isinstance(ev, Started):
            self._start = time.monotonic()
            self.doc["method"] = ev.method
            self.doc["request_metadata"] = redact_metadata(ev.request_metadata)
            self.doc["token"] = dict(ev.token.claims) if ev.token is not None else None
        elif isinstance(ev, Headers):
            self.doc["headers"] = metadata_to_json(ev.metadata)
        elif isinstance(ev, Message):
            self.doc["messages"].append(
                to_json(ev.message, emit_defaults=self.emit_defaults, proto_names=self.proto_names)
            )
        elif isinstance(ev, Trailers):
            self.doc["trailers"] = metadata_to_json(ev.metadata)
        else:
            self.doc["status"] = status_json(ev)
            self.doc["elapsed_ms"] = round(ev.elapsed_ms, 1)

    def fail(self, failure: Failure) -> None:
        """Record a failure: its error, and its status when no server status came."""
        self.doc["error"] = failure.error_json()
        if self.doc["status"] is None and failure.status is not None:
            self.doc["status"] = failure.status
        if not self.doc["request_metadata"] and failure.request_metadata:
            self.doc["request_metadata"] = redact_metadata(failure.request_metadata)
        if self.doc["token"] is None and failure.token is not None:
            self.doc["token"] = dict(failure.token.claims)

    def finish(self) -> None:
        if not self.doc["elapsed_ms"]:
            self.doc["elapsed_ms"] = round((time.monotonic() - self._start) * 1000, 1)
        self.out.write(dumps(self.doc) + "\n")
        self.out.flush()
