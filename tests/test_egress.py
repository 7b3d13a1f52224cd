"""core/egress: which proxy each connection goes through (no network needed): the flag,
the variables in their order for gRPC and by scheme for HTTP, no_proxy's forms, the
metadata server always direct, and the password never shown."""

from __future__ import annotations

import pytest

from cloudrun_grpc_cli.core import egress
from cloudrun_grpc_cli.core.secrets import SECRETS
from cloudrun_grpc_cli.errors import UsageError

VARS = ("grpc_proxy", "https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY", "no_grpc_proxy")


@pytest.fixture(autouse=True)
def no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARS:
        monkeypatch.delenv(name, raising=False)


def test_parse_normalises_and_hides_the_password() -> None:
    p = egress.parse_proxy("http://alice:p%40ss-word-1234@proxy.example:3128")
    assert (p.host, p.port, p.origin) == ("proxy.example", 3128, "--proxy")
    assert p.url == "http://alice:p%40ss-word-1234@proxy.example:3128"
    assert p.shown == "http://alice@proxy.example:3128"
    assert SECRETS.scrub("said p@ss-word-1234 and YWxpY2U6cEBzcy13b3JkLTEyMzQ=") == "said <redacted> and <redacted>"
    assert egress.parse_proxy("proxy.example").url == "http://proxy.example:80"
    assert egress.parse_proxy("[::1]:8080").shown == "http://[::1]:8080"
    assert egress.shown_url("http://u:secret@h:1") == "http://u:<redacted>@h:1"
    assert egress.shown_url("http://h:1") == "http://h:1"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"grpc_proxy": "http://g:1", "https_proxy": "http://s:1"}, "http://g:1 (from grpc_proxy)"),
        ({"https_proxy": "http://s:1", "HTTPS_PROXY": "http://upper:1"}, "http://s:1 (from https_proxy)"),
        ({"HTTPS_PROXY": "http://upper:1", "http_proxy": "http://h:1"}, "http://upper:1 (from HTTPS_PROXY)"),
        ({"http_proxy": "http://h:1"}, "http://h:1 (from http_proxy)"),
        ({"HTTP_PROXY": "http://H:1"}, None),  # gRPC's list: lower case http_proxy only
        ({}, None),
    ],
)
def test_grpc_variables_in_order(env: dict[str, str], expected: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    p = egress.grpc_proxy("svc.run.app", 443, None)
    assert (p.described if p else None) == expected
    opts = egress.grpc_channel_options("svc.run.app", 443, None)[1]
    assert opts == ([("grpc.http_proxy", p.url)] if p else [("grpc.enable_http_proxy", 0)])


def test_the_flag_beats_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("grpc_proxy", "http://g:1")
    monkeypatch.setenv("https_proxy", "http://s:1")
    assert egress.grpc_proxy("x.example", 443, "http://flag:3128").described == "http://flag:3128"  # type: ignore[union-attr]
    assert egress.http_proxy("https://run.googleapis.com/v2/x", "http://flag:3128").shown == "http://flag:3128"  # type: ignore[union-attr]


def test_http_requests_take_the_variable_of_their_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("grpc_proxy", "http://g:1")
    assert egress.http_proxy("https://oauth2.googleapis.com/token", None) is None  # grpc_proxy is gRPC's
    monkeypatch.setenv("HTTPS_PROXY", "http://S:1")
    monkeypatch.setenv("HTTP_PROXY", "http://H:1")
    assert egress.http_proxy("https://oauth2.googleapis.com/token", None).origin == "HTTPS_PROXY"  # type: ignore[union-attr]
    assert egress.http_proxy("http://127.0.0.1:8080/token", None).origin == "HTTP_PROXY"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "direct"),
    [
        ("example.com", "api.example.com", 443, True),
        ("example.com", "example.com", 443, True),
        (".example.com", "api.example.com", 443, True),
        ("*.example.com", "api.example.com", 443, True),
        ("example.com", "badexample.com", 443, False),
        ("example.com:8443", "example.com", 443, False),
        ("example.com:8443", "example.com", 8443, True),
        ("10.0.0.0/8", "10.1.2.3", 443, True),
        ("10.0.0.0/8", "11.1.2.3", 443, False),
        ("::1", "::1", 443, True),
        ("*", "anything.example", 443, True),
        (" a.example , localhost ", "localhost", 443, True),
        ("", "localhost", 443, False),
    ],
)
def test_no_proxy_forms(no_proxy: str, host: str, port: int, direct: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("https_proxy", "http://s:1")
    monkeypatch.setenv("no_proxy", no_proxy)
    assert (egress.grpc_proxy(host, port, None) is None) is direct
    assert (egress.grpc_proxy(host, port, "http://flag:1") is None) is direct


def test_no_grpc_proxy_is_for_grpc_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("https_proxy", "http://s:1")
    monkeypatch.setenv("no_grpc_proxy", "example.com")
    assert egress.grpc_proxy("example.com", 443, None) is None
    assert egress.http_proxy("https://example.com/x", None) is not None


def test_the_metadata_server_is_never_proxied(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:8999")
    for url in ("http://metadata.google.internal/computeMetadata/v1/", "http://169.254.169.254/", "http://127.0.0.1:8999/computeMetadata/v1/"):
        assert egress.http_proxy(url, "http://flag:1") is None, url
    assert egress.http_proxy("http://127.0.0.1:9000/token", "http://flag:1") is not None


def test_a_bad_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("grpc_proxy", "https://p:1")
    with pytest.raises(UsageError) as e:
        egress.grpc_proxy("x.example", 443, None)
    assert e.value.message == "grpc_proxy (a proxy variable): unsupported proxy scheme 'https'"
