"""Benchmark: reading the flows behind the alerts for the ECS/OCSF exports, against a full scan.

    .venv/bin/python scripts/bench_siem_export.py [--rows 2000000] [--alerts 100] [--markdown docs/benchmarks.md]

A workspace gets ``--rows`` flows (200 hosts in 10 systems, 1,000 destinations, two days) through the
store's own insert; ``--alerts`` alerts, one per system and destination, are summarised with
:func:`derisk.store.alert_flows.alert_flows` (one DuckDB query per alert). The baseline is one plain
aggregate over the whole ``flows_attributed`` view (count, byte sums, first/last) in the same run:
the ratio says how many full scans the export costs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from mdsection import replace_section

from derisk.detect.alert import Alert, Target
from derisk.detect.ecs import ecs_lines
from derisk.detect.ocsf import ocsf_lines
from derisk.gen.labelled import flows_from
from derisk.store.alert_flows import alert_flows
from derisk.store.flows import insert_flows
from derisk.store.workspace import Workspace

T0 = 1_790_000_000.0
SPAN = 2 * 86_400.0
CHUNK = 500_000


def build(ws: Workspace, rows: int, rng: np.random.Generator) -> None:
    hosts = np.array([f"10.1.{i // 250}.{i % 250 + 1}" for i in range(200)])
    systems = np.array([f"sys{i // 20}" for i in range(200)])
    dsts = np.array([f"198.18.{i // 250}.{i % 250 + 1}" for i in range(1000)])
    names = np.array([f"svc{i}.example{i % 50}.com" for i in range(1000)])
    with ws.transaction() as con:
        for start in range(0, rows, CHUNK):
            n = min(CHUNK, rows - start)
            h = rng.integers(0, 200, n)
            d = rng.integers(0, 1000, n)
            t = T0 + rng.random(n) * SPAN
            table = flows_from(
                {
                    "first_seen": t,
                    "last_seen": t + 1.0,
                    "src_ip": hosts[h],
                    "system": systems[h],
                    "dst_ip": dsts[d],
                    "server_name": names[d],
                    "src_port": rng.integers(1024, 65535, n),
                    "dst_port": 443,
                    "protocol": 6,
                    "bytes_out": rng.integers(100, 5000, n),
                    "bytes_in": rng.integers(100, 5000, n),
                    "packets_out": 5,
                    "packets_in": 5,
                    "input_id": "bench",
                    "flow_id": [f"bench#{start + i}" for i in range(n)],
                    "direction": "outbound",
                },
                n,
            )
            insert_flows(con, table)


def alerts(count: int) -> list[Alert]:
    out = []
    for i in range(count):
        system, dest = f"sys{i % 10}", f"svc{(i * 37) % 1000}.example{(i * 37) % 1000 % 50}.com"
        out.append(
            Alert(
                kind="beacon",
                score=0.9,
                severity="high",
                target=Target(src_ip=None, system=system, destination=dest, server_name=dest),
                summary="beacons to {dest}",
                evidence={},
                first_seen=datetime.fromtimestamp(T0, UTC),
                last_seen=datetime.fromtimestamp(T0 + SPAN, UTC),
                alert_id=f"beacon:{i:016x}",
            )
        )
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--alerts", type=int, default=100)
    ap.add_argument("--markdown", default=None)
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        with Workspace.open(Path(tmp) / "ws") as ws:
            build(ws, args.rows, rng)
        with Workspace.open(Path(tmp) / "ws", read_only=True) as ws:
            found = alerts(args.alerts)
            t = time.perf_counter()
            ws.query(
                "SELECT count(*), sum(bytes_out), sum(bytes_in), min(first_seen), max(last_seen) "
                "FROM flows_attributed"
            )
            scan = time.perf_counter() - t
            t = time.perf_counter()
            behind = alert_flows(ws, found)
            summarise = time.perf_counter() - t
        t = time.perf_counter()
        ecs = sum(1 for _ in ecs_lines(found, flows=behind))
        ocsf = sum(1 for _ in ocsf_lines(found, flows=behind))
        render = time.perf_counter() - t
    hosts = sum(len(behind[a.alert_id].src_ips) for a in found) / len(found)
    text = (
        "## SIEM exports: the flows behind the alerts (`scripts/bench_siem_export.py`)\n\n"
        f"Command: `.venv/bin/python scripts/bench_siem_export.py --rows {args.rows} --alerts {args.alerts}`"
        f" (measured {datetime.now(UTC):%Y-%m-%d}).\n\n"
        "| measure | value |\n|---|---|\n"
        f"| flows in the workspace | {args.rows:,} |\n"
        f"| alerts | {args.alerts} (about {hosts:.0f} hosts each) |\n"
        f"| baseline: one full aggregate over `flows_attributed` | {scan * 1000:.0f} ms |\n"
        f"| `alert_flows` for all the alerts | {summarise * 1000:.0f} ms"
        f" ({summarise / len(found) * 1000:.1f} ms per alert) |\n"
        f"| ratio to the baseline | {summarise / scan:.1f} full scans ({summarise / scan / len(found):.2f} per alert) |\n"
        f"| ECS and OCSF lines built ({ecs} + {ocsf}) | {render * 1000:.0f} ms |\n"
    )
    print(text)
    if args.markdown:
        replace_section(Path(args.markdown), text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
