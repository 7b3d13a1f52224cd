"""The Cloud Run Admin API v2 over HTTP: services.get and services.getIamPolicy.

`GET {API}/v2/projects/{project}/locations/{region}/services/{service}` (and
`…:getIamPolicy`) with `authorization: Bearer` and an OAuth access token of
the call's own credentials (core.auth.sources.access_provider), through
core.egress's session (the proxy decision). {API} is https://run.googleapis.com
unless --run-api names another (private endpoints, tests).

404 is RunServiceNotFound (exit 4), 401/403 RunAccessDenied (exit 3), any
other answer or no answer RunApiUnreachable (exit 4); a proxy that refuses is
core.egress's error (exit 4). Every text from the server is scrubbed.
"""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING, Any

from ...errors import CrgrpcError, one_line
from ..secrets import bearer, scrub
from . import DEFAULT_RUN_API
from .errors import RunAccessDenied, RunApiUnreachable, RunServiceNotFound
from .location import Location

if TYPE_CHECKING:
    from ..auth.sources import AccessProvider

HTTP_TIMEOUT = 30.0


def api_base(run_api: str | None) -> str:
    """--run-api, else Google's endpoint; without a trailing slash."""
    from ...errors import UsageError

    base = (run_api or "").strip().rstrip("/") or DEFAULT_RUN_API
    parts = urllib.parse.urlsplit(base)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise UsageError(
            f"invalid --run-api {run_api!r}: not an http(s) URL",
            f"give the Admin API's base URL, like {DEFAULT_RUN_API}",
        )
    return base


class AdminApi:
    """Reads services and their IAM policies as the identity of `access`."""

    def __init__(self, base: str, access: AccessProvider, *, proxy: str | None = None) -> None:
        self.base = base
        self.access = access
        self.proxy = proxy
        self.requests = 0  # how many requests were made (tests, -v)

    def service_url(self, loc: Location) -> str:
        return f"{self.base}/v2/{loc.name}"

    def get_service(self, loc: Location) -> dict[str, Any]:
        """The Service resource; RunServiceNotFound, RunAccessDenied or RunApiUnreachable."""
        return self._get(self.service_url(loc), loc, "read")

    def get_iam_policy(self, loc: Location) -> dict[str, Any]:
        """The service's IAM policy (version 3: conditional bindings as they are)."""
        url = self.service_url(loc) + ":getIamPolicy?options.requestedPolicyVersion=3"
        return self._get(url, loc, "read the IAM policy of")

    def _get(self, url: str, loc: Location, verb: str) -> dict[str, Any]:
        from ..auth.http import BoundedSession, EndpointError, HttpBounds

        token = self.access.get()  # CredentialsError (exit 3) when minting fails
        self.requests += 1
        # Bounded like a mint (10 s to connect, 30 s in all, 1 MiB), through the proxy
        # decision; a proxy that refuses raises core.egress's ConnectError (exit 4).
        with BoundedSession(HttpBounds(total=HTTP_TIMEOUT), proxy=self.proxy) as session:
            try:
                resp = session.get(url, headers={"authorization": bearer(token)})
            except EndpointError as exc:
                err = RunApiUnreachable(
                    f"cannot reach the Cloud Run Admin API at {self.base}: {exc.reason}",
                    reason="Cloud Run Admin API unreachable",
                )
                err.about(
                    "unreachable",
                    service=loc.service,
                    project=loc.project,
                    region=loc.region,
                    api=self.base,
                    identity=self.access.email,
                )
                raise err from None
        if resp.status_code == 200:
            try:
                data = resp.json()
            except ValueError:
                data = None
            if isinstance(data, dict):
                return data
            raise self._error(
                RunApiUnreachable, loc, "unreachable", "the answer is not a JSON object", 200
            )
        detail = _error_message(resp)
        where = f"the Cloud Run service {loc.service} (project {loc.project}, region {loc.region})"
        if resp.status_code == 404:
            raise self._error(
                RunServiceNotFound, loc, "not-found", f"{where} does not exist", 404, detail
            )
        if resp.status_code in (401, 403):
            who = self.access.email or self.access.source
            raise self._error(
                RunAccessDenied,
                loc,
                "denied",
                f"{who} may not {verb} {where}",
                resp.status_code,
                detail,
            )
        raise self._error(
            RunApiUnreachable,
            loc,
            "unreachable",
            f"the Cloud Run Admin API could not {verb} {where}",
            resp.status_code,
            detail,
        )

    def _error(
        self,
        cls: type[RunServiceNotFound | RunAccessDenied | RunApiUnreachable],
        loc: Location,
        problem: str,
        text: str,
        status: int,
        detail: str = "",
    ) -> CrgrpcError:
        message = f"{text} (HTTP {status}" + (f": {detail})" if detail else ")")
        err: RunServiceNotFound | RunAccessDenied | RunApiUnreachable
        if cls is RunServiceNotFound or cls is RunApiUnreachable:
            err = cls(message, reason=problem)
        else:
            err = RunAccessDenied(message)
        err.about(
            problem,
            service=loc.service,
            project=loc.project,
            region=loc.region,
            api=self.base,
            identity=self.access.email,
            status=status,
        )
        return err


def _error_message(resp: Any) -> str:
    """The message of a Google API error body, or the body itself, on one line, scrubbed."""
    try:
        data = resp.json()
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        err = data["error"]
        text = str(err.get("message") or err.get("status") or "")
    else:
        text = resp.text or ""
    return one_line(scrub(text), 200)
