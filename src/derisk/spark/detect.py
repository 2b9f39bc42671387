"""The detections on Spark: grouped Arrow functions that call the local path's detectors.

The local path (:func:`derisk.detect.detect`) cuts a large flow table by system (else internal
host) for the detections that look at one system at a time, and cuts every window and baseline from
the whole table's clock. Here the same cut is a Spark ``groupBy``: each group is handed, as an Arrow
table, to the very detector functions of :data:`derisk.detect.DETECTORS`, with the clock (the
*frame*) computed once over all flows. The detections that compare across systems (DNS tunnels per
domain, new organisations and jurisdictions per site) see every flow in one group. The allow-list
masks, the host merge and the final order are those of :mod:`derisk.detect` too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import numpy as np
import pyarrow as pa

from derisk.detect import COLUMNS, DETECTORS, merge_hosts
from derisk.detect.alert import Alert
from derisk.detect.allowlist import Suppression, allow_masks
from derisk.detect.config import DetectionConfig
from derisk.detect.segments import Frame, outbound_frame
from derisk.flows import FLOW_SCHEMA

#: What a group function returns: each alert as its JSON document, and the allow-list counts.
RESULT_SCHEMA: Final = pa.schema(
    [pa.field("kind", pa.string()), pa.field("entry", pa.int32()), pa.field("doc", pa.string())]
)
#: The grouping key of the detections that look at one system (or internal host) at a time.
PART_KEY: Final = "_derisk_part"


def detection_columns() -> list[str]:
    return [c for c in COLUMNS if c in FLOW_SCHEMA.names]


def _frame_parts(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Executor side: the frame (first and last outbound start) of each partition's flows."""
    tables = [pa.Table.from_batches([b]) for b in batches]
    frame = outbound_frame(pa.concat_tables(tables), None) if tables else None
    lo, hi = frame if frame is not None else (None, None)
    yield pa.RecordBatch.from_pydict(
        {"lo": [lo], "hi": [hi]}, schema=pa.schema([("lo", pa.float64()), ("hi", pa.float64())])
    )


def global_frame(flows: Any) -> Frame | None:
    """The frame over every flow: the earliest and latest start of the outbound flows, as the local
    path computes it (:func:`derisk.detect.segments.outbound_frame`, partition by partition)."""
    from pyspark.sql import functions as F

    parts = flows.select(*detection_columns()).mapInArrow(_frame_parts, "lo double, hi double")
    row = parts.agg(F.min("lo").alias("lo"), F.max("hi").alias("hi")).collect()[0]
    if row["lo"] is None:
        return None
    return float(row["lo"]), float(row["hi"])


def _run(table: pa.Table, config: DetectionConfig, frame: Frame | None, partitionable: bool) -> pa.Table:
    """Run the detectors of one kind of group on ``table``, as :func:`derisk.detect.detect` does."""
    import json

    from derisk.detect import default_laws_for

    laws = default_laws_for()
    table = table.select([c for c in COLUMNS if c in table.column_names])
    masks, suppressed = allow_masks(table, config.allowlist)
    kinds: list[str] = []
    docs: list[str] = []
    entries: list[int] = []
    for kind_group, detector, part in DETECTORS:
        if part != partitionable:
            continue
        keep = np.ones(table.num_rows, dtype=bool)
        for i, entry in enumerate(config.allowlist):
            if any(entry.applies_to(k) for k in kind_group):
                keep &= ~masks[i]
        view = table if keep.all() else table.filter(pa.array(keep))
        for alert in detector(view, config, laws, now=None, frame=frame):
            kinds.append(alert.kind)
            docs.append(json.dumps(alert.to_json(), ensure_ascii=False))
            entries.append(-1)
    if partitionable:  # the allow-list counts: once per flow, so from the partitioned groups only
        for i, s in enumerate(suppressed):
            kinds.append("")
            entries.append(i)
            docs.append(str(s.flows))
    return pa.table(
        {"kind": kinds, "entry": pa.array(entries, pa.int32()), "doc": docs}, schema=RESULT_SCHEMA
    )


def run_detections(flows: Any, config: DetectionConfig) -> tuple[list[Alert], list[Suppression]]:
    """Every alert over ``flows`` (a DataFrame of :data:`FLOW_SCHEMA`), most severe first."""
    import json

    from pyspark.sql import functions as F

    frame = global_frame(flows)
    columns = detection_columns()
    selected = flows.select(*columns)
    part_key = F.coalesce(F.col("system"), F.col("src_ip"))
    schema = "kind string, entry int, doc string"

    def per_system(table: pa.Table) -> pa.Table:
        return _run(table.drop_columns([PART_KEY]), config, frame, True)

    def whole(table: pa.Table) -> pa.Table:
        return _run(table.drop_columns([PART_KEY]), config, frame, False)

    by_system = selected.withColumn(PART_KEY, part_key).groupBy(PART_KEY).applyInArrow(per_system, schema)
    across = selected.withColumn(PART_KEY, F.lit(0)).groupBy(PART_KEY).applyInArrow(whole, schema)
    rows = by_system.unionByName(across).collect()
    alerts = [Alert.from_json(json.loads(r["doc"])) for r in rows if r["entry"] == -1]
    counts = [0] * len(config.allowlist)
    for r in rows:
        if r["entry"] >= 0:
            counts[r["entry"]] += int(r["doc"])
    suppressed = [Suppression(entry, n) for entry, n in zip(config.allowlist, counts, strict=True)]
    alerts = merge_hosts(alerts)
    alerts.sort(key=lambda a: (-a.severity_rank, -a.score, a.kind, a.destination, a.src_ip or ""))
    return alerts, suppressed
