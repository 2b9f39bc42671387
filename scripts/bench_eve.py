#!/usr/bin/env python3
"""Benchmark: Suricata EVE ingest (``read_eve``) against Arrow's bare JSON read of the same file.

For each size it writes a generated eve.json in Suricata 7's layout (per flow: a ``flow`` event;
for every third flow a ``tls`` event with an SNI before it; every tenth an ``http`` event; a ``dns``
answer event for each of 2,000 server addresses at the start, so flows without SNI or Host are
named from DNS) and measures, in child processes, alternating, repeated:

* **DuckDB read**: ``read_ndjson`` with the same explicit columns
  (:data:`derisk.ingest.eve_events.EVE_SCHEMA`), streamed into Arrow batches
  (:func:`derisk.store.everead.read_events`): parsing alone, no conversion, the baseline;
* **Arrow read**: ``pyarrow.json.read_json`` of the whole file with the same schema (the fallback's parser);
* **read_eve**: every batch consumed (parsing, joins by ``flow_id``, names from DNS answers).

Each child reports wall time, processor time, its peak RSS and its RSS after imports, so memory
growth with input size shows. Results are printed and written to ``docs/benchmarks.md`` under
``## EVE ingest`` (only that section is replaced). Run from the repository root:

    .venv/bin/python scripts/bench_eve.py [--sizes 250000,1000000] [--repeat 3] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "## EVE ingest"
KINDS = ("duck", "bare", "eve")


def _peak_kib() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


def child(kind: str, path: Path) -> dict[str, object]:
    import pyarrow as pa
    import pyarrow.json as pajson

    from derisk.ingest.eve import read_eve
    from derisk.ingest.eve_events import EVE_SCHEMA

    pa.table({"warm": [0]})
    baseline = _peak_kib()
    cpu, start = _cpu(), time.perf_counter()
    if kind == "duck":
        from derisk.store.everead import read_events

        rows = sum(batch.num_rows for batch in read_events(path, EVE_SCHEMA, rows=65_536))
        flows = -1
    elif kind == "bare":
        table = pajson.read_json(
            str(path),
            parse_options=pajson.ParseOptions(explicit_schema=EVE_SCHEMA, unexpected_field_behavior="ignore"),
        )
        rows = table.num_rows
        flows = -1
    else:
        rows = -1
        flows = sum(batch.num_rows for batch in read_eve(path))
    seconds, cpu = time.perf_counter() - start, _cpu() - cpu
    return {"kind": kind, "rows": rows, "flows": flows, "seconds": seconds, "cpu": cpu,
            "peak_kib": _peak_kib(), "baseline_kib": baseline}  # fmt: skip


def run_child(kind: str, path: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(path)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"child {kind} failed:\n{done.stderr}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def generate(path: Path, flows: int) -> int:
    """Write the eve.json; return its number of events (lines)."""
    start = datetime(2026, 3, 2, 8, 0, tzinfo=UTC).timestamp()
    servers = [f"198.51.{i // 250}.{i % 250 + 1}" for i in range(2000)]

    def stamp(seconds: float) -> str:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")

    events = 0
    with path.open("w", encoding="utf-8") as out:
        for i, server in enumerate(servers):
            answer = {
                "timestamp": stamp(start),
                "flow_id": 10**12 + i,
                "event_type": "dns",
                "src_ip": "10.0.0.53",
                "src_port": 53000,
                "dest_ip": "9.9.9.9",
                "dest_port": 53,
                "proto": "UDP",
                "dns": {
                    "version": 2,
                    "type": "answer",
                    "rrname": f"n{i}.example.net",
                    "rrtype": "A",
                    "rcode": "NOERROR",
                    "answers": [{"rrname": f"n{i}.example.net", "rrtype": "A", "ttl": 300, "rdata": server}],
                    "grouped": {"A": [server]},
                },
            }
            out.write(json.dumps(answer, separators=(",", ":")) + "\n")
            events += 1
        lines = []
        for i in range(flows):
            t = start + 1 + i * 0.001
            client, port, server = (
                f"10.0.{(i // 250) % 250}.{i % 250 + 1}",
                30000 + i % 30000,
                servers[i % 2000],
            )
            ends = f'"src_ip":"{client}","src_port":{port},"dest_ip":"{server}","dest_port":443,"proto":"TCP"'
            if i % 3 == 0:
                lines.append(
                    f'{{"timestamp":"{stamp(t)}","flow_id":{i + 1},"event_type":"tls",{ends},"tls":'
                    f'{{"subject":"CN=s{i}.example.com","version":"TLS 1.3","sni":"s{i}.example.com"}}}}'
                )
            if i % 10 == 1:
                lines.append(
                    f'{{"timestamp":"{stamp(t)}","flow_id":{i + 1},"event_type":"http",{ends},"http":'
                    '{"hostname":"www.example.org","url":"/","http_user_agent":"bench/1.0",'
                    '"http_method":"GET","status":200,"length":512}}'
                )
            lines.append(
                f'{{"timestamp":"{stamp(t + 5)}","flow_id":{i + 1},"event_type":"flow",{ends},'
                f'"app_proto":"tls","flow":{{"pkts_toserver":{10 + i % 7},"pkts_toclient":{12 + i % 5},'
                f'"bytes_toserver":{1500 + i % 997},"bytes_toclient":{9000 + i % 4001},"start":"{stamp(t)}",'
                f'"end":"{stamp(t + 2)}","age":2,"state":"closed","reason":"timeout","alerted":false}},'
                '"tcp":{"tcp_flags":"1b","tcp_flags_ts":"1b","tcp_flags_tc":"1b","syn":true,"fin":true,'
                '"psh":true,"ack":true,"state":"closed"}}'
            )
            if len(lines) >= 100_000:
                events += len(lines)
                out.write("\n".join(lines) + "\n")
                lines = []
        events += len(lines)
        if lines:
            out.write("\n".join(lines) + "\n")
    return events


def _stats(runs: list[dict[str, object]], base: list[dict[str, object]]) -> dict[str, float]:
    seconds = [float(r["seconds"]) for r in runs]  # type: ignore[arg-type]
    bare = [float(r["seconds"]) for r in base]  # type: ignore[arg-type]
    return {
        "median": statistics.median(seconds),
        "best": min(seconds),
        "ratio": statistics.median(x / y for x, y in zip(seconds, bare, strict=True)),
        "cpu": statistics.median(float(r["cpu"]) for r in runs),  # type: ignore[arg-type]
        "peak": max(int(r["peak_kib"]) for r in runs),  # type: ignore[call-overload]
        "baseline": max(int(r["baseline_kib"]) for r in runs),  # type: ignore[call-overload]
    }


def report(results: dict[int, tuple[int, int, dict[str, list[dict[str, object]]]]], repeat: int) -> str:
    lines = [
        SECTION,
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()} with {os.cpu_count()} cores "
        f"(load average {os.getloadavg()[0]:.1f} when the report was written), Python "
        f"{platform.python_version()}, by `.venv/bin/python scripts/bench_eve.py` ({repeat} alternating runs "
        "per size, each in its own child process, imports excluded; medians, best in brackets). Input: a "
        "generated eve.json in Suricata 7's layout: per flow a `flow` event, a `tls` event with SNI for "
        "every third flow, an `http` event for every tenth, and 2,000 `dns` answer events first (so flows "
        "without SNI or Host are named from DNS answers).",
        "",
        "- **DuckDB read**: `read_ndjson` with the reader's explicit columns, streamed into Arrow "
        "batches (`derisk.store.everead.read_events`), nothing converted: the baseline;",
        "- **Arrow read**: `pyarrow.json.read_json` of the whole file with the same schema (the parser "
        "of gzip files and of the fallback), multi-threaded;",
        "- **read_eve**: `derisk.ingest.eve.read_eve`, every batch consumed: DuckDB's parse (as the "
        "baseline) and derisk's conversion, joins by `flow_id` and names from DNS answers on top.",
        "",
        "Target: at least 200,000 EVE records (lines) a second; memory flat in input size.",
        "",
        "| flows | events (lines) | MB | DuckDB read s | Arrow read s | read_eve s | read_eve / DuckDB read "
        "| events/s | flows/s | CPU s DuckDB read | CPU s read_eve | events per CPU s | peak MiB DuckDB read "
        "| peak MiB Arrow read | peak MiB read_eve (after imports) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for flows, (events, size, runs) in results.items():
        duck, bare = _stats(runs["duck"], runs["duck"]), _stats(runs["bare"], runs["duck"])
        eve = _stats(runs["eve"], runs["duck"])
        lines.append(
            f"| {flows:,} | {events:,} | {size / 1e6:.0f} | {duck['median']:.3f} ({duck['best']:.3f}) | "
            f"{bare['median']:.3f} ({bare['best']:.3f}) | {eve['median']:.3f} ({eve['best']:.3f}) | "
            f"{eve['ratio']:.2f}x | {events / eve['median']:,.0f} | {flows / eve['median']:,.0f} | "
            f"{duck['cpu']:.2f} | {eve['cpu']:.2f} | {events / eve['cpu']:,.0f} | "
            f"{duck['peak'] / 1024:.0f} | {bare['peak'] / 1024:.0f} | {eve['peak'] / 1024:.0f} "
            f"({eve['baseline'] / 1024:.0f}) |"
        )
    lines += [
        "",
        "Arrow's read holds the whole parsed file in memory (its peak grows with the file); read_eve holds "
        "a few batches, the names of flows not yet ended and the DNS answers. CPU is user + system time of "
        "the process (all its threads; DuckDB parses on up to 4): on a machine shared with other jobs, "
        "wall time measures the machine's load as much as the reader, CPU time the reader's own work.",
    ]
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    from mdsection import replace_section  # scripts/ is on the path when this script runs

    replace_section(DOCS, text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"))
    parser.add_argument("--sizes", default="250000,1000000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]))))
        return
    results: dict[int, tuple[int, int, dict[str, list[dict[str, object]]]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-eve-") as scratch:
        for flows in (int(s) for s in args.sizes.split(",")):
            path = Path(scratch) / f"eve-{flows}.json"
            events = generate(path, flows)
            runs: dict[str, list[dict[str, object]]] = {kind: [] for kind in KINDS}
            for _ in range(args.repeat):
                for kind in KINDS:
                    result = run_child(kind, path)
                    runs[kind].append(result)
                    print(flows, kind, f"{float(result['seconds']):.3f}s", result["peak_kib"], flush=True)  # type: ignore[arg-type]
            assert all(r["flows"] == flows for r in runs["eve"]), runs["eve"]
            results[flows] = (events, path.stat().st_size, runs)
            path.unlink()
    text = report(results, args.repeat)
    print(text)
    if not args.no_write:
        write_section(text)


if __name__ == "__main__":
    main()
