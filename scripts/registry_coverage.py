#!/usr/bin/env python3
"""How much of the Internet's address space the curated registry attributes, by AS number.

    .venv/bin/python scripts/registry_coverage.py [--data-dir DIR] [--groups FILE ...]

Reads the ASN ranges installed by ``derisk data update`` (``<data dir>/ipdata/asn.arrow``,
ip-location-db's ``@ip-location-db/asn``) and reports, for IPv4 and IPv6, the share of ranges and
(IPv4) of addresses whose AS number the curated attribution index knows: listed in a group file, or
attached through its registered organisation name by the AS-name matcher
(:mod:`derisk.know.orgnames`, clear matches only). ``--groups`` restricts the registry to the named
group files (for example the global-infrastructure half listed in ``tests/test_know_registry.py``);
``states.yaml`` is always kept so ownership chains resolve.

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
from derisk.know.attribution import build_index
from derisk.know.curated import check_groups, read_group_files
from derisk.know.graph import build_graph
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument(
        "--groups", nargs="*", default=None, help="group file names to keep (e.g. akamai.yaml)"
    )
    args = parser.parse_args(argv)

    path = data_dir(args.data_dir) / "ipdata" / "asn.arrow"
    if not path.exists():
        print(f"{path}: no ASN data; run `derisk data update` first", file=sys.stderr)
        return 5
    files = read_group_files()
    if args.groups:
        keep = {*args.groups, "states.yaml"}
        files = {name: doc for name, doc in files.items() if name in keep}
    entities, links, problems = check_groups(files)
    if problems:
        print(f"registry invalid: {problems[0]}", file=sys.stderr)
        return 5
    graph = build_graph(entities, links)
    index = build_index(graph)
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
    print(
        f"registry: {len(files)} group files, {len(graph.entities)} entities, {len(index.by_asn)} AS numbers"
    )
    for label, mask in (("listed AS numbers", listed), ("+ AS-name matches", listed | named)):
        v4 = int((mask & is_v4).sum())
        v6 = int((mask & ~is_v4).sum())
        share = int(sizes[mask].sum()) / total_v4 if total_v4 else 0.0
        print(
            f"{label:>20}: IPv4 ranges {v4:,}/{int(is_v4.sum()):,} ({v4 / max(int(is_v4.sum()), 1):.1%}), "
            f"IPv4 addresses {share:.1%}, IPv6 ranges {v6:,}/{int((~is_v4).sum()):,} "
            f"({v6 / max(int((~is_v4).sum()), 1):.1%})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
