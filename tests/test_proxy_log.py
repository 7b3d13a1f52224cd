"""The proxy's log lines (render/proxylog.py), event by event: JSON Lines and pretty,
exact. Text from clients and servers is escaped on a terminal; secrets never show."""

from __future__ import annotations

import datetime as dt
import io
import json
from dataclasses import replace

from cloudrun_grpc_cli.core.proxy import (
    CallDone,
    Listening,
    Notice,
    Stopped,
    Stopping,
    TokenFailed,
    TokenReady,
    _redacted,
)
from cloudrun_grpc_cli.render.env import Environment
from cloudrun_grpc_cli.render.proxylog import PrettyProxyLog, event_json, make_proxy_log

AT = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.timezone.utc).timestamp()
CLOCK = dt.datetime.fromtimestamp(AT).strftime("%H:%M:%S.678")
CALL = CallDone(
    at=AT, method="echo.EchoServer/SayHello", code=0, status="OK", message="", duration_ms=1.23456,
    requests=1, responses=1, peer="ipv4:127.0.0.1:5000", metadata=None,
)


def test_a_call_as_json() -> None:
    assert event_json(CALL) == {
        "time": "2026-01-02T03:04:05.678Z", "event": "call", "method": "echo.EchoServer/SayHello",
        "code": 0, "status": "OK", "message": "", "duration_ms": 1.235, "requests": 1, "responses": 1,
        "peer": "ipv4:127.0.0.1:5000",
    }


def test_verbose_metadata_is_redacted_in_the_core_and_the_log() -> None:
    md = _redacted((("authorization", "Bearer eyJhbGciOi.secret.sig"), ("x-a", "1"), ("x-b-bin", b"\x00")))
    assert md == (("authorization", "Bearer <redacted>"), ("x-a", "1"), ("x-b-bin", b"\x00"))
    call = replace(CALL, metadata=md)
    assert event_json(call)["metadata"] == {"authorization": "Bearer <redacted>", "x-a": "1", "x-b-bin": "AA=="}
    out = PrettyProxyLog(io.StringIO(), color=False, verbose=True).render(call)
    assert out.splitlines()[1:] == [
        " " * 14 + "authorization: Bearer <redacted>",
        " " * 14 + "x-a: 1",
        " " * 14 + "x-b-bin: AA==",
    ]


def test_pretty_call_lines() -> None:
    log = PrettyProxyLog(io.StringIO(), color=False, verbose=False)
    assert log.render(CALL) == f"{CLOCK}  OK                echo.EchoServer/SayHello  1.2 ms  ↑1 ↓1"
    failed = replace(CALL, code=14, status="UNAVAILABLE", message="down\n\x1b[2Jerror: forged", duration_ms=12345.0, responses=0)
    assert log.render(failed) == f"{CLOCK}  UNAVAILABLE       echo.EchoServer/SayHello  12.35 s  ↑1 ↓0  down\\n\\x1b[2Jerror: forged"


def test_colours() -> None:
    log = PrettyProxyLog(io.StringIO(), color=True, verbose=False)
    assert "\x1b[32mOK" in log.render(CALL)
    cancelled = replace(CALL, code=1, status="CANCELLED")
    assert "\x1b[33mCANCELLED" in log.render(cancelled)
    denied = replace(CALL, code=7, status="PERMISSION_DENIED")
    assert "\x1b[31mPERMISSION_DENIED" in log.render(denied)


def test_the_proxys_own_events() -> None:
    log = PrettyProxyLog(io.StringIO(), color=False, verbose=False)
    now = AT
    pad = " " * 14
    assert log.render(Listening("127.0.0.1:8080", "echo.run.app:443", True, "authorization", ""), now=now) == (
        f"{CLOCK}  proxy             127.0.0.1:8080 → echo.run.app:443 (TLS), token in authorization\n"
        f"{pad}point a tool at it: grpcurl -plaintext 127.0.0.1:8080 list"
    )
    assert log.render(Listening("127.0.0.1:8080", "localhost:50051", False, None, "--no-auth"), now=now).splitlines()[0] == (
        f"{CLOCK}  proxy             127.0.0.1:8080 → localhost:50051 (plaintext), no token: --no-auth"
    )
    ready = TokenReady("service-account key sa.json", "https://echo.run.app", "sa@p.iam.gserviceaccount.com", None, refreshed=False)
    assert log.render(ready, now=now) == (
        f"{CLOCK}  token             for https://echo.run.app as sa@p.iam.gserviceaccount.com from service-account key sa.json"
    )
    failed = TokenFailed("cannot get a token for https://echo.run.app: invalid_grant", expired=True, retry_in=4.0)
    assert log.render(failed, now=now) == (
        f"{CLOCK}  token             calls are answered UNAUTHENTICATED: cannot get a token for "
        "https://echo.run.app: invalid_grant; trying again in 4s"
    )
    assert log.render(Notice("warning", "--insecure: trusting"), now=now) == f"{CLOCK}  warning           --insecure: trusting"
    assert log.render(Stopping("SIGTERM", 2, 5.0), now=now) == f"{CLOCK}  stopping          SIGTERM: 2 calls in flight, waiting up to 5s"
    assert log.render(Stopping("SIGINT", 1, 5.0), now=now) == f"{CLOCK}  stopping          SIGINT: 1 call in flight, waiting up to 5s"
    assert log.render(Stopped(1), now=now) == f"{CLOCK}  stopped           no longer listening (1 call cancelled)"


def test_the_proxys_own_events_as_json() -> None:
    def shown(ev: object) -> dict:
        out = event_json(ev, now=AT)  # type: ignore[arg-type]
        assert out.pop("time") == "2026-01-02T03:04:05.678Z"
        return out

    assert shown(Listening("127.0.0.1:8080", "localhost:50051", False, None, "--no-auth")) == {
        "event": "listening", "address": "127.0.0.1:8080", "target": "localhost:50051", "tls": False,
        "token_header": None, "no_token": "--no-auth",
    }
    assert shown(TokenReady("--token", "https://a", None, int(AT), refreshed=True)) == {
        "event": "token", "refreshed": True, "source": "--token", "audience": "https://a", "email": None,
        "expires": "2026-01-02T03:04:05.000Z",
    }
    assert shown(TokenFailed("no", expired=False, retry_in=1.0)) == {"event": "token_error", "message": "no", "expired": False, "retry_in_s": 1.0}
    assert shown(Notice("note", "n")) == {"event": "note", "message": "n"}
    assert shown(Stopping("", 0, 5.0)) == {"event": "stopping", "signal": None, "in_flight": 0, "grace_s": 5.0}
    assert shown(Stopped(0)) == {"event": "stopped", "cancelled": 0}


def test_make_proxy_log_writes_one_line_per_event_to_stderr() -> None:
    err, out = io.StringIO(), io.StringIO()
    env = Environment(stdout=out, stderr=err, stdout_isatty=False, stderr_isatty=False)
    make_proxy_log("json", env, verbose=False)(CALL)
    make_proxy_log("pretty", env, verbose=False)(CALL)
    lines = err.getvalue().splitlines()
    assert json.loads(lines[0])["status"] == "OK"
    assert lines[1].endswith("echo.EchoServer/SayHello  1.2 ms  ↑1 ↓1")
    assert out.getvalue() == ""
