"""The one rule for keeping request secrets out of error messages.

Whatever a token endpoint, IAM Credentials, STS or the metadata server
answers may quote the request back — its form or JSON body, its
Authorization header — and google-auth puts those answers in its
exceptions. Every message crgrpc builds from them, and every traceback
--debug prints, goes through `scrub`:

1. A value under a secret key is cut to its first 8 characters (`jwt.redact`):
   client_secret, refresh_token, assertion, client_assertion, subject_token,
   actor_token, access_token/accessToken, id_token/idToken, token,
   private_key, password, secret, code_verifier, signed_jwt/signedJwt — in a
   form body (`key=value`), JSON (`"key": "value"`, also JSON-escaped inside
   a JSON string), a Python repr (`'key': 'value'`, `b'…'`) or a header line
   (`key: value`); and the credential of an `Authorization: Bearer|Basic …`.
2. Anything token-like, wherever it is, is cut the same way: a JWT
   (`eyJ….….…`), a Google access token (`ya29.…`), refresh token (`1//…`,
   also percent-encoded) or OAuth client secret (`GOCSPX-…`); PEM private-key
   material is dropped after its BEGIN line.
3. Every secret this process sent or received — remembered with `remember` by
   the HTTP transport of minting (request form/JSON fields and credentials of
   the Authorization header, tokens in answers) and by the readers of
   credentials files — is cut wherever it appears, verbatim, percent-encoded
   or JSON-escaped.

A value already cut (followed by `…`) is left as it is, so scrubbing twice
changes nothing. Imports nothing heavy: cli.main scrubs tracebacks with it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import threading
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

from .jwt import redact

SECRET_KEYS = (
    "client_secret",
    "refresh_token",
    "assertion",
    "client_assertion",
    "subject_token",
    "actor_token",
    "access_token",
    "accessToken",
    "id_token",
    "idToken",
    "token",
    "private_key",
    "password",
    "secret",
    "code_verifier",
    "signed_jwt",
    "signedJwt",
)
_MIN_REMEMBERED = 8  # shorter values are too likely to be ordinary words

_KEY = r"(?:client_secret|refresh_token|(?:client_)?assertion|subject_token|actor_token|access_?token|id_?token|token|private_key|password|secret|code_verifier|signed_?jwt)"
# `key: value` only for names that cannot be ordinary words ("an ID token: …" is prose)
_KEY_COLON = r"(?:client_secret|refresh_token|(?:client_)?assertion|subject_token|actor_token|access_?token|id_?token|private_key|password|code_verifier|signed_?jwt)"
_EDGE_L = r"(?<![A-Za-z0-9_])"
_EDGE_R = r"(?![A-Za-z0-9_])"
_PEM = r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----"

@functools.cache
def _rules() -> re.Pattern[str]:
    return re.compile(_RULES_TEXT, re.IGNORECASE)


_RULES_TEXT = (
    "|".join(
        (
            # PEM private-key material: everything after the BEGIN line, up to its END
            # line, a closing quote or the end of the text.
            rf"(?P<pem>{_PEM})(?P<pembody>(?:(?!-----END)[\s\S])*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|(?=[\"'<])|$))",
            # "key": "value" / 'key': 'value' / 'key': b'value' (JSON, Python repr)
            rf"(?P<qk>(?P<q1>[\"']){_KEY}(?P=q1)\s*:\s*b?(?P<q2>[\"']))(?P<qv>(?:\\.|(?!(?P=q2))[^\\])*)(?=(?P=q2))",
            # \"key\": \"value\" (JSON inside a JSON string)
            rf"(?P<ek>\\\"{_KEY}\\\"\s*:\s*\\\")(?P<ev>(?:(?!\\\")[^\"])*)(?=\\\")",
            # key=value (form bodies, query strings) and key: value (header-like lines)
            rf"(?P<fk>{_EDGE_L}(?:{_KEY}=|{_KEY_COLON}:[ \t]*)(?!b?[\"'\\]))(?P<fv>[^\s&,;\"'<>)\]}}]+)",
            # the credential of an Authorization header
            r"(?P<ak>(?<![A-Za-z0-9_])(?:Bearer|Basic)\s+)(?P<av>[A-Za-z0-9._~+/=-]{8,})",
            # token-like values anywhere
            r"(?P<tok>eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"
            r"|ya29\.[A-Za-z0-9._-]+"
            r"|1//[A-Za-z0-9._-]{8,}|1%2F%2F[A-Za-z0-9._%-]{8,}"
            r"|GOCSPX-[A-Za-z0-9_-]+)",
        )
    )
)

_lock = threading.Lock()
_known: set[str] = set()


def remember(*values: object) -> None:
    """Note secrets this process sent or received; scrub cuts them wherever they appear."""
    with _lock:
        for raw in values:
            if not isinstance(raw, str):
                continue
            value = raw.strip()
            if len(value) >= _MIN_REMEMBERED:
                _known.add(value)
            if "-----BEGIN" in value:  # a PEM key: each of its lines on its own, too
                _known.update(
                    line.strip()
                    for line in value.splitlines()
                    if len(line.strip()) >= 16 and "-----" not in line
                )


def remember_fields(data: Any) -> None:
    """Remember the values under secret keys in a (nested) JSON object or form dict."""
    if isinstance(data, Mapping):
        for k, v in data.items():
            if isinstance(k, str) and k.lower() in _SECRET_KEYS_LOWER and isinstance(v, str):
                remember(v)
            elif isinstance(v, (Mapping, list)):
                remember_fields(v)
    elif isinstance(data, list):
        for item in data:
            remember_fields(item)


def remember_authorization(value: str) -> None:
    """Remember the credential of an Authorization header value (`Bearer X` → X)."""
    parts = value.split(None, 1)
    remember(parts[1] if len(parts) == 2 else value)


def remember_body(body: bytes | str | None, content_type: str = "") -> None:
    """Remember the secret fields of a form- or JSON-encoded body."""
    if not body:
        return
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    stripped = text.lstrip()
    if "json" in content_type or stripped.startswith(("{", "[")):
        with contextlib.suppress(ValueError):
            remember_fields(json.loads(text))
        return
    if "=" in text:
        remember_fields(dict(urllib.parse.parse_qsl(text)))


_SECRET_KEYS_LOWER = frozenset(k.lower() for k in SECRET_KEYS)


def _forms(secret: str) -> Iterable[str]:
    yield secret
    yield urllib.parse.quote(secret, safe="")
    yield urllib.parse.quote_plus(secret)
    yield json.dumps(secret)[1:-1]
    yield json.dumps(json.dumps(secret)[1:-1])[1:-1]


class _Replace:
    """A literal replacement for re.sub (a string there would be read as a template)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __call__(self, _m: re.Match[str]) -> str:
        return self.text


def _cut(m: re.Match[str]) -> str:
    text = m.string
    if text.startswith("…", m.end()):  # already cut
        return m.group(0)
    if m.group("pem") is not None:
        body = m.group("pembody")
        end = re.search(r"-----END [A-Z0-9 ]*PRIVATE KEY-----$", body)
        return m.group("pem") + "…" + (end.group(0) if end else "")
    for key, value in (("qk", "qv"), ("ek", "ev"), ("fk", "fv"), ("ak", "av")):
        if m.group(key) is not None:
            return m.group(key) + redact(m.group(value))
    return redact(m.group("tok"))


def scrub(text: str) -> str:
    """text with every secret it may hold cut to its first 8 characters (module docstring)."""
    if not text:
        return text
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for secret in known:
        for form in dict.fromkeys(_forms(secret)):
            if form in text:
                text = re.sub(re.escape(form) + "(?!…)", _Replace(redact(form)), text)
    return _rules().sub(_cut, text)


def forget_all() -> None:
    """Drop every remembered secret (tests)."""
    with _lock:
        _known.clear()
