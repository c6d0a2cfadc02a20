"""`python -m benchmarks.peers`: run the systems over the datasets, print and save the table."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from benchmarks.peers.data import SHARED, load_manifest, write_split
from benchmarks.peers.report import markdown
from benchmarks.peers.systems import BENCH_VENV, DEFAULT_SYSTEMS, SYSTEMS, Outcome, run_system

RESULTS = Path(__file__).resolve().parents[1] / "results"


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("--datasets", type=_csv, help="names from the manifest (default: all)")
    parser.add_argument("--systems", type=_csv, default=DEFAULT_SYSTEMS,
                        help=f"default: {','.join(DEFAULT_SYSTEMS)}; also: "
                             f"{','.join(sorted(set(SYSTEMS) - set(DEFAULT_SYSTEMS)))}")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per system and dataset")
    parser.add_argument("--cores", type=int, default=2, help="cores every system is pinned to")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--from-raw", type=Path, nargs="+",
                        help="render the table from saved raw .jsonl results instead of running")
    parser.add_argument("--out", type=Path, help="the Markdown file (default: results/DATE-Bs.md)")
    parser.add_argument("--meta", action="store_true",
                        help="the 36 tables of shared/datasets/meta/, for choosing defaults "
                             "(never tune on the benchmark tables)")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    unknown = [s for s in args.systems if s not in SYSTEMS]
    if unknown:
        raise SystemExit(f"unknown system(s) {', '.join(unknown)}; "
                         f"the systems are: {', '.join(SYSTEMS)}")
    if args.from_raw:
        outcomes = [Outcome(**json.loads(line)) for path in args.from_raw
                    for line in path.read_text().splitlines() if line.strip()]
        header = [f"# Benchmark (re-rendered from {', '.join(p.name for p in args.from_raw)})"]
        systems = [s for s in SYSTEMS if any(o.system == s for o in outcomes)]
        return _write(markdown(outcomes, systems, header), args.out or RESULTS / "rerendered.md")
    if any(s in ("flaml", "autogluon", "autogluon-best") for s in args.systems) \
            and not BENCH_VENV.exists():
        raise SystemExit(f"{BENCH_VENV} does not exist; build it with `make bench-env`")
    cores = sorted(os.sched_getaffinity(0))[: args.cores]
    datasets = load_manifest(SHARED / "meta" if args.meta else SHARED, names=args.datasets)
    stamp = time.strftime("%Y-%m-%d")
    kind = "-meta" if args.meta else ""
    raw = RESULTS / "raw" / f"{time.strftime('%Y%m%d-%H%M%S')}-{args.budget:g}s{kind}.jsonl"
    raw.parent.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    outcomes: list[Outcome] = []
    notes = []
    with tempfile.TemporaryDirectory(prefix="automl-bench-") as tmp:
        for dataset in datasets:
            folder = Path(tmp) / dataset.name
            train, test, note = write_split(dataset, folder / "data", args.seed)
            notes.append(f"{dataset.name}: {note}")
            for system in args.systems:
                outcome = run_system(
                    system, dataset, train, test, budget=args.budget, seed=args.seed,
                    cores=cores, folder=folder, limit=2 * args.budget + 60,
                )
                outcomes.append(outcome)
                with raw.open("a") as handle:
                    handle.write(json.dumps(dataclasses.asdict(outcome), default=str) + "\n")
                shown = ("FAILED " + str(outcome.failure) if outcome.value is None
                         else f"{outcome.value:.4f}")
                print(f"{dataset.name:<20} {system:<13} {outcome.metric} {shown} "
                      f"wall {outcome.wall_seconds:.1f}s peak {outcome.peak_rss_mb:.0f} MB",
                      flush=True)
    header = [
        f"# Benchmark {stamp}: {args.budget:g} s budget, {len(cores)} cores (pinned {cores}), "
        f"seed {args.seed}",
        "",
        f"Command: `python -m benchmarks.peers --budget {args.budget:g} --systems "
        f"{','.join(args.systems)} --datasets {','.join(d.name for d in datasets)}`",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores; load average "
        f"{load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after (other work was running).",
        f"Peers: {_peer_versions()}",
        f"Splits: seeded 80/20; {'; '.join(notes)}.",
    ]
    _write(markdown(outcomes, args.systems, header),
           args.out or RESULTS / f"{stamp}-{args.budget:g}s.md")


def _peer_versions() -> str:
    freeze = BENCH_VENV.parent.parent / "versions.txt"
    if not freeze.exists():
        return "bench venv not built"
    wanted = ("flaml", "autogluon.tabular", "xgboost", "lightgbm", "catboost", "pandas", "torch")
    pins = [line for line in freeze.read_text().splitlines()
            if line.split("==")[0].lower() in wanted]
    return ", ".join(pins)


def _write(text: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(text)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
