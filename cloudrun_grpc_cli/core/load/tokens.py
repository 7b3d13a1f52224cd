"""The metadata every request of a load run carries, with its token refreshed
in the background.

A request never waits for a token: it reads `TokenFeed.metadata`, a tuple
swapped whole by a daemon thread. The thread sleeps until the token reaches
its refresh margin (core/auth/token.refresh_margin: 225 s before exp, or a
quarter of a short token's lifetime), then asks the auth plan's provider,
which mints the next one (or takes it from the disk cache) while the current
one is still valid for that margin. A failed mint keeps the current token and
is tried again, sooner as expiry nears.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from ...errors import CrgrpcError
from ...settings import Header
from ..auth.policy import AuthPlan
from ..auth.token import IdToken, StaticProvider, refresh_margin
from ..secrets import SECRETS, Secrets

Metadata = tuple[tuple[str, "str | bytes"], ...]
RETRY_MIN = 0.2  # seconds before trying again after a failed refresh (at least)
RETRY_MAX = 5.0
_LATE = 0.01  # wake just after the margin, so that the provider sees the token as stale


class TokenFeed:
    def __init__(
        self, plan: AuthPlan, user_headers: Sequence[Header] = (), secrets: Secrets = SECRETS
    ) -> None:
        self._plan = plan
        self._headers = tuple(user_headers)
        self._secrets = secrets
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.refreshes = 0  # tokens taken after the first
        self.failures = 0  # refreshes that failed (the token in use was kept)
        self.last_failure = ""
        self.metadata: Metadata = self._build()  # the first token: minted now, if need be

    def _build(self) -> Metadata:
        md = [*self._headers, *self._plan.metadata()]
        self._secrets.remember(md)
        return tuple(md)

    @property
    def token(self) -> IdToken | None:
        return self._plan.current()

    @property
    def refreshing(self) -> bool:
        """Whether the token can be replaced (minted, not given as it is)."""
        provider = self._plan.provider
        return provider is not None and not isinstance(provider, StaticProvider)

    def start(self) -> TokenFeed:
        if self.refreshing and self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="crgrpc-token-refresh", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _due_in(self, token: IdToken | None) -> float | None:
        """Seconds until token reaches its refresh margin (None: never)."""
        if token is None:
            return None
        left = token.seconds_left()
        if left is None:
            return None
        return max(0.0, left - refresh_margin(token)) + _LATE

    def _run(self) -> None:
        wait = self._due_in(self.token)
        while wait is not None and not self._stop.wait(wait):
            before = self.token
            try:
                self.metadata = self._build()
            except CrgrpcError as e:
                self.failures += 1
                self.last_failure = e.message
                left = before.seconds_left() if before is not None else None
                wait = RETRY_MAX if left is None else min(RETRY_MAX, max(RETRY_MIN, left / 4))
                continue
            after = self.token
            if after is not None and before is not None and after.value == before.value:
                # Not stale yet to the provider (clock steps): look again shortly.
                left = after.seconds_left() or 0.0
                wait = min(RETRY_MAX, max(RETRY_MIN, left / 10))
                continue
            self.refreshes += 1
            wait = self._due_in(after)
