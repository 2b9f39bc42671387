#!/usr/bin/env python3
"""Write a large derisk Parquet flow dataset (``derisk.parquet/1``) cheaply, for the scale benchmarks.

Parsing 100 M Zeek lines takes hours on this machine; the scale benchmarks measure the analysis,
not the parsing, so their inputs are written straight as a dataset:

1. a *seed*: the labelled generator's two days of traffic (:func:`derisk.gen.labelled.generate`,
   about 246,000 flows with beacons, long connections, DNS tunnels, uploads and new destinations
   among browsing, so the detections have work to do), attributed by derisk's curated control graph;
2. the seed is tiled into ``--flows`` rows, copy by copy in Arrow (``--duckdb``: in one DuckDB COPY, the
   same rows, slower): copy *k* is shifted *back* by *k* times the
   seed's time span (nothing lands in the future), gets its own input (``gen-K``; one input per ``--per-input`` copies) and flow ids
   ``gen-K#ORDINAL``, and is written Hive-partitioned (``site=…/day=…``, zstd) with a manifest and
   an ``inputs.parquet`` that counts each input's flows.

Run from the repository root:

    .venv/bin/python scripts/gen_parquet_flows.py --flows 10000000 OUT_DIR
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent


def attributed(flows: pa.Table) -> pa.Table:
    """``flows`` attributed by derisk's own curated control graph, as ``derisk analyze`` (and the
    Spark engine, which attributes a dataset's flows again) would: per distinct (AS, domain,
    AS country) key of the outbound and inbound flows, joined null-safe onto every flow."""
    import duckdb

    from derisk.enrich.attribution import attribute
    from derisk.flows import ATTRIBUTION_FIELDS, FLOW_SCHEMA
    from derisk.know.attribution import load_index
    from derisk.store.workspace import ATTRIBUTION_TABLE_SCHEMA

    con = duckdb.connect()
    con.register("f", flows)
    keys = con.sql(
        "SELECT dst_asn, dst_domain, dst_as_country, first(dst_as_org ORDER BY dst_as_org) "
        "FILTER (WHERE dst_as_org IS NOT NULL) AS dst_as_org FROM f "
        "WHERE direction IN ('outbound', 'inbound') GROUP BY ALL ORDER BY ALL"
    ).to_arrow_table()
    table = attribute(keys, load_index(None)).select(ATTRIBUTION_TABLE_SCHEMA.names)
    con.register("a", table.cast(ATTRIBUTION_TABLE_SCHEMA))
    attr = {f.name for f in ATTRIBUTION_FIELDS}
    cols = ", ".join(f'a."{n}"' if n in attr else f'f."{n}"' for n in FLOW_SCHEMA.names)
    on = " AND ".join(
        f'f."{k}" IS NOT DISTINCT FROM a."{k}"' for k in ("dst_asn", "dst_domain", "dst_as_country")
    )
    out = con.sql(f"SELECT {cols} FROM f LEFT JOIN a ON {on} ORDER BY f.flow_id").to_arrow_table()
    return out.cast(FLOW_SCHEMA)


def seed_dataset(work: Path) -> Path:
    """The labelled generator's two days of traffic (:func:`derisk.gen.labelled.generate`: browsing,
    beacons, long connections, DNS tunnels, uploads, new destinations, attributed) as a seed dataset."""
    import pyarrow.parquet as pq

    from derisk.gen.labelled import generate
    from derisk.store import parquet

    seed = work / "seed"
    (seed / "flows").mkdir(parents=True)
    pq.write_table(attributed(generate().flows), seed / "flows" / "seed.parquet")
    parquet.write_manifest(seed, parquet.new_manifest("generated", {}, engine="generator"))
    return seed


def tile(seed: Path, dest: Path, flows: int, per_input: int, memory: str) -> dict[str, object]:
    """Tile the seed dataset's flows into ``dest`` until it holds ``flows`` rows."""
    import duckdb

    from derisk.flows import FLOW_SCHEMA
    from derisk.store import parquet
    from derisk.store.sqltext import ident, literal

    con = duckdb.connect(config={"memory_limit": memory, "preserve_insertion_order": False})
    scan = f"read_parquet({literal(str(seed / 'flows' / '**' / '*.parquet'))}, hive_partitioning = true)"
    con.execute(
        f"CREATE TEMP TABLE seed AS SELECT *, row_number() OVER (ORDER BY first_seen, flow_id) - 1 AS _ord FROM {scan}"
    )
    n_seed, t0, t1 = con.execute(
        "SELECT count(*), epoch_us(min(first_seen)), epoch_us(max(coalesce(last_seen, first_seen))) FROM seed"
    ).fetchone()  # type: ignore[misc]
    span = int(t1 - t0) + 1_000_000
    copies = -(-flows // n_seed)
    site = json.loads((seed / "manifest.json").read_text())["site"]
    part = literal(parquet.partition_value(site))
    shifted = {"first_seen", "last_seen"}
    cols = []
    for name in FLOW_SCHEMA.names:
        if name in shifted:
            cols.append(f"{ident(name)} - to_microseconds(k * {span}::BIGINT) AS {ident(name)}")
        elif name == "flow_id":
            cols.append(f"'gen-' || (k // {per_input}) || '#' || (k * {n_seed} + _ord) AS flow_id")
        elif name == "input_id":
            cols.append(f"'gen-' || (k // {per_input}) AS input_id")
        else:
            cols.append(ident(name))
    day = "coalesce(strftime(timezone('UTC', first_seen), '%Y-%m-%d'), 'unknown')"
    body = f"SELECT {', '.join(cols)} FROM seed, range({copies}) AS r(k) WHERE k * {n_seed} + _ord < {flows}"
    with parquet.publishing(dest) as tmp:
        con.execute(
            f"COPY (SELECT *, {part} AS site, {day} AS day FROM ({body})) TO {literal(str(tmp / 'flows'))} "
            "(FORMAT parquet, PARTITION_BY (site, day), COMPRESSION zstd, ROW_GROUP_SIZE 122880)"
        )
        out = f"read_parquet({literal(str(tmp / 'flows' / '**' / '*.parquet'))}, hive_partitioning = true)"
        con.execute(
            f"COPY (SELECT input_id, 'generated:' || input_id AS path, 'zeek' AS format, input_id AS digest, "
            "0::BIGINT AS size_bytes, NULL::VARCHAR AS site_digest, any_value(ipdata_version) AS ipdata_version, "
            f"count(*)::BIGINT AS flow_count, now() AS ingested_at FROM {out} GROUP BY input_id ORDER BY input_id) "
            f"TO {literal(str(tmp / 'inputs.parquet'))} (FORMAT parquet)"
        )
        total = con.execute(f"SELECT count(*) FROM {out}").fetchone()[0]  # type: ignore[index]
        inputs = con.execute(
            f"SELECT count(*) FROM read_parquet({literal(str(tmp / 'inputs.parquet'))})"
        ).fetchone()[0]  # type: ignore[index]
        manifest = parquet.new_manifest(
            site,
            {"flows": int(total), "alerts": 0, "inputs": int(inputs)},
            engine="generator",
            extra={"knowledge": [], "generator": {"seed_flows": int(n_seed), "copies": int(copies)}},
        )
        parquet.write_manifest(tmp, manifest)
    return manifest


def tile_arrow(seed: Path, dest: Path, flows: int, per_input: int) -> dict[str, object]:
    """:func:`tile` in Arrow, copy by copy: the same rows, ids, times and partitions, written as
    one file per copy and day (``part-K.parquet``). Each copy is shifted and written on its own,
    so memory is the seed's and time grows with the flows alone (DuckDB's one partitioned COPY
    buffers hundreds of day partitions at once and spilled gigabytes at 10 M flows)."""
    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from derisk.flows import FLOW_SCHEMA
    from derisk.store import parquet

    files = sorted((seed / "flows").rglob("*.parquet"))
    table = pa.concat_tables([pq.read_table(f).select(FLOW_SCHEMA.names).cast(FLOW_SCHEMA) for f in files])
    table = table.sort_by([("first_seen", "ascending"), ("flow_id", "ascending")])
    n_seed = table.num_rows
    first = pc.cast(table.column("first_seen"), pa.int64())
    last = pc.cast(pc.coalesce(table.column("last_seen"), table.column("first_seen")), pa.int64())
    span = int(pc.max(last).as_py()) - int(pc.min(first).as_py()) + 1_000_000
    copies = -(-flows // n_seed)
    site = json.loads((seed / "manifest.json").read_text())["site"]
    site_dir = f"site={parquet.partition_value(site)}"
    counts: dict[str, int] = {}
    ipdata: dict[str, str | None] = {}
    with parquet.publishing(dest) as tmp:
        for k in range(copies):  # loop over copies of the seed, each shifted vectorised
            rows = min(n_seed, flows - k * n_seed)
            part = table.slice(0, rows)
            shift = pa.scalar(k * span, pa.duration("us"))
            input_id = f"gen-{k // per_input}"
            ordinals = pa.array(np.arange(k * n_seed, k * n_seed + rows, dtype=np.int64)).cast(pa.string())
            for name in ("first_seen", "last_seen"):
                i = part.schema.get_field_index(name)
                part = part.set_column(i, name, pc.subtract(part.column(name), shift))
            part = part.set_column(0, "flow_id", pc.binary_join_element_wise(input_id, ordinals, "#"))
            part = part.set_column(1, "input_id", pa.nulls(rows, pa.string()).fill_null(input_id))
            days = pc.fill_null(pc.strftime(part.column("first_seen"), "%Y-%m-%d"), "unknown")
            for day in sorted(pc.unique(days).to_pylist()):
                folder = tmp / parquet.FLOWS / site_dir / f"day={day}"
                folder.mkdir(parents=True, exist_ok=True)
                chunk = part.filter(pc.equal(days, day))
                pq.write_table(
                    chunk, folder / f"part-{k}.parquet", compression="zstd", row_group_size=122_880
                )
            counts[input_id] = counts.get(input_id, 0) + rows
            versions = pc.drop_null(pc.unique(part.column("ipdata_version"))).to_pylist()
            ipdata.setdefault(input_id, versions[0] if versions else None)
        now = datetime.now(UTC)
        ids = sorted(counts)
        inputs = pa.table(
            {
                "input_id": ids,
                "path": [f"generated:{i}" for i in ids],
                "format": ["zeek"] * len(ids),
                "digest": ids,
                "size_bytes": pa.array([0] * len(ids), pa.int64()),
                "site_digest": pa.nulls(len(ids), pa.string()),
                "ipdata_version": pa.array([ipdata[i] for i in ids], pa.string()),
                "flow_count": pa.array([counts[i] for i in ids], pa.int64()),
                "ingested_at": pa.array([now] * len(ids), pa.timestamp("us", tz="UTC")),
            }
        )
        pq.write_table(inputs, tmp / "inputs.parquet")
        manifest = parquet.new_manifest(
            site,
            {"flows": sum(counts.values()), "alerts": 0, "inputs": len(ids)},
            engine="generator",
            extra={"knowledge": [], "generator": {"seed_flows": n_seed, "copies": copies}},
        )
        parquet.write_manifest(tmp, manifest)
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path, help="the dataset folder to write (must not exist)")
    parser.add_argument("--flows", type=int, default=10_000_000)
    parser.add_argument("--per-input", type=int, default=1, help="seed copies per input")
    parser.add_argument("--seed", type=Path, help="reuse this seed dataset instead of making one")
    parser.add_argument("--save-seed", type=Path, help="also keep the seed dataset made here at this path")
    parser.add_argument("--memory", default="2GB", help="DuckDB memory limit while tiling (with --duckdb)")
    parser.add_argument(
        "--duckdb", action="store_true", help="tile in one DuckDB COPY (slower) instead of Arrow"
    )
    args = parser.parse_args()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gen-parquet-", dir=args.dest.parent) as tmp:
        seed = args.seed or seed_dataset(Path(tmp))
        seeded = time.perf_counter()
        if args.duckdb:
            manifest = tile(seed, args.dest, args.flows, args.per_input, args.memory)
        else:
            manifest = tile_arrow(seed, args.dest, args.flows, args.per_input)
        if args.seed is None and args.save_seed is not None:
            shutil.copytree(seed, args.save_seed)
    print(
        json.dumps(
            {
                "flows": manifest["rows"],
                "seed_seconds": round(seeded - start, 1),
                "tile_seconds": round(time.perf_counter() - seeded, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
