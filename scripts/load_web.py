"""Load test: logged-in viewers browse the dashboard while an attacker floods the login form.

    .venv/bin/python scripts/load_web.py [--flows 200000] [--viewers 50] [--seconds 30]
                                         [--attacker-addresses 40] [--markdown docs/security.md]

Loopback only, bounded in count and time, and it stops by itself:

1. A workspace of ``--flows`` flows is built as ``scripts/bench_web.py`` builds it (the demo capture,
   analysed, replicated) and ``derisk serve`` runs on a free port of 127.0.0.1.
2. ``--viewers`` clients log in (from 127.0.0.1), then each requests dashboard pages for
   ``--seconds`` seconds, reading each for ``--think`` seconds on average (uniform between half and
   one and a half times it; 0 makes every viewer a closed loop with no pause, a stress test).
3. At the same time an attacker sends wrong passwords for random account names as fast as it can,
   from ``--attacker-addresses`` loopback addresses (127.0.0.2, 127.0.0.3, ...), eight at a time.
4. Baseline in the same run: the same viewers' pages with no attacker (``--seconds`` / 2).

Reports the viewers' p50/p95 with and without the flood, what the attacker got (status counts), and
the server's peak resident memory. Targets (issue 14): viewers' p95 < 500 ms, memory < 1 GB.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_web import PASSWORD, build, percentile, serve
from mdsection import replace_section


def _login(url: str) -> httpx.Cookies:
    with httpx.Client(base_url=url, timeout=60) as c:
        page = c.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        r = c.post("/login", data={"csrf": token, "username": "bench", "password": PASSWORD})
        if r.status_code != 303:
            raise SystemExit(f"viewer login failed: HTTP {r.status_code}")
        return c.cookies


def _viewer(
    url: str, cookies: httpx.Cookies, pages: list[str], until: float, seed: int, think: float
) -> list[float]:
    rng = random.Random(seed)
    times: list[float] = []
    with httpx.Client(base_url=url, timeout=60, cookies=cookies) as c:
        while time.monotonic() < until:
            path = rng.choice(pages)
            t = time.perf_counter()
            r = c.get(path)
            times.append((time.perf_counter() - t) * 1000)
            if r.status_code != 200:
                raise SystemExit(f"viewer got HTTP {r.status_code} on {path}")
            if think:
                time.sleep(rng.uniform(0.5 * think, 1.5 * think))  # a person reads the page
    return times


def _attacker(url: str, address: str, until: float, seen: Counter[int], lock: threading.Lock) -> None:
    transport = httpx.HTTPTransport(local_address=address)
    rng = random.Random(address)
    with httpx.Client(base_url=url, timeout=60, transport=transport) as c:
        while time.monotonic() < until:
            page = c.get("/login")
            found = re.search(r'name="csrf" value="([^"]+)"', page.text)
            if found is None:
                with lock:
                    seen[page.status_code] += 1
                continue
            r = c.post(
                "/login",
                data={
                    "csrf": found.group(1),
                    "username": f"user{rng.randrange(10**6)}",
                    "password": "x" * 16,
                },
            )
            with lock:
                seen[r.status_code] += 1


def _sample_rss(pid: int, until: float, peak: list[int]) -> None:
    proc = psutil.Process(pid)
    while time.monotonic() < until:
        try:
            rss = proc.memory_info().rss + sum(ch.memory_info().rss for ch in proc.children(recursive=True))
        except psutil.Error:
            return
        peak[0] = max(peak[0], rss)
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=200_000)
    parser.add_argument("--viewers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--attacker-addresses", type=int, default=40)
    parser.add_argument(
        "--think",
        type=float,
        default=2.0,
        help="Mean seconds a viewer reads a page before the next (0: none).",
    )
    parser.add_argument("--markdown", type=Path)
    opts = parser.parse_args()
    viewers = max(1, min(opts.viewers, 100))
    seconds = max(5.0, min(opts.seconds, 300.0))
    addresses = [f"127.0.0.{2 + i}" for i in range(max(1, min(opts.attacker_addresses, 200)))]

    ws = build(opts.flows)
    proc, url = serve(ws)
    try:
        cookies = _login(url)
        with httpx.Client(base_url=url, timeout=120, cookies=cookies) as c:
            c.get("/")
            alerts = re.findall(r'href="(/alerts/[^"?]+)"', c.get("/alerts").text)[:3]
            dests = re.findall(r'href="(/destinations/[^"?]+)"', c.get("/destinations").text)[:5]
        pages = [
            "/",
            "/alerts",
            "/destinations",
            "/entities",
            "/entities/alibaba-group-holding",
            *alerts,
            *dests,
        ]

        def run_viewers(duration: float) -> list[float]:
            until = time.monotonic() + duration
            with ThreadPoolExecutor(viewers) as pool:
                jobs = [
                    pool.submit(_viewer, url, cookies, pages, until, i, opts.think) for i in range(viewers)
                ]
                return [t for j in jobs for t in j.result()]

        quiet = run_viewers(seconds / 2)
        peak = [0]
        seen: Counter[int] = Counter()
        lock = threading.Lock()
        until = time.monotonic() + seconds
        sampler = threading.Thread(target=_sample_rss, args=(proc.pid, until, peak), daemon=True)
        sampler.start()
        with ThreadPoolExecutor(8) as attackers:
            for i in range(8):
                attackers.submit(
                    lambda k=i: [
                        _attacker(url, a, until, seen, lock)
                        for a in addresses[k::8]
                        if time.monotonic() < until
                    ]
                )
            loaded = run_viewers(seconds)
        sampler.join()
    finally:
        proc.terminate()
        proc.wait(10)

    p95_quiet, p95_loaded = percentile(quiet, 0.95), percentile(loaded, 0.95)
    lines = [
        "## Dashboard under a login flood",
        "",
        f"`python scripts/load_web.py --flows {opts.flows} --viewers {viewers} --seconds {seconds:g} "
        f"--attacker-addresses {len(addresses)} --think {opts.think:g}` on {os.cpu_count()} cores, loopback only: "
        f"{viewers} logged-in viewers request dashboard pages (reading each {opts.think:g} s on average) while an attacker, eight connections at a time "
        f"from {len(addresses)} loopback addresses, posts wrong passwords for random account names.",
        "",
        "| | requests | p50 ms | p95 ms | max ms |",
        "|---|---:|---:|---:|---:|",
        f"| viewers alone (baseline, {seconds / 2:g} s) | {len(quiet)} | {statistics.median(quiet):.0f} | "
        f"{p95_quiet:.0f} | {max(quiet):.0f} |",
        f"| viewers during the flood ({seconds:g} s) | {len(loaded)} | {statistics.median(loaded):.0f} | "
        f"{p95_loaded:.0f} | {max(loaded):.0f} |",
        "",
        f"Attacker's answers: {dict(sorted(seen.items()))} (401 = a password was checked, 429 = refused "
        "before any check, 503 = the password checks were all busy). "
        f"Server peak memory (with children): {peak[0] / 2**20:.0f} MiB. "
        f"p95 during the flood / alone: {p95_loaded / p95_quiet:.2f}. "
        "Targets: viewers' p95 < 500 ms, memory < 1 GB.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if opts.markdown:
        replace_section(opts.markdown, text, title="# Security")


if __name__ == "__main__":
    main()
