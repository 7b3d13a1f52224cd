"""bench/cloudrun.py runs end to end with tiny counts: it works, and a warm run:// call
makes no Admin API request. No timing threshold is checked here (the script is run
without --strict); bench/CLOUDRUN.md holds the measured figure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_cloudrun_bench_runs_with_tiny_counts(tmp_path: Path) -> None:
    out, md = tmp_path / "r.json", tmp_path / "r.md"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "cloudrun.py"), "--runs", "1", "--warmup", "1",
         "--json", str(out), "--markdown", str(md)],
        capture_output=True, text=True, timeout=180, check=False, env=dict(os.environ),
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    results = json.loads(out.read_text())
    assert [r["runs"] for r in results["rows"]] == [1, 1]
    assert all(r["median"] > 0 for r in results["rows"])
    assert results["admin_api_requests_when_warm"] == 0
    target = results["target"]
    assert (target["key"], target["limit"]) == ("cloudrun", 1.05)
    assert target["result"] in ("PASS", "FAIL") and target["value"] > 0
    assert f"{target['result']}: cloudrun." in proc.stdout
    assert md.read_text().startswith("## run:// targets")
