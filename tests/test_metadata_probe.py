"""The metadata server is probed only where one could be: laptops never wait for a ping."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudrun_grpc_cli.core.auth.minting import may_be_on_google

DMI = Path("/sys/class/dmi/id/product_name")


def _clear(monkeypatch: pytest.MonkeyPatch) -> None:
    for v in ("GCE_METADATA_HOST", "GCE_METADATA_IP", "GCE_METADATA_ROOT", "K_SERVICE", "CLOUD_RUN_JOB",
              "FUNCTION_TARGET", "GAE_ENV", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(v, raising=False)


def test_explicit_metadata_host_always_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    _clear(monkeypatch)
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")
    assert may_be_on_google() is True


@pytest.mark.parametrize("var", ["K_SERVICE", "CLOUD_RUN_JOB", "GAE_ENV", "KUBERNETES_SERVICE_HOST"])
def test_google_runtimes_probe(monkeypatch: pytest.MonkeyPatch, var: str) -> None:
    _clear(monkeypatch)
    monkeypatch.setenv(var, "x")
    assert may_be_on_google() is True


def test_plain_machine_follows_dmi(monkeypatch: pytest.MonkeyPatch) -> None:
    _clear(monkeypatch)
    try:
        product = DMI.read_text()
    except OSError:
        assert may_be_on_google() is True  # cannot tell locally: probe
        return
    assert may_be_on_google() is ("Google" in product)
