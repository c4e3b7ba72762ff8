"""Run every benchmark in turn (each prints its figures as ratios against a same-run baseline)."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = [
    "bench_sqs_server.py",
    "bench_ingest.py",
    "bench_deliver.py",
    "bench_log_bytes.py",
    "bench_cold_start.py",
    "bench_fanout.py",
    "bench_e2e.py",
    "bench_flow.py",
    "bench_revocation.py",
    "bench_console.py",
    "harness.py",
]

if __name__ == "__main__":
    failed = 0
    for name in BENCHES:
        print(f"== {name}", flush=True)
        failed |= subprocess.run([sys.executable, str(HERE / name)]).returncode
    sys.exit(failed)
