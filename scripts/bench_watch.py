#!/usr/bin/env python3
"""Benchmark: ``derisk watch`` replaying Zeek logs as fast as it can, against one ``derisk analyze``.

It writes a conn.log of ``--lines`` records with the project's generator (not timed), installs the
IP data fixture, then runs in child processes, alternating, ``--repeat`` times:

* ``derisk analyze DIR`` into a new workspace (the baseline);
* ``derisk watch --zeek-dir DIR --exit-when-idle 1 --hold-workspace`` into a new workspace, in
  batches of ``--batch-size`` bytes of log;

then, once, the delay in real time from a conn.log line written to its flow committed.

With ``DERISK_BENCH_RSS_TRACE=FILE`` each child appends to FILE.analyze or FILE.watch, every half second, its CPU time, resident
MiB and where its main thread is (the innermost derisk frames): where memory goes, by phase.

Each child reports its wall time, its CPU time (user + system, every thread; less disturbed than the
wall time by other work on a shared machine) and peak RSS (VmHWM). The watch's idle wait before it exits
(``--exit-when-idle`` plus one batch interval) is taken off its time. The ratio is the baseline's
time over the watch's: throughput of watch relative to analyze (issue 15 asks for at least 0.8).
The batches' own durations (``watch_batches.seconds``) show whether a batch costs more as the
history grows: the median seconds per 1,000 flows of the first and of the last quarter of batches.
Results are printed and written to ``docs/benchmarks.md`` under ``## Watch replay`` (only that
section is replaced). Run from the repository root:

    .venv/bin/python scripts/bench_watch.py [--lines 1000000] [--batch-size 16M] [--repeat 3] [--no-write]
        [--logs DIR]
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
SECTION = "## Watch replay"
IDLE_S = 1.0
BATCH_S = 0.2

_CHILD = """
import json, os, resource, sys, threading, time
from derisk.cli import main
trace = os.environ.get("DERISK_BENCH_RSS_TRACE")
if trace:  # sample resident memory and where the main thread is, every half second
    def _sample(main_id=threading.get_ident()):
        with open(f"{trace}.{sys.argv[1]}", "a") as out:
            while True:
                time.sleep(0.5)
                with open("/proc/self/statm") as fh:
                    rss = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") >> 20
                frame, where = sys._current_frames().get(main_id), []
                while frame is not None and len(where) < 4:
                    name = frame.f_code.co_filename
                    if "derisk" in name:
                        where.append(f"{name.rsplit('/', 1)[-1]}:{frame.f_code.co_name}:{frame.f_lineno}")
                    frame = frame.f_back
                out.write(f"{time.process_time():.1f} {rss} {' < '.join(where)}\\n")
                out.flush()
    threading.Thread(target=_sample, daemon=True).start()
