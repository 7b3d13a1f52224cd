"""Regenerate completions/crgrpc.{bash,zsh,fish} with Click's (typer's) completion machinery.

Run: python tools/gen_completions.py [OUT_DIR]; tests/test_completion.py fails on drift.
"""

from __future__ import annotations

import sys
from pathlib import Path

from typer._completion_shared import get_completion_script

ROOT = Path(__file__).resolve().parent.parent
SHELLS = {"bash": "crgrpc.bash", "zsh": "_crgrpc", "fish": "crgrpc.fish"}


def generate(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for shell, name in SHELLS.items():
        script = get_completion_script(prog_name="crgrpc", complete_var="_CRGRPC_COMPLETE", shell=shell)
        path = out_dir / name
        path.write_text(script + "\n")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "completions"):
        print(p)
