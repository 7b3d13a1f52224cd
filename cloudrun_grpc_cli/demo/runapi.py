"""A local stand-in for the Cloud Run Admin API v2, for `crgrpc demo` (and the tests).

A threaded http.server on 127.0.0.1 (port 0) answering, from fixtures:

- services.get: GET /v2/projects/P/locations/R/services/S → the Service
  resource (404 NOT_FOUND when there is none);
- services.getIamPolicy: GET /v2/projects/P/locations/R/services/S:getIamPolicy
  → the Policy (an empty one when none is set).

Each request must carry `authorization: Bearer` with an access token the
issuer issued (`access_tokens`: token → principal, shared with the issuer);
anything else is 401 UNAUTHENTICATED. `viewers` and `policy_readers`, when
set, are the principals allowed to read (others get 403 PERMISSION_DENIED,
as Cloud Run answers). A project may be named by its number (`numbers`).
Every request is recorded, with the principal it was made as.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from .httpserver import LocalHttp
from .issuer import Recorded


def service_json(
    project: str,
    region: str,
    name: str,
    uri: str,
    *,
    urls: Sequence[str] = (),
    custom_audiences: Sequence[str] = (),
    ingress: str = "INGRESS_TRAFFIC_ALL",
    h2c: bool = True,
    ready: bool = True,
    timeout: str | None = "300s",
    invoker_iam_disabled: bool = False,
    iap_enabled: bool = False,
    failure: str = "Revision 'x' is not ready and cannot serve traffic. The user-provided container failed to start.",
) -> dict[str, Any]:
    """A Service resource as the Admin API v2 returns it (the fields crgrpc reads, and some)."""
    revision = f"projects/{project}/locations/{region}/revisions/{name}-00001-abc"
    created = revision if ready else f"projects/{project}/locations/{region}/revisions/{name}-00002-def"
    template: dict[str, Any] = {
        "containers": [
            {
                "image": f"{region}-docker.pkg.dev/{project}/apps/{name}:latest",
                "ports": [{"name": "h2c" if h2c else "http1", "containerPort": 8080}],
                "env": [{"name": "SECRET_ENV", "value": "never-cached"}],
            }
        ],
        "serviceAccount": f"{name}@{project}.iam.gserviceaccount.com",
    }
    if timeout is not None:
        template["timeout"] = timeout
    condition: dict[str, Any] = {"type": "Ready", "state": "CONDITION_SUCCEEDED"}
    if not ready:
        condition = {"type": "Ready", "state": "CONDITION_FAILED", "message": failure}
    data: dict[str, Any] = {
        "name": f"projects/{project}/locations/{region}/services/{name}",
        "uid": "00000000-0000-0000-0000-000000000000",
        "generation": "2",
        "ingress": ingress,
        "launchStage": "GA",
        "template": template,
        "traffic": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}],
        "terminalCondition": condition,
        "latestReadyRevision": revision,
        "latestCreatedRevision": created,
        "uri": uri,
        "urls": [uri, *urls],
        "reconciling": False,
    }
    if custom_audiences:
        data["customAudiences"] = list(custom_audiences)
    if invoker_iam_disabled:
        data["invokerIamDisabled"] = True
    if iap_enabled:
        data["iapEnabled"] = True
    return data


def invoker_policy(*members: str, role: str = "roles/run.invoker") -> dict[str, Any]:
    return {"version": 1, "etag": "BwYx", "bindings": [{"role": role, "members": list(members)}]}


@dataclass
class RunApi(LocalHttp):
    """Start with .start(); .url is http://127.0.0.1:PORT (pass it as --run-api)."""

    access_tokens: Mapping[str, str]  # token → principal: the issuer's
    services: dict[str, dict[str, Any]] = field(default_factory=dict)  # full name → Service
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)  # full name → Policy
    numbers: dict[str, str] = field(default_factory=dict)  # project number → project ID
    viewers: set[str] | None = None  # who may get services (None: anyone with a token)
    policy_readers: set[str] | None = None  # who may get policies (None: anyone)
    requests: list[Recorded] = field(default_factory=list)
    principals: list[str] = field(default_factory=list)  # who each request was made as

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def add(self, service: dict[str, Any], policy: dict[str, Any] | None = None) -> dict[str, Any]:
        self.services[service["name"]] = service
        if policy is not None:
            self.policies[service["name"]] = policy
        return service

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> RunApi:
        self._serve(lambda request, _: self._handle(request), methods=("GET",))
        return self

    def count(self, suffix: str = "") -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.path.endswith(suffix))

    # --- HTTP --------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        url = urllib.parse.urlsplit(h.path)
        rec = Recorded(
            method="GET",
            path=urllib.parse.unquote(url.path),
            query=dict(urllib.parse.parse_qsl(url.query)),
            headers={k.lower(): v for k, v in h.headers.items()},
            body=b"",
        )
        status, payload = self._route(rec)
        data = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=UTF-8")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    @staticmethod
    def _error(code: int, status: str, message: str) -> tuple[int, dict[str, Any]]:
        return code, {"error": {"code": code, "message": message, "status": status}}

    def _route(self, r: Recorded) -> tuple[int, dict[str, Any]]:
        auth = r.headers.get("authorization", "")
        principal = self.access_tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
        with self._lock:
            self.requests.append(r)
            self.principals.append(principal or "")
        if principal is None:
            return self._error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                "login cookie or other valid authentication credential.",
            )
        path = r.path.removeprefix("/v2/")
        name, _, verb = path.partition(":")
        parts = name.split("/")
        if len(parts) != 6 or parts[0::2] != ["projects", "locations", "services"]:
            return self._error(404, "NOT_FOUND", f"The requested URL {r.path} was not found.")
        project = self.numbers.get(parts[1], parts[1])
        region, service = parts[3], parts[5]
        full = f"projects/{project}/locations/{region}/services/{service}"
        if verb == "getIamPolicy":
            if self.policy_readers is not None and principal not in self.policy_readers:
                return self._error(
                    403,
                    "PERMISSION_DENIED",
                    f"Permission 'run.services.getIamPolicy' denied on resource '{full}' "
                    "(or resource may not exist).",
                )
            if full not in self.services:
                return self._not_found(project, region, service)
            return 200, self.policies.get(full, {"version": 1, "etag": "ACAB"})
        if verb:
            return self._error(400, "INVALID_ARGUMENT", f"unknown method {verb}")
        if self.viewers is not None and principal not in self.viewers:
            return self._error(
                403,
                "PERMISSION_DENIED",
                f"Permission 'run.services.get' denied on resource 'namespaces/{project}/services/"
                f"{service}' (or resource may not exist).",
            )
        if full not in self.services:
            return self._not_found(project, region, service)
        return 200, self.services[full]

    def _not_found(self, project: str, region: str, service: str) -> tuple[int, dict[str, Any]]:
        return self._error(
            404,
            "NOT_FOUND",
            f"Resource '{service}' of kind 'SERVICE' in region '{region}' in project "
            f"'{project}' does not exist.",
        )
