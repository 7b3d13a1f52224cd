"""Machine output for calls: json (JSON Lines), full (one document), events.

Never imports rich. Each message is written as it arrives: flushed at once to
a pipe or terminal (a reader may be waiting for it); to a regular file in
blocks, and at the latest FLUSH_AFTER seconds after it was written, so that
`tail -f` sees a slow stream as it goes while a fast one costs no write per
message. With --each, `index` marks what belongs to which call.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from typing import IO, TYPE_CHECKING, Any

from ..core.codec import JsonWriter, dumps, to_json
from ..core.events import Event, Headers, Message, Started, Status, Trailers, metadata_to_json
from .redact import redact_metadata

if TYPE_CHECKING:
    from .sinks import Failure, SinkOptions


def _is_regular_file(out: IO[str]) -> bool:
    try:
        return stat.S_ISREG(os.fstat(out.fileno()).st_mode)
    except (AttributeError, OSError, ValueError):
        return False


FLUSH_AFTER = 0.1  # seconds a line may wait in the buffer of a regular file


class _Flusher:
    """Flushes a regular file's buffer FLUSH_AFTER seconds after the first line
    that waits in it (a daemon thread, started on the first write). Writers
    hold `lock` while they write; so does the flush."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.lock = threading.Lock()
        self._dirty = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def wrote(self) -> None:
        """Called (with the lock held) after each write."""
        if not self._dirty.is_set():
            self._dirty.set()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="crgrpc-flush", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while not self._stopped:
            self._dirty.wait()
            if self._stopped:
                return
            time.sleep(FLUSH_AFTER)
            with self.lock:
                self._dirty.clear()
                try:
                    self.out.flush()
                except (OSError, ValueError):
                    return

    def stop(self) -> None:
        self._stopped = True
        self._dirty.set()


class JsonSink:
    """One compact JSON object per response message; with --each, a failed call
    is a line {"error": {"code", "name", "message"}, "index": i}."""

    index: int | None = None  # --each: the call being written (0-based input position)

    def __init__(self, out: IO[str], options: SinkOptions, err: IO[str] | None = None) -> None:
        self.out = out
        self.err = err
        self.verbose = options.verbose
        self.emit_defaults = options.emit_defaults
        self.proto_names = options.proto_names
        self._json = None if options.emit_defaults else JsonWriter(proto_names=options.proto_names)
        # Each message is flushed as it arrives to a pipe or terminal (a reader may be
        # waiting for it); a regular file is written in blocks, flushed by _Flusher.
        self.flush_each = not _is_regular_file(out)
        self._flusher = None if self.flush_each else _Flusher(out)

    def begin(self, index: int | None) -> None:
        """--each: what follows belongs to the call of request `index`."""
        self.index = index

    def end(self) -> None:
        """--each: the call is written whole (what follows is the run's, not a call's)."""
        self.index = None

    def _line(self, text: str) -> None:
        """Write text and a newline (two writes: a 16 MiB line is not copied to add
        one), then flush as the output wants."""
        flusher = self._flusher
        if flusher is None:
            self.out.write(text)
            self.out.write("\n")
            self.out.flush()
            return
        with flusher.lock:
            self.out.write(text)
            self.out.write("\n")
            flusher.wrote()

    def _to_json(self, msg: Any) -> dict[str, Any]:
        if self._json is not None:
            return self._json.to_json(msg)
        return to_json(msg, emit_defaults=self.emit_defaults, proto_names=self.proto_names)

    def fail(self, failure: Failure) -> None:
        if self.index is not None and failure.status is not None:
            st = failure.status
            error = {"code": st["code"], "name": st["name"], "message": st["message"]}
            self._line(dumps({"error": error, "index": self.index}))
        # otherwise messages only: the error line is on stderr

    def event(self, ev: Event) -> None:
        if isinstance(ev, Message):
            self._line(dumps(self._to_json(ev.message)))
        elif isinstance(ev, Started) and self.verbose and self.err is not None:
            # -v: what is sent, on stderr
            request: dict[str, Any] = {"request": request_json(ev)}
            if self.index is not None:
                request["index"] = self.index
            self.err.write(dumps(request) + "\n")
            self.err.flush()

    def finish(self) -> None:
        if self._flusher is not None:
            with self._flusher.lock:
                self._flusher.stop()
                self.out.flush()
        else:
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

    def begin(self, index: int | None) -> None:
        self.index = index
        self._status_written = False

    def _write(self, obj: dict[str, Any]) -> None:
        if self.index is not None:
            obj["index"] = self.index
        self._line(dumps(obj))

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
            obj = {"event": "message", "message": self._to_json(ev.message)}
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
        self._method = method
        self.begin(None)

    def begin(self, index: int | None) -> None:
        """A fresh document (--each: one per call, with the `index` of its request)."""
        self.index = index
        self._start = time.monotonic()
        self.doc: dict[str, Any] = {
            "method": self._method,
            "request_metadata": {},
            "token": None,
            "headers": {},
            "messages": [],
            "trailers": {},
            "status": None,
            "elapsed_ms": 0,
            "error": None,
        }
        if index is not None:
            self.doc["index"] = index
        self._written = False

    def event(self, ev: Event) -> None:
        if isinstance(ev, Started):
            self._start = time.monotonic()
            self.doc["method"] = ev.method
            self.doc["request_metadata"] = redact_metadata(ev.request_metadata)
            self.doc["token"] = dict(ev.token.claims) if ev.token is not None else None
        elif isinstance(ev, Headers):
            self.doc["headers"] = metadata_to_json(ev.metadata)
        elif isinstance(ev, Message):
            self.doc["messages"].append(self._to_json(ev.message))
        elif isinstance(ev, Trailers):
            self.doc["trailers"] = metadata_to_json(ev.metadata)
        else:
            self.doc["status"] = status_json(ev)
            self.doc["elapsed_ms"] = round(ev.elapsed_ms, 1)

    def fail(self, failure: Failure) -> None:
        """Record a failure: its error, and its status when no server status came."""
        if self._written:  # --each: a failure of the run after its calls' documents
            self.begin(None)
        self.doc["error"] = failure.error_json()
        if self.doc["status"] is None and failure.status is not None:
            self.doc["status"] = failure.status
        if not self.doc["request_metadata"] and failure.request_metadata:
            self.doc["request_metadata"] = redact_metadata(failure.request_metadata)
        if self.doc["token"] is None and failure.token is not None:
            self.doc["token"] = dict(failure.token.claims)

    def end(self) -> None:
        """Write the document."""
        if not self.doc["elapsed_ms"]:
            self.doc["elapsed_ms"] = round((time.monotonic() - self._start) * 1000, 1)
        self._line(dumps(self.doc))
        self._written = True
        self.index = None

    def finish(self) -> None:
        if not self._written:
            self.end()
        super().finish()
