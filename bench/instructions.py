"""Start-up cost in instructions: the same work as bench/run.py's unary group,
counted by valgrind's callgrind instead of timed.

Wall time on a shared 2-core machine swings by ±30% between runs of one
command; an instruction count does not (±0.1%), so it shows what a change to
start-up really saves, and where the rest of the cost is. Each row is one
whole process on the same local Echo server:

- python: the interpreter starting and stopping (`python -c pass`), paid by all;
- A: the raw grpcio client with generated stubs (bench/baseline_a.py unary);
- crgrpc cold (reflection, --no-schema-cache) and warm (schema cache);
- A's imports alone, and A's imports plus typer: typer's own price, the floor
  any typer (or Click) command line pays over A.

    python bench/instructions.py [--markdown FILE] [--json FILE]

Instructions are not time: system calls, page faults and cache misses are not
counted, so the wall-time ratio is smaller than the instruction ratio (about
two thirds of the excess, measured here). Needs valgrind; without it the
script says so and exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers

BASELINE = Path(__file__).resolve().parent / "baseline_a.py"
A_IMPORTS = (
    "import grpc, grpc.experimental, argparse, json; from google.protobuf import json_format; "
    "from cloudrun_grpc_cli.demo import echo_pb2, echo_pb2_grpc"
)
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


class Row(NamedTuple):
    name: str
    instructions: int


def count(argv: list[str], env: dict[str, str], valgrind: str) -> int:
    """Instructions of the whole process argv (its threads included), by callgrind."""
    proc = subprocess.run(
        [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
        capture_output=True, text=True, env=env, timeout=600, check=False,
        stdin=subprocess.DEVNULL,
    )
    found = _COLLECTED.search(proc.stderr)
    if proc.returncode != 0 or found is None:
        raise SystemExit(f"{argv[:4]} failed under valgrind (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return int(found.group(1))


def measure(valgrind: str, only: set[str] | None = None) -> list[Row]:
    peers.repo_on_path()
    py = sys.executable
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="crgrpc-instr-")))
        env = peers.child_env(tmp)
        echo = peers.start_echo(stack, env)
        call = [py, "-m", "cloudrun_grpc_cli", "call", echo.address, "--plaintext",
                "echo.EchoServer/SayHello", "-d", '{"name": "bench"}', "-o", "json"]
        # Each command once before counting: .pyc files written, the schema cache warm.
        for argv in ([py, str(BASELINE), "unary", echo.address], call):
            subprocess.run(argv, env=env, capture_output=True, timeout=120, check=True)
        cases = [
            ("python -c pass", [py, "-c", "pass"]),
            ("A: grpcio + stubs, unary", [py, str(BASELINE), "unary", echo.address]),
            ("crgrpc call -o json (reflection, no schema cache)", [*call, "--no-schema-cache"]),
            ("crgrpc call -o json (warm schema cache)", call),
            ("A's imports", [py, "-c", A_IMPORTS]),
            ("A's imports + typer", [py, "-c", A_IMPORTS + "; import typer"]),
        ]
        return [Row(name, count(argv, env, valgrind)) for name, argv in cases
                if only is None or name in only]


def report(rows: list[Row]) -> str:
    by = {r.name: r.instructions for r in rows}
    a = by.get("A: grpcio + stubs, unary")
    if a is None:  # --only without A: the counts alone
        return "".join(f"- {r.name}: {r.instructions / 1e6:.1f} M instructions\n" for r in rows)
    lines = ["| process | instructions | / A |", "|---|---:|---:|"]
    lines += [f"| {r.name} | {r.instructions / 1e6:.1f} M | {r.instructions / a:.3f}× |" for r in rows]
    if len(by) < 6:
        return "\n".join(lines) + "\n"
    typer_cost = by["A's imports + typer"] - by["A's imports"]
    cold = by["crgrpc call -o json (reflection, no schema cache)"]
    lines += [
        "",
        f"- typer's import over A's: {typer_cost / 1e6:.1f} M instructions, "
        f"{typer_cost / a:.1%} of A's whole process.",
        f"- crgrpc cold over A: {(cold - a) / 1e6:.1f} M ({cold / a - 1:.1%}); "
        f"without typer's import {(cold - a - typer_cost) / 1e6:.1f} M.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--markdown", type=Path, help="write the table here too")
    p.add_argument("--json", type=Path, help="write the counts here as JSON")
    p.add_argument("--only", action="append", metavar="NAME",
                   help="count only this row (repeatable; the test suite counts one)")
    args = p.parse_args()
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("valgrind is not installed: no instruction counts (apt-get install valgrind)")
        return 0
    rows = measure(valgrind, set(args.only) if args.only else None)
    text = report(rows)
    print(text, end="")
    if args.markdown:
        args.markdown.write_text(text)
    if args.json:
        args.json.write_text(json.dumps({r.name: r.instructions for r in rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
