"""Benchmark: dashboard page times on a workspace of one million flows, against baselines in the same run.

    .venv/bin/python scripts/bench_web.py [--flows 1000000] [--requests 30] [--markdown docs/benchmarks.md]

1. The demo capture (six hours of a cargo hub) is generated and analysed by ``derisk analyze``.
2. Its flows are replicated, shifted in time with fresh flow ids, into a new workspace until it holds
   ``--flows`` rows; attribution is recomputed on it and the demo's alerts copied over.
3. ``derisk serve`` runs on a free loopback port; a client logs in and requests each page
   ``--requests`` times (after one cold request, reported apart), one at a time, loopback only.
4. Baselines measured in the same run: a static file from the same server, and the bare DuckDB work a
   page cannot avoid (open the workspace read-only, count the flows, close).

Reports p50/p95/max per page and the p95 ratio against each baseline; target p95 < 200 ms.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import yaml
from mdsection import replace_section

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench-out" / "web"
PASSWORD = "benchmark password 1"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def build(flows: int) -> Path:
    from derisk.cli import main
    from derisk.demo.scenario import SampledAddressBook, build_scenario
    from derisk.enrich.attribution import attribute
    from derisk.enrich.ipdata import load_ipdata
    from derisk.enrich.update import update
    from derisk.flows import STORED_SCHEMA
    from derisk.know.attribution import load_index
    from derisk.store import flows as store
    from derisk.store.alerts import load_alerts, replace_alerts
    from derisk.store.workspace import Workspace
    from derisk.web.auth import UserStore

    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    data = OUT / "data"
    update(data, source=REPO / "tests" / "fixtures" / "ip-location-db")
    scenario = build_scenario(
        SampledAddressBook(load_ipdata(data)), start=datetime(2026, 3, 2, 6, tzinfo=UTC)
    )
    scenario.write(OUT / "demo.pcap")
    (OUT / "site.yaml").write_text(yaml.safe_dump(scenario.site), encoding="utf-8")
    small = OUT / "small"
    args = ["analyze", str(OUT / "demo.pcap"), "--site", str(OUT / "site.yaml"), "-w", str(small)]
    assert main([*args, "--data-dir", str(data), "-q"]) == 0
    with Workspace.open(small, create=False, read_only=True) as ws:
        base = ws.query_arrow("SELECT * FROM flows").select(STORED_SCHEMA.names)
        alerts = load_alerts(ws)
        first, last = store.time_span(ws, None)
    span = (last - first) + (last - first) / 10
    big = OUT / "ws"
    t0 = time.perf_counter()
    with Workspace.open(big) as ws, ws.transaction() as con:
        copies = -(-flows // base.num_rows)
        for k in range(copies):
            rows = min(base.num_rows, flows - k * base.num_rows)
            part = base.slice(0, rows)
            shift = pa.scalar(span * k, pa.duration("us"))
            if k:  # the first copy keeps its ids, so the copied alerts find their flows
                part = part.set_column(
                    0, "flow_id", pc.binary_join_element_wise(part["flow_id"], f"~{k}", "")
                )
            for name in ("first_seen", "last_seen"):
                i = part.schema.get_field_index(name)
                part = part.set_column(
                    i, name, pc.add(part[name], shift).cast(STORED_SCHEMA.field(name).type)
                )
            store.insert_flows(con, part)
        store.replace_attribution(con, attribute(store.attribution_keys(ws), load_index(ws)))
        store.record_run(
            con, {"run_id": "bench", "started_at": datetime.now(UTC), "site": scenario.site["site"]}
        )
        replace_alerts(ws, alerts, con=con)
        count = int(con.execute("SELECT count(*) FROM flows").fetchall()[0][0])
    print(f"workspace: {count} flows written in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    UserStore(big).add("bench", PASSWORD, "admin")
    return big


def serve(ws: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from derisk.cli import main; sys.exit(main())",
         "serve", "-w", str(ws), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/login", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise SystemExit("derisk serve did not start")
        time.sleep(0.2)


def timed(client: httpx.Client, path: str) -> float:
    t = time.perf_counter()
    r = client.get(path)
    elapsed = time.perf_counter() - t
    if r.status_code != 200:
        raise SystemExit(f"{path}: HTTP {r.status_code}")
    return elapsed * 1000


def concurrent(url: str, cookies: httpx.Cookies, pages: list[str], clients: int, n: int) -> list[float]:
    """``clients`` logged-in clients at once, each requesting every page ``n`` times in its own order."""
    import random
    from concurrent.futures import ThreadPoolExecutor

    def one(seed: int) -> list[float]:
        order = [p for p in pages for _ in range(n)]
        random.Random(seed).shuffle(order)
        with httpx.Client(base_url=url, timeout=120, cookies=cookies) as c:
            return [timed(c, p) for p in order]

    clients = max(1, min(clients, 8))
    with ThreadPoolExecutor(clients) as pool:
        return [t for times in pool.map(one, range(clients)) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--clients", type=int, default=4, help="Concurrent clients for the mixed run (1-8).")
    parser.add_argument("--markdown", type=Path)
    opts = parser.parse_args()
    n = max(5, min(opts.requests, 200))
    ws = build(opts.flows)
    from derisk.store.readonly import bare_count

    proc, url = serve(ws)
    try:
        with httpx.Client(base_url=url, timeout=120) as client:
            page = client.get("/login")
            token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
            client.post("/login", data={"csrf": token, "username": "bench", "password": PASSWORD})
            t = time.perf_counter()
            client.get("/")  # the first page computes the cached aggregates unless warming finished
            first_ms = (time.perf_counter() - t) * 1000
            alerts = re.findall(r'href="(/alerts/[^"?]+)"', client.get("/alerts").text)
            dests = re.findall(r'href="(/destinations/[^"?]+)"', client.get("/destinations").text)
            pages = ["/", "/alerts", alerts[0], "/destinations", dests[0], "/entities",
                     "/entities/alibaba-group-holding", "/search?q=alibaba"]  # fmt: skip
            results: dict[str, tuple[float, list[float]]] = {}
            for path in ["/static/dashboard.css", *pages]:
                cold = timed(client, path + ("&" if "?" in path else "?") + "lang=fr")
                results[path] = (cold, [timed(client, path) for _ in range(n)])
            mixed = concurrent(url, client.cookies, [*pages, *alerts[1:4], *dests[1:6]], opts.clients, n)
            bare: list[float] = []
            for _ in range(n):
                t = time.perf_counter()
                bare_count(ws)
                bare.append((time.perf_counter() - t) * 1000)
    finally:
        proc.terminate()
        proc.wait(10)
    static95 = percentile(results.pop("/static/dashboard.css")[1], 0.95)
    bare95 = percentile(bare, 0.95)
    lines = [
        "## Dashboard",
        "",
        f"`scripts/bench_web.py --flows {opts.flows} --requests {n}` on {os.cpu_count()} cores: `derisk serve` over a",
        f"workspace of {opts.flows:,} flows (the demo capture replicated), one client on loopback, {n} requests per",
        'page after one first request in another language ("first"). Baselines from the same run: a static file',
        f"from the same server (p95 {static95:.1f} ms) and the bare DuckDB work a page cannot avoid, open read-only +",
        f"count + close (p95 {bare95:.1f} ms). First page after start (aggregates computed or warmed): {first_ms:.0f} ms.",
        "",
        "| page | first ms | p50 ms | p95 ms | max ms | p95 / static | p95 / bare DuckDB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    worst = 0.0
    for path, (cold, times) in results.items():
        p95 = percentile(times, 0.95)
        worst = max(worst, p95)
        shown = re.sub(r"/(alerts|destinations)/.+", r"/\1/{id}", path)
        lines.append(
            f"| `{shown}` | {cold:.0f} | {statistics.median(times):.1f} | {p95:.1f} | {max(times):.1f} |"
            f" {p95 / static95:.1f} | {p95 / bare95:.1f} |"
        )
    lines += [
        "",
        f"Worst p95: {worst:.1f} ms (target: under 200 ms).",
        "",
        f"Mixed load: {max(1, min(opts.clients, 8))} clients at once, each requesting all these pages and a few",
        f"more alerts and destinations {n} times in its own random order ({len(mixed)} requests): p50",
        f"{statistics.median(mixed):.1f} ms, p95 {percentile(mixed, 0.95):.1f} ms, max {max(mixed):.1f} ms.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if opts.markdown:
        replace_section(opts.markdown, text)


if __name__ == "__main__":
    main()
