#!/usr/bin/env python3
"""`make bench`: every benchmark, one after the other, each writing its section of docs/benchmarks.md.

Benchmarks are never tests: each prints ratios against a baseline measured in the same run (the bare
NFStream meter and tshark for captures, DuckDB's bare read for Zeek logs, a plain Arrow group-by for
detections, a static page for the dashboard), because timings on a shared 2-core machine are noisy.

    .venv/bin/python scripts/bench.py [--quick]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

RUNS = {
    "pcap": [HERE / "bench_pcap.py", "--packets", "200000", "--repeat", "3"],
    "zeek": [HERE / "bench_zeek.py", "--repeat", "3"],
    "detect": [
        HERE / "bench_detect.py",
        "--rows",
        "10000000",
        "--markdown",
        str(HERE.parent / "docs" / "benchmarks.md"),
    ],
    "web": [
        HERE / "bench_web.py",
        "--flows",
        "1000000",
        "--requests",
        "30",
        "--markdown",
        str(HERE.parent / "docs" / "benchmarks.md"),
    ],
}
QUICK = {
    "pcap": ["--repeat", "1"],
    "zeek": ["--repeat", "1"],
    "detect": ["--rows", "1000000"],
    "web": ["--flows", "100000", "--requests", "10"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller inputs and single runs (a smoke test)")
    parser.add_argument("only", nargs="*", help=f"run only these benchmarks ({', '.join(RUNS)})")
    args = parser.parse_args()
    unknown = sorted(set(args.only) - set(RUNS))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(RUNS)}")
    failed = []
    for name, command in RUNS.items():
        if args.only and name not in args.only:
            continue
        argv = [sys.executable, *map(str, command)]
        if args.quick:
            argv += QUICK[name]
        print(f"== {name}: {' '.join(argv[1:])}", flush=True)
        if subprocess.run(argv, check=False).returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