start = time.perf_counter()
code = main(sys.argv[1:])
wall = time.perf_counter() - start
use = resource.getrusage(resource.RUSAGE_SELF)
peak = 0
with open("/proc/self/status") as fh:
    for line in fh:
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1])
print(json.dumps({"code": code, "wall": wall, "cpu": use.ru_utime + use.ru_stime, "peak_kib": peak}))
"""


def _child(args: list[str], env: dict[str, str]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, *args], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"child failed: {' '.join(args)}\n{done.stderr[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    if result["code"] != 0:
        raise SystemExit(f"derisk exited {result['code']}: {' '.join(args)}\n{done.stderr[-2000:]}")
    return result


def _batches(workspace: Path) -> list[tuple[int, float]]:
    import duckdb

    con = duckdb.connect(str(workspace / "derisk.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT flows, seconds FROM watch_batches ORDER BY batch").fetchall()
    finally:
        con.close()
    return [(int(r[0]), float(r[1])) for r in rows]


def _lines(path: Path) -> int:
    """Records in a TSV conn.log (-1 when there is none)."""
    if not path.exists():
        return -1
    with path.open("rb") as fh:
        return sum(1 for line in fh if not line.startswith(b"#"))


def _per_k(rows: list[tuple[int, float]]) -> float:
    return statistics.median(seconds / flows * 1000 for flows, seconds in rows if flows)


def _latency(base: Path, env: dict[str, str], lines: int = 40, every: float = 0.5) -> list[float]:
    """Seconds from a conn.log line written to its flow committed, for ``lines`` lines written in real
    time into a log that ``derisk watch --batch-seconds 1`` follows (read from its status file)."""
    from derisk.gen.zeek import Session, build_logs, write_logs

    now = time.time()
    sessions = [Session("10.1.0.5", "8.8.8.8", now + n * every, 500, 500) for n in range(lines)]
    staged = (
        write_logs(base / "staged", build_logs(sessions)[0])["conn"].read_text().splitlines(keepends=True)
    )
    header = [line for line in staged if line.startswith("#") and not line.startswith("#close")]
    records = [line for line in staged if not line.startswith("#")]
    live = base / "live"
    live.mkdir()
    (live / "conn.log").write_text("".join(header))
    status = base / "status.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "derisk", "watch", "--zeek-dir", str(live), "--workspace", str(base / "wl"),
         "--batch-seconds", "1", "--status-file", str(status), "-q"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        while not status.exists():
            time.sleep(0.05)
        delays = []
        with (live / "conn.log").open("a") as log:
            for n, record in enumerate(records):
                log.write(record)
                log.flush()
                written = time.monotonic()
                while True:
                    try:
                        if json.loads(status.read_text())["flows"] > n:
                            break
                    except (OSError, ValueError, KeyError):
                        pass
                    time.sleep(0.02)
                delays.append(time.monotonic() - written)
                time.sleep(max(0.0, every - delays[-1]))
        return delays
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--batch-size", default="16M")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument(
        "--logs",
        type=Path,
        help="a folder for the generated conn.log, kept between runs: written there once (the generator"
        " is seeded, so a log of the same --lines is the same), reused when its line count matches",
    )
    opts = parser.parse_args()

    from derisk.enrich.update import update
    from derisk.gen.zeek_bench import write_bench_conn_log

    with tempfile.TemporaryDirectory(prefix="derisk-bench-watch-") as tmp:
        base = Path(tmp)
        data = base / "data"
        update(data, source=ROOT / "tests" / "fixtures" / "ip-location-db")
        logs = opts.logs or base / "zeek"
        logs.mkdir(parents=True, exist_ok=True)
        if not (opts.logs and _lines(logs / "conn.log") == opts.lines):
            write_bench_conn_log(logs / "conn.log", opts.lines)
        size = (logs / "conn.log").stat().st_size
        env = {**os.environ, "DERISK_DATA_DIR": str(data)}
        analyze, watch, per_batch = [], [], []
        load_start = os.getloadavg()
        for n in range(opts.repeat):
            ws_a, ws_w = base / f"a{n}", base / f"w{n}"
            analyze.append(_child(["analyze", str(logs), "--workspace", str(ws_a), "-q"], env))
            result = _child(
                ["watch", "--zeek-dir", str(logs), "--workspace", str(ws_w), "--batch-size", opts.batch_size,
                 "--batch-seconds", str(BATCH_S), "--exit-when-idle", str(IDLE_S), "--hold-workspace", "-q"],
                env,
            )  # fmt: skip
            result["wall"] -= IDLE_S + BATCH_S
            watch.append(result)
            per_batch.append(_batches(ws_w))
            print(
                f"run {n + 1}: analyze {analyze[-1]['wall']:.1f} s ({analyze[-1]['cpu']:.1f} CPU s,"
                f" peak {analyze[-1]['peak_kib'] / 1024:,.0f} MiB), watch {watch[-1]['wall']:.1f} s"
                f" ({watch[-1]['cpu']:.1f} CPU s, peak {watch[-1]['peak_kib'] / 1024:,.0f} MiB),"
                f" load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
        load_end = os.getloadavg()
        delays = sorted(_latency(base, env))
    p50, p95 = statistics.median(delays), delays[int(0.95 * (len(delays) - 1))]
    a_wall = statistics.median(r["wall"] for r in analyze)
    w_wall = statistics.median(r["wall"] for r in watch)
    runs = ", ".join(f"{a['wall']:.1f} / {w['wall']:.1f}" for a, w in zip(analyze, watch, strict=True))
    a_cpu = statistics.median(r["cpu"] for r in analyze)
    w_cpu = statistics.median(r["cpu"] for r in watch)
    rows = per_batch[-1]
    quarter = max(1, len(rows) // 4)
    first, last = _per_k(rows[:quarter]), _per_k(rows[-quarter:])
    text = "\n".join(
        [
            SECTION,
            "",
            f"Measured {datetime.now(UTC):%Y-%m-%d} on {platform.machine()}, {os.cpu_count()} cores shared with"
            f" other work (load average {load_start[0]:.1f} at the start, {load_end[0]:.1f} at the end: expect"
            " noise), Python " + platform.python_version() + ".",
            f"One TSV conn.log of {opts.lines:,} lines ({size / 1e6:,.0f} MB) from `derisk.gen.zeek_bench`;"
            f" median of {opts.repeat} alternating runs; `derisk watch` in batches of {opts.batch_size}"
            " with `--hold-workspace`, its idle wait before exiting taken off.",
            "",
            "| run | wall s | CPU s | lines/s (wall) | peak RSS MiB |",
            "|---|---:|---:|---:|---:|",
            f"| `derisk analyze` (baseline) | {a_wall:,.1f} | {a_cpu:,.1f} | {opts.lines / a_wall:,.0f} |"
            f" {max(r['peak_kib'] for r in analyze) / 1024:,.0f} |",
            f"| `derisk watch` replay | {w_wall:,.1f} | {w_cpu:,.1f} | {opts.lines / w_wall:,.0f} |"
            f" {max(r['peak_kib'] for r in watch) / 1024:,.0f} |",
            "",
            f"Throughput of watch relative to analyze: **{a_wall / w_wall:.2f}×** in wall time,"
            f" {a_cpu / w_cpu:.2f}× in CPU time (issue 15's target: ≥ 0.8×). Per run (analyze / watch, wall s):"
            f" {runs}.",
            f"Batches: {len(rows)}; median seconds per 1,000 flows in the first quarter of batches"
            f" {first:.3f}, in the last quarter {last:.3f} (history grows from 0 to {opts.lines:,} flows"
            " between them; while a replay catches up, the window detections wait (a log shorter than the"
            " window is scored once, when caught up), so the batches that score cost more: a batch's cost against the"
            " history is measured by `scripts/bench_incremental.py`).",
            f"In real time (one conn.log line every 0.5 s, `--batch-seconds 1`): from a line written to its"
            f" flow committed p50 {p50:.2f} s, p95 {p95:.2f} s over {len(delays)} lines (issue 15's target"
            " for line to alert delivered: p95 < 5 s; delivery adds its sink's own time, docs/delivery.md).",
            "",
            "Command: `.venv/bin/python scripts/bench_watch.py "
            + f"--lines {opts.lines} --batch-size {opts.batch_size} --repeat {opts.repeat}`",
            "",
        ]
    )
    print(text)
    if not opts.no_write:
        sys.path.insert(0, str(ROOT / "scripts"))
        from mdsection import replace_section

        replace_section(DOCS, text)


if __name__ == "__main__":
    main()
