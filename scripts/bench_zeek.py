#!/usr/bin/env python3
"""Benchmark: Zeek conn.log ingest, attribution and the whole analyze against DuckDB alone.

For each size it writes a conn.log with the project's generator plus ssl/http/dns companions,
installs the IP data fixture (not timed), then measures in child processes, alternating, repeated:

* DuckDB alone on the conn.log (tab, ``#`` comments, no quoting, ``-``/``(empty)`` as nulls): a
  count of one column, a read of every column into Arrow, a load into a new database file;
* ``read_zeek`` on the log directory (companions joined), or ``--pipeline module:function`` over it;
* ingest and attribution without the workspace (:func:`ingest_and_attribute`);
* ``derisk.pipeline.run`` into a new workspace, with and without detections.

Each child reports wall time, processor time, its peak RSS and its RSS after imports, so memory
growth with input size is visible. Results are printed and written to ``docs/benchmarks.md`` under
``## Zeek ingest`` (only that section is replaced). Run from the repository root:

    .venv/bin/python scripts/bench_zeek.py [--sizes 250000,1000000] [--large 1000000] [--repeat 3]
                                          [--pipeline module:function] [--no-write]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "## Zeek ingest"
ZEEK_TO_DUCK = {
    "time": "DOUBLE",
    "interval": "DOUBLE",
    "count": "UBIGINT",
    "port": "INTEGER",
    "bool": "BOOLEAN",
}


# --- children --------------------------------------------------------------------------------------


def _peak_kib() -> int:
    """This process's peak resident set (VmHWM; unlike ru_maxrss it does not carry the parent's)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def duck_query(conn_log: Path) -> str:
    with conn_log.open() as fh:
        header = {
            line.split("\t", 1)[0]: line.rstrip("\n").split("\t")[1:] for line in fh if line.startswith("#")
        }
    columns = {
        name: ZEEK_TO_DUCK.get(kind, "VARCHAR")
        for name, kind in zip(header["#fields"], header["#types"], strict=True)
    }
    return (
        f"SELECT count(*), sum(orig_ip_bytes)::BIGINT FROM read_csv('{conn_log}', delim='\\t', header=false, "
        "comment='#', quote='', escape='', nullstr=['-', '(empty)'], auto_detect=false, "
        f"columns={columns!r})"
    )


def _consume(batches: Iterator[object]) -> int:
    import pyarrow.compute as pc

    rows = 0
    for batch in batches:
        rows += batch.num_rows  # type: ignore[attr-defined]
        pc.sum(batch.column("bytes_out"))  # type: ignore[attr-defined]
    return rows


def _load_pipeline(spec: str | None) -> Callable[[Iterator[object]], int]:
    if not spec:
        return _consume
    module, _, name = spec.partition(":")
    function: Callable[[Iterator[object]], int] = getattr(importlib.import_module(module), name)
    return function


KINDS = (
    "duckdb", "duckdb-all", "duckdb-load", "zeek", "ingest-attribute", "analyze", "analyze-nodetect",
)  # fmt: skip


