"""A Cloud Run service on 127.0.0.1 as the tests see it: the Admin API v2 stand-in
(cloudrun_grpc_cli.demo.runapi, answering from fixtures and checking the access token
it is sent against the local issuer's), and the TLS Echo service it describes, guarded
by the token check as Cloud Run's front end would guard it (audience = the service's
uri; only the emails with the invoker binding may call).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cloudrun_grpc_cli.demo.runapi import RunApi, invoker_policy, service_json
from cloudrun_grpc_cli.demo.tokencheck import TokenCheck

from .issuer import KEY_SA, Issuer
from .recorder import MetadataRecorder
from .servers import echo_server
from .tls import CertFiles, make_certs

PROJECT = "test-project"
REGION = "us-central1"
SERVICE = "echo"
RUN = f"run://{PROJECT}/{REGION}/{SERVICE}"
NUMBER = "123456789012"

__all__ = [
    "NUMBER", "PROJECT", "REGION", "RUN", "SERVICE", "CloudRun", "RunApi", "cloud_run_fixture",
    "invoker_policy", "run_certs_fixture", "service_json",
]


@dataclass
class CloudRun:
    issuer: Issuer
    api: RunApi
    certs: CertFiles
    key: Path
    recorder: MetadataRecorder
    check: TokenCheck
    port: int
    invokers: set[str] = field(default_factory=lambda: {KEY_SA})

    @property
    def uri(self) -> str:
        return f"https://localhost:{self.port}"

    @property
    def name(self) -> str:
        return f"projects/{PROJECT}/locations/{REGION}/services/{SERVICE}"

    def args(self, *, key: bool = True) -> list[str]:
        """--cacert and --run-api (and --key-file) for any command against the service."""
        out = ["--cacert", str(self.certs.ca), "--run-api", self.api.url]
        return (["--key-file", str(self.key)] if key else []) + out

    def service(self, **changes: Any) -> dict[str, Any]:
        """Replace the Service fixture (service_json's keywords) and return it."""
        data = service_json(PROJECT, REGION, SERVICE, self.uri, **changes)
        self.api.services[data["name"]] = data
        return data

    def policy(self, *members: str, role: str = "roles/run.invoker") -> None:
        self.api.policies[self.name] = invoker_policy(*members, role=role)

    def admin_requests(self) -> list[tuple[str, str]]:
        """(path, principal) of every Admin API request."""
        return list(zip([r.path for r in self.api.requests], self.api.principals, strict=True))


@pytest.fixture(scope="module", name="run_certs")
def run_certs_fixture(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_certs(tmp_path_factory.mktemp("cloudrun-tls"))


@pytest.fixture(name="cloud_run")
def cloud_run_fixture(issuer: Issuer, run_certs: CertFiles, tmp_path: Path) -> Iterator[CloudRun]:
    """The service echo in test-project/us-central1: ready, h2c, public ingress, sa@ bound."""
    recorder = MetadataRecorder()
    check = TokenCheck("https://localhost:0", certs=issuer.certs_url, allowed_emails=(KEY_SA,))
    api = RunApi(issuer.access_tokens, numbers={NUMBER: PROJECT}).start()
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    try:
        with echo_server(tls=run_certs, interceptors=(recorder, check)) as srv:
            cr = CloudRun(issuer, api, run_certs, key, recorder, check, srv.port)
            check.audience = cr.uri  # Cloud Run accepts the service's URL as the audience
            cr.service()
            cr.policy(f"serviceAccount:{KEY_SA}")
            yield cr
    finally:
        api.stop()
