"""The events of one call, in order: Headers, Message*, Trailers, Status.

Renderers consume these; invoke produces them. Metadata is kept as gRPC
gives it (a sequence of key/value pairs, `-bin` values as bytes).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Union

from google.protobuf.message import Message as ProtoMessage

Metadata = Sequence[tuple[str, "str | bytes"]]


@dataclass(frozen=True)
class Headers:
    metadata: Metadata


@dataclass(frozen=True)
class Message:
    message: ProtoMessage
    index: int  # 1-based count of messages received so far


@dataclass(frozen=True)
class Trailers:
    metadata: Metadata


@dataclass(frozen=True)
class Status:
    code: int
    name: str
    message: str
    details: list[dict[str, Any]] = field(default_factory=list)
    elapsed_ms: float = 0.0
    local: bool = False  # decided by this client (deadline, cancel), not sent by a server

    @property
    def ok(self) -> bool:
        return self.code == 0


Event = Union[Headers, Message, Trailers, Status]  # noqa: UP007  (a runtime alias on 3.10)


def metadata_to_json(md: Metadata | None) -> dict[str, Any]:
    """Values as strings (a list where a key repeats); `-bin` values base64."""
    out: dict[str, Any] = {}
    for key, value in md or ():
        text = base64.b64encode(value).decode() if isinstance(value, bytes) else value
        if key in out:
            prev = out[key]
            out[key] = [*prev, text] if isinstance(prev, list) else [prev, text]
        else:
            out[key] = text
    return out
