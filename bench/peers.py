"""The peers a benchmark run sets up: Echo servers, a token issuer, buf and gcloud.

Everything listens on 127.0.0.1 and is stopped when the ExitStack closes,
failures included. Child processes get an environment that keeps them on
this machine: the metadata server address points at a closed loopback port,
and HOME, XDG_CACHE_HOME, XDG_CONFIG_HOME and CLOUDSDK_CONFIG are temporary.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from harness import BenchError

REPO = Path(__file__).resolve().parent.parent
CLOSED_PORT = "127.0.0.1:9"  # discard: nothing listens there
BUF_PACKAGE = "@bufbuild/buf"
IN_NETNS = "CRGRPC_BENCH_IN_NETNS"


def repo_on_path() -> None:
    """Let the bench import tests/support (certificates, the token issuer)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


def crgrpc_on_asyncio_loop() -> list[str]:
    """`python -m cloudrun_grpc_cli` with uvloop hidden, so that its asyncio commands run
    on asyncio's own loop: what bench/proxy.py and bench/loadtest.py compare uvloop with."""
    return [sys.executable, "-c", "import sys, runpy; sys.modules['uvloop'] = None; sys.argv[0] = 'crgrpc'; "
            "runpy.run_module('cloudrun_grpc_cli', run_name='__main__')"]


def child_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The environment of every measured process: offline, isolated, no crgrpc settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CRGRPC_", "CLOUDSDK_", "GOOGLE_", "GCE_", "XDG_", "PYTHON"))
        and k not in ("NO_COLOR", "HOME", "BOTO_CONFIG")
    }
    home = tmp / "home"
    for sub in ("cache", "config", "gcloud"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(home / "cache"),
        XDG_CONFIG_HOME=str(home / "config"),
        CLOUDSDK_CONFIG=str(home / "gcloud"),
        GCE_METADATA_HOST=CLOSED_PORT,
        GCE_METADATA_IP=CLOSED_PORT,
        NO_GCE_CHECK="true",
        LANG=env.get("LANG", "C.UTF-8"),
    )
    env.update(extra)
    return env


# --- Echo servers ------------------------------------------------------------------------


@dataclass(frozen=True)
class Echo:
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def start_echo(
    stack: contextlib.ExitStack,
    env: dict[str, str],
    *,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    timeout: float = 30.0,
) -> Echo:
    """`crgrpc serve` on a free loopback port, in its own process, killed on exit."""
    cmd = [sys.executable, "-m", "cloudrun_grpc_cli", "serve", "--host", "127.0.0.1",
           "--port", "0"]
    if tls_cert is not None and tls_key is not None:
        cmd += ["--tls-cert", str(tls_cert), "--tls-key", str(tls_key)]
    proc = subprocess.Popen(
        cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )

    def stop() -> None:
        proc.kill()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()

    stack.callback(stop)
    line: list[str] = []
    reader = threading.Thread(
        target=lambda: line.append(proc.stdout.readline() if proc.stdout else ""), daemon=True
    )
    reader.start()
    reader.join(timeout)
    if not line or "listening on" not in line[0]:
        raise BenchError(f"crgrpc serve did not start: {line[0] if line else 'timeout'}")
    # drain further output so the server never blocks on a full pipe
    threading.Thread(target=lambda: proc.stdout and proc.stdout.read(), daemon=True).start()
    hostport = line[0].strip().rsplit(" ", 1)[-1]
    host, _, port = hostport.rpartition(":")
    return Echo(host.strip("[]"), int(port))


# --- the token issuer --------------------------------------------------------------------


@contextlib.contextmanager
def issuer() -> Iterator[object]:
    """tests/support/issuer.py's Issuer, running on 127.0.0.1 in this process."""
    repo_on_path()
    from tests.support.issuer import Issuer

    server = Issuer().start()
    try:
        yield server
    finally:
        server.stop()


# --- buf ---------------------------------------------------------------------------------


