"""Smoke test of the benchmark scripts: each runs in ``--quick`` mode and reports.

No timing is asserted: only that each script printed its figures and wrote its
result file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"

EXPECTED = {
    "throughput": ["VADER alone:", "dataflow, store on:", "dataflow/baseline, store on:"],
    "routing": ["10 queries:", "1,000 queries:"],
    "latency": ["p50 latency:", "p99 latency:", "max latency:"],
    "fanout": ["connections opened:", "server RSS idle growth:"],
    "workers": ["2 processes:", "speedup, 2 processes:"],
    "hostile_sources": ["x crashes: 0", "bluesky crashes: 0", "bluesky rejected by reason:"],
}


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_every_benchmark_runs_in_quick_mode() -> None:
    """Every benchmark script runs with --quick, prints its figures and writes its JSON."""
    for name, figures in EXPECTED.items():
        result_file = BENCH / "results" / f"{name}.quick.json"
        result_file.unlink(missing_ok=True)
        done = subprocess.run(
            [sys.executable, "-m", f"bench.{name}", "--quick"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, f"{name} failed:\n{done.stderr[-3000:]}"
        for figure in figures:
            assert figure in done.stdout, f"{name} did not print {figure!r}:\n{done.stdout}"
        record = json.loads(result_file.read_text())
        assert record["quick"] is True
        assert record["targets"], f"{name} reported no targets"
