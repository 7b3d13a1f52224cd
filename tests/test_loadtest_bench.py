"""bench/loadtest.py runs end to end with tiny durations (it proves the script
works, not how fast anything is: no target is checked, and it runs without --strict)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_loadtest_bench_runs(tmp_path: Path) -> None:
    out, md = tmp_path / "r.json", tmp_path / "r.md"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "loadtest.py"), "--duration", "0.5", "--warmup", "0.2",
         "--rounds", "1", "--concurrency", "4", "--server", "python", "--server-processes", "1",
         "--json", str(out), "--markdown", str(md)],
        capture_output=True, text=True, timeout=240, check=False, env=dict(os.environ),
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert [v["key"] for v in results["variants"]] == ["A", "B", "C", "B0"]
    for v in results["variants"]:
        assert len(v["runs"]) == 1 and v["rps"] > 0 and 0 < v["p50_ms"] <= v["p99_ms"]
    assert [t["key"] for t in results["targets"]] == ["workers-1", "workers-2"]
    assert all(t["result"] in ("PASS", "FAIL") and t["value"] > 0 for t in results["targets"])
    text = md.read_text()
    assert text.startswith("## crgrpc bench: unary throughput beside a hand-written grpc.aio loop\n")
    assert "| B: crgrpc bench --workers 1 |" in text
