"""A server interceptor that checks the Google ID token of every call, as Cloud Run does.

Owns `serve --require-token` and the offline demo's server-side check: the
bearer token of `x-serverless-authorization` (checked first, as Cloud Run
does) or `authorization` must be an RS256 JWT signed by a key of the certs
source (URL or file; PEM map or JWKS), from an allowed issuer, for the
audience, unexpired, and — when emails are listed — for one of them. A bad
or missing token is UNAUTHENTICATED; an email not allowed is PERMISSION_DENIED.
Every call is checked, reflection included.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import grpc

from ..core.auth.jwt import decode_jwt
from ..core.auth.verify import GOOGLE_ISSUERS, check_claims, check_signature, load_certs
from ..errors import CredentialsError

TOKEN_HEADERS = ("x-serverless-authorization", "authorization")
_RELOAD_INTERVAL = 30.0  # at most one certs reload per this many seconds (unknown kid)

if TYPE_CHECKING:  # generic in grpc-stubs only
    _Interceptor = grpc.ServerInterceptor[Any, Any]
else:
    _Interceptor = grpc.ServerInterceptor


class TokenCheck(_Interceptor):
    def __init__(
        self,
        audience: str,
        *,
        certs: str | None = None,
        allowed_emails: Sequence[str] = (),
        issuers: Sequence[str] = GOOGLE_ISSUERS,
        clock_skew: int = 10,
        headers: Sequence[str] = TOKEN_HEADERS,
    ) -> None:
        """headers: where the token is looked for, in order (IAP: proxy-authorization first)."""
        self.audience = audience
        self.headers = tuple(h.lower() for h in headers)
        self.certs_source = certs
        self.allowed_emails = frozenset(e.strip().lower() for e in allowed_emails if e.strip())
        self.issuers = tuple(issuers)
        self.clock_skew = clock_skew
        self._certs: dict[str, str] = {}
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    def _keys(self, kid: Any) -> dict[str, str]:
        """The certs, loaded on first use and reloaded (rate-limited) for an unknown kid."""
        with self._lock:
            stale = not self._certs or (
                kid is not None
                and str(kid) not in self._certs
                and time.monotonic() - self._loaded_at > _RELOAD_INTERVAL
            )
            if stale:
                try:
                    self._certs = load_certs(self.certs_source)
                    self._loaded_at = time.monotonic()
                except CredentialsError:
                    if not self._certs:
                        raise
            return self._certs

    def check(self, metadata: Sequence[tuple[str, Any]]) -> tuple[grpc.StatusCode, str] | None:
        """None when the call may proceed, else the status and details to reject it with."""
        values = {k.lower(): v for k, v in metadata if isinstance(v, str)}
        header = next((h for h in self.headers if h in values), None)
        if header is None:
            return grpc.StatusCode.UNAUTHENTICATED, "missing bearer token"
        scheme, _, token = values[header].strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return grpc.StatusCode.UNAUTHENTICATED, f"{header} is not a bearer token"
        try:
            jwt = decode_jwt(token)
        except CredentialsError:
            return grpc.StatusCode.UNAUTHENTICATED, "the bearer token is not a JWT"
        try:
            certs = self._keys(jwt.header.get("kid"))
        except CredentialsError as exc:
            return grpc.StatusCode.UNAUTHENTICATED, f"cannot check the token: {exc.message}"
        passed, detail = check_signature(jwt, certs)
        if not passed:
            return grpc.StatusCode.UNAUTHENTICATED, f"invalid token signature: {detail}"
        for name, ok, why in check_claims(
            jwt, audience=self.audience, issuers=self.issuers, clock_skew=self.clock_skew
        ):
            if not ok:
                return grpc.StatusCode.UNAUTHENTICATED, f"invalid token {name}: {why}"
        if self.allowed_emails:
            email = jwt.claims.get("email")
            if not isinstance(email, str) or email.lower() not in self.allowed_emails:
                who = email if isinstance(email, str) else "a token without an email claim"
                return grpc.StatusCode.PERMISSION_DENIED, f"{who} may not call this service"
        return None

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        rejection = self.check(tuple(handler_call_details.invocation_metadata or ()))
        if rejection is None:
            return handler
        return _rejecting(handler, *rejection)


def _rejecting(
    handler: grpc.RpcMethodHandler[Any, Any], code: grpc.StatusCode, details: str
) -> grpc.RpcMethodHandler[Any, Any]:
    def reject(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(code, details)

    deserializer = handler.request_deserializer
    serializer = handler.response_serializer
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(reject, deserializer, serializer)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(reject, deserializer, serializer)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(reject, deserializer, serializer)
    return grpc.unary_unary_rpc_method_handler(reject, deserializer, serializer)
