"""Refusals at the door under CPU load: every one must exit 2 with one sentence, never a signal.

    python benchmarks/refusals.py --n 50 --busy 2

Starts BUSY processes spinning on the cores, then runs `automl train` with a wrong knob N times
back to back (cycling through several kinds of mistake), and prints how many exited with each
code and the slowest refusal.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPIN = "while True: pass"
# Refused by the configuration, before Prefect starts (about 0.4 s each on an idle machine).
MISTAKES = (
    ["--cv", "1"],
    ["--timeout-minutes", "-1"],
    ["--validation-size", "1.5"],
    ["--timeout-minutes", "0.05"],
    ["--cv", "3", "--validation-size", "0.2"],
    ["--encoding", "utf9"],
)
# Refused before Prefect since the names check (flows/precheck.py); kept apart, as --late, to
# compare with releases that refused them inside the flow.
LATE_MISTAKES = (
    ["--metric", "AUC"],
    ["--allowed-models", "DeepForest"],
)


def refuse(folder: Path, table: Path, mistake: list[str]) -> tuple[int, float, str]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "train", "--data", str(table), "--target", "y",
         *mistake], capture_output=True, text=True, cwd=folder, timeout=300)
    return done.returncode, time.monotonic() - started, done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--busy", type=int, default=2, help="spinning processes")
    parser.add_argument("--late", action="store_true",
                        help="also the mistakes found inside the flow (slower)")
    args = parser.parse_args()
    mistakes = MISTAKES + (LATE_MISTAKES if args.late else ())
    busy = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(args.busy)]
    try:
        with tempfile.TemporaryDirectory() as folder:
            table = Path(folder) / "t.csv"
            table.write_text("a,y\n" + "".join(f"{i},{i % 2}\n" for i in range(50)))
            codes: collections.Counter[int] = collections.Counter()
            slowest, odd = 0.0, []
            for i in range(args.n):
                code, seconds, err = refuse(Path(folder), table, mistakes[i % len(mistakes)])
                codes[code] += 1
                slowest = max(slowest, seconds)
                if code != 2 or len(err.strip().splitlines()) != 1:
                    odd.append((code, err[-300:]))
    finally:
        for process in busy:
            process.kill()
    print(f"{args.n} refusals with {args.busy} busy processes: exit codes {dict(codes)}; "
          f"slowest {slowest:.2f} s; not one line and exit 2: {len(odd)}")
    for code, err in odd[:5]:
        print(f"  exit {code}: {err}")


if __name__ == "__main__":
    main()
