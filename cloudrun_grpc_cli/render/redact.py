"""Request metadata as shown: the secret headers (core.secrets) redacted."""

from __future__ import annotations

from typing import Any

from ..core.events import Metadata, metadata_to_json
from ..core.secrets import is_secret_header, redact_header_value


def redact_metadata(md: Metadata) -> dict[str, Any]:
    out = metadata_to_json(md)
    for key in list(out):
        if is_secret_header(key):
            value = out[key]
            values = value if isinstance(value, list) else [value]
            red = [redact_header_value(v) for v in values]
            out[key] = red if isinstance(value, list) else red[0]
    return out
