"""cloudrun_grpc_cli.locust.GrpcUser in Locust's distributed mode: a headless master
and two worker processes on loopback run a small locustfile against the TLS Echo
service behind its token check. The assertions read Locust's own statistics (its
CSV files), not crgrpc's. Locust runs only in child processes: importing it here
would patch this process for gevent."""

from __future__ import annotations

import csv
import importlib.util
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.issuer import Issuer, issuer_fixture  # noqa: F401
from tests.support.load import Guarded, PeerRecorder, guarded_echo
from tests.support.tls import CertFiles, make_certs

# find_spec, not importorskip: importing Locust would patch this process for gevent.
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("locust") is None, reason="Locust is in the dev extra (crgrpc[locust])"
)

LOCUSTFILE = '''
import os

from locust import constant, task

from cloudrun_grpc_cli.locust import GrpcUser


class Echo(GrpcUser):
    wait_time = constant(0.02)
    options = {{"cacert": {ca!r}, "key_file": {key!r}, "no_token_cache": True, "timeout": 10}}

    @task(3)
    def hello(self):
        answer = self.call("SayHello", {{"name": "locust"}})
        if answer is not None and answer != {{"message": "Hello locust from K_REVISION local"}}:
            raise AssertionError(f"unexpected answer {{answer!r}}")

    @task(1)
    def stream(self):
        answers = self.call("echo.EchoServer/SayHelloStream", {{"name": "s", "count": 2}})
        if answers is not None and len(answers) != 2:
            raise AssertionError(f"unexpected answers {{answers!r}}")

    @task(1)
    def fails(self):
        self.call("SayHello", {{"name": "x", "fail_code": 3}}, name="failing")
'''


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_certs(tmp_path_factory.mktemp("locust-tls"))


def _locust(*args: str, cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "locust", *args],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env=dict(os.environ),
    )


def _stats(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    with path.open(newline="") as f:
        return {(row["Type"], row["Name"]): row for row in csv.DictReader(f)}


def test_locust_master_and_two_workers(issuer: Issuer, certs: CertFiles, tmp_path: Path) -> None:
    peers = PeerRecorder()
    with guarded_echo(issuer, certs, tmp_path, peers) as srv:
        run_distributed(srv, tmp_path)
        unary_peers = set(peers.peers)
        echo_calls = len(srv.echo_calls())
    stats = _stats(tmp_path / "out_stats.csv")
    hello = stats[("grpc", "echo.EchoServer/SayHello")]
    stream = stats[("grpc", "echo.EchoServer/SayHelloStream")]
    failing = stats[("grpc", "failing")]
    assert int(hello["Request Count"]) > 0 and int(hello["Failure Count"]) == 0
    assert int(stream["Request Count"]) > 0 and int(stream["Failure Count"]) == 0
    assert int(failing["Request Count"]) > 0
    assert failing["Failure Count"] == failing["Request Count"]  # each one reported as a failure
    assert float(hello["Average Response Time"]) > 0
    total = sum(int(stats[k]["Request Count"]) for k in stats if k[0] == "grpc")
    assert int(stats[("", "Aggregated")]["Request Count"]) == total
    assert echo_calls == total  # every call Locust counted reached the server, with a valid token
    with (tmp_path / "out_failures.csv").open(newline="") as f:
        failures = list(csv.DictReader(f))
    assert [(r["Method"], r["Name"], r["Error"]) for r in failures] == [
        ("grpc", "failing", "RpcStatusError('INVALID_ARGUMENT: fail_code 3 requested before replying')")
    ]
    with (tmp_path / "out_exceptions.csv").open(newline="") as f:
        assert list(csv.DictReader(f)) == []  # no task raised: every answer was the expected one
    assert len(unary_peers) == 2  # one connection per worker process, shared by its users
    assert len(issuer.minted) == 2  # one token per worker process, not per user or request


def run_distributed(srv: Guarded, tmp: Path) -> None:
    (tmp / "locustfile.py").write_text(textwrap.dedent(LOCUSTFILE.format(ca=str(srv.ca), key=str(srv.key_file))))
    port = _free_port()
    master = _locust(
        "-f", "locustfile.py", "--headless", "--master", "--master-bind-host", "127.0.0.1",
        "--master-bind-port", str(port), "--expect-workers", "2", "--expect-workers-max-wait", "60",
        "-u", "4", "-r", "4", "-t", "6s", "--host", srv.target, "--csv", "out", "--only-summary",
        "--exit-code-on-error", "0", "--stop-timeout", "5",
        cwd=tmp,
    )
    workers = [
        _locust("-f", "locustfile.py", "--worker", "--master-host", "127.0.0.1", "--master-port", str(port), cwd=tmp)
        for _ in range(2)
    ]
    try:
        out, _ = master.communicate(timeout=120)
        for w in workers:
            w.communicate(timeout=30)
    finally:
        for p in (master, *workers):
            if p.poll() is None:
                p.kill()
                p.wait()
    assert master.returncode == 0, out.decode(errors="replace")[-4000:]
