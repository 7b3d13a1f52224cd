"""Long runs (the slow part of the suite, bounded; about a minute and a half on 2 cores):

- a bidi stream of 100,000 messages each way completes, in order, with the
  crgrpc process's peak RSS flat against a 1,000-message run;
- 200 sequential `crgrpc call`s in one shell loop all succeed against a server
  that is stopped and restarted on the same port halfway (`--retries 4`; the
  restart is shorter than the connect/retry budget).

CRGRPC_LONG_MESSAGES and CRGRPC_LONG_CALLS scale them down for a quick local run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .support.hostile import free_port, spawn_serve, stop_process

MESSAGES = int(os.environ.get("CRGRPC_LONG_MESSAGES", "100000"))
CALLS = int(os.environ.get("CRGRPC_LONG_CALLS", "200"))

# Runs a command with stdin/stdout files and reports its peak RSS (KiB): the
# only child of this wrapper is crgrpc, so RUSAGE_CHILDREN is crgrpc's.
PEAK_RSS = """
import resource, subprocess, sys
stdin, stdout, *argv = sys.argv[1:]
with open(stdin, "rb") as i, open(stdout, "wb") as o:
    code = subprocess.run(argv, stdin=i, stdout=o, stderr=subprocess.PIPE).returncode
print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def _crgrpc() -> list[str]:
    exe = Path(sys.executable).with_name("crgrpc")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "cloudrun_grpc_cli"]


def _bidi(port: int, n: int, tmp: Path) -> tuple[int, int, Path]:
    src = tmp / f"in-{n}.jsonl"
    with open(src, "w") as f:
        for i in range(n):
            f.write(f'{{"name":"m{i}"}}\n')
    out = tmp / f"out-{n}.jsonl"
    argv = [*_crgrpc(), "call", "--plaintext", f"127.0.0.1:{port}", "echo.EchoServer/SayHelloBidi", "-d", "@-"]
    r = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, str(src), str(out), *argv],
        capture_output=True, text=True, timeout=600, check=False,
    )
    code, rss = r.stdout.split()
    return int(code), int(rss), out


@pytest.mark.timeout(600)
def test_bidi_100k_each_way_with_flat_memory(tmp_path: Path) -> None:
    server, port = spawn_serve()
    try:
        small_code, small_rss, _ = _bidi(port, 1000, tmp_path)
        start = time.monotonic()
        big_code, big_rss, out = _bidi(port, MESSAGES, tmp_path)
        elapsed = time.monotonic() - start
    finally:
        stop_process(server)
    assert (small_code, big_code) == (0, 0)
    count = 0
    with open(out) as f:
        for count, line in enumerate(f, start=1):
            if count in (1, MESSAGES // 2, MESSAGES):
                assert json.loads(line) == {"message": f"Hello m{count - 1} from K_REVISION local"}
    assert count == MESSAGES
    assert big_rss < small_rss * 1.5, f"peak RSS {big_rss} KiB for {MESSAGES} vs {small_rss} KiB for 1000"
    print(f"bidi {MESSAGES}: {elapsed:.1f}s, peak RSS {big_rss} KiB (1000: {small_rss} KiB)")


@pytest.mark.timeout(600)
def test_sequential_calls_survive_a_server_restart(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "out.jsonl"
    first, _ = spawn_serve(port, env={"K_REVISION": "rev-1"})
    second: subprocess.Popen[bytes] | None = None
    crgrpc = " ".join(shutil.which(a) or a for a in _crgrpc())
    script = (
        f'for i in $(seq {CALLS}); do '
        f'{crgrpc} call --plaintext 127.0.0.1:{port} echo.EchoServer/SayHello '
        f'-d "{{\\"name\\": \\"n$i\\"}}" --retries 4 >> {out} || exit 1; done'
    )
    loop = subprocess.Popen(["bash", "-c", script], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 400
        while (not out.exists() or out.read_text().count("\n") < CALLS // 2) and loop.poll() is None:
            assert time.monotonic() < deadline, "the loop stalled"
            time.sleep(0.01)
        # Halfway: stop the server (SIGTERM, as Cloud Run does) and start it again.
        # The next crgrpc is starting now: it must wait for the server to come back.
        down = time.monotonic()
        first.send_signal(signal.SIGTERM)
        first.wait(30)
        second, _ = spawn_serve(port, env={"K_REVISION": "rev-2"})
        downtime = time.monotonic() - down
        _, err = loop.communicate(timeout=400)
    finally:
        if loop.poll() is None:
            loop.kill()
        stop_process(first)
        if second is not None:
            stop_process(second)
    assert loop.returncode == 0, err.decode()
    lines = [json.loads(ln)["message"] for ln in out.read_text().splitlines()]
    assert len(lines) == CALLS
    revisions = [m.rsplit(" ", 1)[1] for m in lines]
    assert [m.split()[1] for m in lines] == [f"n{i}" for i in range(1, CALLS + 1)]
    # Every call answered by the old server, then every one by the new.
    switch = revisions.index("rev-2")
    assert set(revisions[:switch]) == {"rev-1"} and set(revisions[switch:]) == {"rev-2"}
    assert downtime < 8, f"the restart took {downtime:.1f}s: longer than the retry budget"
