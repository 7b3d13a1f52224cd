"""Which values are secret, and the registry of the ones this process sent.

One home for the rules: the headers that carry credentials (redacted in -v,
-o full, -o events and every log), how a `Bearer ` prefix is stripped, and
the registry that scrubs any credential a server quotes back (in a status
message, a header or an error) before crgrpc prints it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

# Request headers whose values are credentials: never printed in full.
SECRET_HEADERS = frozenset(
    {"authorization", "x-serverless-authorization", "proxy-authorization", "cookie"}
)
REDACTED = "<redacted>"
_MIN_SECRET = 12  # shorter values are not worth scrubbing (and would scrub noise)


def is_secret_header(name: str) -> bool:
    return name.strip().lower() in SECRET_HEADERS


def strip_bearer(value: str) -> str:
    """The credential of an `authorization`-style value: `Bearer abc` → `abc`."""
    text = value.strip()
    scheme, sep, rest = text.partition(" ")
    return rest.strip() if sep and scheme.lower() == "bearer" else text


def bearer(token: str) -> str:
    return f"Bearer {token}"


def redact_header_value(value: str) -> str:
    """`Bearer <redacted>` (the scheme kept, the credential gone) or `<redacted>`."""
    scheme, sep, rest = value.strip().partition(" ")
    return f"{scheme} {REDACTED}" if sep and rest else REDACTED


class Secrets:
    """Credentials sent by this process; scrub() takes them out of any text."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def add(self, value: str) -> None:
        value = value.strip()
        if len(value) >= _MIN_SECRET:
            with self._lock:
                self._values.add(value)

    def remember(self, metadata: Iterable[tuple[str, str | bytes]]) -> None:
        """Note the credentials in metadata about to be sent."""
        for name, value in metadata:
            if is_secret_header(name) and isinstance(value, str):
                self.add(strip_bearer(value))

    def scrub(self, text: str) -> str:
        """text without any credential this process sent."""
        for secret in tuple(self._values):
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


# The registry of this process: every session records into it, and every text
# from a server or a token endpoint passes through it before it is shown.
SECRETS = Secrets()


def scrub(text: str) -> str:
    return SECRETS.scrub(text)
