"""Committed generated files are current: Echo's protobuf code, the Dockerfile's contract."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(importlib.util.find_spec("grpc_tools") is None, reason="needs grpcio-tools (dev extra)")
def test_echo_generated_code_is_current(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import gen_protos
    finally:
        sys.path.pop(0)
    for path in gen_protos.generate(tmp_path):
        committed = ROOT / "cloudrun_grpc_cli" / "demo" / path.name
        assert committed.read_text() == path.read_text(), f"{path.name} is stale: run python tools/gen_protos.py"


def test_dockerfile_installs_package_and_serves_on_port() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    assert instructions[0].startswith("FROM python:3.")
    assert "COPY cloudrun_grpc_cli ./cloudrun_grpc_cli" in instructions
    assert "RUN pip install --no-cache-dir ." in instructions
    assert "ENV PORT=8080" in instructions
    assert instructions[-1] == 'CMD ["sh", "-c", "exec crgrpc serve --port ${PORT}"]'
    # serve's --port option and its default from $PORT exist as the Dockerfile assumes.
    import inspect

    from cloudrun_grpc_cli.cli.serve import serve_cmd

    params = inspect.signature(serve_cmd).parameters
    assert "port" in params and "host" in params
