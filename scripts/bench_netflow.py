#!/usr/bin/env python3
"""Benchmark: reading nfdump files (NetFlow v9 records) against nfdump's own bare read.

Builds the input with nfdump's tools (not timed): NetFlow v9 datagrams of distinct records
(``tests/netflow_packets.py``) are sent over 127.0.0.1 to ``nfcapd``, which writes a base file;
``nfdump -R`` then merges copies of it into files of each size (the copies repeat the records, which
is all a read measures). Then, in child processes, alternating, repeated:

* **baselines**: ``nfdump -r FILE -q -N -6 -o fmt:...`` with derisk's ``fmt:`` format, and
  ``nfdump -r FILE -q -N -o pipe``, to /dev/null: what nfdump alone costs to decode and print the
  records in each of the two formats derisk reads;
* **derisk**: :func:`derisk.ingest.netflow.read_nfcapd` over the file: the nfdump check, the read,
  Arrow parsing and the pairing of directions into flows;
* **collector**: the decoding of ``derisk collect`` (:class:`derisk.ingest.netflow_decode.Decoder`,
  vectorised with NumPy) over generated v5, v9 and IPFIX datagrams, and the pairing, without the
  socket; against NumPy's bare ``frombuffer`` of the same bytes and the previous decoder (the
  ``netflow`` package, record by record: tests/netflow_reference.py).

Each child reports wall time and its peak RSS (VmHWM), so memory growth with input size shows.
Results are printed and written to ``docs/benchmarks.md`` under ``## NetFlow ingest``. Run:

    .venv/bin/python scripts/bench_netflow.py [--sizes 250000,1000000] [--repeat 3] [--datagrams 10000]
        [--no-write] [--collector-only]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "## NetFlow ingest"
BASE_RECORDS = 50_000
T0 = 1_772_438_400


def _peak_kib() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def child(kind: str, path: str) -> None:
    """One measurement. Imports come before the clock (pyarrow's first conversion of Python values
    imports pandas, 0.5-0.9 s here): start-up is measured by ``scripts/bench_cli.py``, not here."""
    import pyarrow as pa

    from derisk.ingest import netflow
    from derisk.ingest.netflow import _FORMAT

    pa.array([0])  # the lazy import of pandas, as every derisk command pays it once
    cpu = sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
              for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))  # fmt: skip
    start = time.perf_counter()
    if kind in ("nfdump", "pipe"):
        with open(os.devnull, "wb") as sink:
            flag = "-R" if Path(path).is_dir() else "-r"
            out = ["-6", "-o", _FORMAT] if kind == "nfdump" else ["-o", "pipe"]
            subprocess.run(["nfdump", "-q", "-N", flag, path, *out], stdout=sink, check=True)
        rows = 0
    else:
        netflow._PIPE = kind == "derisk"  # "derisk-fmt": the same read through nfdump's fmt: output
        rows = sum(batch.num_rows for batch in netflow.read_nfcapd(Path(path)))
    seconds = time.perf_counter() - start
    cpu = sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
              for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) - cpu  # fmt: skip
    print(json.dumps({"seconds": seconds, "cpu": cpu, "flows": rows, "peak_kib": _peak_kib()}))


def _datagrams(count: int, version: int) -> list[bytes]:
    """``count`` datagrams of 30 distinct records each (v9 and IPFIX: a template every 20th)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from netflow_packets import Rec, ipfix, v5, v9

    rng = random.Random(3)
    out = []
    for n in range(count):
        recs = [
            Rec(
                f"10.0.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                f"93.{rng.randrange(256)}.0.1",
                1024 + (n * 30 + i) % 60000,
                443,
                6,
                10,
                5_000,
                T0 * 1000 + 1_000 if version == 10 else 1_000,
                T0 * 1000 + 1_900 if version == 10 else 1_900,
            )
            for i in range(30)
        ]
        if version == 5:
            out.append(v5(recs, unix_secs=T0, uptime_ms=10_000_000, seq=n))
        elif version == 9:
            out.append(v9(recs, unix_secs=T0, uptime_ms=10_000_000, template=n % 20 == 0, seq=n))
        else:
            out.append(ipfix(recs, export_secs=T0, template=n % 20 == 0, seq=n))
    return out


