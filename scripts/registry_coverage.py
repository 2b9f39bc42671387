#!/usr/bin/env python3
"""How much of the Internet's address space the curated registry attributes, by AS number.

    .venv/bin/python scripts/registry_coverage.py [--data-dir DIR] [--groups FILE ...] [--top N] [--country CC ...]

Reads the ASN ranges installed by ``derisk data update`` (``<data dir>/ipdata/asn.arrow``,
ip-location-db's ``@ip-location-db/asn``) and reports, for IPv4 and IPv6, the share of ranges and
(IPv4) of addresses whose AS number the curated attribution index knows: listed in a group file, or
attached through its registered organisation name by the AS-name matcher
(:mod:`derisk.know.orgnames`, clear matches only). ``--groups`` restricts the registry to the named
group files (for example the global-infrastructure half listed in ``tests/test_know_registry.py``);
``states.yaml`` is always kept so ownership chains resolve.

``--top N`` also lists the N AS numbers holding the most IPv4 addresses that the registry does not
attribute (neither listed nor matched by name), each with its registered organisation name, its
registration country (``<data dir>/ipdata/ascc.arrow``, the country most of its addresses are
registered in) and its address count: the work list for curating by address space. ``--country``
restricts that list to ranges registered in the given countries (for example the largest unattributed
networks of each EU country, to find its carriers).

This is a coverage figure, not an accuracy figure: whether the attributed controller is right is
what ``tests/test_know_registry.py`` and ``scripts/eval_attribution.py`` check.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from derisk.enrich.datadir import data_dir
from derisk.know.attribution import AttributionIndex, build_index
from derisk.know.curated import check_groups, read_group_files
from derisk.know.graph import Graph, build_graph
from derisk.know.names import MATCH_SCORE
from derisk.know.orgnames import OrgNameIndex


def _ranges(path: Path) -> pa.Table:
    with pa.memory_map(str(path)) as source:
        return ipc.open_file(source).read_all()


def _ipv4_sizes(table: pa.Table) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(is IPv4, addresses per range) — IPv4 keys are 16 bytes with 12 leading zero bytes."""
    starts = np.frombuffer(table.column("start").combine_chunks().buffers()[1], dtype=np.uint8).reshape(
        -1, 16
    )
    ends = np.frombuffer(table.column("end").combine_chunks().buffers()[1], dtype=np.uint8).reshape(-1, 16)
    is_v4: np.ndarray[Any, Any] = np.logical_not(starts[:, :12].any(axis=1))
    first = starts[:, 12:].copy().view(">u4").ravel().astype(np.int64)
    last = ends[:, 12:].copy().view(">u4").ravel().astype(np.int64)
    return is_v4, np.where(is_v4, last - first + 1, 0)


def _v4_ints(column: pa.ChunkedArray) -> np.ndarray[Any, Any]:
    """The IPv4 part of 16-byte keys as integers (meaningful only for IPv4 rows)."""
    raw = np.frombuffer(column.combine_chunks().buffers()[1], dtype=np.uint8).reshape(-1, 16)
    return raw[:, 12:].copy().view(">u4").ravel().astype(np.int64)


def _registration_countries(path: Path, starts: np.ndarray[Any, Any]) -> list[str]:
    """The registration country of each IPv4 address in ``starts`` ("" when not registered)."""
    if not path.exists():
        return [""] * len(starts)
    table = _ranges(path)
    raw = np.frombuffer(table.column("start").combine_chunks().buffers()[1], dtype=np.uint8).reshape(-1, 16)
    v4 = np.logical_not(raw[:, :12].any(axis=1))
    first = _v4_ints(table.column("start"))[v4]
    last = _v4_ints(table.column("end"))[v4]
    countries = np.array(table.column("country").to_pylist(), dtype=object)[v4]
    order = np.argsort(first, kind="stable")
    first, last, countries = first[order], last[order], countries[order]
    row = np.searchsorted(first, starts, side="right") - 1
    found = (row >= 0) & (last[np.clip(row, 0, None)] >= starts)
    codes = np.where(found, countries[np.clip(row, 0, None)], "")
    return [str(code or "") for code in codes.tolist()]


