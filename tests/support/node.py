"""The grpc-js test server's npm packages (tests/node), installed on first use.

`node_modules` is a session fixture: when tests/node/node_modules is missing
and npm is there it runs `npm ci` in tests/node once (under a file lock, so
that two pytest processes of one checkout do not install at once), so the
README's `python -m pytest -q` runs the node tests too. It skips only when
node or npm is absent (with the reason); a failing `npm ci` fails the tests
that need it, with npm's own last lines.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).resolve().parent.parent / "node"
NPM_CI_TIMEOUT = 600


def installed() -> bool:
    """Whether every dependency of tests/node/package.json is in node_modules."""
    deps = json.loads((NODE_DIR / "package.json").read_text(encoding="utf-8")).get("dependencies", {})
    return all((NODE_DIR / "node_modules" / name / "package.json").is_file() for name in deps)


def npm_ci() -> None:
    """`npm ci` in tests/node; pytest.fail with npm's last lines if it fails."""
    npm = shutil.which("npm")
    assert npm is not None
    try:
        proc = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=NPM_CI_TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"`npm ci` in {NODE_DIR} took more than {NPM_CI_TIMEOUT} s", pytrace=False)
    if proc.returncode != 0 or not installed():
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        pytest.fail(f"`npm ci` in {NODE_DIR} failed (exit {proc.returncode}):\n{tail}", pytrace=False)


@pytest.fixture(scope="session", name="node_modules")
def node_modules_fixture() -> Iterator[Path]:
    """tests/node/node_modules, installed with `npm ci` if missing (module docstring).

    Import `node_modules_fixture` to use the `node_modules` fixture."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the grpc-js reflection tests need Node.js and npm")
    if not installed():
        if shutil.which("npm") is None:
            pytest.skip("npm is not installed, and tests/node/node_modules is missing (`npm ci` in tests/node)")
        digest = hashlib.sha256(str(NODE_DIR).encode()).hexdigest()[:16]
        with open(Path(tempfile.gettempdir()) / f"crgrpc-npm-ci-{digest}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if not installed():  # another process may have installed it meanwhile
                    npm_ci()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    yield NODE_DIR / "node_modules"
