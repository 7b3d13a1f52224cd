"""Machine output for calls: json (JSON Lines), full (one document), events.

Never imports rich. Each message is written and flushed as it arrives.
"""

from __future__ import annotations

import os
import stat
import time
from typing import IO, Any

from ..core.codec import dumps, to_json
from ..core.events import Event, Headers, Message, Status, Trailers, metadata_to_json
from .callinfo import CallInfo, redact_metadata


def _is_regular_file(out: IO[str]) -> bool:
    try:
        return stat.S_ISREG(os.fstat(out.fileno()).st_mode)
    except (AttributeError, OSError, ValueError):
        return False


class JsonSink:
    """One compact JSON object per response message."""

    def __init__(self, out: IO[str], *, emit_defaults: bool, proto_names: bool) -> None:
        self.out = out
        self.emit_defaults = emit_defaults
        self.proto_names = proto_names
        # Each message is flushed as it arrives to a pipe or terminal (a reader may be
        # waiting for it); a regular file is written in blocks and flushed at the end.
        self.flush_each = not _is_regular_file(out)

    def start(self, info: CallInfo) -> None:
        pass

    def fail(self, code: int, name: str, message: str) -> None:
        pass

    def event(self, ev: Event) -> None:
        if isinstance(ev, Message):
            obj = to_json(ev.message, emit_defaults=self.emit_defaults, proto_names=self.proto_names)
            self.out.write(dumps(obj) + "\n")
            if self.flush_each:
                self.out.flush()

    def finish(self) -> None:
        self.out.flush()


def status_json(ev: Status) -> dict[str, Any]:
    return {"code": ev.code, "name": ev.name, "message": ev.message, "details": ev.details}


class EventsSink(JsonSink):
    """JSON Lines as things happen: headers, message*, trailers, status."""

    def event(self, ev: Event) -> None:
        obj: dict[str, Any]
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
        self.out.write(dumps(obj) + "\n")
        if self.flush_each:
            self.out.flush()


class FullSink(JsonSink):
    """One JSON document for the whole call, written at the end (failures too)."""

    def __init__(self, out: IO[str], *, emit_defaults: bool, proto_names: bool) -> None:
        super().__init__(out, emit_defaults=emit_defaults, proto_names=proto_names)
        self.doc: dict[str, Any] = {}
        self._start = time.monotonic()

    def start(self, info: CallInfo) -> None:
        self._start = time.monotonic()
        self.doc = {
            "method": info.method,
            "request_metadata": redact_metadata(info.request_metadata),
            "token": info.token_claims,
            "headers": {},
            "messages": [],
            "trailers": {},
            "status": None,
            "elapsed_ms": 0,
        }

    def event(self, ev: Event) -> None:
        if isinstance(ev, Headers):
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

    def fail(self, code: int, name: str, message: str) -> None:
        """Record a failure that ended the call without a server status."""
        if self.doc.get("status") is None:
            self.doc["status"] = {"code": code, "name": name, "message": message, "details": []}

    def finish(self) -> None:
        if not self.doc:
            return
        if not self.doc.get("elapsed_ms"):
            self.doc["elapsed_ms"] = round((time.monotonic() - self._start) * 1000, 1)
        self.out.write(dumps(self.doc) + "\n")
        self.out.flush()
