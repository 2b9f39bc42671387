"""IP → AS / AS country / geolocation on Spark: a range join made cheap by buckets, broadcast.

The IP data are sorted, non-overlapping ranges of 16-byte keys (:mod:`derisk.enrich.ipdata`; IPv4
as the last 4 bytes). Each range is cut into the buckets it covers — an IPv4 /16, an IPv6 /32 — and
the bucketed ranges are broadcast; each distinct destination address finds its range by an equality
join on its bucket plus a ``BETWEEN`` on its key. The few ranges that cover more than
:data:`MAX_SPAN` buckets (an IPv6 /20, say) are broadcast apart and matched by ``BETWEEN`` alone.
Addresses are parsed into keys by :func:`derisk.ipaddrs.parse`, the local path's parser, and a
flow's columns then are exactly what :meth:`RangeIpData.lookup` gives it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from derisk import ipaddrs

#: A range covering more buckets than this is matched without buckets.
MAX_SPAN: Final = 4096
#: IPv6 buckets are numbered after the 65,536 IPv4 ones.
V6_OFFSET: Final = 1 << 16
#: (IP data table, its value column, the flow column it fills, type).
COLUMNS: Final = (
    ("asn", "asn", "dst_asn", pa.int64()),
    ("asn", "org", "dst_as_org", pa.string()),
    ("ascc", "country", "dst_as_country", pa.string()),
    ("geo", "country", "dst_geo_country", pa.string()),
)
NETWORK_COLUMNS: Final = tuple(c[2] for c in COLUMNS)


def buckets(keys: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(bucket, is IPv4) of each 16-byte key."""
    halves = np.frombuffer(np.ascontiguousarray(keys).tobytes(), dtype=">u8").reshape(-1, 2).astype(np.uint64)
    hi, lo = halves[:, 0], halves[:, 1]
    v4 = (hi == 0) & (lo < (1 << 32))
    bucket = np.where(
        v4, (lo >> np.uint64(16)).astype(np.int64), V6_OFFSET + (hi >> np.uint64(32)).astype(np.int64)
    )
    return bucket, v4


def bucketed(
    starts: np.ndarray[Any, Any], ends: np.ndarray[Any, Any], values: pa.Table
) -> tuple[pa.Table, pa.Table]:
    """(narrow ranges, one row per bucket they cover; wide ranges) with their values."""
    b_start, v4_start = buckets(starts)
    b_end, v4_end = buckets(ends)
    span = b_end - b_start + 1
    narrow = (span <= MAX_SPAN) & (v4_start == v4_end)
    rows = np.flatnonzero(narrow)
    counts = span[rows]
    index = np.repeat(rows, counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    bucket = b_start[index] + (np.arange(len(index)) - first)

    def table(picked: np.ndarray[Any, Any], extra: dict[str, Any]) -> pa.Table:
        cols = {
            **extra,
            "r_start": pa.array(list(starts[picked]), pa.binary()),
            "r_end": pa.array(list(ends[picked]), pa.binary()),
        }
        taken = values.take(pa.array(picked, pa.int64()))
        for name in taken.column_names:
            cols[f"r_{name}"] = taken.column(name)
        return pa.table(cols)

    return table(index, {"r_bucket": pa.array(bucket, pa.int64())}), table(np.flatnonzero(~narrow), {})


def _keys(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Executor side: each distinct address with its key and bucket (null when not an address)."""
    for batch in batches:
        ips = batch.column("dst_ip")
        parsed = ipaddrs.parse(ips)
        bucket, _ = buckets(parsed.keys)
        valid = parsed.family != 0
        keys = pa.array(list(parsed.keys), pa.binary())
        yield pa.RecordBatch.from_pydict(
            {
                "dst_ip": ips,
                "key": pc.if_else(pa.array(valid), keys, pa.scalar(None, pa.binary())),
                "bucket": pa.array(np.where(valid, bucket, -1), pa.int64()),
            }
        )


class NoNetwork:
    """An IP lookup that knows no address, for :func:`derisk.enrich.network.enrich_batch` on the
    executors: the flows get their registrable domain there, and their network columns from the
    range join afterwards."""

    def __init__(self, manifest: Any) -> None:
        self.manifest = manifest

    def lookup(self, ips: pa.Array) -> pa.Table:
        from derisk.enrich.ipdata import LOOKUP_SCHEMA

        uniques = pc.drop_null(pc.unique(ips))
        n = len(uniques)
        return pa.Table.from_arrays(
            [uniques.cast(pa.string())] + [pa.nulls(n, f.type) for f in list(LOOKUP_SCHEMA)[1:]],
            schema=LOOKUP_SCHEMA,
        )

    def sample_addresses(self, asn: int, geo_country: str | None, count: int) -> list[str]:
        return []  # it knows no address


def range_tables(ipdata: Any) -> dict[str, tuple[pa.Table, pa.Table]] | None:
    """The bucketed (narrow, wide) ranges of each IP data table; None for data without ranges
    (MaxMind databases: their lookup then runs in the executors)."""
    from derisk.enrich.ipdata import RangeIpData

    if not isinstance(ipdata, RangeIpData):
        return None
    out = {}
    for name, ranges in ipdata._ranges.items():
        out[name] = bucketed(ranges.starts, ranges.ends, ranges.values)
    return out


def enrich(spark: Any, flows: Any, tables: dict[str, tuple[pa.Table, pa.Table]]) -> Any:
    """``flows`` with the network columns from the bucketed range join (replacing any there)."""
    from pyspark.sql import functions as F

    ips = flows.select("dst_ip").distinct().mapInArrow(_keys, "dst_ip string, key binary, bucket long")
    ips = ips.persist()
    looked = ips.select("dst_ip")
    for table, column, target, typ in COLUMNS:
        narrow, wide = tables[table]
        if f"r_{column}" not in narrow.column_names:
            looked = looked.withColumn(target, F.lit(None).cast("bigint" if typ == pa.int64() else "string"))
            continue
        found = []
        for part, on_bucket in ((narrow, True), (wide, False)):
            if part.num_rows == 0:
                continue
            frame = spark.createDataFrame(
                part.select(
                    [
                        c
                        for c in part.column_names
                        if c.startswith("r_") and c in (f"r_{column}", "r_start", "r_end", "r_bucket")
                    ]
                )
            )
            cond = (F.col("key") >= F.col("r_start")) & (F.col("key") <= F.col("r_end"))
            if on_bucket:
                cond = cond & (F.col("bucket") == F.col("r_bucket"))
            found.append(
                ips.join(F.broadcast(frame), cond).select("dst_ip", F.col(f"r_{column}").alias(target))
            )
        if not found:
            looked = looked.withColumn(target, F.lit(None).cast("bigint" if typ == pa.int64() else "string"))
            continue
        matches = found[0]
        for more in found[1:]:
            matches = matches.unionByName(more)
        looked = looked.join(matches, "dst_ip", "left")
    rest = [c for c in flows.columns if c not in NETWORK_COLUMNS]
    return flows.select(*rest).join(looked, "dst_ip", "left")
