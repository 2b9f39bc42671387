#!/usr/bin/env python3
"""Benchmark: ``derisk analyze --engine spark`` in local[2] against the DuckDB path, same inputs.

For each size it writes a Zeek conn.log with the project's generator
(:func:`derisk.gen.zeek_bench.write_bench_conn_log`), installs the IP data fixture (not timed), then
measures each engine in a child process of its own, from the log directory to the
``derisk.analysis/1`` document:

* ``duckdb``: :func:`derisk.pipeline.run` into a new workspace (ingest, attribution, detections),
  then :func:`derisk.analysis.build_document`;
* ``duckdb-document`` (``--child`` only): the document alone over a Parquet dataset, with the
  dataset's stored alerts and no detections;
* ``spark``: a SparkSession on local[2] (its start timed apart), then
  :func:`derisk.spark.analyse` into a Parquet dataset and the document built from that dataset.

Each child reports wall and processor time and peak resident memory: the Python process's, and for
Spark also the JVM's and the largest Python worker's. The two documents' totals are checked equal.
Results are printed and written to ``docs/benchmarks.md`` under ``## Spark local[2] against DuckDB``
(only that section is replaced). Run from the repository root:

    .venv/bin/python scripts/bench_spark.py [--sizes 1000000] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "## Spark local[2] against DuckDB"
SCALE_SECTION = "## Spark local[2] and DuckDB at scale (Parquet input)"
MASTER = "local[2]"


def _status_kib(pid: int | str, field: str = "VmHWM") -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


def _cpu_of(pid: int) -> float:
    """Processor seconds of a process and of its children it has waited for (utime, stime, cutime, cstime)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _descendants(root: int) -> list[tuple[int, str]]:
    """(pid, command name) of every process below ``root``."""
    parents: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
        names[int(entry)] = name
    out: list[tuple[int, str]] = []
    todo = [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append((child, names.get(child, "")))
            todo.append(child)
    return out


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(engine: str, directory: Path, data: Path) -> dict[str, object]:
    import logging

    from derisk.site import default_site

    # progress on standard error (kept by measure() only on failure): each phase with its time, so
    # a run stopped early still says how far it got
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    site = default_site()
    scratch = Path(tempfile.mkdtemp(prefix=f"bench-spark-{engine}-", dir=directory.parent))
    result: dict[str, object] = {"engine": engine}
    if engine == "duckdb-parquet":
        from derisk.analysis import build_document
        from derisk.detect import config_for_site
        from derisk.detect.runner import detect_flows
        from derisk.store.parquet import open_dataset

        cpu, start = _cpu(), time.perf_counter()
        with open_dataset(directory) as (ws, _):
            found = detect_flows(ws.con, config_for_site(site), source=str(directory))
            result["detect_seconds"] = time.perf_counter() - start
            print(
                f"detections done: {result['detect_seconds']:.1f} s wall, {_cpu() - cpu:.1f} s processor, "
                f"peak {_status_kib('self') / 1024:,.0f} MiB",
                file=sys.stderr,
                flush=True,
            )
            unique = {a.alert_id: a for a in reversed(found.alerts)}  # one per id, the first, as stored
            alerts = [a.to_json() for a in found.alerts if unique.get(a.alert_id) is a]
            result["detect_cpu"] = _cpu() - cpu
            result["detect_peak_kib"] = _status_kib("self")
            doc = build_document(ws, site, input_ids=None, run={}, alerts=alerts)
        result.update(seconds=time.perf_counter() - start, cpu=_cpu() - cpu)
        print(
            f"document done: {result['seconds']:.1f} s wall, {result['cpu']:.1f} s processor in all, "
            f"peak {_status_kib('self') / 1024:,.0f} MiB",
            file=sys.stderr,
            flush=True,
        )
    elif engine == "duckdb-document":
        # the document alone over a dataset (its stored alerts), without the detections: what the
        # document's queries cost at a size where the whole path takes long
        from derisk.analysis import build_document
        from derisk.store.parquet import open_dataset, stored_alerts

        cpu, start = _cpu(), time.perf_counter()
        with open_dataset(directory) as (ws, _):
            doc = build_document(ws, site, input_ids=None, run={}, alerts=stored_alerts(ws))
        result.update(seconds=time.perf_counter() - start, cpu=_cpu() - cpu)
    elif engine == "duckdb":
        from derisk.analysis import build_document
        from derisk.pipeline import run
        from derisk.store.workspace import Workspace

        cpu, start = _cpu(), time.perf_counter()
        ran = run(scratch / "ws", [directory], site, data_root=data)
        with Workspace.open(scratch / "ws", create=False, read_only=True) as ws:
            doc = build_document(ws, site, input_ids=None, run={}, alerts=[a.to_json() for a in ran.alerts])
        result.update(seconds=time.perf_counter() - start, cpu=_cpu() - cpu)
    else:
        from derisk.cli.scale import analyse_dataset
        from derisk.spark import analyse
        from derisk.spark.session import session

        start = time.perf_counter()
        spark = session(MASTER)
        result["session_seconds"] = time.perf_counter() - start
        cpu, start = _cpu(), time.perf_counter()
        analyse([directory], site, scratch / "out", master=MASTER, data_root=data)
        result["analyse_seconds"] = time.perf_counter() - start
        doc = analyse_dataset(scratch / "out", site, data, engine="spark")
        result.update(seconds=time.perf_counter() - start, cpu=_cpu() - cpu)
        below = _descendants(os.getpid())
        result["jvm_peak_kib"] = max((_status_kib(p) for p, n in below if n == "java"), default=0)
        # the JVM and the Python workers' processor time (the daemon holds its finished workers')
        result["cpu_below"] = sum(_cpu_of(p) for p, _ in below)
        result["worker_peak_kib"] = max(
            (_status_kib(p) for p, n in below if n.startswith("python")), default=0
        )
        spark.stop()
    result["peak_kib"] = _status_kib("self")
    result["totals"] = doc["totals"]
    result["alerts"] = len(doc["alerts"])
    result["alert_ids"] = sorted(a["alert_id"] for a in doc["alerts"])
    shutil.rmtree(scratch, ignore_errors=True)
    return result


def measure(engine: str, directory: Path, data: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", engine, str(directory), str(data)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{engine} child failed:\n{done.stderr[-3000:]}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _mib(kib: object) -> str:
    return f"{int(str(kib)) / 1024:,.0f} MiB"


def scale(args: argparse.Namespace) -> None:
    """Parquet datasets written by scripts/gen_parquet_flows.py (not timed), each engine on each."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from gen_parquet_flows import seed_dataset, tile_arrow
    from mdsection import replace_section

    from derisk.enrich.update import update

    rows = []
    engines = args.engines.split(",")
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    data = work / "data"
    if not data.exists():
        update(data, source=ROOT / "tests" / "fixtures" / "ip-location-db")
    seed = work / "seed" if (work / "seed").exists() else seed_dataset(work)
    for size in [int(s) for s in args.sizes.split(",")]:
        ds = work / f"ds-{size}"
        if not ds.exists():
            tile_arrow(seed, ds, size, 1)
        results = {e: measure(e, ds, data) for e in engines}
        print(json.dumps({"size": size, **results}), flush=True)
        if len(results) == 2:
            a, b = results.values()
            if a["totals"] != b["totals"] or a["alert_ids"] != b["alert_ids"]:
                raise SystemExit(f"the engines disagree at {size:,} flows")
        rows.append((size, results))
        if not args.keep:
            shutil.rmtree(ds)
    load = os.getloadavg()
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    lines = [
        SCALE_SECTION,
        "",
        f"`scripts/bench_spark.py --parquet --sizes {args.sizes} --engines {args.engines}` on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {commit}: {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} cores shared with other helpers (load average "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the end: expect noise). Input: a Parquet dataset "
        "tiled from the labelled generator (scripts/gen_parquet_flows.py; one input per two days), not timed. "
        "DuckDB: the dataset opened in place, detections bucket by bucket, the document. Spark local[2]: "
        "the dataset read natively, attribution, the flows written, detections on partitions, the "
        "document from the results. Both engines give the same totals and alert ids.",
        "",
        "| flows | engine | total (wall) | detections / Spark job (wall) | processor time (all processes) | alerts | peak: process | peak: JVM / largest Python worker |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for size, results in rows:
        for engine, r in results.items():
            inner = r.get("detect_seconds", r.get("analyse_seconds", 0.0))
            jvm = f"{_mib(r['jvm_peak_kib'])} / {_mib(r['worker_peak_kib'])}" if "jvm_peak_kib" in r else "–"
            lines.append(
                f"| {size:,} | {engine} | {float(str(r['seconds'])):.1f} s | {float(str(inner)):.1f} s | "
                f"{float(str(r['cpu'])) + float(str(r.get('cpu_below', 0.0))):.1f} s | {r['alerts']} | {_mib(r['peak_kib'])} | {jvm} |"
            )
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        replace_section(DOCS, text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000", help="comma-separated flow counts")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument("--parquet", action="store_true", help="generated Parquet datasets as input")
    parser.add_argument("--engines", default="duckdb-parquet,spark", help="with --parquet: engines to run")
    parser.add_argument("--workdir", help="with --parquet: where datasets are made (kept for reuse)")
    parser.add_argument("--keep", action="store_true", help="with --parquet: keep each dataset")
    parser.add_argument("--child", nargs=3, metavar=("ENGINE", "DIR", "DATA"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        engine, directory, data = args.child
        print(json.dumps(child(engine, Path(directory), Path(data))))
        return
    if args.parquet:
        scale(args)
        return

    from derisk.enrich.update import update
    from derisk.gen.zeek_bench import write_bench_conn_log

    sys.path.insert(0, str(ROOT / "scripts"))
    from mdsection import replace_section

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as tmp:
        data = Path(tmp) / "data"
        update(data, source=ROOT / "tests" / "fixtures" / "ip-location-db")
        for size in [int(s) for s in args.sizes.split(",")]:
            directory = Path(tmp) / f"zeek-{size}"
            directory.mkdir()
            write_bench_conn_log(directory / "conn.log", size)
            duck = measure("duckdb", directory, data)
            spark = measure("spark", directory, data)
            if duck["totals"] != spark["totals"] or duck["alerts"] != spark["alerts"]:
                raise SystemExit(f"the engines disagree at {size:,} flows: {duck} / {spark}")
            rows.append((size, duck, spark))
            print(json.dumps({"size": size, "duckdb": duck, "spark": spark}), flush=True)
            shutil.rmtree(directory)
    load = os.getloadavg()
    lines = [
        SECTION,
        "",
        f"`scripts/bench_spark.py --sizes {args.sizes}` on {datetime.now(UTC):%Y-%m-%d}: "
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores shared "
        f"with other work (load average {load[0]:.1f} at the end, so expect noise). From a Zeek conn.log "
        "(the project's generator) to the analysis document, each engine in a fresh process; the Spark "
        "session's start is timed apart. Both documents have the same totals and alerts.",
        "",
        "| flows | DuckDB path | Spark local[2] | Spark / DuckDB | Spark session start | peak: DuckDB process | "
        "peak: Spark driver (Python / JVM / largest worker) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for size, duck, spark in rows:
        ratio = float(str(spark["seconds"])) / float(str(duck["seconds"]))
        lines.append(
            f"| {size:,} | {float(str(duck['seconds'])):.1f} s | {float(str(spark['seconds'])):.1f} s | "
            f"{ratio:.2f}× | {float(str(spark['session_seconds'])):.1f} s | {_mib(duck['peak_kib'])} | "
            f"{_mib(spark['peak_kib'])} / {_mib(spark['jvm_peak_kib'])} / {_mib(spark['worker_peak_kib'])} |"
        )
    lines += [
        "",
        "Spark in local mode on two cores runs the same Python parsing, enrichment and detection code in "
        "its Python workers and adds the JVM, Arrow transfers and a Parquet write; it is the engine for "
        "data that outgrows one machine, not a faster way to analyse what fits on one.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        replace_section(DOCS, text)


if __name__ == "__main__":
    main()
