"""`crgrpc serve`: the bundled Echo service."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from ..errors import ExitCode, UsageError
from .options import SERVE_OPTION_NAMES, with_options

SERVE_HELP = """Run the bundled Echo service (with reflection), as deployed to Cloud Run.

h2c on all interfaces and $PORT by default, as Cloud Run requires.

Examples:

\b
  crgrpc serve --port 8080
  crgrpc serve --tls-cert cert.pem --tls-key key.pem
  crgrpc serve --require-token --audience https://echo-abc-uc.a.run.app
"""


def register(app: typer.Typer) -> None:
    app.command("serve", help=SERVE_HELP)(serve_cmd)


@with_options(*SERVE_OPTION_NAMES)
def serve_cmd(
    *,
    host: str,
    port: Optional[int],
    tls_cert: Optional[Path],
    tls_key: Optional[Path],
    reflection: bool,
    require_token: bool,
    audience: Optional[str],
    certs: Optional[str],
    allow_email: list[str],
) -> None:
    from .console import current_env

    env = current_env()
    if (tls_cert is None) != (tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    if require_token and not audience:
        raise UsageError("--require-token needs --audience", "the service's URL, e.g. https://echo-abc-uc.a.run.app")
    if port is None:
        port_env = os.environ.get("PORT", "8080")
        if not port_env.isdigit():
            raise UsageError(f"invalid $PORT {port_env!r}")
        port = int(port_env)
    for path, flag in ((tls_cert, "--tls-cert"), (tls_key, "--tls-key")):
        if path is not None and not path.is_file():
            raise UsageError(f"cannot read {flag} {str(path)!r}")
    interceptors = []
    if require_token:
        from ..demo.tokencheck import TokenCheck

        assert audience is not None
        interceptors.append(
            TokenCheck(audience=audience, certs=certs, allowed_emails=allow_email or ())
        )
    from ..demo.server import build_server

    try:
        running = build_server(
            host, port, tls_cert=tls_cert, tls_key=tls_key, reflection=reflection,
            interceptors=interceptors,
        )
    except (OSError, RuntimeError) as e:
        if host == "::":  # no IPv6 here: all IPv4 interfaces
            host = "0.0.0.0"
            running = build_server(
                host, port, tls_cert=tls_cert, tls_key=tls_key, reflection=reflection,
                interceptors=interceptors,
            )
        else:
            raise UsageError(f"cannot listen on {host}:{port}: {e}") from None
    env.stdout.write(f"listening on {running.address}\n")
    env.stdout.flush()
    import signal

    def _stop(signum: int, frame: object) -> None:
        running.server.stop(grace=2)

    signal.signal(signal.SIGTERM, _stop)  # Cloud Run's stop: calls get 2 s, exit 0
    try:
        running.server.wait_for_termination()
    except KeyboardInterrupt:
        # Ctrl-C: calls in flight get a second (a second Ctrl-C cuts it short), then
        # crgrpc ends quietly as interrupted: by SIGINT from the console script
        # (cli/main.run), which a shell reports as 130 and which stops its loop.
        try:
            running.server.stop(grace=1).wait()
        except KeyboardInterrupt:
            running.server.stop(grace=None)
        raise typer.Exit(ExitCode.INTERRUPTED) from None
