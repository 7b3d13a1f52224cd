"""DATA (-d): JSON text, @file or @-.

Text is parsed and syntax-checked before dialing. `@FILE` is opened before
dialing (a missing or unreadable file is exit 6 then) and read as the call
goes, like `@-`: a client or bidi stream sends each message as it is read,
so memory stays flat however large the file, and a FIFO works. A regular
file can be read again from its start, so --retries may send it again; a
FIFO or standard input cannot.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO, NamedTuple

from ..core.codec import CHUNK, decode_chunks, iter_messages, parse_messages
from ..errors import RequestDataError

STDIN_NOT_UTF8 = ("request data: standard input is not UTF-8 text", "DATA is JSON text")


class RequestData(NamedTuple):
    """Messages known up front, or read as the call goes (a file or standard input)."""

    messages: list[dict[str, Any]] | None  # None: read from `stream` or `file`
    stream: IO[str] | None = None
    file: FileMessages | None = None

    def source(self) -> Iterable[dict[str, Any]]:
        """What run_call takes: a list (known whole), a FileMessages (read as sent,
        again from the start on a retry) or a one-pass iterator (stdin, a FIFO)."""
        if self.messages is not None:
            return self.messages
        if self.file is not None:
            return self.file if self.file.rereadable else iter(self.file)
        return self.iterate()

    def iterate(self) -> Iterator[dict[str, Any]]:
        if self.messages is not None:
            yield from self.messages
            return
        if self.file is not None:
            yield from self.file
            return
        assert self.stream is not None
        yield from iter_messages(stdin_chunks(self.stream))


class FileMessages:
    """The messages of -d @FILE, read from the file as they are consumed.

    Iterating again starts over from the beginning (a regular file only)."""

    def __init__(self, path: Path, handle: BinaryIO, rereadable: bool) -> None:
        self.path = path
        self._handle: BinaryIO | None = handle
        self.rereadable = rereadable

    def __iter__(self) -> Iterator[dict[str, Any]]:
        handle, self._handle = self._handle, None
        if handle is None:
            handle = _open(self.path)[0]
        not_utf8 = f"request data: {str(self.path)!r} is not UTF-8 text"
        with handle:
            try:
                yield from iter_messages(decode_chunks(handle.read), not_utf8=not_utf8)
            except OSError as e:
                raise RequestDataError(
                    f"request data: cannot read {str(self.path)!r}: {e.strerror or e}"
                ) from None


def stdin_chunks(stream: IO[str]) -> Iterator[str]:
    """Standard input as text, as it arrives: big chunks from a pipe or file,
    each line at once from a terminal (os.read returns what is there)."""
    try:
        fd = stream.fileno()
        os.fstat(fd)
    except (AttributeError, OSError, ValueError):
        yield from _lines(stream)  # not a real file (tests pass StringIO)
        return
    try:
        yield from decode_chunks(lambda n: os.read(fd, n), CHUNK)
    except OSError as e:
        raise RequestDataError(f"request data: cannot read standard input: {e.strerror or e}") from None


def _lines(stream: IO[str]) -> Iterator[str]:
    """Lines as they are typed (readline, not the iterator's read-ahead)."""
    while True:
        try:
            line = stream.readline()
        except UnicodeDecodeError:
            raise RequestDataError(*STDIN_NOT_UTF8) from None
        if not line:
            return
        yield line


def _open(path: Path) -> tuple[BinaryIO, bool]:
    """The file opened for reading, and whether it can be read again (a regular file)."""
    try:
        handle = open(path, "rb", buffering=0)  # noqa: SIM115  (closed by FileMessages)
    except FileNotFoundError:
        raise RequestDataError(
            f"request data: no such file {str(path)!r}",
            "-d @FILE reads JSON from FILE; -d @- from standard input",
        ) from None
    except OSError as e:
        raise RequestDataError(
            f"request data: cannot read {str(path)!r}: {e.strerror or e}"
        ) from None
    mode = os.fstat(handle.fileno()).st_mode
    return handle, stat.S_ISREG(mode)  # type: ignore[return-value]


def load_data(spec: str | None, stdin: IO[str], *, streaming: bool = True) -> RequestData:
    """-d as RequestData: text parsed now; @FILE opened now and read as sent;
    @- read as sent (`streaming`) or now."""
    if spec is None:
        return RequestData(messages=[])
    if spec == "@-":
        if streaming:
            return RequestData(messages=None, stream=stdin)
        try:
            text = stdin.read()
        except UnicodeDecodeError:
            raise RequestDataError(*STDIN_NOT_UTF8) from None
        return RequestData(messages=parse_messages(text))
    if spec.startswith("@"):
        if spec == "@":
            raise RequestDataError(
                "request data: -d @ needs a file name", "@FILE, or @- for standard input"
            )
        path = Path(spec[1:])
        handle, rereadable = _open(path)
        return RequestData(messages=None, file=FileMessages(path, handle, rereadable))
    return RequestData(messages=parse_messages(spec))
