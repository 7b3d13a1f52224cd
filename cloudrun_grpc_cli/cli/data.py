"""DATA (-d): JSON text, @file or @- — read and syntax-checked before dialing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..core.codec import iter_messages, parse_messages
from ..errors import RequestDataError


@dataclass
class RequestData:
    """Messages known up front, or a stdin stream read as the call goes."""

    messages: list[dict[str, Any]] | None  # None: stream from `stream`
    stream: IO[str] | None = None

    def iterate(self) -> Iterator[dict[str, Any]]:
        if self.messages is not None:
            yield from self.messages
            return
        assert self.stream is not None
        yield from iter_messages(_lines(self.stream))


def _lines(stream: IO[str]) -> Iterator[str]:
    """Lines as they are typed (readline, not the iterator's read-ahead)."""
    while True:
        try:
            line = stream.readline()
        except UnicodeDecodeError:
            raise RequestDataError(
                "request data: standard input is not UTF-8 text", "DATA is JSON text"
            ) from None
        if not line:
            return
        yield line


def load_data(spec: str | None, stdin: IO[str], *, streaming: bool) -> RequestData:
    """Read -d now. `streaming` (client/bidi from @-) defers reading stdin."""
    if spec is None:
        return RequestData(messages=[])
    if spec == "@-":
        if streaming:
            return RequestData(messages=None, stream=stdin)
        try:
            text = stdin.read()
        except UnicodeDecodeError:
            raise RequestDataError(
                "request data: standard input is not UTF-8 text", "DATA is JSON text"
            ) from None
        return RequestData(messages=parse_messages(text))
    if spec.startswith("@"):
        if spec == "@":
            raise RequestDataError(
                "request data: -d @ needs a file name", "@FILE, or @- for standard input"
            )
        path = Path(spec[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise RequestDataError(
                f"request data: no such file {str(path)!r}",
                "-d @FILE reads JSON from FILE; -d @- from standard input",
            ) from None
        except UnicodeDecodeError:
            raise RequestDataError(f"request data: {str(path)!r} is not UTF-8 text") from None
        except OSError as e:
            raise RequestDataError(
                f"request data: cannot read {str(path)!r}: {e.strerror or e}"
            ) from None
        return RequestData(messages=parse_messages(text))
    return RequestData(messages=parse_messages(spec))
