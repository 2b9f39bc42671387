"""The detections on Spark: the local path's bucket pass on every partition, the rest on the driver.

The local path cuts a large flow table into buckets by system (else internal host) and runs each
bucket through :func:`derisk.detect.runner.bucket_pass`: the detections that look at one system at
a time run there; for those that compare across systems (DNS tunnels per domain, new organisations
and jurisdictions per site) the pass keeps only the flows and sums their answer depends on. Here a
bucket is a Spark partition (``repartition`` by the same key), the clock (the *frame*) is computed
once over all flows, and the driver merges the partitions' passes and finishes with
:func:`derisk.detect.runner.finish`: the very detector functions, allow-list masks, host merge and
order of :mod:`derisk.detect`, so the alerts are the local path's. DNS tunnels are scored on the
executors instead, the DNS flows repartitioned by the registrable domain of their query (the
detection's group), so that no partition's state carries a large system's DNS flows to the driver.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from derisk.detect import COLUMNS
from derisk.detect.alert import Alert
from derisk.detect.allowlist import Suppression
from derisk.detect.config import DetectionConfig
from derisk.detect.segments import Frame
from derisk.flows import FLOW_SCHEMA

#: What a partition returns: what its bucket pass gathered (alerts, sums, the flows kept), pickled.
STATE_SCHEMA: Final = pa.schema([pa.field("state", pa.binary())])
#: Flows a partition holds at most, about (the bucket size of the local path).
BUCKET_ROWS: Final = 1_000_000
#: The column the DNS flows are partitioned by: the registrable domain of their query.
DNS_KEY: Final = "_dns_domain"


def detection_columns() -> list[str]:
    return [c for c in COLUMNS if c in FLOW_SCHEMA.names]


def global_frame(flows: Any, now: dt.datetime | None = None) -> Frame | None:
    """The frame over every flow: the earliest and latest start of the outbound flows with a usable
    start, in Spark SQL, as :func:`derisk.detect.runner.sql_frame` computes it in DuckDB (and
    :func:`derisk.detect.segments.outbound_frame` over a table): seconds as a double, starts before
    1970 or more than a day after ``now`` left out."""
    from pyspark.sql import functions as F

    limit = (now or dt.datetime.now(dt.UTC)).timestamp() + 86_400.0
    start = F.unix_micros(F.col("first_seen")).cast("double") / F.lit(1e6)
    row = (
        flows.where((F.col("direction") == "outbound") & F.col("first_seen").isNotNull())
        .select(start.alias("s"))
        .where((F.col("s") >= 0) & (F.col("s") <= limit))
        .agg(F.min("s").alias("lo"), F.max("s").alias("hi"))
        .collect()[0]
    )
    if row["lo"] is None:
        return None
    return float(row["lo"]), float(row["hi"])


def _bucket(
    config: DetectionConfig, frame: Frame | None, batches: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """Executor side: one partition (every flow of each of its systems) through the local path's
    :func:`derisk.detect.runner.bucket_pass`; what it gathered, pickled, as one row."""
    import pickle

    from derisk.detect import default_laws_for
    from derisk.detect.alert import cached_laws
    from derisk.detect.runner import bucket_pass

    parts = [b for b in batches if b.num_rows]
    if not parts:
        return
    table = pa.Table.from_batches(parts)
    found = bucket_pass(table, config, cached_laws(default_laws_for()), frame, None, keep_dns=False)
    yield pa.RecordBatch.from_pydict({"state": [pickle.dumps(found)]}, schema=STATE_SCHEMA)


def _dns_keyed(config: DetectionConfig, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Executor side: the flows the DNS-tunnel detection reads (a query, allow-list applied), each
    with the registrable domain of its query; flows whose query has none never count."""
    from derisk.detect.dnstunnel import query_domains
    from derisk.detect.runner import dns_tunnel_rows

    for batch in batches:
        if not batch.num_rows:
            continue
        rows = dns_tunnel_rows(pa.Table.from_batches([batch]), config)
        keyed = rows.append_column(DNS_KEY, query_domains(rows))
        yield from keyed.filter(pc.is_valid(keyed.column(DNS_KEY))).to_batches()


