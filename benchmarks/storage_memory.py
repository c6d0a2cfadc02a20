"""Peak memory of reading the largest shared dataset from S3 against reading it from disk.

Each read runs in a fresh subprocess through tasks.data.storage.read_table. The child imports
everything, reads, and reports its ru_maxrss right after the read (measuring the DataFrame's deep
size afterwards allocates more than the read did), its RSS just before the read and the
DataFrame's size. The interpreter and imports peak near 280 MB, above what reading the shipped
table costs, so the table is also stacked SCALE times, where the read's own peak shows. S3 is a
moto server on 127.0.0.1, as in the tests. (Clearing the peak after the imports does not work:
any thread that exits folds its peak back into ru_maxrss.)

    .venv/bin/python benchmarks/storage_memory.py
"""

from __future__ import annotations

import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
BUCKET = "bench"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
               "AWS_DEFAULT_REGION": "us-east-1"}
MB = 1024 * 1024
SCALE = 10


def _child(url: str, endpoint: str) -> None:
    """Import everything first, so the peak before the read is the interpreter's, then read."""
    import adlfs  # noqa: F401 - same imports for every source
    import s3fs  # noqa: F401

    from tasks.data.storage import read_table

    before = _rss()
    options = {"client_kwargs": {"endpoint_url": endpoint}} if url.startswith("s3://") else None
    frame = read_table(url, storage_options=options)
    # The peak first: measuring the frame's deep size allocates more than the read did.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"before": before, "peak": peak, "rows": len(frame),
                      "frame": int(frame.memory_usage(deep=True).sum())}))


def _rss() -> int:
    """Resident bytes now (below the imports' peak: they leave freed heap a read may reuse)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _measure(url: str, endpoint: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", url, endpoint], capture_output=True, text=True,
        cwd=ROOT, env={**os.environ, **CREDENTIALS, "PYTHONPATH": str(ROOT)},
    )
    if done.returncode != 0:
        raise SystemExit(f"reading {url} failed in the child: {done.stderr[-2000:]}")
    report = json.loads(done.stdout)
    return {k: v / MB if k != "rows" else v for k, v in report.items()}


def main() -> None:
    import boto3
    import pandas as pd
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    largest = max(DATASETS.glob("*.parquet"), key=lambda p: p.stat().st_size)
    table = pd.read_parquet(largest)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="bench", aws_secret_access_key="bench")
        s3.create_bucket(Bucket=BUCKET)
        with tempfile.TemporaryDirectory() as tmp:
            # The table as shipped, then stacked SCALE times so one copy more would show.
            big = pd.concat([table] * SCALE, ignore_index=True)
            files = [largest, Path(tmp) / f"{largest.stem}.csv",
                     Path(tmp) / f"{largest.stem}_x{SCALE}.parquet",
                     Path(tmp) / f"{largest.stem}_x{SCALE}.csv"]
            table.to_csv(files[1], index=False)
            big.to_parquet(files[2], index=False)
            big.to_csv(files[3], index=False)
            del big
            rows = []
            for local in files:
                s3.upload_file(str(local), BUCKET, local.name)
                disk = _measure(str(local), endpoint)
                remote = _measure(f"s3://{BUCKET}/{local.name}", endpoint)
                rows.append((local.name, local.stat().st_size / MB, disk, remote))
    finally:
        server.stop()
    _print(largest.stem, rows)


def _print(name: str, rows: list) -> None:
    print(f"largest shared dataset: {name} ({rows[0][2]['rows']} rows)")
    print("| file | file MB | DataFrame MB | source | peak RSS MB (ru_maxrss) | RSS before read MB "
          "| peak above RSS before MB |")
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: |")
    for file, size, disk, remote in rows:
        for source, m in (("disk", disk), ("S3 (moto)", remote)):
            print(f"| {file} | {size:.2f} | {m['frame']:.1f} | {source} | {m['peak']:.0f} "
                  f"| {m['before']:.0f} | {m['peak'] - m['before']:.1f} |")
        ratio = remote["peak"] / disk["peak"]
        added = (remote["peak"] - remote["before"]) / max(disk["peak"] - disk["before"], 0.1)
        print(f"| {file} | | | S3/disk | {ratio:.2f} | | {added:.2f} |")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3])
    else:
        main()
