"""One Spark analysis: inputs → attributed flows → detections → a Parquet dataset, all or nothing.

Attribution: the distinct (AS, domain, AS country) keys of the external endpoints are few next to
the flows; they are gathered on the driver, resolved through the control graph by the local path's
:func:`derisk.enrich.attribution.attribute`, and broadcast back to every flow in a join on the keys
(null-safe, as the workspace's ``flows_attributed`` view joins them).

The dataset is written into a temporary folder beside ``dest`` and renamed into place once the
flows, the alerts and the manifest are all there (:func:`derisk.store.parquet.publishing`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from derisk.detect import config_for_site
from derisk.detect.alert import Alert
from derisk.flows import FLOW_SCHEMA
from derisk.site import Site
from derisk.spark.detect import run_detections
from derisk.spark.inputs import Inputs, read_inputs
from derisk.store import parquet
from derisk.store.workspace import ATTRIBUTION_TABLE_SCHEMA

log = logging.getLogger(__name__)

_KEYS = ("dst_asn", "dst_domain", "dst_as_country")


def attribute_flows(spark: Any, flows: Any, index: Any) -> Any:
    """``flows`` with the attribution columns, resolved by ``index`` (the control graph)."""
    from pyspark.sql import functions as F

    from derisk.enrich.attribution import attribute

    keys = (
        flows.where(F.col("direction").isin("outbound", "inbound"))
        .groupBy(*_KEYS)
        .agg(F.first("dst_as_org", ignorenulls=True).alias("dst_as_org"))
        .toArrow()
    )
    table = attribute(keys, index).select(ATTRIBUTION_TABLE_SCHEMA.names).cast(ATTRIBUTION_TABLE_SCHEMA)
    renamed = {k: f"_a_{k}" for k in _KEYS}
    attr = _frame_of(spark, table, renamed)
    cond = None
    for k in _KEYS:
        term = F.col(k).eqNullSafe(F.col(renamed[k]))
        cond = term if cond is None else cond & term
    joined = flows.join(F.broadcast(attr), cond, "left").drop(*renamed.values())
    return joined.select(*FLOW_SCHEMA.names)


@contextlib.contextmanager
def graph_of(datasets: list[Path], graph_workspace: Path | None) -> Iterator[Any]:
    """The workspace whose control graph attributes the flows: the first dataset's (it carries the
    entities it was attributed with), else ``graph_workspace`` if it exists, else None (curated)."""
    from derisk.store.workspace import Workspace

    if datasets:
        with parquet.open_dataset(datasets[0]) as (ws, _):
            yield ws
    elif graph_workspace is not None and Workspace.exists(graph_workspace):
        with Workspace.open(graph_workspace, create=False, read_only=True) as ws:
            yield ws
    else:
        yield None


def _frame_of(spark: Any, table: pa.Table, renamed: dict[str, str]) -> Any:
    from derisk.spark.inputs import spark_schema

    table = table.rename_columns([renamed.get(n, n) for n in table.column_names])
    return spark.createDataFrame(table, schema=spark_schema(table.schema))


def _alert_rows(alerts: list[Alert]) -> list[dict[str, Any]]:
    """Rows of the dataset's alerts (the columns of the workspace's ``alerts`` table), one per id."""
    seen: set[str] = set()
    rows = []
    for a in alerts:
        if a.alert_id in seen:
            continue
        seen.add(a.alert_id)
        rows.append(
            {
                "alert_id": a.alert_id,
                "kind": a.kind,
                "severity": a.severity,
                "severity_rank": a.severity_rank,
                "score": float(a.score),
                "src_ip": a.src_ip,
                "system": a.system,
                "destination": a.destination,
                "controller": a.controller,
                "jurisdiction": a.jurisdiction,
                "first_seen": a.first_seen,
                "last_seen": a.last_seen,
                "doc": json.dumps(a.to_json(), ensure_ascii=False),
            }
        )
    return rows


TS = pa.timestamp("us", tz="UTC")
ALERTS_SCHEMA = pa.schema(
    [
        ("alert_id", pa.string()),
        ("kind", pa.string()),
        ("severity", pa.string()),
        ("severity_rank", pa.int32()),
        ("score", pa.float64()),
        ("src_ip", pa.string()),
        ("system", pa.string()),
        ("destination", pa.string()),
        ("controller", pa.string()),
        ("jurisdiction", pa.string()),
        ("first_seen", TS),
        ("last_seen", TS),
        ("doc", pa.string()),
    ]
)
INPUTS_SCHEMA = pa.schema(
    [
        ("input_id", pa.string()),
        ("path", pa.string()),
        ("format", pa.string()),
        ("digest", pa.string()),
        ("size_bytes", pa.int64()),
        ("site_digest", pa.string()),
        ("ipdata_version", pa.string()),
        ("flow_count", pa.int64()),
        ("ingested_at", TS),
    ]
)
RUNS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("started_at", TS),
        ("site", pa.string()),
        ("site_digest", pa.string()),
        ("ipdata_version", pa.string()),
        ("registry_version", pa.string()),
        ("inputs", pa.string()),
    ]
)
SUPPRESSIONS_SCHEMA = pa.schema(
    [
        ("matcher", pa.string()),
        ("value", pa.string()),
        ("reason", pa.string()),
        ("kinds", pa.string()),
        ("flows", pa.int64()),
    ]
)


def _write_alerts(folder: Path, rows: list[dict[str, Any]], site_part: str) -> None:
    by_day: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        first = row["first_seen"]
        day = first.astimezone(dt.UTC).strftime("%Y-%m-%d") if first is not None else "unknown"
        by_day.setdefault(day, []).append(row)
    for day, members in sorted(by_day.items()):
        part = folder / parquet.ALERTS / f"site={site_part}" / f"day={day}"
        part.mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(members, schema=ALERTS_SCHEMA), part / "part-0.parquet")


def _tidy(folder: Path) -> None:
    """Remove what Hadoop's writer leaves beside the data (its _SUCCESS marker, .crc checksums)."""
    for path in folder.rglob("*"):
        if path.is_file() and (
            path.name == "_SUCCESS" or (path.name.startswith(".") and path.name.endswith(".crc"))
        ):
            path.unlink()


