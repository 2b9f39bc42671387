#!/usr/bin/env python3
"""Benchmark of pcap ingest: derisk's read_pcap against the bare NFStream meter and tshark.

Generates captures with derisk's own generator (at two sizes, the smaller at least 200,000 packets),
then in one run measures, each in a fresh child process so that peak memory is its own:

* the bare NFStream meter over the file with the same options read_pcap uses, iterating flows;
* ``derisk.ingest.pcap.read_pcap`` (file check, DNS pass, metering, Arrow batches);
* ``tshark -q -z conv,ip -r FILE`` when tshark is installed (``scripts/system-deps bench``).

Each measurement is repeated (``--repeat``, alternating the tools) and the best time is kept: the
machine may be shared, and the best run is the one least disturbed. Prints a table and writes it
into docs/benchmarks.md under "## pcap ingest" (only that section is replaced).

    .venv/bin/python scripts/bench_pcap.py [--packets 200000] [--repeat 3] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## pcap ingest"


def conversations(target_packets: int) -> list[object]:
    """A mix like a site's: TLS sessions of a few dozen packets, DNS lookups, some UDP."""
    from derisk.gen.model import Conversation, DnsLookup, Exchange, TlsHello

    start = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    out: list[object] = []
    packets, i = 0, 0
    while packets < target_packets:
        client = f"10.{1 + i // 60000 % 200}.{i // 250 % 250}.{i % 250 + 1}"
        server = f"47.254.{i % 250}.{i // 250 % 200 + 1}"
        when = start + timedelta(seconds=i * 0.02)
        port = 20000 + i % 40000
        if i % 10 == 0:
            out.append(
                Conversation("udp", client, "10.0.0.53", when, port, 53,
                             dns=DnsLookup(f"h{i}.example.com", "A", (server,)))
            )  # fmt: skip
            packets += 2
        elif i % 10 == 5:
            out.append(Conversation("udp", client, server, when, port, 4433,
                                    (Exchange("c2s", 900), Exchange("s2c", 1200), Exchange("c2s", 300))))  # fmt: skip
            packets += 3
        else:
            exchanges = tuple(Exchange("c2s" if k % 2 == 0 else "s2c", 800 + k * 250) for k in range(10))
            out.append(Conversation("tcp", client, server, when, port, 443, exchanges,
                                    tls=TlsHello(f"h{i % 500}.example.com")))  # fmt: skip
            packets += 38
        i += 1
    return out


def generate(path: Path, target_packets: int) -> int:
    from derisk.gen.packets import write_capture

    started = time.perf_counter()
    ledger = write_capture(conversations(target_packets), path)  # type: ignore[arg-type]
    print(f"generated {path.name}: {ledger.packets:,} packets, {len(ledger):,} conversations "
          f"in {time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip
    return ledger.packets


def child(mode: str, path: Path) -> None:
    """Run one measurement in this process and print it as JSON."""
    import nfstream  # both modes start timing with NFStream (and pandas under it) already imported

    from derisk.ingest.pcap import NFSTREAM_OPTIONS, read_pcap

    flows = 0
    started = time.perf_counter()
    if mode == "bare":
        for _ in nfstream.NFStreamer(source=str(path), **NFSTREAM_OPTIONS):
            flows += 1
    elif mode == "read_pcap":
        for batch in read_pcap(path):
            flows += batch.num_rows
    else:
        raise SystemExit(f"unknown mode {mode}")
    seconds = time.perf_counter() - started
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"seconds": seconds, "flows": flows, "rss_kib": own, "children_rss_kib": kids}))


def measure(mode: str, path: Path) -> dict[str, float]:
    if mode == "tshark":
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        started = time.perf_counter()
        subprocess.run(["tshark", "-q", "-z", "conv,ip", "-r", str(path)], check=True, capture_output=True)
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        # ru_maxrss of children is the largest of any child so far: exact only when tshark is the largest.
        return {"seconds": seconds, "flows": 0, "rss_kib": peak if peak > before else float("nan")}
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(path)], check=True, capture_output=True, text=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # NFStream's meter runs in a child of the measured process; both hold memory at once.
    result["rss_kib"] = result["rss_kib"] + result["children_rss_kib"]
    return dict(result)


def section(rows: list[dict[str, object]], repeat: int) -> str:
    have_tshark = any(r["tool"] == "tshark" for r in rows)
    lines = [
        SECTION,
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `scripts/bench_pcap.py` (best of {repeat} runs, "
        "alternating tools, each in a fresh process, timed after importing NFStream) on captures the project's generator writes: TLS sessions "
        "of 38 packets, DNS lookups and UDP exchanges.",
        "",
        "| packets | tool | seconds | packets/s | vs bare NFStream | peak memory (MiB) |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['packets']:,} | {r['tool']} | {r['seconds']:.2f} | {r['pps']:,.0f} | {r['ratio']:.2f}× "
            f"| {r['mib']:.0f} |"
        )
    lines += [
        "",
        "`vs bare NFStream` is throughput relative to the bare meter on the same file (target for read_pcap: "
        "at least 0.90×). read_pcap's time includes checking the file's framing, the BPF-filtered DNS pass "
        "(NFStream with `port 53` and a dpkt decoder) and building Arrow batches. Peak memory adds the "
        "measured process and NFStream's meter process.",
    ]
    if not have_tshark:
        lines += ["", "tshark was not installed for this run (`scripts/system-deps bench` installs it)."]
    else:
        lines += ["", "tshark's peak memory is the largest child of the benchmark so far (an upper bound)."]
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    """Replace (or append) the "## pcap ingest" section of docs/benchmarks.md; other sections stay."""
    old = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Benchmarks\n"
    lines = old.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == SECTION), None)
    if start is None:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        tail = "".join(lines[end:])
        new = "".join(lines[:start]) + text + ("\n" + tail if tail else "")
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(new, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=200_000, help="smaller size (the larger is 4×)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    tools = ["bare", "read_pcap"] + (["tshark"] if shutil.which("tshark") else [])
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="derisk-bench-") as tmp:
        for target in (args.packets, args.packets * 4):
            path = Path(tmp) / f"bench-{target}.pcap"
            packets = generate(path, target)
            best: dict[str, dict[str, float]] = {}
            for run in range(args.repeat):
                for tool in tools:
                    result = measure(tool, path)
                    print(f"  run {run + 1} {tool:9s} {result['seconds']:.2f} s", flush=True)
                    if tool not in best or result["seconds"] < best[tool]["seconds"]:
                        peak = max(result["rss_kib"], best.get(tool, {}).get("rss_kib", 0))
                        best[tool] = dict(result, rss_kib=peak)
                    else:
                        best[tool]["rss_kib"] = max(best[tool]["rss_kib"], result["rss_kib"])
            bare = best["bare"]["seconds"]
            if best["bare"]["flows"] != best["read_pcap"]["flows"]:
                print(f"  warning: bare NFStream saw {best['bare']['flows']} flows, read_pcap "
                      f"{best['read_pcap']['flows']}")  # fmt: skip
            for tool in tools:
                seconds = best[tool]["seconds"]
                rows.append({
                    "packets": packets, "tool": {"bare": "bare NFStream", "read_pcap": "derisk read_pcap"}.get(
                        tool, "tshark -z conv,ip"), "seconds": seconds, "pps": packets / seconds,
                    "ratio": bare / seconds, "mib": best[tool]["rss_kib"] / 1024,
                })  # fmt: skip
    text = section(rows, args.repeat)
    print()
    print(text)
    if not args.no_write:
        write_section(text)
        print(f"written to {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
