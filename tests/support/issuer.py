"""The local token issuer (cloudrun_grpc_cli.demo.issuer) and its pytest fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloudrun_grpc_cli.demo.issuer import *  # noqa: F403  (the issuer, its constants and helpers)
from cloudrun_grpc_cli.demo.issuer import Issuer


@pytest.fixture(name="issuer")
def issuer_fixture() -> Iterator[Issuer]:
    """A running Issuer (import `issuer_fixture` to use the `issuer` fixture)."""
    server = Issuer().start()
    try:
        yield server
    finally:
        server.stop()