def analyse(
    spark: Any,
    inputs: list[Path],
    site: Site,
    dest: Path,
    *,
    data_root: Path | None = None,
    graph_workspace: Path | None = None,
    strict: bool = False,
) -> dict[str, Any]:
    """Analyse ``inputs`` on ``spark`` into the dataset ``dest``; its manifest."""
    from pyspark.sql import functions as F

    from derisk.know.attribution import load_index

    started = dt.datetime.now(dt.UTC)
    config = config_for_site(site)  # ConfigError before any job
    read: Inputs = read_inputs(spark, inputs, site, data_root, strict=strict)
    with parquet.publishing(dest) as tmp, graph_of(read.datasets, graph_workspace) as graph_ws:
        index = load_index(graph_ws)
        registry_version = index.version
        knowledge = parquet.copy_knowledge(graph_ws, tmp) if graph_ws is not None else []
        flows = attribute_flows(spark, read.flows, index)
        site_part = parquet.partition_value(site.name)
        day = F.coalesce(F.date_format(F.col("first_seen"), "yyyy-MM-dd"), F.lit("unknown"))
        (
            flows.withColumn("site", F.lit(site_part))
            .withColumn("day", day)
            .write.partitionBy(*parquet.PARTITIONS)
            .option("compression", "zstd")
            .parquet(str(tmp / parquet.FLOWS))
        )
        _tidy(tmp / parquet.FLOWS)
        # The detections read the attributed flows back from what was just written, instead of
        # caching them in the executors' memory (or parsing and attributing them again).
        folder = tmp / parquet.FLOWS
        if any(folder.rglob("*.parquet")):
            flows = spark.read.schema(flows.schema).option("basePath", str(folder)).parquet(str(folder))
        alerts, suppressed = run_detections(flows.select(*FLOW_SCHEMA.names), config)
        rows = _alert_rows(alerts)
        _write_alerts(tmp, rows, site_part)
        counts = parquet.flow_counts(tmp)
        records = []
        for record in read.records:
            if record["input_id"] not in counts:
                continue
            records.append({**record, "flow_count": counts[record["input_id"]]})
        pq.write_table(pa.Table.from_pylist(records, schema=INPUTS_SCHEMA), tmp / "inputs.parquet")
        input_ids = [r["input_id"] for r in records]
        run_id = hashlib.sha256(
            f"{started.isoformat()}|{site.digest()}|{','.join(input_ids)}".encode()
        ).hexdigest()[:16]
        run = {
            "run_id": run_id,
            "started_at": started,
            "site": site.name,
            "site_digest": site.digest(),
            "ipdata_version": read.ipdata_version or (records[0]["ipdata_version"] if records else None),
            "registry_version": registry_version,
            "inputs": ",".join(input_ids),
        }
        pq.write_table(pa.Table.from_pylist([run], schema=RUNS_SCHEMA), tmp / "runs.parquet")
        sup = [
            {
                "matcher": s.entry.matcher,
                "value": s.entry.value,
                "reason": s.entry.reason,
                "kinds": ",".join(s.entry.kinds),
                "flows": s.flows,
            }
            for s in suppressed
        ]
        pq.write_table(
            pa.Table.from_pylist(sup, schema=SUPPRESSIONS_SCHEMA), tmp / "alert_suppressions.parquet"
        )
        manifest = parquet.new_manifest(
            site.name or "site",
            {
                "flows": sum(counts.values()),
                "alerts": len(rows),
                "inputs": len(records),
                "runs": 1,
                "alert_suppressions": len(sup),
            },
            engine="spark",
            extra={"knowledge": knowledge, "spark_master": spark.sparkContext.master},
        )
        parquet.write_manifest(tmp, manifest)
    return manifest