def collector_rates(datagrams: int, repeat: int) -> list[dict[str, Any]]:
    """Records per second through derisk collect's decoding and pairing (no socket), per version.

    Baselines in the same run: NumPy's bare ``frombuffer`` of the same datagrams' record bytes
    (what any decoder must at least touch), and the collector's previous decoder (the ``netflow``
    package, record by record; tests/netflow_reference.py) with its table building.
    """
    sys.path.insert(0, str(ROOT / "tests"))
    import numpy as np
    import pyarrow as pa

    import netflow_reference as reference
    from derisk.ingest.netflow_decode import Decoder, to_table
    from derisk.ingest.netflow_pairs import pair_records

    rows = []
    for version, name in ((5, "v5"), (9, "v9"), (10, "IPFIX")):
        packets = _datagrams(datagrams, version)
        pair_records(to_table(Decoder().decode(packets[0], "127.0.0.1")))  # imports, outside the timing
        head = {5: 24, 9: 24, 10: 20}[version]

        def bare(packets: list[bytes] = packets, head: int = head) -> int:
            return sum(len(np.frombuffer(p, np.uint8, offset=head)) for p in packets)

        def ours(packets: list[bytes] = packets) -> int:
            decoder = Decoder()
            chunks = [c for p in packets for c in decoder.decode(p, "127.0.0.1")]
            table: pa.Table = pair_records(to_table(chunks))
            return int(table.num_rows)

        def previous(packets: list[bytes] = packets) -> int:
            decoder = reference.Decoder()
            records = [r for p in packets for r in decoder.decode(p, "127.0.0.1")]
            table: pa.Table = pair_records(reference.table(records))
            return int(table.num_rows)

        timing: dict[str, float] = {}
        for label, fn in (("bare", bare), ("ours", ours), ("previous", previous)):
            runs = []
            for _ in range(repeat if label != "previous" else 1):
                start = time.perf_counter()
                fn()
                runs.append(time.perf_counter() - start)
            timing[label] = statistics.median(runs)
        records = datagrams * 30
        assert ours() == previous() == records
        rows.append({"version": name, "records": records, **timing})
        print(json.dumps(rows[-1]), flush=True)
        if version == 10:  # the same messages as an IPFIX file (RFC 5655), read by derisk analyze's reader
            rows.append(_ipfix_file_rate(packets, timing["bare"], timing["previous"], repeat))
            print(json.dumps(rows[-1]), flush=True)
    return rows


def _ipfix_file_rate(packets: list[bytes], bare: float, previous: float, repeat: int) -> dict[str, Any]:
    """Records per second through :func:`derisk.ingest.ipfix_file.read_ipfix_file` (the file read,
    the decoding and the pairing) over the IPFIX messages written one after another to a file."""
    from derisk.ingest.ipfix_file import read_ipfix_file

    with tempfile.TemporaryDirectory(prefix="derisk-bench-ipfix-") as tmp:
        path = Path(tmp) / "export.ipfix"
        path.write_bytes(b"".join(packets))
        runs = []
        for _ in range(repeat):
            start = time.perf_counter()
            flows = sum(batch.num_rows for batch in read_ipfix_file(path))
            runs.append(time.perf_counter() - start)
    assert flows == len(packets) * 30
    return {
        "version": "IPFIX file",
        "records": flows,
        "bare": bare,
        "ours": statistics.median(runs),
        "previous": previous,
    }


