"""bench/submit_bench.py runs end to end on the tiny random model: the real `glassbox serve` on its
embedded default, traces submitted and followed to their graphs, and the worker's per-job
timings found in the server's log."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_submit_bench_quick_reports_every_trace_with_its_split(tmp_path):
    out = tmp_path / "run.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "submit_bench.py"), "--quick", "--poll-s", "0.02",
         "--json", str(out), "--max-seconds", "240"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "**Submit -> graph over 2 prompts: p50" in proc.stdout
    assert "Cold first trace" in proc.stdout
    data = json.loads(out.read_text())
    traces = data["traces"] + [data["cold"]]
    assert len(traces) == 3
    for t in traces:
        assert set(t["timings"]) == {"load_s", "attribution_s", "prune_s", "export_s", "store_s"}
        assert 0 < t["run_s"] <= t["wall_s"] and t["n_tokens"] >= 6 and t["links"] > 0
        assert sum(t["timings"].values()) <= t["wall_s"]  # the parts happen while the user waits
        assert t["max_feature_nodes"] == 1000  # the server's default
