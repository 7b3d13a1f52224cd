"""The events of one call, in order: Started, Headers, Message*, Trailers, Status.

Renderers consume these; core.calls produces them. Metadata is kept as gRPC
gives it (a sequence of key/value pairs, `-bin` values as bytes).
"""

import base64
from collections.abc import Sequence
from typing import Any, NamedTuple, Union

from google.protobuf.message import Message as ProtoMessage

Metadata = Sequence[tuple[str, "str | bytes"]]


class Started(NamedTuple):
    """The call is about to be sent: what it is and exactly what it carries."""

    method: str  # pkg.Service/Method
    kind: str  # unary | server | client | bidi
    target: str  # the address dialed
    request_metadata: Metadata  # as sent (renderers redact the secret headers)
    token: Any = None  # the IdToken sent, or None


class Headers(NamedTuple):
    metadata: Metadata


class Message(NamedTuple):
    message: ProtoMessage
    number: int  # 1-based count of messages received so far


class Trailers(NamedTuple):
    metadata: Metadata


class Status(NamedTuple):
    code: int
    name: str
    message: str
    details: tuple[dict[str, Any], ...] | list[dict[str, Any]] = ()
    elapsed_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.code == 0


Event = Union[Started, Headers, Message, Trailers, Status]  # noqa: UP007  (a runtime alias on 3.10)


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
