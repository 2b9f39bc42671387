#!/usr/bin/env python3
"""How instant the command line feels: ``derisk --help``, ``--version`` and a one-packet analysis.

Each is timed as a whole process (median of N runs) against the bare interpreter start-up measured in
the same run (``python -c pass``), so the ratio and the difference say what derisk itself costs on
this machine whatever else it is doing. The one-packet analysis runs on the first packet of the
project's golden capture, with the IP data fixture installed into a temporary data directory.

    .venv/bin/python scripts/bench_cli.py [--repeat 7] [--markdown docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
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


def _median_seconds(cmd: list[str], repeat: int, env: dict[str, str] | None = None) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _one_packet_pcap(dest: Path) -> None:
    """The global header and the first record of the golden capture (a classic pcap)."""
    data = (FIXTURES / "pcap" / "golden.pcap").read_bytes()
    endian = "<" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">"
    incl_len = struct.unpack(endian + "I", data[24 + 8 : 24 + 12])[0]
    dest.write_bytes(data[: 24 + 16 + incl_len])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--markdown", type=Path, default=None, help="Replace the CLI section of this file.")
    args = parser.parse_args()

    from derisk.enrich.update import update

    tmp = Path(tempfile.mkdtemp(prefix="derisk-bench-cli-"))
    try:
        data_dir = tmp / "data"
        update(data_dir, source=FIXTURES / "ip-location-db")
        capture = tmp / "one.pcap"
        _one_packet_pcap(capture)
        env = {"DERISK_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"}
        base = _median_seconds([sys.executable, "-c", "pass"], args.repeat)
        rows = [("python -c pass (baseline)", base)]
        rows.append(("derisk --help", _median_seconds([str(DERISK), "--help"], args.repeat)))
        rows.append(("derisk --version", _median_seconds([str(DERISK), "--version"], args.repeat)))
        times = []
        for i in range(args.repeat):
            ws = tmp / f"ws{i}"
            start = time.perf_counter()
            subprocess.run(
                [str(DERISK), "analyze", str(capture), "--workspace", str(ws), "-q"],
                check=True,
                capture_output=True,
                env=env,
            )
            times.append(time.perf_counter() - start)
        rows.append(("derisk analyze (one packet, new workspace)", statistics.median(times)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    lines = [
        "| command | median s | × interpreter start | over it, s |",
        "|---|---:|---:|---:|",
    ]
    for name, seconds in rows:
        lines.append(f"| {name} | {seconds:.3f} | {seconds / base:.1f}× | {seconds - base:+.3f} |")
    table = "\n".join(lines)
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
        "`--help` and `--version` under 0.3 s, a one-packet analysis under 1 s.\n\n" + table + "\n",
    )


if __name__ == "__main__":
    sys.exit(main())
