"""`crgrpc doctor`: check what a call to TARGET would meet, from credentials to health."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import CrgrpcError
from .options import CommonOptions, common_options

DOCTOR_HELP = """Check what a call to TARGET would meet, one thing at a time.

credentials; then what the Cloud Run Admin API says of the service (for a
run:// target or a https://SERVICE-PROJECTNUMBER.REGION.run.app URL):
service, token, ingress, invoker, iap, http2, timeout; then connect (DNS,
TCP, TLS, ALPN h2, through any proxy), reflection and health. Each check
is ok, warn, fail or skip, with a hint. On a terminal a table; in a pipe
one JSON object per check and line: {"check", "result", "detail", "hint"}.

Exit 0 when no check failed (warnings allowed); otherwise the code the real
call would meet for the first failed check: 3 no credentials, 4 service not
found or no connection, 80 a token the service would refuse, 71 no
roles/run.invoker binding.

Examples:

\b
  crgrpc doctor run://us-central1/echo
  crgrpc doctor run://my-project/europe-west1/echo -o json | jq -r 'select(.result != "ok")'
  crgrpc doctor https://echo-123456789.us-central1.run.app --key-file sa.json
  crgrpc doctor localhost:8080 --plaintext
"""

MODES = ("pretty", "json")


class DoctorFailed(CrgrpcError):
    """A check failed: the exit code is the one the real call would meet."""

    def __init__(self, message: str, code: int, *hints: str) -> None:
        super().__init__(message, *hints)
        self.code = code

    @property
    def exit_code(self) -> int:  # type: ignore[override]
        return self.code


def register(app: typer.Typer) -> None:
    app.command("doctor", help=DOCTOR_HELP)(doctor_cmd)


@common_options
def doctor_cmd(
    target: Annotated[str, typer.Argument(metavar="TARGET", help="run://[[PROJECT/]REGION/]SERVICE, a run.app URL, host[:port], https://host, or a named target.")],
    *,
    opts: CommonOptions,
) -> None:
    from ..core.doctor import Check, exit_code, run_doctor
    from ..render.progress import make_progress
    from .console import write_json_lines
    from .runner import prepare

    tgt, settings, env = prepare(target, opts, allowed_modes=MODES)
    mode = settings.output.mode

    def emit(check: Check) -> None:
        if mode == "json":
            write_json_lines(env, [check.to_json()])

    progress = make_progress(env, mode)
    with progress.stage(f"checking {tgt.raw}…"):
        checks = run_doctor(tgt, settings, emit)
    if mode != "json":
        from ..render.doctor import print_doctor

        print_doctor(env, tgt.raw, checks)
    code = exit_code(checks)
    if code:
        failed = [c for c in checks if c.result == "fail"]
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        first = failed[0]
        raise DoctorFailed(
            f"doctor: the {first.check} check failed{more}: {first.detail}", code,
            *([first.hint] if first.hint else []),
        )
