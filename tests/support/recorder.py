"""A server interceptor that records the metadata of every call it sees."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import grpc


class MetadataRecorder(grpc.ServerInterceptor):  # type: ignore[misc]
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str | bytes]]] = []
        self._lock = threading.Lock()

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        with self._lock:
            self.calls.append((details.method, dict(details.invocation_metadata)))
        return continuation(details)

    def methods(self) -> list[str]:
        return [m for m, _ in self.calls]

    def headers_for(self, method_suffix: str) -> list[dict[str, str | bytes]]:
        return [md for m, md in self.calls if m.endswith(method_suffix)]