def _run(kind: str, path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(path)], capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_base(work: Path) -> Path:
    """An nfcapd file of BASE_RECORDS distinct v9 records (connections in both directions)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from netflow_packets import Rec, v9

    out = work / "base"
    out.mkdir()
    port = _free_port()
    nfcapd = subprocess.Popen(
        ["nfcapd", "-b", "127.0.0.1", "-p", str(port), "-w", str(out), "-t", "3600", "-B", "16777216"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1)
    rng = random.Random(7)
    recs: list[Rec] = []
    for i in range(BASE_RECORDS // 2):
        inside = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        outside = f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        sport, dport = 1024 + i % 60000, rng.choice([443, 80, 53, 8883, 123])
        first = 1_000 + i
        recs.append(Rec(inside, outside, sport, dport, 6, 10, 5_000, first, first + 900))
        recs.append(Rec(outside, inside, dport, sport, 6, 12, 90_000, first + 5, first + 905))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for n, at in enumerate(range(0, len(recs), 30)):
            s.sendto(v9(recs[at : at + 30], unix_secs=T0, uptime_ms=10_000_000, seq=n), ("127.0.0.1", port))
            if n % 50 == 0:
                time.sleep(0.005)
    time.sleep(1)
    nfcapd.terminate()
    nfcapd.wait()
    files = [f for f in out.iterdir() if f.name.startswith("nfcapd.2")]
    if len(files) != 1:
        raise SystemExit(f"expected one nfcapd file, got {files}")
    return files[0]


def make_size(work: Path, base: Path, records: int, base_records: int) -> tuple[Path, Path]:
    """A file of about ``records`` records, and a directory of the base files it was merged from."""
    copies = work / f"copies-{records}"
    copies.mkdir()
    for i in range(max(1, round(records / base_records))):
        (copies / f"nfcapd.2026030208{i:02d}").symlink_to(base)
    out = work / f"nfcapd.{records}"
    subprocess.run(["nfdump", "-R", str(copies), "-w", str(out)], check=True, capture_output=True)
    return out, copies


def count_records(path: Path) -> int:
    text = subprocess.run(["nfdump", "-v", str(path)], capture_output=True, text=True, check=True).stdout
    for line in text.splitlines():
        if line.startswith("Records"):
            return int(line.split(":")[1])
    raise SystemExit(f"nfdump -v gave no record count for {path}")


def write_section(text: str) -> None:
    from mdsection import replace_section  # scripts/ is on the path when this script runs

    replace_section(DOCS, text)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="250000,1000000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--datagrams", type=int, default=10_000)
    parser.add_argument("--collector-only", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--child", nargs=2)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    if args.collector_only:  # printed only: the section needs the nfdump part too
        collector_rates(args.datagrams, args.repeat)
        return
    if shutil.which("nfcapd") is None:
        raise SystemExit("needs nfdump (scripts/system-deps)")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-netflow-") as tmp:
        work = Path(tmp)
        base = make_base(work)
        base_records = count_records(base)
        for size in (int(s) for s in args.sizes.split(",")):
            merged, copies = make_size(work, base, size, base_records)
            records = count_records(merged)
            files = len(list(copies.iterdir()))
            for label, path in (("one file", merged), (f"{files} files", copies)):
                runs: dict[str, list[dict[str, float]]] = {
                    "nfdump": [],
                    "pipe": [],
                    "derisk": [],
                    "derisk-fmt": [],
                }
                for _ in range(args.repeat):
                    for kind in runs:
                        runs[kind].append(_run(kind, path))
                rows.append(
                    {
                        "records": records,
                        "input": label,
                        "mb": merged.stat().st_size / 1e6,
                        "bare": statistics.median(r["seconds"] for r in runs["nfdump"]),
                        "pipe": statistics.median(r["seconds"] for r in runs["pipe"]),
                        "ours": statistics.median(r["seconds"] for r in runs["derisk"]),
                        "ours_fmt": statistics.median(r["seconds"] for r in runs["derisk-fmt"]),
                        "cpu": statistics.median(r["cpu"] for r in runs["derisk"]),
                        "pipe_cpu": statistics.median(r["cpu"] for r in runs["pipe"]),
                        "flows": int(runs["derisk"][0]["flows"]),
                        "peak": max(r["peak_kib"] for r in runs["derisk"]) / 1024,
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    rates = collector_rates(args.datagrams, args.repeat)
    lines = [
        SECTION,
        "",
        f"`.venv/bin/python scripts/bench_netflow.py --sizes {args.sizes} --repeat {args.repeat}` "
        f"({datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, {os.cpu_count()} cores, nfdump "
        f"{subprocess.run(['nfdump', '-V'], capture_output=True, text=True).stdout.split()[-1]}); "
        "NetFlow v9 records sent by loopback to nfcapd, copies merged with `nfdump -R`; medians of "
        f"{args.repeat}, child processes. Baselines: nfdump printing the same records to /dev/null "
        "(`-r FILE`, or `-R DIR` for the directory of the merged copies) in the `fmt:` format derisk "
        "read before (and still reads for files with reverse counters or several exporters), and in its "
        "`pipe` format, which derisk reads now. Imports come before the clock (pyarrow's first conversion "
        "imports pandas, 0.5-0.9 s; start-up is `scripts/bench_cli.py`'s); CPU is user + system time of the "
        "process and its nfdump children. derisk: `read_nfcapd` (nfdump's check and exporter "
        "list, the probe, the read, Arrow parsing, pairing; in a directory the next file's nfdump runs "
        "while this one is read); derisk via fmt: is the same read forced through `fmt:` (the reader "
        "before this change, with the fixed-count pairing cuts).",
        "",
        "| records | input | size | nfdump fmt: | nfdump pipe | derisk via fmt: | derisk read | records/s (derisk) "
        "| derisk / fmt: | derisk / pipe | CPU s nfdump pipe | CPU s derisk | records per CPU s (derisk) | flows "
        "| peak RSS |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['records']:,} | {r['input']} | {r['mb']:.0f} MB | {r['bare']:.2f} s | {r['pipe']:.2f} s "
            f"| {r['ours_fmt']:.2f} s | {r['ours']:.2f} s | {r['records'] / r['ours'] / 1000:,.0f} k | {r['ours'] / r['bare']:.2f}× "
            f"| {r['ours'] / r['pipe']:.2f}× | {r['pipe_cpu']:.2f} | {r['cpu']:.2f} "
            f"| {r['records'] / r['cpu'] / 1000:,.0f} k | {r['flows']:,} "
            f"| {r['peak']:.0f} MiB |"
        )
    lines += [
        "",
        f"`derisk collect`'s decoding and pairing (no socket; `--datagrams {args.datagrams}`, 30 "
        "records each, v9/IPFIX with the template in every 20th), median of the repeats; baselines in "
        "the same run: NumPy's bare `frombuffer` of the datagrams, and the previous decoder (the "
        "`netflow` package record by record, tests/netflow_reference.py, one run):",
        "",
        "| version | records | derisk collect | records/s | bare frombuffer | previous decoder | "
        "previous records/s | speed-up |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rates:
        lines.append(
            f"| {r['version']} | {r['records']:,} | {r['ours']:.3f} s | {r['records'] / r['ours'] / 1000:,.0f} k "
            f"| {r['bare'] * 1000:.1f} ms | {r['previous']:.2f} s | {r['records'] / r['previous'] / 1000:,.1f} k "
            f"| {r['previous'] / r['ours']:.0f}× |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        write_section(text)


if __name__ == "__main__":
    main()
