"""`crgrpc demo`: the Cloud Run gRPC walkthrough end to end, offline.

A local token issuer stands in for Google (a key it generates, a
service-account key file whose token_uri points at it); the Echo service
runs over TLS with a self-signed certificate and checks every call's token
(signature, audience, allowed email) as Cloud Run's front end would. Then
crgrpc mints, shows and uses the token for reflection and the calls: each
step runs through the CLI's entry point, main(argv, env), with an
Environment whose cache_dir is the walkthrough's own (no process-wide
setting is changed). The servers and stand-ins live in cloudrun_grpc_cli.demo.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO

import typer

from ..errors import ExitCode, UsageError
from ..render.env import Environment
from .options import DEMO_OPTION_NAMES, CommonOptions, with_options

DEMO_SA = "echo-invoker@demo-project.iam.gserviceaccount.com"
DEMO_PROJECT = "demo-project"
DEMO_REGION = "us-central1"
AUDIENCE = "https://localhost"
PROXY_START_SECONDS = 30

DEMO_HELP = """Run the Cloud Run gRPC walkthrough end to end, offline.

A local token issuer stands in for Google; the Echo service runs on a free
loopback port over TLS (a self-signed certificate) and checks every call's
ID token as Cloud Run would. crgrpc then shows the minted token, lists and
describes the service, makes five unary calls and one server-streaming call
(headers, messages, trailers; -v on two of them), shows a call without a
token being refused and explained, runs doctor on the service as a run://
target (a local Cloud Run Admin API stand-in answers), load-tests it with
bench, and starts crgrpc proxy for a client without credentials. Always
pretty output.

Examples:

\b
  crgrpc demo
  crgrpc demo --color never > demo.txt
