"""Helpers of :mod:`derisk.detect.incremental`: the compact row form the buffer keeps, integer keys
for its rows, the per-detection flags of a batch's rows, small conversions."""

from __future__ import annotations

import json
from typing import Any, Final, TypeVar

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from derisk.detect import COLUMNS
from derisk.detect.alert import Alert
from derisk.detect.allowlist import allow_masks
from derisk.detect.config import DetectionConfig
from derisk.detect.longconn import five_tuple
from derisk.detect.segments import I64, B, Times, column, flow_times, mask_eq
from derisk.errors import StoreError
from derisk.flows import FLOW_SCHEMA

COLS: Final = [c for c in COLUMNS if c in FLOW_SCHEMA.names]
SCHEMA: Final = pa.schema([FLOW_SCHEMA.field(c) for c in COLS])
KINDS: Final = {
    "beacon": ("beacon", "strobe"),
    "long": ("long-connection",),
    "upload": ("upload",),
    "dns": ("dns-tunnel",),
    "new": ("new-destination",),
    "compelled": ("compelled-transfer",),
}


#: Schema metadata of a table :func:`compact` made (what it returns unchanged).
_COMPACT: Final = {b"derisk": b"compact"}


def compact(table: pa.Table) -> pa.Table:
    """The detection columns of ``table`` in the flow schema, strings dictionary-encoded (flow ids
    excepted), missing columns null; a table it made already is returned as it is (``watch``
    compacts a batch before its detections, so the batch's full columns are not held while the
    window is scored)."""
    if table.schema.metadata == _COMPACT:
        return table
    arrays = []
    for f in SCHEMA:
        col = (
            table.column(f.name)
            if f.name in table.column_names
            else pa.chunked_array([pa.nulls(table.num_rows, f.type)])
        )
        if pa.types.is_dictionary(col.type):
            col = pc.cast(col, col.type.value_type)
        col = col.cast(f.type)
        if pa.types.is_string(f.type) and f.name != "flow_id":
            col = pc.dictionary_encode(col)
        arrays.append(col)
    return pa.table(arrays, names=SCHEMA.names, metadata=_COMPACT)


def flags(size: int, codes: I64) -> B:
    """A membership table over the codes ``0 .. size - 1`` with ``codes`` set; its extra last slot,
    which code -1 (null) indexes, stays False: ``flags(n, want)[codes]`` is ``isin(codes, want)``
    for codes without nulls in ``want``."""
    table = np.zeros(size + 1, dtype=bool)
    table[codes] = True
    table[-1] = False
    return table


_G = TypeVar("_G", bound=np.generic)


def grown(arr: npt.NDArray[_G], extra: npt.ArrayLike) -> npt.NDArray[_G]:
    """``arr`` with ``extra`` appended, as the start of a larger array: while that has room, the
    next append writes in place instead of copying the whole window (one copy of every per-row
    array at every batch was O(window) a batch). The room is a quarter more rows; its pages are not
    resident until written."""
    add = np.asarray(extra, dtype=arr.dtype)
    n, m = len(arr), len(add)
    base = arr.base
    if (
        isinstance(base, np.ndarray)
        and base.dtype == arr.dtype
        and base.ndim == 1
        and n + m <= len(base)
        and arr.__array_interface__["data"][0] == base.__array_interface__["data"][0]
        and arr.strides == base.strides
    ):
        base[n : n + m] = add
        return base[: n + m]
    out = np.empty(n + m + (n + m) // 4 + 1024, dtype=arr.dtype)
    out[:n] = arr
    out[n : n + m] = add
    return out[: n + m]


#: Rows of the buffer scored in one call of a batch detection at most (whole hosts; a host with more
#: is scored alone): bounds the copy and the arrays a scoring of the whole window would make at once
#: (a long-connection or beacon call takes about 1 KB a row while it runs; with 100,000 the one
#: scoring of a 20 M-row replay held about 1 GB).
SCORE_ROWS = 50_000


def host_groups(hosts: I64) -> list[I64]:
    """Positions into ``hosts`` (a host code per row) cut into groups of whole hosts of at most
    :data:`SCORE_ROWS` rows (a larger host is a group alone), each in its original order: the window
    detections score host x destination pairs and never compare two hosts, so scoring each group
    apart gives what scoring them together gives."""
    if len(hosts) <= SCORE_ROWS:
        return [np.arange(len(hosts))]
    order = np.argsort(hosts, kind="stable")
    ordered = hosts[order]
    bounds = np.r_[np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]), len(hosts)]
    groups, begin = [], 0
    for prev, end in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        if end - begin > SCORE_ROWS and prev > begin:
            groups.append(np.sort(order[begin:prev]))
            begin = prev
    groups.append(np.sort(order[begin:]))
    return groups


