"""The benchmark script keeps working (a smoke run on a few hundred numbers, not a timing)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "bench_sync.py"


def test_benchmark_runs_and_prints_every_figure(pg_server_url: str) -> None:
    """--numbers 300 prints the floor and one row per run; a no-change re-sync writes 0 rows."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBERS_ETL_", "SINCH_"))}
    env["NUMBERS_ETL_DATABASE_URL"] = pg_server_url
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--numbers", "300"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "numbers-etl benchmark: 300 Sinch numbers from the simulator"
    assert lines[1].startswith("floor: binary COPY of 300 normalized rows")
    runs = {line.split()[0]: line.split() for line in lines[3:] if not line.startswith(" ")}
    assert sorted(runs) == ["changed", "full", "nochange"]
    written = {name: cells[8] for name, cells in runs.items()}
    assert written == {"full": "600", "nochange": "0", "changed": "9"}
