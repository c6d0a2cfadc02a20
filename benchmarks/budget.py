"""Does `--timeout-minutes` hold? Every shared dataset trained at one budget; wall time / budget.

    .venv/bin/python benchmarks/budget.py [--minutes 1] [--datasets a,b]

Two clocks per run: the flow's own (from the flow's start to the registered model, what the
budget covers) and the whole command (adding interpreter start, imports and Prefect's ephemeral
API, which start before the flow and so before its budget).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--datasets", help="comma-separated names (default: every dataset)")
    args = parser.parse_args()
    manifest = json.loads((SHARED / "manifest.json").read_text())
    wanted = set(args.datasets.split(",")) if args.datasets else None
    budget = args.minutes * 60
    print("| dataset | rows | trials | stop | search s | ensemble+refit s | register s "
          "| flow s | flow / budget | command s | command / budget |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    worst = worst_command = 0.0
    for entry in manifest:
        if wanted and entry["name"] not in wanted:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            command = [sys.executable, "-m", "flows.cli", "train", "--data",
                       str(SHARED / entry["file"]), "--target", entry["target"],
                       "--timeout-minutes", str(args.minutes), "--workdir", tmp, "--json"]
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT,
                                  env={**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
            wall = time.perf_counter() - started
        if done.returncode != 0:
            print(f"| {entry['name']} | failed: {done.stderr.strip().splitlines()[-1][:120]} |")
            continue
        out = json.loads(done.stdout)
        flow, phases = out["wall_seconds"], out["phase_seconds"]
        worst, worst_command = max(worst, flow / budget), max(worst_command, wall / budget)
        refit = phases["ensemble"] + phases["refit"] + phases["evaluate"]
        register = phases["report"] + phases["register"] + phases["describe"]
        print(f"| {entry['name']} | {entry['rows']:,} | {out['trials']} | {out['stop_reason']} | "
              f"{phases['search']:.1f} | {refit:.1f} | {register:.1f} | "
              f"{flow:.1f} | {flow / budget:.3f} | {wall:.1f} | {wall / budget:.3f} |", flush=True)
    print(f"\nworst flow wall time / budget: {worst:.3f}; worst command / budget: "
          f"{worst_command:.3f}")


if __name__ == "__main__":
    main()