"""


def register(app: typer.Typer) -> None:
    app.command("demo", help=DEMO_HELP)(demo_cmd)


@with_options(*DEMO_OPTION_NAMES)
def demo_cmd(*, opts: CommonOptions) -> None:
    from .console import current_env

    color = opts.color
    if color not in ("auto", "always", "never"):
        raise UsageError(f"unknown --color {color!r}", "use auto, always or never")
    env = current_env()
    env.color = color
    code = run_demo(env)
    if code:
        raise typer.Exit(code)


def run_demo(env: Environment) -> int:
    """The walkthrough, written to env; the exit code (0 when every step behaved)."""
    from ..demo.certs import make_certs
    from ..demo.issuer import Issuer
    from ..demo.runapi import RunApi, invoker_policy, service_json
    from ..demo.server import build_server
    from ..demo.tokencheck import TokenCheck
    from .main import main

    out = env.stdout
    color = env.color
    with tempfile.TemporaryDirectory(prefix="crgrpc-demo-") as tmp:
        work = Path(tmp)
        issuer = Issuer().start()
        key_file = issuer.write_service_account_key(work / "sa.json", email=DEMO_SA)
        certs = make_certs(work / "tls", names=("localhost", "127.0.0.1"), self_signed=True)
        probe = build_server("127.0.0.1", 0)  # find a free port for a stable audience
        port = probe.port
        probe.stop()
        target = f"https://localhost:{port}"
        check = TokenCheck(audience=AUDIENCE, certs=issuer.certs_url, allowed_emails=(DEMO_SA,))
        server = build_server(
            "127.0.0.1", port, tls_cert=certs.cert, tls_key=certs.key, interceptors=(check,)
        )
        # The Cloud Run Admin API stand-in knows the service: its URL, the custom audience
        # the token check wants, and the invoker binding of the demo's service account.
        run_api = RunApi(issuer.access_tokens).start()
        run_api.add(
            service_json(DEMO_PROJECT, DEMO_REGION, "echo", target, custom_audiences=[AUDIENCE]),
            invoker_policy(f"serviceAccount:{DEMO_SA}"),
        )
        common = [
            "--key-file", str(key_file), "--cacert", str(certs.ca), "-o", "pretty",
            "--color", color,
        ]
        steps: list[tuple[str, list[str], int]] = [
            ("Mint an ID token for the service and show it", ["token", "show", target, "--key-file", str(key_file), "-o", "pretty", "--color", color], 0),
            ("List the services (the reflection call carries the token)", ["list", target, *common], 0),
            ("Describe the service", ["describe", target, "echo.EchoServer", *common], 0),
        ]
        for i in range(1, 6):
            steps.append((
                f"Unary call {i} of 5",
                ["call", target, "echo.EchoServer/SayHello", "-d", f'{{"name": "demo-{i}"}}', *common, *(["-v"] if i == 1 else [])],
                0,
            ))
        steps.append((
            "Server-streaming call",
            ["call", target, "echo.EchoServer/SayHelloStream", "-d", '{"name": "demo", "count": 3}', *common, "-v"],
            0,
        ))
        steps.append((
            "Without a token the service refuses the call (expected: exit 80, with a diagnosis)",
            ["call", target, "echo.EchoServer/SayHello", "--no-auth", "--cacert", str(certs.ca), "-o", "pretty", "--color", color],
            80,
        ))
        steps.append((
            "Diagnose it as a Cloud Run service with doctor (a local Admin API stand-in answers)",
            ["doctor", f"run://{DEMO_PROJECT}/{DEMO_REGION}/echo", "--run-api", run_api.url, "--audience", AUDIENCE, *common],
            0,
        ))
        steps.append((
            "Load-test it: 200 calls, 8 at a time, one token for all (crgrpc bench)",
            ["bench", target, "echo.EchoServer/SayHello", "-d", '{"name": "load"}', "-n", "200", "-c", "8", *common],
            0,
        ))
        # A private cache, passed to every step: the token is minted once, then reused.
        # The proxy, a process of its own, finds it through XDG_CACHE_HOME.
        xdg_cache = work / "xdg-cache"
        steps_env = env.with_cache_dir(xdg_cache / "crgrpc")
        try:
            out.write(f"Echo service on {target} (TLS, self-signed; tokens checked for audience https://localhost)\n")
            out.write(f"Local token issuer on {issuer.url}; service account {DEMO_SA}\n")
            for title, argv, expected in steps:
                out.write(f"\n== {title}\n$ crgrpc {_shown(argv)}\n")
                out.flush()
                code = main(argv, env=steps_env)
                if code == ExitCode.PIPE_CLOSED:
                    return code  # `crgrpc demo | head`: the reader has gone, quietly
                if code != expected:
                    out.write(f"\ndemo failed: exit {code}, expected {expected}\n")
                    return code or 1
            proxy_argv = ["proxy", target, "--key-file", str(key_file), "--cacert", str(certs.ca),
                          "--port", "0", "-o", "pretty", "--color", color]
            code = _proxy_step(out, proxy_argv, color, xdg_cache, steps_env)
            if code:
                return code
            minted = issuer.id_tokens
            out.write(
                f"\ndemo finished: every step behaved as expected; the token was minted "
                f"{minted} time{'s' if minted != 1 else ''} and reused from the cache\n"
            )
            return 0
        finally:
            server.stop()
            run_api.stop()
            issuer.stop()


def _shown(argv: list[str]) -> str:
    return " ".join(a if " " not in a else repr(a) for a in argv)


def _proxy_step(
    out: IO[str], proxy_argv: list[str], color: str, xdg_cache: Path, steps_env: Environment
) -> int:
    """crgrpc proxy in a process of its own, one call through it with no
    credentials, then SIGTERM; 0 when each part behaved."""
    from .main import main

    out.write("\n== Lend the token to any gRPC client (grpcurl, buf curl, your app): crgrpc proxy\n")
    out.write(f"$ crgrpc {_shown(proxy_argv)} &\n")
    out.flush()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cloudrun_grpc_cli", *proxy_argv],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "XDG_CACHE_HOME": str(xdg_cache)},
    )
    try:
        stdout = proc.stdout
        assert stdout is not None
        lines: list[str] = []  # its first line, read in a thread to bound the wait
        reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(PROXY_START_SECONDS)
        first = lines[0] if lines else ""
        if not first.startswith("listening on "):
            why = f"exited {proc.poll()}" if proc.poll() is not None else f"was not listening after {PROXY_START_SECONDS} s"
            proc.kill()
            _, err = proc.communicate(timeout=30)
            out.write(f"{err}\ndemo failed: the proxy {why}\n")
            return 1
        address = first.removeprefix("listening on ").strip()
        out.write(first)
        argv = ["call", "--plaintext", address, "echo.EchoServer/SayHello", "-d", '{"name": "via the proxy"}',
                "-o", "pretty", "--color", color]
        out.write(f"\n$ crgrpc {_shown(argv)}"
                  "   # no key, no token: the proxy adds them\n")
        out.flush()
        code = main(argv, env=steps_env)
        if code == ExitCode.PIPE_CLOSED:
            return code
        if code != 0:
            out.write(f"\ndemo failed: exit {code}, expected 0\n")
            return code or 1
        proc.send_signal(signal.SIGTERM)
        _, log = proc.communicate(timeout=30)
        out.write(f"\n$ kill %1   # the proxy's log on stderr, one line a call:\n{log}")
        if proc.returncode != 0:
            out.write(f"\ndemo failed: the proxy exited {proc.returncode}, expected 0\n")
            return 1
        return 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