def tools_dir() -> Path:
    base = os.environ.get("CRGRPC_BENCH_TOOLS")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "crgrpc-bench"


def _native_buf(prefix: Path) -> Path | None:
    """The native binary the npm package ships (not its node wrapper)."""
    for candidate in sorted((prefix / "node_modules" / "@bufbuild").glob("buf-*/bin/buf")):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def find_buf(
    explicit: str | None, *, install: bool, log: Callable[[str], None] = print
) -> tuple[Path | None, str]:
    """(path to buf, note). Looks at --buf, bench/node_modules, the tools dir, then
    installs the npm package into the tools dir when `install` is set."""
    if explicit:
        path = Path(explicit)
        return (path, "") if os.access(path, os.X_OK) else (None, f"--buf {explicit} is not executable")
    for prefix in (REPO / "bench", tools_dir()):
        found = _native_buf(prefix)
        if found is not None:
            return found, ""
    on_path = shutil.which("buf")
    if on_path:
        with open(on_path, "rb") as f:
            if f.read(2) != b"#!":  # the native binary, not a node wrapper
                return Path(on_path), ""
    if not install:
        return None, "buf not found (install skipped: --no-install)"
    npm = shutil.which("npm")
    if npm is None:
        return None, "buf not found and npm is not installed"
    prefix = tools_dir()
    prefix.mkdir(parents=True, exist_ok=True)
    log(f"installing {BUF_PACKAGE} with npm into {prefix} ...")
    try:
        subprocess.run(
            [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--silent",
             BUF_PACKAGE],
            check=True, timeout=300, stdin=subprocess.DEVNULL, capture_output=True,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        return None, f"npm install {BUF_PACKAGE} failed: {exc}"
    found = _native_buf(prefix)
    return (found, "") if found else (None, f"{BUF_PACKAGE} installed no native binary")


def tool_version(cmd: list[str], env: dict[str, str]) -> str:
    try:
        out = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=60, check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return "?"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else "?"


# --- gcloud ------------------------------------------------------------------------------


def find_gcloud() -> Path | None:
    found = shutil.which("gcloud")
    return Path(found) if found else None


def gcloud_env(base: dict[str, str], key_file: Path, token_uri: str) -> dict[str, str]:
    """gcloud kept offline: a service-account key, the local token endpoint, no prompts,
    no usage reporting, no update checks, no metadata server."""
    env = dict(base)
    env.update(
        CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE=str(key_file),
        CLOUDSDK_AUTH_TOKEN_HOST=token_uri,
        CLOUDSDK_CORE_DISABLE_PROMPTS="1",
        CLOUDSDK_CORE_DISABLE_USAGE_REPORTING="true",
        CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK="true",
        CLOUDSDK_CORE_CHECK_GCE_METADATA="false",
        CLOUDSDK_METRICS_ENVIRONMENT="crgrpc-bench",
    )
    return env


# --- the network namespace ----------------------------------------------------------------


def in_netns() -> bool:
    return os.environ.get(IN_NETNS) == "1"


def only_loopback() -> bool:
    """True when this process's network namespace has no interface but lo
    (/proc/self/net/dev is per namespace; /sys/class/net is the mounter's)."""
    try:
        lines = Path("/proc/self/net/dev").read_text().splitlines()[2:]
    except OSError:
        return False
    return [line.split(":", 1)[0].strip() for line in lines] == ["lo"]


def netns_argv(argv: list[str]) -> list[str] | None:
    """The command that reruns argv inside a new network namespace with only loopback up,
    or None when that cannot be done here (no unshare, not permitted)."""
    unshare, ip = shutil.which("unshare"), shutil.which("ip")
    if unshare is None or ip is None:
        return None
    probe = subprocess.run(
        [unshare, "-n", ip, "link", "set", "lo", "up"], capture_output=True, timeout=30,
        check=False,
    )
    if probe.returncode != 0:
        return None
    script = f'{ip} link set lo up && exec "$@"'
    return [unshare, "-n", "--", "sh", "-c", script, "sh", *argv]

