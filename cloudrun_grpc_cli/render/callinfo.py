"""What a renderer knows about a call besides its events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.events import Metadata, metadata_to_json

REDACTED_HEADERS = ("authorization", "x-serverless-authorization", "cookie", "proxy-authorization")


@dataclass
class CallInfo:
    method: str  # pkg.Service/Method
    kind: str
    target: str
    request_metadata: Metadata = ()
    token_claims: dict[str, Any] | None = None
    token_source: str | None = None
    token_value: str | None = None  # only with --show-token
    notices: list[str] = field(default_factory=list)


def redact_metadata(md: Metadata) -> dict[str, Any]:
    out = metadata_to_json(md)
    for key in list(out):
        if key in REDACTED_HEADERS:
            value = out[key]
            values = value if isinstance(value, list) else [value]
            red = [_redact_value(v) for v in values]
            out[key] = red if isinstance(value, list) else red[0]
    return out


def _redact_value(value: str) -> str:
    scheme, _, rest = value.partition(" ")
    if rest:
        return f"{scheme} <redacted>"
    return "<redacted>"
