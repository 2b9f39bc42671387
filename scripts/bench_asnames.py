#!/usr/bin/env python3
"""AS organisation names → graph entities at the scale of a large graph, as ratios to baselines.

    .venv/bin/python scripts/bench_asnames.py [--entities 300000] [--queries 5000] [--asn-csv F]

A synthetic graph of ``--entities`` company names (and one alias each) is indexed with
:class:`derisk.know.orgnames.OrgNameIndex`; then ``--queries`` AS organisation names are matched.
Baselines measured in the same run:

* index build against reducing every name once with ``derisk.know.names.comparable`` (the floor:
  any name matching must normalise each name);
* matching against the naive way: rapidfuzz ``process.extractOne`` of each query over every
  indexed name (no token index), on a sample of the queries.

With ``--asn-csv`` (``asn-ipv4-num.csv`` of ``@ip-location-db/asn``), the queries are the real
distinct AS organisation names of the Internet instead of synthetic ones.
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import sys
import time
from pathlib import Path

from rapidfuzz import fuzz, process

from derisk.know.names import comparable
from derisk.know.orgnames import VARIANT_SCORE, OrgNameIndex, reduce_name

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "nordic",
    "atlantic",
    "pacific",
    "global",
    "digital",
    "data",
    "cloud",
    "net",
    "systems",
    "telecom",
    "logistics",
    "energy",
    "solar",
    "grid",
    "port",
    "crane",
    "vision",
    "secure",
    "smart",
    "micro",
    "macro",
    "union",
    "capital",
    "river",
    "mountain",
    "harbour",
    "bridge",
    "signal",
    "wave",
    "fibre",
    "orbit",
    "quantum",
    "metro",
    "urban",
    "rural",
    "coastal",
    "central",
]
FORMS = ("Ltd", "Limited", "GmbH", "B.V.", "Inc.", "LLC", "S.A.", "AG", "Co., Ltd.", "plc")


def _names(n: int, rng: random.Random) -> list[tuple[str, str, tuple[str, ...]]]:
    out = []
    for i in range(n):
        words = rng.sample(WORDS, 3)
        name = f"{words[0].title()} {words[1].title()} {words[2].title()} {i} {rng.choice(FORMS)}"
        out.append((f"e{i}", name, (f"{words[0].upper()}-{words[1].upper()}-{i}",)))
    return out


def _queries(entities: list[tuple[str, str, tuple[str, ...]]], n: int, rng: random.Random) -> list[str]:
    qs = []
    for k in range(n):
        _eid, name, aliases = rng.choice(entities)
        kind = k % 4
        if kind == 0:
            qs.append(aliases[0] + "-AS")  # a registry handle
        elif kind == 1:
            qs.append(name.upper())  # the registered name
        elif kind == 2:
            qs.append(name.replace("a", "e", 1))  # a spelling variant
        else:
            qs.append(f"{rng.choice(WORDS).title()} Unknown Carrier {k}")  # not in the graph
    return qs


def _real_queries(path: Path, n: int) -> list[str]:
    seen: dict[str, None] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.reader(fh):
            if len(row) >= 4 and row[3]:
                seen.setdefault(row[3])
    names = list(seen)
    return names[:n] if n else names


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entities", type=int, default=300_000)
    ap.add_argument("--queries", type=int, default=5_000)
    ap.add_argument("--naive-sample", type=int, default=50)
    ap.add_argument("--asn-csv", type=Path)
    args = ap.parse_args()
    rng = random.Random(7)
    entities = _names(args.entities, rng)

    t = time.perf_counter()
    for _, name, aliases in entities:
        comparable(name)
        comparable(aliases[0])
    floor = time.perf_counter() - t
    comparable.cache_clear()
    reduce_name("warm")

    t = time.perf_counter()
    index = OrgNameIndex.build(entities)
    build = time.perf_counter() - t

    queries = (
        _real_queries(args.asn_csv, args.queries) if args.asn_csv else _queries(entities, args.queries, rng)
    )
    times = []
    matched = 0
    for q in queries:
        t0 = time.perf_counter()
        ids, _ = index.candidates(q)
        times.append(time.perf_counter() - t0)
        matched += bool(ids)
    total = sum(times)

    keys = list(index.exact)
    sample = queries[: args.naive_sample]
    t = time.perf_counter()
    for q in sample:
        process.extractOne(reduce_name(q), keys, scorer=fuzz.token_sort_ratio, score_cutoff=VARIANT_SCORE)
    naive_each = (time.perf_counter() - t) / max(len(sample), 1)
    ours_each = total / max(len(queries), 1)

    p95 = statistics.quantiles(times, n=20)[18] if len(times) >= 20 else max(times)
    print(f"entities: {args.entities:,} ({len(index):,} distinct reduced names and aliases)")
    print(f"index build: {build:.2f} s = {build / floor:.2f}x reducing every name once ({floor:.2f} s)")
    source = f"real AS names from {args.asn_csv.name}" if args.asn_csv else "synthetic AS names"
    print(f"queries: {len(queries):,} {source}, {matched:,} matched")
    print(f"matching: {total:.2f} s, {ours_each * 1e3:.3f} ms per name (p95 {p95 * 1e3:.3f} ms)")
    print(
        f"naive extractOne over every name: {naive_each * 1e3:.1f} ms per name; "
        f"the token index is {naive_each / ours_each:.0f}x faster"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
