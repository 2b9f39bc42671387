"""Inputs of a Spark analysis as one DataFrame of stored flows (:data:`derisk.flows.STORED_SCHEMA`).

* A Zeek log directory is parsed, oriented to the site, given its registrable domains and numbered
  by the executors, one task per directory, with the very functions the local path runs
  (:func:`derisk.pipeline.prepare`): the flows and their ids come out the same. Their AS, AS
  country and geolocation then come from the bucketed range join of :mod:`derisk.spark.enrich`
  (with a MaxMind database, from the lookup inside ``prepare``).
* A Parquet dataset (``derisk export parquet``, or an earlier Spark run) is read as it is: its flows
  are already oriented and enriched; attribution and detection run again on them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from derisk.errors import InputError
from derisk.flows import STORED_SCHEMA
from derisk.site import Site
from derisk.store import parquet

#: Column added to each flow for the dataset's partitions.
PARTITION_COLUMNS = parquet.PARTITIONS


@dataclass
class Inputs:
    """What the inputs are: their flows (a Spark DataFrame) and the records of the ``inputs`` table."""

    flows: Any
    records: list[dict[str, Any]] = field(default_factory=list)
    ipdata_version: str | None = None
    #: Parquet datasets among the inputs (their knowledge tables travel to the output).
    datasets: list[Path] = field(default_factory=list)


def spark_schema(schema: pa.Schema) -> Any:
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)


def _zeek_batches(
    specs: list[Any], site: Site, data_root: str | None, joined: bool, batches: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """Executor side: each row names an input; its flows come out as stored rows. With ``joined``
    the network columns are left empty here and filled by the range join afterwards."""
    from derisk.enrich.ipdata import load_ipdata
    from derisk.pipeline import prepare
    from derisk.spark.enrich import NoNetwork

    ipdata: Any = load_ipdata(Path(data_root) if data_root else None)
    if joined:
        ipdata = NoNetwork(ipdata.manifest)
    for batch in batches:
        for index in batch.column("spec").to_pylist():
            spec = specs[index]
            for prepared in prepare(spec, site, ipdata, None):
                n = prepared.num_rows
                flow_id = pc.binary_join_element_wise(
                    pa.array([spec.input_id] * n), pc.cast(prepared.column("ordinal"), pa.string()), "#"
                )
                columns = {name: prepared.column(name) for name in prepared.schema.names}
                columns["flow_id"] = flow_id
                columns["input_id"] = pa.array([spec.input_id] * n)
                columns["ipdata_version"] = pa.array([ipdata.manifest.version] * n)
                table = pa.table({name: columns[name] for name in STORED_SCHEMA.names})
                yield from table.cast(STORED_SCHEMA).to_batches()


def read_inputs(
    spark: Any, paths: list[Path], site: Site, data_root: Path | None, *, strict: bool = False
) -> Inputs:
    """The flows of every input; Zeek directories and Parquet datasets, checked before any job runs
    (``strict``: a Zeek log cut short or with bad lines is refused, as ``derisk analyze --strict`` does)."""
    from derisk.ingest import resolve_inputs

    zeek_paths = [p for p in paths if not parquet.is_dataset(p)]
    datasets = [p for p in paths if parquet.is_dataset(p)]
    specs = resolve_inputs(zeek_paths, strict=strict) if zeek_paths else []
    for spec in specs:
        if spec.format != "zeek":
            raise InputError(
                f"is a {spec.format} input; the Spark engine reads Zeek log directories and Parquet datasets",
                source=str(spec.path),
            )
    for folder in datasets:
        parquet.check_dataset(folder)
    frames = []
    records: list[dict[str, Any]] = []
    ipdata_version = None
    if specs:
        from derisk.enrich.ipdata import load_ipdata
        from derisk.spark.enrich import enrich, range_tables

        ipdata = load_ipdata(data_root)  # DataError before any job
        ipdata_version = ipdata.manifest.version
        ranges = range_tables(ipdata)
        site_digest = site.digest()
        root = str(data_root) if data_root else None
        index = spark.createDataFrame([(i,) for i in range(len(specs))], "spec int").repartition(len(specs))
        joined = ranges is not None

        def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            return _zeek_batches(specs, site, root, joined, batches)

        parsed = index.mapInArrow(run, spark_schema(STORED_SCHEMA))
        frames.append(
            enrich(spark, parsed, ranges).select(*STORED_SCHEMA.names) if ranges is not None else parsed
        )
        now = dt.datetime.now(dt.UTC)
        for spec in specs:
            records.append(
                {
                    "input_id": spec.input_id,
                    "path": str(spec.path),
                    "format": spec.format,
                    "digest": spec.digest,
                    "size_bytes": spec.size_bytes,
                    "site_digest": site_digest,
                    "ipdata_version": ipdata_version,
                    "flow_count": None,  # counted once the flows are written
                    "ingested_at": now,
                }
            )
    for folder in datasets:
        flows = folder / parquet.FLOWS
        frame = spark.read.option("basePath", str(flows)).parquet(str(flows))
        frames.append(frame.select(*STORED_SCHEMA.names))
        side = folder / "inputs.parquet"
        if side.exists():
            import pyarrow.parquet as pq

            records.extend(pq.read_table(side).to_pylist())
    if not frames:
        raise InputError("no inputs given")
    flows = frames[0]
    for frame in frames[1:]:
        flows = flows.unionByName(frame)
    return Inputs(flows=flows, records=records, ipdata_version=ipdata_version, datasets=datasets)
