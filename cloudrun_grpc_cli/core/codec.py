"""JSON ⇄ protobuf messages, and reading a stream of JSON messages.

DATA is zero or more JSON objects, concatenated or one per line. The reader
finds each object's end by scanning (strings and escapes aware), so a stream
on stdin yields each message as soon as its closing brace is read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from ..errors import RequestDataError

_WS = " \t\r\n"


_DECODER = json.JSONDecoder()


class JsonStreamReader:
    """Incrementally splits text into top-level JSON objects."""

    def __init__(self) -> None:
        self._buf = ""
        self._lines = 0  # newlines consumed before _buf
        self._col = 0  # characters consumed since the last newline
        self.count = 0

    def _position(self, offset: int) -> str:
        head = self._buf[:offset]
        nl = head.count("\n")
        col = offset - (head.rfind("\n") + 1) if nl else self._col + offset
        return f"line {self._lines + nl + 1} column {col + 1}"

    def feed(self, chunk: str) -> Iterator[dict[str, Any]]:
        self._buf += chunk
        while True:
            obj = self._next()
            if obj is None:
                return
            yield obj

    def close(self) -> None:
        rest = self._buf.strip(_WS)
        if rest:
            offset = len(self._buf) - len(self._buf.lstrip(_WS))
            raise RequestDataError(
                f"request data: message {self.count + 1} is incomplete at {self._position(offset)}",
                "each message is one complete JSON object",
            )

    def _consume(self, upto: int) -> None:
        eaten = self._buf[:upto]
        nl = eaten.count("\n")
        if nl:
            self._lines += nl
            self._col = upto - (eaten.rfind("\n") + 1)
        else:
            self._col += upto
        self._buf = self._buf[upto:]

    def _next(self) -> dict[str, Any] | None:
        buf = self._buf
        n = len(buf)
        i = 0
        while i < n and buf[i] in _WS:
            i += 1
        if i == n:
            return None
        if buf[i] != "{":
            raise RequestDataError(
                f"request data: expected a JSON object at {self._position(i)}, "
                f"found {buf[i : i + 12]!r}",
                "DATA is JSON objects, concatenated or one per line: -d '{\"name\": \"x\"}'",
            )
        try:
            obj, end = _DECODER.raw_decode(buf, i)
        except json.JSONDecodeError as e:
            if not _is_complete(buf, i):
                return None  # wait for more input
            raise RequestDataError(
                f"request data: invalid JSON in message {self.count + 1} at "
                f"{self._position(e.pos)}: {e.msg}",
            ) from None
        except RecursionError:
            raise RequestDataError(
                f"request data: message {self.count + 1} is nested too deeply"
            ) from None
        self._consume(end)
        self.count += 1
        return obj  # type: ignore[no-any-return]


def _is_complete(buf: str, start: int) -> bool:
    """Whether the value opened at buf[start] closes within buf (strings aware)."""
    depth = 0
    in_str = esc = False
    for c in buf[start:]:
        if in_str:
            if esc:
                esc = False
            elif c == "\\":
                esc = True
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
            if depth <= 0:
                return True
    return False


def parse_messages(text: str) -> list[dict[str, Any]]:
    """All messages in TEXT (validated JSON syntax), or RequestDataError."""
    reader = JsonStreamReader()
    out = list(reader.feed(text))
    reader.close()
    return out


def iter_messages(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Messages from a stream of text as each completes (for interactive @-)."""
    reader = JsonStreamReader()
    for chunk in lines:
        yield from reader.feed(chunk)
    reader.close()


def to_message(
    obj: dict[str, Any], cls: type[Message], *, index: int = 1, allow_unknown: bool = False
) -> Message:
    """A JSON object as a message of cls; errors name the message and field."""
    msg = cls()
    try:
        json_format.ParseDict(obj, msg, ignore_unknown_fields=allow_unknown)
    except json_format.ParseError as e:
        hint = ""
        text = str(e)
        if "has no field named" in text:
            fields = ", ".join(f.json_name for f in msg.DESCRIPTOR.fields)
            hint = f"fields of {msg.DESCRIPTOR.full_name}: {fields or '(none)'}"
            if not allow_unknown:
                hint += "; --allow-unknown-fields skips unknown ones"
        raise RequestDataError(f"request data: message {index}: {text}", hint) from None
    except (ValueError, TypeError, OverflowError, RecursionError) as e:
        raise RequestDataError(f"request data: message {index}: {e}") from None
    return msg


def to_json(msg: Message, *, emit_defaults: bool = False, proto_names: bool = False) -> dict[str, Any]:
    return json_format.MessageToDict(
        msg,
        always_print_fields_with_no_presence=emit_defaults,
        preserving_proto_field_name=proto_names,
    )


def dumps(obj: Any) -> str:
    """Compact JSON, one line."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
