"""Attribution of the few rows an alert rests on: who is on each side, and the flows to cite."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from derisk.detect.alert import MAX_FLOW_IDS, Target
from derisk.detect.segments import I64, column

_TARGET_COLUMNS = (
    "src_ip",
    "system",
    "dst_ip",
    "server_name",
    "dst_domain",
    "dst_org",
    "dst_as_org",
    "dst_controller",
    "dst_jurisdiction",
    "dst_jurisdiction_basis",
)


def rows_info(flows: pa.Table, rows: I64) -> list[dict[str, Any]]:
    """The attribution columns of ``rows`` as dicts (one take per column, not per row)."""
    if len(rows) == 0:
        return []
    take = pa.array(np.asarray(rows, dtype=np.int64), pa.int64())
    cols = {name: pc.take(column(flows, name), take).to_pylist() for name in _TARGET_COLUMNS}
    return [{name: cols[name][i] for name in _TARGET_COLUMNS} for i in range(len(rows))]


def target_from(info: dict[str, Any], destination: str, *, by_name: bool = False) -> Target:
    org = info.get("dst_org") or info.get("dst_as_org")
    return Target(
        src_ip=info.get("src_ip"),
        system=info.get("system"),
        destination=destination,
        dst_ip=info.get("dst_ip"),
        server_name=info.get("server_name") if by_name or info.get("server_name") else None,
        organisation=org,
        controller=info.get("dst_controller"),
        jurisdiction=info.get("dst_jurisdiction"),
        jurisdiction_basis=info.get("dst_jurisdiction_basis"),
    )


def flow_ids_for(flows: pa.Table, row_lists: list[I64]) -> list[list[str]]:
    """Up to :data:`MAX_FLOW_IDS` flow ids for each list of rows (one take over all of them)."""
    capped = [np.asarray(r[:MAX_FLOW_IDS], dtype=np.int64) for r in row_lists]
    if not capped:
        return []
    allrows = np.concatenate(capped) if capped else np.zeros(0, dtype=np.int64)
    ids = pc.take(column(flows, "flow_id"), pa.array(allrows, pa.int64())).to_pylist() if len(allrows) else []
    out: list[list[str]] = []
    pos = 0
    for r in capped:
        out.append([str(x) for x in ids[pos : pos + len(r)] if x is not None])
        pos += len(r)
    return out
