"""The channel options crgrpc dials with, per kind of target (core/channel.channel_options)."""

from __future__ import annotations

import pytest

from cloudrun_grpc_cli.core.channel import channel_options, dial_parts
from cloudrun_grpc_cli.core.target import parse_target
from cloudrun_grpc_cli.settings import ChannelSettings


def _bdp(raw: str, *, plaintext: bool = False) -> list[object]:
    opts = channel_options(parse_target(raw, plaintext=plaintext), ChannelSettings(plaintext=plaintext))
    return [v for k, v in opts if k == "grpc.http2.bdp_probe"]


@pytest.mark.parametrize("raw", ["127.0.0.1:50051", "localhost:8080", "[::1]:443", "unix:///tmp/echo.sock"])
def test_loopback_targets_turn_bdp_probing_off(raw: str) -> None:
    """Nothing to fill on loopback: a fixed window keeps a long stream's memory flat."""
    assert _bdp(raw, plaintext=True) == [0]
    assert _bdp(raw) == [0]


@pytest.mark.parametrize("raw", ["echo-abc-uc.a.run.app", "https://echo-abc-uc.a.run.app", "10.1.2.3:50051", "grpc.example.com:443"])
def test_remote_targets_keep_bdp_probing(raw: str) -> None:
    """gRPC's default (probing on), so a stream over a long round trip is not capped at 64 KiB per trip."""
    assert _bdp(raw) == []


def test_dial_parts_carries_the_same_options() -> None:
    """The proxy's and the load tester's asyncio channels are dialled with them too."""
    target = parse_target("127.0.0.1:1", plaintext=True)
    _, opts = dial_parts(target, ChannelSettings(plaintext=True))
    assert ("grpc.http2.bdp_probe", 0) in opts
