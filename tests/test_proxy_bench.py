"""The proxy's benchmark (bench/proxy.py) runs end to end, with tiny counts.

Proves that it works, not how fast anything is: no timing threshold is checked,
and the script exits 0 whatever it measured (it is run without --strict).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "bench" / "proxy.py"


def test_the_proxy_bench_runs_with_tiny_counts(tmp_path: Path) -> None:
    out, md = tmp_path / "proxy.json", tmp_path / "proxy.md"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--rounds", "1", "--unary", "20", "--stream", "50",
         "--rss-small", "10", "--rss-large", "50", "--json", str(out), "--markdown", str(md)],
        capture_output=True, text=True, timeout=240, check=False, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(out.read_text())
    targets = {t["key"]: t for t in results["targets"]}
    assert set(targets) == {"P1", "P2", "P3"}
    for t in targets.values():
        assert t["result"] in ("PASS", "FAIL")
        assert f"{t['result']}: {t['key']}." in proc.stdout
    assert targets["P2"]["value"] > 0 and targets["P3"]["value"] > 0
    measured = [r["measured"] for r in results["rows"]]
    assert "unary latency, direct (20 calls)" in measured
    assert "unary latency, proxy (20 calls)" in measured
    assert "sync-API forwarder: latency added per unary call (reported)" in measured
    assert "grpc.aio forwarder: latency added per unary call (reported)" in measured
    assert "proxy on asyncio's loop: stream / direct (reported)" in measured
    assert md.read_text().startswith("## Machine")
    assert any(n.startswith("the proxy logged ") for n in results["notes"])
