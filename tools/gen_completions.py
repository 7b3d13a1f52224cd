"""Regenerate completions/crgrpc.bash, _crgrpc (zsh) and crgrpc.fish: the scripts
crgrpc serves with --show-completion and --install-completion (the templates are in
cloudrun_grpc_cli/cli/completion_scripts.py).

Run: python tools/gen_completions.py [OUT_DIR]; tests/test_completion.py fails on drift.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cloudrun_grpc_cli.cli.clickcompat import completion_script

ROOT = Path(__file__).resolve().parent.parent
SHELLS = {"bash": "crgrpc.bash", "zsh": "_crgrpc", "fish": "crgrpc.fish"}


def generate(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for shell, name in SHELLS.items():
        path = out_dir / name
        path.write_text(completion_script(shell) + "\n")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "completions"):
        print(p)
