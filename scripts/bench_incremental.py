"""Benchmark: the cost of one ``derisk watch`` batch of detections with 1 M and 20 M flows of history.

    .venv/bin/python scripts/bench_incremental.py [--small 1000000] [--large 20000000] [--markdown docs/benchmarks.md]

Flows are generated as a time-ordered stream at a fixed rate (``--per-day`` flows a day, so the 24-hour
detection window holds the same number of flows whatever the history); string columns dictionary-
encoded. For each history size a child process feeds the history into a
:class:`~derisk.detect.incremental.DetectionState` in chunks of 500,000 flows, then times
``--batches`` further batches of ``--batch`` flows each (the next minutes of the stream), each
updated and then saved (:meth:`~derisk.detect.incremental.DetectionState.save`, into a DuckDB file,
one transaction per batch, as ``watch`` does): the median per-batch time is the measurement, and the ratio of the two medians says whether a batch's cost depends
on the history. Baseline in the same run: one batch analysis (``derisk.detect.detect``) over the small
history, what ``watch`` would pay per batch without the state. Times are CPU seconds of the process
(``time.process_time``), less disturbed than wall time on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from mdsection import replace_section

from derisk.flows import FLOW_SCHEMA

T0 = 1_790_000_000.0
CHUNK = 500_000


def _dict(indices: np.ndarray, values: Sequence[str | None], mask: np.ndarray | None = None) -> pa.Array:
    idx = pa.array(indices.astype(np.int32), mask=mask)
    return pa.DictionaryArray.from_arrays(idx, pa.array(list(values), pa.string()))


class Stream:
    """Flows of a small site: 400 hosts (the first 100 in 10 systems), 5,000 destinations under 1,000
    domains and 100 organisations, 5 % DNS queries, 20 hosts beaconing every 60-600 s."""

    def __init__(self, per_day: int, seed: int = 1) -> None:
        self.rng = np.random.default_rng(seed)
        self.per_s = per_day / 86_400.0
        self.hosts = [f"10.1.{i // 250}.{i % 250 + 1}" for i in range(400)]
        self.systems = [f"sys{i // 10}" if i < 100 else None for i in range(400)]
        self.dsts = [f"198.{18 + i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(5000)]
        self.names = [f"svc{i}.site{i % 1000}.com" for i in range(5000)]
        self.domains = [f"site{i % 1000}.com" for i in range(5000)]
        self.orgs = [f"Org {i % 100}" for i in range(5000)]
        juris = ["US", "CN", "DE", "FR", "BE", "NL", "RU", "GB", "JP", "IE"]
        self.juris = [juris[i % 100 % len(juris)] for i in range(5000)]
        self.queries = [f"q{i}.n{i % 97}.example{i % 50}.net" for i in range(200_000)]
        self.period = self.rng.integers(60, 600, 20).astype(np.float64)
        self.made = 0

    def take(self, n: int) -> pa.Table:
        rng = self.rng
        seq = np.arange(self.made, self.made + n)
        start = T0 + seq / self.per_s + rng.uniform(0, 1 / self.per_s, n)
        host = (400 * rng.random(n) ** 2).astype(np.int64)
        dst = (5000 * rng.random(n) ** 2).astype(np.int64)
        beacon = rng.random(n) < 0.02
        which = rng.integers(0, 20, n)
        start = np.where(beacon, np.floor((start - T0) / self.period[which]) * self.period[which] + T0, start)
        host = np.where(beacon, 380 + which, host)
        dst = np.where(beacon, 4980 + which, dst)
        dns = (rng.random(n) < 0.05) & ~beacon
        dur = rng.exponential(30.0, n)
        ts = FLOW_SCHEMA.field("first_seen").type
        self.made += n
        cols: dict[str, pa.Array] = {
            "flow_id": pa.array([f"s#{i}" for i in seq.tolist()]),
            "direction": _dict(dns.astype(np.int64), ["outbound", "internal"]),
            "system": _dict(host, self.systems),
            "first_seen": pa.array((start * 1e6).astype(np.int64)).cast(ts),
            "last_seen": pa.array(((start + dur) * 1e6).astype(np.int64)).cast(ts),
            "src_ip": _dict(host, self.hosts),
            "src_port": pa.array(rng.integers(32768, 61000, n).astype(np.int32)),
            "dst_ip": _dict(dst, self.dsts),
            "dst_port": pa.array(np.where(dns, 53, 443).astype(np.int32)),
            "protocol": pa.array(np.where(dns, 17, 6).astype(np.int16)),
            "bytes_out": pa.array(rng.lognormal(7, 1.5, n).astype(np.int64)),
            "bytes_in": pa.array(rng.lognormal(9, 2, n).astype(np.int64)),
            "server_name": _dict(dst, self.names, mask=dns),
            "dns_query": _dict(rng.integers(0, len(self.queries), n), self.queries, mask=~dns),
            "dst_asn": pa.array(dst % 100 + 64512),
            "dst_as_org": _dict(dst, self.orgs, mask=dns),
            "dst_domain": _dict(dst, self.domains, mask=dns),
            "dst_org": _dict(dst, self.orgs, mask=dns),
            "dst_controller": _dict(dst, self.orgs, mask=dns),
            "dst_jurisdiction": _dict(dst, self.juris, mask=dns),
            "dst_jurisdiction_basis": _dict(np.zeros(n, np.int64), ["registry"], mask=dns),
        }
        return pa.table(cols)


def laws(jurisdiction: str) -> list[int]:
    return [1] if jurisdiction in ("CN", "RU") else []


def child(mode: str, history: int, per_day: int, batch: int, batches: int) -> dict[str, Any]:
    from derisk.detect.config import load_config

    cfg = load_config()
    stream = Stream(per_day)
    out: dict[str, Any] = {"mode": mode, "history": history}
    if mode == "analyze":
        table = pa.concat_tables([stream.take(min(CHUNK, history - o)) for o in range(0, history, CHUNK)])
        from derisk.detect import detect

        t = time.process_time()
        out["alerts"] = len(detect(table, cfg, laws_for=laws).alerts)
        out["seconds"] = time.process_time() - t
    else:
        import tempfile

        import duckdb

        from derisk.detect.incremental import DetectionState
        from derisk.detect.incremental_rows import compact

        state = DetectionState()
        t = time.process_time()
        for off in range(0, history, CHUNK):  # the history, in large chunks
            state._ingest(compact(stream.take(min(CHUNK, history - off))), cfg, laws)
        state._changed({})
        out["load_s"] = time.process_time() - t
        out["buffer_rows"] = state.buffer_rows
        out["rss_after_history_mb"] = _rss_mb()
        with tempfile.TemporaryDirectory(prefix="derisk-bench-incr-") as tmp:
            con = duckdb.connect(f"{tmp}/state.duckdb")
            con.execute("BEGIN")
            state.save(con)  # the first save writes the whole state (not timed)
            con.execute("COMMIT")
            times, saves = [], []
            for _ in range(batches):  # the next batches, each updated and saved like watch's
                b = compact(stream.take(batch))
                t = time.process_time()
                state._ingest(b, cfg, laws)
                state._changed({})
                t_save = time.process_time()
                con.execute("BEGIN")
                state.save(con)
                con.execute("COMMIT")
                saves.append(time.process_time() - t_save)
                times.append(time.process_time() - t)
            out["state_rows"] = con.execute("SELECT count(*) FROM detect_state_keys").fetchall()[0][0]
            con.close()
        out["batch_s"] = statistics.median(times)
        out["save_s"] = statistics.median(saves)
        out["batch_all"] = times
        out["alerts"] = len(state.current_alerts())
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return out


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def run_child(*args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", type=int, default=1_000_000)
    ap.add_argument("--large", type=int, default=20_000_000)
    ap.add_argument("--per-day", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=2_000)
    ap.add_argument("--batches", type=int, default=15)
    ap.add_argument("--child", nargs=2, default=None)
    ap.add_argument("--markdown", default=None)
    args = ap.parse_args()
    if args.child:
        mode, history = args.child[0], int(args.child[1])
        print(json.dumps(child(mode, history, args.per_day, args.batch, args.batches)))
        return
    common = ["--per-day", str(args.per_day), "--batch", str(args.batch), "--batches", str(args.batches)]
    load_start = os.getloadavg()
    small = run_child("state", str(args.small), *common)
    large = run_child("state", str(args.large), *common)
    base = run_child("analyze", str(args.small), *common)
    load_end = os.getloadavg()
    ratio = large["batch_s"] / max(small["batch_s"], 1e-9)
    print(json.dumps({"small": small, "large": large, "analyze": base, "ratio": ratio}))
    window = args.per_day
    lines = [
        "## Incremental detections (watch)",
        "",
        f"`scripts/bench_incremental.py --small {args.small} --large {args.large} --per-day {args.per_day} "
        f"--batch {args.batch} --batches {args.batches}`: a generated time-ordered stream of {args.per_day:,} "
        f"flows a day (the 24-hour window holds about {window:,}), fed into a `DetectionState`, then "
        f"{args.batches} batches of {args.batch:,} flows, each updated and saved (one DuckDB transaction per "
        "batch, as `watch` does) and timed one by one (median). Each history in its own process; times in CPU "
        "seconds; 2 cores shared with other helpers' work (load average "
        f"{load_start[0]:.1f} at the start, {load_end[0]:.1f} at the end), so expect noise; one run.",
        "",
        "| history (flows) | per batch incl. save (CPU s, median) | of which save | batch ratio to the small history "
        "| RSS after the history (MB) | peak RSS (MB) | history fed in (CPU s) |",
        "|---|---|---|---|---|---|---|",
        f"| {args.small:,} | {small['batch_s']:.3f} | {small['save_s']:.3f} | 1.00 "
        f"| {small['rss_after_history_mb']:.0f} | {small['peak_mb']:.0f} | {small['load_s']:.0f} |",
        f"| {args.large:,} | {large['batch_s']:.3f} | {large['save_s']:.3f} | {ratio:.2f} "
        f"| {large['rss_after_history_mb']:.0f} | {large['peak_mb']:.0f} | {large['load_s']:.0f} |",
        "",
        f"Baseline in the same run: one batch `detect()` over the {args.small:,}-flow history takes "
        f"{base['seconds']:.1f} CPU s (what each batch would cost if watch re-analysed the history; it grows "
        f"with the history), {base['seconds'] / max(small['batch_s'], 1e-9):.0f}× one incremental batch. "
        f"Buffer of recent flows: {small['buffer_rows']:,} and {large['buffer_rows']:,} rows; stored state "
        f"keys after the batches: {small['state_rows']:,} and {large['state_rows']:,}. A batch costs "
        "O(batch + the window's flows of the hosts, senders and pairs it touches): on this stream nearly "
        "every host is busy, so each batch re-scores most of the window.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        from pathlib import Path

        replace_section(Path(args.markdown), text)


if __name__ == "__main__":
    main()