def _dns_domains(
    config: DetectionConfig, frame: Frame | None, connected: frozenset[str], batches: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """Executor side: every DNS flow of each of this partition's domains through the local path's
    :func:`derisk.detect.dnstunnel.detect_dns_tunnels`, with one row per domain of theirs connected
    to directly (as its server name) anywhere on the site; the alerts, pickled, as one row."""
    import pickle

    from derisk.detect import default_laws_for
    from derisk.detect.alert import cached_laws
    from derisk.detect.dnstunnel import detect_dns_tunnels

    parts = [b for b in batches if b.num_rows]
    if not parts:
        return
    table = pa.Table.from_batches(parts)
    mine = sorted(connected.intersection(str(d) for d in pc.unique(table.column(DNS_KEY)).to_pylist()))
    table = table.drop_columns([DNS_KEY])
    filler = {
        f.name: pa.array(mine, f.type) if f.name == "server_name" else pa.nulls(len(mine), f.type)
        for f in table.schema
    }
    table = pa.concat_tables([table, pa.table(filler, schema=table.schema)])
    found = detect_dns_tunnels(table, config, cached_laws(default_laws_for()), now=None, frame=frame)
    yield pa.RecordBatch.from_pydict({"state": [pickle.dumps(found)]}, schema=STATE_SCHEMA)


def run_detections(flows: Any, config: DetectionConfig) -> tuple[list[Alert], list[Suppression]]:
    """Every alert over ``flows`` (a DataFrame of :data:`FLOW_SCHEMA`), most severe first.

    The flows are repartitioned by system (else internal host), about :data:`BUCKET_ROWS` a
    partition, and each partition runs the bucket pass of the local path; the driver merges what the
    partitions gathered and runs the detections that compare across systems on the few flows they
    need (:func:`derisk.detect.runner.finish`), reading the flows of new organisations again."""
    import pickle

    from pyspark.sql import functions as F

    from derisk.detect import default_laws_for
    from derisk.detect.alert import cached_laws
    from derisk.detect.runner import Pass, finish

    frame = global_frame(flows)
    columns = detection_columns()
    selected = flows.select(*columns)
    total = selected.count()
    spark = flows.sparkSession
    parts = max(int(spark.conf.get("spark.sql.shuffle.partitions")), math.ceil(total / BUCKET_ROWS))
    bucketed = selected.repartition(parts, F.coalesce(F.col("system"), F.col("src_ip")))

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        return _bucket(config, frame, batches)

    acc = Pass()
    # one partition's pass at a time through the driver, not all of them at once
    for row in bucketed.mapInArrow(run, "state binary").toLocalIterator(prefetchPartitions=True):
        acc.merge(pickle.loads(row["state"]))  # noqa: S301 - written by this job's executors, never read from input
    acc.alerts += _dns_tunnels(selected, config, frame, acc.names, parts)

    def read(col: str, values: list[str]) -> pa.Table:
        return flows.where(F.col(col).isin(values)).select(*columns).toArrow()

    result = finish(acc, read, config, cached_laws(default_laws_for()), frame, None)
    return result.alerts, result.suppressed


def _dns_tunnels(
    selected: Any, config: DetectionConfig, frame: Frame | None, names: set[str], parts: int
) -> list[Alert]:
    """DNS tunnels on executors, one partition per set of domains: the DNS flows repartitioned by
    the registrable domain of their query (the detection's group), so neither the driver nor one
    partition's state carries every DNS flow of the site. ``names`` are the server names and
    attributed domains of every flow the bucket passes saw (the domains connected to directly)."""
    import pickle

    from pyspark.sql.types import StringType, StructField, StructType

    from derisk.detect.dnstunnel import registrable

    connected = frozenset(d for d in registrable(sorted(names)) if d)
    schema = StructType([*selected.schema.fields, StructField(DNS_KEY, StringType(), True)])

    def key(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        return _dns_keyed(config, batches)

    def score(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        return _dns_domains(config, frame, connected, batches)

    keyed = selected.where(selected["dns_query"].isNotNull()).mapInArrow(key, schema)
    alerts: list[Alert] = []
    for row in keyed.repartition(parts, DNS_KEY).mapInArrow(score, "state binary").toLocalIterator():
        alerts += pickle.loads(row["state"])  # noqa: S301 - written by this job's executors, never read from input
    return alerts
