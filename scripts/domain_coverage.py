#!/usr/bin/env python3
"""How many of a list of domains the curated registry attributes to an ultimate controller.

    .venv/bin/python scripts/domain_coverage.py FILE [--top N] [--missing N] [--groups FILE ...]

``FILE`` is a plain list of domains, one a line, most popular first (for example the first rows of a
Tranco list: the list itself is public data and is not committed). Each domain is looked up the way
attribution looks up a flow's registrable domain (:meth:`AttributionIndex.match_domain`: the exact
name, else its closest indexed parent, else a brand top-level domain) in the index built from the
curated group files. A domain counts as *attributed* when the match resolves to a controller (or to
joint controllers); *known* when an organisation matches but no controller is recorded.

``--missing N`` lists the first N domains, in list order, that are not attributed: the work list
for curating by service popularity. ``--groups`` restricts the registry to the named group files
(``states.yaml`` is always kept so ownership chains resolve), e.g. to measure a registry as it was.

This is a coverage figure, not an accuracy figure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from registry_coverage import curated_index


def read_domains(path: Path, top: int) -> list[str]:
    """The first ``top`` distinct domains of ``path`` (blank lines and ``#`` comments skipped; a
    ``rank,domain`` CSV row gives its last field)."""
    seen: dict[str, None] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        name = text.rsplit(",", 1)[-1].strip().lower().rstrip(".")
        if name and name != "domain":
            seen.setdefault(name, None)
        if top and len(seen) >= top:
            break
    return list(seen)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path, help="domains, one a line, most popular first")
    parser.add_argument("--top", type=int, default=0, metavar="N", help="only the first N domains")
    parser.add_argument("--missing", type=int, default=0, metavar="N", help="list N unattributed domains")
    parser.add_argument("--groups", nargs="*", default=None, help="group file names to keep")
    args = parser.parse_args(argv)

    if not args.file.is_file():
        print(f"{args.file}: no such file", file=sys.stderr)
        return 2
    domains = read_domains(args.file, args.top)
    if not domains:
        print(f"{args.file}: no domains", file=sys.stderr)
        return 3
    try:
        files, graph, index = curated_index(args.groups)
    except ValueError as exc:
        print(f"registry invalid: {exc}", file=sys.stderr)
        return 5

    attributed = known = 0
    missing: list[str] = []
    for domain in domains:
        match = index.match_domain(domain)
        if match is not None and (match.controller_id or match.joint):
            attributed += 1
        elif match is not None:
            known += 1
            missing.append(f"{domain}  (organisation {match.org_name}, no controller)")
        else:
            missing.append(domain)
    total = len(domains)
    print(f"registry: {files} group files, {len(graph.entities)} entities, {len(index.by_domain)} domains")
    print(
        f"{args.file.name}: {total} domains; attributed to a controller {attributed} ({attributed / total:.1%}); "
        f"organisation only {known}; unknown {total - attributed - known}"
    )
    if args.missing > 0:
        print(f"\nfirst {min(args.missing, len(missing))} domains not attributed, in list order:")
        for line in missing[: args.missing]:
            print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
