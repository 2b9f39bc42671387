#!/usr/bin/env python3
"""How instant the command line feels: ``derisk --help``, ``--version`` and a one-packet analysis.

Each is timed as a whole process against the bare interpreter start-up measured in the same run
(``python -c pass``), the commands alternating round by round so that a change in the machine's load
hits them all alike. Two measures per command, medians over the rounds: wall time, and CPU time
(user + system of the process and of every child it waited for, such as NFStream's meter), which
says what derisk itself costs on a shared machine whatever else it is doing. The one-packet analysis
runs on the first packet of the project's golden capture, with the IP data fixture installed into a
temporary data directory, into a new workspace each round: once with the compiled control graph
cached (the cache is filled before the first round, in a private folder) and once with the cache off
(``DERISK_CACHE_DIR=off``). ``--stages`` adds the CPU time of the imports an analysis pays for,
module by module, each measured in a fresh interpreter after the ones before it, with pandas held
back as ``derisk analyze`` holds it (:mod:`derisk.cli.startup`).

    .venv/bin/python scripts/bench_cli.py [--repeat 7] [--stages] [--markdown docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DERISK = Path(sys.executable).parent / "derisk"
FIXTURES = ROOT / "tests" / "fixtures"


def _timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, the process and its waited-for children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


#: Modules a one-packet analysis imports, in the order it first needs them (each row's figure is
#: what importing it adds to the ones above it).
_STAGES = (
    "derisk.cli",
    "pyarrow.compute",
    "duckdb",
    "derisk.site",
    "derisk.enrich.domains",
    "derisk.pipeline",
    "derisk.ingest.pcap",
    "nfstream",
    "derisk.analysis",
    "derisk.detect.runner",
    "derisk.report.html",
)

_STAGE_CODE = """
import importlib, sys, time

def load(name):  # as an analysis does: NFStream through its loader
    if name == "nfstream":
        from derisk.ingest.nfstream_engine import load_nfstream
        load_nfstream()
    else:
        importlib.import_module(name)

done, target = sys.argv[1:-1], sys.argv[-1]
if target == "derisk.cli":  # the first stage, before anything else
    start = time.process_time()
    load(target)
    print(time.process_time() - start)
    sys.exit(0)
load("derisk.cli")
from derisk.cli.startup import pandas_deferred

with pandas_deferred():  # pandas held back, as derisk analyze holds it back
    for name in done:
        load(name)
    start = time.process_time()
    load(target)
    print(time.process_time() - start)
"""


def _stage_costs(repeat: int) -> list[tuple[str, float]]:
    """Median CPU seconds each module of :data:`_STAGES` adds, imported after the ones before it."""
    costs: dict[str, list[float]] = {name: [] for name in _STAGES}
    for _ in range(repeat):
        for i, name in enumerate(_STAGES):
            out = subprocess.run(
                [sys.executable, "-c", _STAGE_CODE, *_STAGES[:i], name],
                check=True,
                capture_output=True,
                text=True,
            )
            costs[name].append(float(out.stdout.strip()))
    return [(name, statistics.median(values)) for name, values in costs.items()]


def _one_packet_pcap(dest: Path) -> None:
    """The global header and the first record of the golden capture (a classic pcap)."""
    data = (FIXTURES / "pcap" / "golden.pcap").read_bytes()
    endian = "<" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">"
    incl_len = struct.unpack(endian + "I", data[24 + 8 : 24 + 12])[0]
    dest.write_bytes(data[: 24 + 16 + incl_len])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--stages", action="store_true", help="Also the CPU time of each import.")
    parser.add_argument("--markdown", type=Path, default=None, help="Replace the CLI section of this file.")
    args = parser.parse_args()

    from derisk.enrich.update import update

    load_start = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="derisk-bench-cli-"))
    try:
        data_dir = tmp / "data"
        update(data_dir, source=FIXTURES / "ip-location-db")
        capture = tmp / "one.pcap"
        _one_packet_pcap(capture)
        base_env = {"DERISK_DATA_DIR": str(data_dir), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        cached = {**base_env, "DERISK_CACHE_DIR": str(tmp / "cache")}
        uncached = {**base_env, "DERISK_CACHE_DIR": "off"}
        # Fill the private cache once, outside the clock.
        subprocess.run(
            [str(DERISK), "analyze", str(capture), "--workspace", str(tmp / "warm"), "-q"],
            check=True,
            capture_output=True,
            env=cached,
        )
        runs: dict[str, list[tuple[float, float]]] = {}
        for i in range(args.repeat):
            commands: list[tuple[str, list[str], dict[str, str] | None]] = [
                ("python -c pass (baseline)", [sys.executable, "-c", "pass"], None),
                ("derisk --help", [str(DERISK), "--help"], None),
                ("derisk --version", [str(DERISK), "--version"], None),
                (
                    "derisk analyze (one packet, new workspace, graph cached)",
                    [str(DERISK), "analyze", str(capture), "--workspace", str(tmp / f"c{i}"), "-q"],
                    cached,
                ),
                (
                    "derisk analyze (one packet, new workspace, cache off)",
                    [str(DERISK), "analyze", str(capture), "--workspace", str(tmp / f"u{i}"), "-q"],
                    uncached,
                ),
            ]
            for name, cmd, env in commands:
                runs.setdefault(name, []).append(_timed(cmd, env))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    rows = [
        (name, statistics.median(w for w, _ in times), statistics.median(c for _, c in times))
        for name, times in runs.items()
    ]
    base_cpu = rows[0][2]
    lines = [
        "| command | wall s | CPU s | × interpreter (CPU) | CPU over it, s |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, wall, cpu in rows:
        lines.append(f"| {name} | {wall:.3f} | {cpu:.3f} | {cpu / base_cpu:.1f}× | {cpu - base_cpu:+.3f} |")
    if args.stages:
        lines += ["", "| import (after the rows above it) | CPU s |", "|---|---:|"]
        lines += [f"| `{name}` | {cpu:.3f} |" for name, cpu in _stage_costs(args.repeat)]
    loads = f"1-minute load average {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    table = "\n".join(lines) + f"\n\n{loads} (2 cores shared with other work: wall time follows the load)."
    print(table)
    if args.markdown is not None:
        _write_section(args.markdown, args.repeat, table)
    return 0


def _write_section(path: Path, repeat: int, table: str) -> None:
    from mdsection import replace_section

    replace_section(
        path,
        f"## Command-line start-up\n\n`python scripts/bench_cli.py --repeat {repeat} --markdown docs/benchmarks.md` "
        "(median of each; the baseline is the bare interpreter started in the same run). Targets: "
        "`--help` and `--version` under 0.3 s, a one-packet analysis under 1 s. Rounds alternate the commands; "
        "CPU is user + system time of the process and its children.\n\n" + table + "\n",
    )


if __name__ == "__main__":
    sys.exit(main())
