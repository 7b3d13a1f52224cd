"""Run crgrpc in-process (main(argv, env)) or as a subprocess, and capture everything."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from cloudrun_grpc_cli.cli.main import main
from cloudrun_grpc_cli.render.env import Environment


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def lines(self) -> list[Any]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    def __repr__(self) -> str:
        return f"Result(code={self.code}, stdout={self.stdout!r}, stderr={self.stderr!r})"


def run(
    *argv: str, stdin: str = "", tty: bool = False, stdin_tty: bool = False, color: str = "never"
) -> Result:
    """crgrpc in this process; `tty` simulates a terminal on stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    env = Environment(
        stdout=out,
        stderr=err,
        stdin=io.StringIO(stdin),
        stdout_isatty=tty,
        stderr_isatty=tty,
        stdin_isatty=stdin_tty,
        color=color,
    )
    code = main(list(argv), env=env)
    return Result(code, out.getvalue(), err.getvalue())


def run_process(
    *argv: str, input: str | bytes | None = None, timeout: float = 60, env: dict[str, str] | None = None
) -> Result:
    """crgrpc as a real process (signals, pipes, import checks)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "cloudrun_grpc_cli", *argv],
        input=input.encode() if isinstance(input, str) else input,
        capture_output=True,
        check=False,
        timeout=timeout,
        env=full_env,
    )
    return Result(proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"))