def child(kind: str, directory: Path, pipeline: str | None, data: Path | None) -> dict[str, object]:
    if kind.startswith("duckdb"):
        import duckdb
        import pyarrow as pa

        from derisk.store.workspace import ENGINE_SETTINGS

        pa.table({"warm": [0]})
        query = duck_query(directory / "conn.log")
        source = query.split(" FROM ", 1)[1]
        target = Path(tempfile.mkdtemp(prefix="bench-zeek-load-", dir=directory.parent)) / "load.duckdb"
        con = duckdb.connect()
        baseline = _peak_kib()
        imported = set(sys.modules)
        cpu, start = _cpu_seconds(), time.perf_counter()
        if kind == "duckdb":
            row = con.execute(query).fetchone()
            assert row is not None
            rows = int(row[0])
        elif kind == "duckdb-all":
            rows = con.sql(f"SELECT * FROM {source}").to_arrow_table().num_rows
        else:  # a new database file with the workspace's settings, loaded and closed (checkpointed)
            load = duckdb.connect(str(target), config=dict(ENGINE_SETTINGS))
            load.execute(f"CREATE TABLE conn AS SELECT * FROM {source}")
            rows = int(load.execute("SELECT count(*) FROM conn").fetchall()[0][0])
            load.close()
        seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
        shutil.rmtree(target.parent, ignore_errors=True)
    elif kind == "ingest-attribute":
        import pyarrow as pa
        import pyarrow.acero  # the group-by below (the workspace's stand-in) needs it

        import derisk.enrich.attribution
        import derisk.ingest.zeek
        import derisk.know.attribution
        import derisk.know.curated
        import derisk.pipeline  # noqa: F401 - imports are not timed, as in the other kinds
        from derisk.site import default_site

        _import_deferred(directory)
        pa.table({"warm": [0]})
        site = default_site()
        baseline = _peak_kib()
        imported = set(sys.modules)
        cpu, start = _cpu_seconds(), time.perf_counter()
        rows = ingest_and_attribute(directory, site, data)
        seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    elif kind.startswith("analyze"):
        import pyarrow as pa

        from derisk.pipeline import run
        from derisk.site import default_site

        _import_deferred(directory)
        pa.table({"warm": [0]})
        site = default_site()
        scratch = Path(tempfile.mkdtemp(prefix="bench-zeek-ws-", dir=directory.parent))
        baseline = _peak_kib()
        imported = set(sys.modules)
        cpu, start = _cpu_seconds(), time.perf_counter()
        result = run(scratch / "ws", [directory], site, data_root=data, detect=kind == "analyze")
        seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
        rows = sum(result.ingested.values())
        shutil.rmtree(scratch, ignore_errors=True)
    else:
        import pyarrow as pa

        from derisk.ingest.zeek import read_zeek

        pa.table({"warm": [0]})  # pyarrow imports pandas on first use: an import, not ingest work
        consume = _load_pipeline(pipeline)
        baseline = _peak_kib()
        imported = set(sys.modules)
        cpu, start = _cpu_seconds(), time.perf_counter()
        rows = consume(read_zeek(directory))
        seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    return {
        "kind": kind,
        "rows": rows,
        "seconds": seconds,
        "cpu": cpu,
        "peak_kib": _peak_kib(),
        "baseline_kib": baseline,
        # modules first imported inside the timed work (their import was timed; see _import_deferred)
        "late_imports": sorted(set(sys.modules) - imported),
    }


def _import_deferred(directory: Path) -> None:
    """Import the libraries derisk imports on first use (the public suffix list's, the IP data
    reader's, the name matchers'), so that, as every other import, they are not timed; what they
    then do (parsing the suffix list, say) is. derisk's own modules imported on first use are
    imported too: those recognising an input (``resolve_inputs``, run here once on the log
    directory: its modules for other formats, 0.02 CPU s when compiled from source as in a tree
    without bytecode) and those loading the control graph's cache. Each child reports what was
    still imported inside the timed work (``late_imports``)."""
    from derisk.ingest import resolve_inputs

    for name in ("maxminddb", "normality", "rapidfuzz.fuzz", "rapidfuzz.process", "tldextract"):
        importlib.import_module(name)
    for name in ("derisk.know.cachekey", "derisk.know.compiled"):
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)
    resolve_inputs([directory])


def ingest_and_attribute(directory: Path, site: object, data: Path | None) -> int:
    """Ingest (items 2 and 5 of the issue: read, orient, enrich) and attribution, without the store.

    derisk's own functions do the work, arranged as :func:`derisk.pipeline.run` arranges them: the
    control graph loads in a worker thread (:func:`derisk.know.attribution.load_index`; ``run``
    warms it, with the legal base and the detections, the same way) while the input is read and
    prepared in a read-ahead thread (``_read_ahead``: :func:`derisk.pipeline.prepare`, what
    ``derisk analyze`` runs per input); then :func:`derisk.enrich.attribution.attribute` over it. Only collecting the
    distinct attribution keys is done here, with an Arrow group-by in the main thread, where the
    pipeline inserts the batches and runs a ``GROUP BY`` over the stored flows.
    """
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow as pa
    import pyarrow.compute as pc

    from derisk.enrich.attribution import attribute
    from derisk.enrich.ipdata import load_ipdata
    from derisk.ingest import resolve_inputs
    from derisk.know.attribution import load_index
    from derisk.pipeline import _read_ahead
    from derisk.site import Site

    assert isinstance(site, Site)
    (spec,) = resolve_inputs([directory])
    ipdata = load_ipdata(data)
    key = ["dst_asn", "dst_domain", "dst_as_country"]
    parts, rows = [], 0
    with ThreadPoolExecutor(max_workers=1) as pool:
        loading = pool.submit(load_index)
        with _read_ahead(spec, site, ipdata, None) as batches:
            for batch in batches:
                rows += batch.num_rows
                external = pc.is_in(batch.column("direction"), pa.array(["outbound", "inbound"]))
                table = pa.Table.from_batches([batch.select([*key, "dst_as_org"])]).filter(external)
                parts.append(table.group_by(key, use_threads=False).aggregate([("dst_as_org", "max")]))
        index = loading.result()
    keys = pa.concat_tables(parts).group_by(key).aggregate([("dst_as_org_max", "max")])
    attributed = attribute(keys.rename_columns([*key, "dst_as_org"]), index)
    assert attributed.num_rows == keys.num_rows
    return rows