def _top_unattributed(
    table: pa.Table,
    attributed: np.ndarray[Any, Any],
    is_v4: np.ndarray[Any, Any],
    sizes: np.ndarray[Any, Any],
    ascc: Path,
    top: int,
    countries: frozenset[str] = frozenset(),
) -> list[tuple[int, str, str, int]]:
    """(AS number, registered name, registration country, IPv4 addresses) of the ``top`` AS numbers
    holding the most IPv4 addresses the registry does not attribute, most addresses first; with
    ``countries``, only ranges registered in one of them count."""
    rows = np.flatnonzero(~attributed & is_v4)
    if countries:
        where = np.array(_registration_countries(ascc, _v4_ints(table.column("start"))[rows]), dtype=object)
        rows = rows[np.isin(where, np.array(sorted(countries), dtype=object))]
    asns = table.column("asn").to_numpy()[rows]
    totals: dict[int, int] = {}
    for asn, size in zip(asns.tolist(), sizes[rows].tolist(), strict=True):
        totals[asn] = totals.get(asn, 0) + size
    chosen = sorted(totals, key=lambda a: (-totals[a], a))[:top]
    keep = rows[np.isin(asns, np.array(chosen, dtype=np.int64))]
    orgs = table.column("org").take(pa.array(keep)).to_pylist()
    registered = _registration_countries(ascc, _v4_ints(table.column("start"))[keep])
    names: dict[int, dict[str, int]] = {}
    places: dict[int, dict[str, int]] = {}
    for asn, org, country, size in zip(
        table.column("asn").to_numpy()[keep].tolist(), orgs, registered, sizes[keep].tolist(), strict=True
    ):
        names.setdefault(asn, {})[org or ""] = names.get(asn, {}).get(org or "", 0) + size
        places.setdefault(asn, {})[country] = places.get(asn, {}).get(country, 0) + size
    return [
        (
            asn,
            max(names[asn], key=lambda n: names[asn][n]),
            max(places[asn], key=lambda c: places[asn][c]),
            totals[asn],
        )
        for asn in chosen
    ]


def curated_index(groups: list[str] | None) -> tuple[int, Graph, AttributionIndex]:
    """The curated registry's number of group files read, graph and attribution index (only the
    files named in ``groups``, with the states, when given); ValueError naming its first problem."""
    files = read_group_files()
    if groups:
        keep = {*groups, "states.yaml"}
        files = {name: doc for name, doc in files.items() if name in keep}
    entities, links, problems = check_groups(files)
    if problems:
        raise ValueError(problems[0])
    graph = build_graph(entities, links)
    return len(files), graph, build_index(graph)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument(
        "--groups", nargs="*", default=None, help="group file names to keep (e.g. akamai.yaml)"
    )
    parser.add_argument(
        "--top",
        type=int,
        default=0,
        metavar="N",
        help="also list the N AS numbers holding the most IPv4 addresses the registry does not attribute",
    )
    parser.add_argument(
        "--country",
        nargs="*",
        default=[],
        metavar="CC",
        help="with --top: only ranges registered in these countries (ISO codes)",
    )
    args = parser.parse_args(argv)

    path = data_dir(args.data_dir) / "ipdata" / "asn.arrow"
    if not path.exists():
        print(f"{path}: no ASN data; run `derisk data update` first", file=sys.stderr)
        return 5
    try:
        files, graph, index = curated_index(args.groups)
    except ValueError as exc:
        print(f"registry invalid: {exc}", file=sys.stderr)
        return 5
    names = OrgNameIndex.build((e.id, e.name, e.aliases) for e in graph.entities.values())

    table = _ranges(path)
    asns = table.column("asn")
    orgs = table.column("org")
    listed = pc.is_in(asns, value_set=pa.array(sorted(index.by_asn), type=pa.int64())).to_numpy(
        zero_copy_only=False
    )
    # one matcher query per distinct organisation name, never per range
    distinct = pc.unique(orgs).to_pylist()
    named_orgs = [org for org in distinct if org and names.candidates(org)[1] >= MATCH_SCORE]
    named = pc.is_in(orgs, value_set=pa.array(named_orgs, type=pa.string())).to_numpy(zero_copy_only=False)
    named &= ~listed

    is_v4, sizes = _ipv4_sizes(table)
    total_v4 = int(sizes.sum())
    print(f"registry: {files} group files, {len(graph.entities)} entities, {len(index.by_asn)} AS numbers")
    for label, mask in (("listed AS numbers", listed), ("+ AS-name matches", listed | named)):
        v4 = int((mask & is_v4).sum())
        v6 = int((mask & ~is_v4).sum())
        share = int(sizes[mask].sum()) / total_v4 if total_v4 else 0.0
        print(
            f"{label:>20}: IPv4 ranges {v4:,}/{int(is_v4.sum()):,} ({v4 / max(int(is_v4.sum()), 1):.1%}), "
            f"IPv4 addresses {share:.1%}, IPv6 ranges {v6:,}/{int((~is_v4).sum()):,} "
            f"({v6 / max(int((~is_v4).sum()), 1):.1%})"
        )
    if args.top > 0:
        ascc = path.with_name("ascc.arrow")
        attributed = listed | named
        countries = frozenset(code.upper() for code in args.country)
        scope = f" registered in {', '.join(sorted(countries))}" if countries else ""
        print(f"\ntop {args.top} AS numbers by IPv4 addresses not attributed{scope} (of {total_v4:,}):")
        print(f"{'rank':>4}  {'AS':>10}  {'cc':<2}  {'IPv4 addresses':>14}  {'share':>6}  registered name")
        for rank, (asn, org, country, count) in enumerate(
            _top_unattributed(table, attributed, is_v4, sizes, ascc, args.top, countries), start=1
        ):
            print(
                f"{rank:>4}  {'AS' + str(asn):>10}  {country or '--':<2}  {count:>14,}  "
                f"{count / total_v4:>6.2%}  {org}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
