"""The failures of a Cloud Run lookup; core.hints explains each from what it carries."""

from __future__ import annotations

from ...errors import ConnectError, CredentialsError, UsageError


class RunProblem:
    """What a Cloud Run failure is about (core.hints reads it)."""

    problem: str = ""  # "location", "not-found", "denied", "unreachable"
    project: str | None = None
    region: str | None = None
    service: str = ""
    api: str = ""
    identity: str | None = None  # the email the Admin API was asked as, when known
    missing: tuple[str, ...] = ()  # "project", "region"
    status: int = 0  # the Admin API's HTTP status, when it answered

    def about(
        self,
        problem: str,
        *,
        service: str,
        project: str | None = None,
        region: str | None = None,
        api: str = "",
        identity: str | None = None,
        missing: tuple[str, ...] = (),
        status: int = 0,
    ) -> None:
        self.problem, self.service, self.project, self.region = problem, service, project, region
        self.api, self.identity, self.missing, self.status = api, identity, missing, status


class RunLocationMissing(UsageError, RunProblem):
    """No project or no region for a run:// target (exit 2)."""


class RunServiceNotFound(ConnectError, RunProblem):
    """The Admin API says the service does not exist (exit 4)."""


class RunAccessDenied(CredentialsError, RunProblem):
    """The identity may not read the service (401/403, exit 3)."""


class RunApiUnreachable(ConnectError, RunProblem):
    """The Admin API could not be asked, or answered an error (exit 4)."""


class RunNoCredentials(CredentialsError, RunProblem):
    """No credentials to ask the Admin API with (exit 3)."""