def run_child(kind: str, directory: Path, pipeline: str | None, data: Path | None) -> dict[str, object]:
    command = [sys.executable, __file__, "--child", kind, str(directory)]
    if pipeline:
        command += ["--pipeline", pipeline]
    if data is not None:
        command += ["--data", str(data)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child {kind} failed:\n{done.stderr}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- data ------------------------------------------------------------------------------------------


def _write_tsv(path: Path, name: str, fields: list[tuple[str, str]], columns: dict[str, object]) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from derisk.gen.zeek import tsv_header

    with pa.OSFile(str(path), "wb") as sink:
        sink.write(tsv_header(name, fields).encode())
        options = pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
        pacsv.write_csv(pa.table(columns), sink, write_options=options)


def generate(directory: Path, lines: int, large: bool) -> float:
    """conn.log plus companions: small ones (for the first 30,000 connections), or large ones in
    realistic proportion (TLS on a third of all connections, HTTP on a twentieth)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from derisk.gen.zeek import Dns, ZeekLogs, write_logs
    from derisk.gen.zeek_bench import bench_uid, write_bench_conn_log

    directory.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    write_bench_conn_log(directory / "conn.log", lines, seed=lines)
    ts = "1700000000.000000"
    covered = lines if large else min(lines, 30_000)
    tls = pa.array(np.arange(0, covered, 3))
    names = pc.binary_join_element_wise("s", pc.cast(pc.divide(tls, 3), pa.string()), ".example.com", "")
    _write_tsv(
        directory / "ssl.log",
        "ssl",
        [("ts", "time"), ("uid", "string"), ("server_name", "string")],
        {"ts": pa.array([ts] * len(tls)), "uid": bench_uid(tls), "server_name": names},
    )
    web = pa.array(np.arange(1, covered, 20))
    _write_tsv(
        directory / "http.log",
        "http",
        [("ts", "time"), ("uid", "string"), ("host", "string"), ("user_agent", "string")],
        {
            "ts": pa.array([ts] * len(web)),
            "uid": bench_uid(web),
            "host": pa.array(["www.example.org"] * len(web)),
            "user_agent": pa.array(["bench/1.0 (X11; Linux x86_64)"] * len(web)),
        },
    )
    servers = [f"198.51.{i // 250}.{i % 250 + 1}" for i in range(2000)]
    answers = [
        Dns(f"D{i}", 1_699_999_999.0, "10.1.0.1", 1, "10.0.0.53", f"n{i}.example.net", answers=(server,))
        for i, server in enumerate(servers)
    ]
    write_logs(directory, ZeekLogs(dns=answers))
    return time.perf_counter() - start


# --- report ----------------------------------------------------------------------------------------


def _mib(kib: object) -> str:
    return f"{int(kib) / 1024:.0f}"  # type: ignore[call-overload]


Case = tuple[str, int, bool]  # label, conn.log lines, large companions


def _stats(runs: list[dict[str, object]], base: list[dict[str, object]]) -> dict[str, float]:
    seconds = [float(r["seconds"]) for r in runs]  # type: ignore[arg-type]
    cpu = [float(r["cpu"]) for r in runs]  # type: ignore[arg-type]
    bare = [float(r["seconds"]) for r in base]  # type: ignore[arg-type]
    bare_cpu = [float(r["cpu"]) for r in base]  # type: ignore[arg-type]
    return {
        "median": statistics.median(seconds),
        "best": min(seconds),
        "ratio": statistics.median(x / y for x, y in zip(seconds, bare, strict=True)),
        "cpu_ratio": statistics.median(x / max(y, 1e-9) for x, y in zip(cpu, bare_cpu, strict=True)),
        "cpu": statistics.median(cpu),
        "peak": max(int(r["peak_kib"]) for r in runs),  # type: ignore[call-overload]
        "baseline": max(int(r["baseline_kib"]) for r in runs),  # type: ignore[call-overload]
    }


def report(
    results: dict[Case, dict[str, list[dict[str, object]]]], pipeline: str | None, repeat: int, cache: str
) -> str:
    what = f"`{pipeline}` over `read_zeek`" if pipeline else "`read_zeek` (all batches consumed)"
    lines = [
        SECTION,
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()} with {os.cpu_count()} "
        f"cores (load average {os.getloadavg()[0]:.1f} when the report was written), Python "
        f"{platform.python_version()}, by `scripts/bench_zeek.py` ({repeat} alternating runs per size, "
        "each in its own child process, imports excluded from timings; medians, best in brackets). Input: a "
        "generated TSV conn.log with small companions (ssl.log and http.log entries for 10,000 and 1,500 "
        "of the first 30,000 connections, a dns.log answering for all 2,000 server addresses, so that "
        'every flow without SNI or Host is named from DNS); a row marked "large companions" has an '
        "ssl.log entry for every third connection and an http.log entry for every twentieth.",
        "",
        "Three baselines, DuckDB alone on the same conn.log with the options a Zeek TSV log needs (tab, "
        "`#` comments, no quoting, `-` and `(empty)` as nulls, the `#types` as column types):",
        "",
        "- **count**: `SELECT count(*), sum(orig_ip_bytes) FROM read_csv(...)`: a scan that converts two "
        "of the 21 columns (DuckDB skips converting the columns a query does not use);",
        "- **read**: `SELECT * FROM read_csv(...)` into an Arrow table: every column read;",
        "- **load**: `CREATE TABLE conn AS SELECT * FROM read_csv(...)` in a new database file with the "
        "workspace's settings, then closed (checkpointed): what DuckDB itself takes to store the file.",
        "",
        "And derisk on the log directory:",
        "",
        f"- **read_zeek**: {what}: the conn.log read by DuckDB (`derisk.store.zeekread`, the one reader of "
        "every Zeek variant), companions joined;",
        "- **ingest and attribution**: what the issue's items 2 (ingest into the canonical flow table) and 5 "
        "(enrichment and attribution) ask, without item 6 (the workspace): `derisk.pipeline.prepare` (read, "
        "orient to the site, IP data, registrable domains, in batches) and `attribute` over the curated "
        "control graph (loading the graph is timed), for the distinct attribution keys collected by an "
        "Arrow group-by (`ingest_and_attribute` in the script);",
        "- the compiled control graph's cache (`derisk.know.compiled`) "
        + (
            "was written before the timed runs, as by any earlier derisk run with the same data files;"
            if cache == "warm"
            else "was off (`DERISK_CACHE_DIR=off`): every run builds the graph from the group files;"
        ),
        "- **analyze**: `derisk.pipeline.run` (what `derisk analyze` runs: ingest, orientation to the "
        "site, IP enrichment, the insert into a new workspace, attribution, detections) on the log "
        "directory, IP data installed from `tests/fixtures/ip-location-db` beforehand (not timed); "
        '"analyze, no detections" is ingest and attribution into the workspace (`detect=False`).',
        "",
        "Targets (issue 12): ingest and attribution within 1.3x the bare read at 1 M lines and 2x at "
        "250 k; peak memory not growing with input size.",
        "",
        "| conn.log lines | count s | read s | load s | read_zeek s | ingest and attribution s "
        "| analyze, no detections s | analyze s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    stats: dict[Case, dict[str, dict[str, dict[str, float]]]] = {}
    for case, runs in results.items():
        stats[case] = {
            base: {kind: _stats(runs[kind], runs[base]) for kind in KINDS}
            for base in ("duckdb", "duckdb-all", "duckdb-load")
        }
        t = stats[case]["duckdb"]
        order = (
            "duckdb", "duckdb-all", "duckdb-load", "zeek", "ingest-attribute", "analyze-nodetect", "analyze",
        )  # fmt: skip
        cells = [f"{t[k]['median']:.3f} ({t[k]['best']:.3f})" for k in order]
        lines.append(f"| {case[0]} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Ratios (wall time, median of per-round ratios; processor time in brackets):",
        "",
        "| conn.log lines | read_zeek / read | **ingest and attribution / read** | … / count | "
        "analyze, no detections / read | … / load | analyze / read |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for case, per_base in stats.items():

        def ratio(kind: str, base: str, per_base: dict[str, dict[str, dict[str, float]]] = per_base) -> str:
            r = per_base[base][kind]
            return f"{r['ratio']:.2f}x ({r['cpu_ratio']:.2f}x)"

        lines.append(
            f"| {case[0]} | {ratio('zeek', 'duckdb-all')} | **{ratio('ingest-attribute', 'duckdb-all')}** | "
            f"{ratio('ingest-attribute', 'duckdb')} | {ratio('analyze-nodetect', 'duckdb-all')} | "
            f"{ratio('analyze-nodetect', 'duckdb-load')} | {ratio('analyze', 'duckdb-all')} |"
        )
    lines += [
        "",
        "Peak resident memory (MiB; in brackets after imports, before the measured work):",
        "",
        "| conn.log lines | read | load | read_zeek | ingest and attribution | analyze, no detections | analyze |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for case, per_base in stats.items():
        t = per_base["duckdb"]
        lines.append(
            f"| {case[0]} | "
            + " | ".join(
                f"{_mib(t[k]['peak'])} ({_mib(t[k]['baseline'])})"
                for k in (
                    "duckdb-all",
                    "duckdb-load",
                    "zeek",
                    "ingest-attribute",
                    "analyze-nodetect",
                    "analyze",
                )
            )
            + " |"
        )
    lines += [
        "",
        "Wall ratios are medians of per-run elapsed-time ratios (each run of a kind is paired with the "
        "baseline's run of the same round); processor-time ratios compare user + system time of all "
        "threads, which is steadier when the machine is busy. DuckDB and derisk both use several "
        "threads, so with other work running the two sides get unequal shares of the cores and single "
        "runs vary.",
        "",
    ]
    return "\n".join(lines)


def write_section(text: str) -> None:
    from mdsection import replace_section  # scripts/ is on the path when this script runs

    replace_section(DOCS, text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="250000,1000000", help="conn.log lines, comma-separated")
    parser.add_argument(
        "--large", default="1000000", help="conn.log lines to measure with large companions ('' for none)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="alternating runs per size")
    parser.add_argument(
        "--workdir", type=Path, help="where to write the logs (default: a temporary directory)"
    )
    parser.add_argument("--pipeline", help="module:function consuming read_zeek's batches (default: count)")
    parser.add_argument(
        "--graph-cache",
        choices=("warm", "off"),
        default="warm",
        help="the compiled control graph's cache (derisk.know.compiled): written before the timed runs "
        "(default), or off (DERISK_CACHE_DIR=off: every run builds the graph)",
    )
    parser.add_argument("--no-write", action="store_true", help=f"do not update {DOCS.relative_to(ROOT)}")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]), args.pipeline, args.data)))
        return
    cases: list[Case] = [(f"{int(n):,}", int(n), False) for n in args.sizes.split(",") if n]
    cases += [(f"{int(n):,}, large companions", int(n), True) for n in args.large.split(",") if n]
    with tempfile.TemporaryDirectory(prefix="bench-zeek-") as tmp:
        work = args.workdir or Path(tmp)
        from derisk.enrich.update import update

        data = work / "data"
        update(data, source=ROOT / "tests" / "fixtures" / "ip-location-db")  # not timed
        if args.graph_cache == "off":
            os.environ["DERISK_CACHE_DIR"] = "off"  # the children inherit it
        else:  # as after any earlier derisk run with these data files: not timed
            warm = "from derisk.know.attribution import load_index; load_index()"
            subprocess.run([sys.executable, "-c", warm], check=True)
        results: dict[Case, dict[str, list[dict[str, object]]]] = {}
        for case in cases:
            label, size, large = case
            directory = work / f"{size}{'-large' if large else ''}"
            seconds = generate(directory, size, large)
            size_mib = (directory / "conn.log").stat().st_size / 2**20
            print(f"generated {label} ({size_mib:.0f} MiB conn.log) in {seconds:.1f} s", flush=True)
            results[case] = {kind: [] for kind in KINDS}
        for run in range(args.repeat):
            for case in cases:
                label, size, large = case
                directory = work / f"{size}{'-large' if large else ''}"
                for kind in KINDS if run % 2 == 0 else tuple(reversed(KINDS)):
                    result = run_child(kind, directory, args.pipeline, data)
                    if int(result["rows"]) != size:  # type: ignore[call-overload]
                        raise SystemExit(f"{kind} read {result['rows']} rows, expected {size}")
                    results[case][kind].append(result)
                    print(
                        f"run {run + 1} {label:>28} {kind:<16} {float(result['seconds']):.3f} s "  # type: ignore[arg-type]
                        f"cpu {float(result['cpu']):.3f} s peak {_mib(result['peak_kib'])} MiB",  # type: ignore[arg-type]
                        flush=True,
                    )
        text = report(results, args.pipeline, args.repeat, args.graph_cache)
    print()
    print(text)
    if not args.no_write:
        write_section(text)
        print(f"written to {DOCS}")


if __name__ == "__main__":
    main()