_TRIM_FROM: Final = 65_536


def trim_dictionaries(table: pa.Table) -> pa.Table:
    """``table`` in one chunk, each dictionary column's dictionary cut to the values its rows use
    (filtering keeps a dictionary whole, and unifying merges them, so without this the buffer's
    dictionaries would hold every value ever seen)."""
    table = table.unify_dictionaries().combine_chunks()
    cols = []
    for col in table.columns:
        arr = col.chunk(0) if col.num_chunks == 1 else None
        # a small dictionary costs little whatever it holds: counted only past _TRIM_FROM values
        if arr is not None and pa.types.is_dictionary(arr.type) and len(arr.dictionary) > _TRIM_FROM:
            idx = np.asarray(pc.fill_null(arr.indices, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
            valid = np.asarray(arr.indices.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
            used = np.flatnonzero(np.bincount(idx[valid], minlength=len(arr.dictionary)))
            if 2 * len(used) < len(arr.dictionary):
                remap = np.zeros(len(arr.dictionary), dtype=np.int32)
                remap[used] = np.arange(len(used), dtype=np.int32)
                new_idx = pa.array(remap[np.where(valid, idx, 0)], pa.int32(), mask=~valid)
                arr = pa.DictionaryArray.from_arrays(
                    new_idx.cast(arr.type.index_type), arr.dictionary.take(pa.array(used, pa.int64()))
                )
            col = pa.chunked_array([arr], col.type)
        cols.append(col)
    return pa.table(cols, schema=table.schema)


def config_key_of(config: DetectionConfig) -> str:
    entries = [[e.matcher, e.value, list(e.kinds)] for e in config.allowlist]
    return json.dumps([config.thresholds, entries], sort_keys=True)


def row_flags(t: pa.Table, config: DetectionConfig) -> tuple[Times, B, B, dict[str, B], dict[str, B]]:
    """Flow times, valid outbound rows, rows the buffer holds, which of those each window detection
    reads, and per detection the rows the allow-list leaves in."""
    n = t.num_rows
    times = flow_times(t, None)
    direction = column(t, "direction")
    outbound = mask_eq(direction, "outbound")
    ok_out = outbound & times.valid
    masks, _ = allow_masks(t, config.allowlist)
    keep = {}
    for name, kinds in KINDS.items():
        m = np.ones(n, dtype=bool)
        for i, e in enumerate(config.allowlist):
            if any(e.applies_to(k) for k in kinds):
                m &= ~masks[i]
        keep[name] = m
    held = times.valid & (outbound | mask_eq(direction, "inbound"))
    ok = {
        "beacon": ok_out & keep["beacon"],
        "long": held & keep["long"] & (five_tuple(t) >= 0),
        "upload": ok_out & keep["upload"],
    }
    return times, ok_out, held, ok, keep


def plain_col(table: pa.Table, name: str) -> pa.ChunkedArray:
    col = column(table, name)
    return pc.cast(col, col.type.value_type) if pa.types.is_dictionary(col.type) else col


def strings_at(arr: Any, rows: I64) -> list[str | None]:
    taken = pc.take(arr, pa.array(rows, pa.int64()))
    return [None if v is None else str(v) for v in taken.to_pylist()]


def duration_of(a: Alert) -> float:
    if a.first_seen is None or a.last_seen is None:
        return 0.0
    return (a.last_seen - a.first_seen).total_seconds()


def flow_count(con: duckdb.DuckDBPyConnection) -> int:
    try:
        return int(con.execute("SELECT count(*) FROM flows").fetchall()[0][0])
    except duckdb.Error as exc:
        raise StoreError(f"could not count flows: {exc}") from None
