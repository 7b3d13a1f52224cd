"""Text from a server, made safe for a terminal without changing what it says.

Status messages, header and trailer values, error details and descriptor
names come from the server. Printed raw, a `\\n` could forge a second
`error:` line and an ESC or BEL could drive the terminal. `visible()`
escapes every control character visibly (`\\n`, `\\x1b`, `\\u009b`); JSON
shown on a terminal escapes the same characters the JSON way, so that what
is copied back into `-d` is the exact string. Machine output (-o json, full,
events) keeps the exact strings and is not passed through here.
"""

from __future__ import annotations

import json
import re
from typing import Any

# C0 controls, DEL, C1 controls, and the Unicode line and paragraph separators.
# Patterns, not compiled regexes: a class reaching past U+00FF compiles to a
# 64K-entry map, too dear for a module every start loads; re's cache compiles
# each once, on its first use.
_CONTROL = "[\x00-\x1f\x7f-\x9f\u2028\u2029]"
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# json.dumps escapes C0 already; these it leaves raw.
_JSON_RAW = "[\x7f-\x9f\u2028\u2029]"


def _escape(m: re.Match[str]) -> str:
    c = m.group()
    if c in _NAMED:
        return _NAMED[c]
    code = ord(c)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def visible(text: str) -> str:
    """text with every control character escaped visibly (one line, no terminal codes)."""
    return re.sub(_CONTROL, _escape, text)


def visible_lines(text: str) -> str:
    """Multi-line text (proto source) with control characters escaped inside each line."""
    return "\n".join(visible(line) for line in text.split("\n"))


def json_dumps(obj: Any, *, indent: int | None = 2) -> str:
    """JSON as json.dumps writes it (non-ASCII kept), with DEL, C1 and U+2028/9 escaped."""
    text = json.dumps(obj, indent=indent, ensure_ascii=False)
    return re.sub(_JSON_RAW, lambda m: f"\\u{ord(m.group()):04x}", text)
