"""Group-by on sorted arrays: the vectorised machinery every detection shares.

A *group* is a combination of key columns (internal host and destination, say). Rows are given an
integer group code, sorted by (code, value), and each group becomes a *segment* (start, length) of
the sorted arrays; per-group statistics (medians, quantiles, sums) are then computed for all groups
at once with NumPy, never with a Python loop over rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]

US_PER_S = 1_000_000


def column(table: pa.Table, name: str) -> pa.ChunkedArray:
    """A column of the flow table, or an all-null one when the table lacks it."""
    if name in table.column_names:
        return table.column(name)
    return pa.chunked_array([pa.nulls(table.num_rows)])


def is_dict(arr: pa.ChunkedArray | pa.Array) -> bool:
    return bool(pa.types.is_dictionary(arr.type))


def codes_of(arr: pa.ChunkedArray | pa.Array) -> I64:
    """Integer codes of the distinct values of ``arr`` (nulls get -1).

    Dictionary-encoded columns (the compact form for 10 million flows) give their indices directly.
    """
    if is_dict(arr):
        chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
        if not chunks:
            return np.zeros(0, dtype=np.int64)
        # chunks may have their own dictionaries, which may repeat values or hold nulls: map every
        # dictionary entry to the code of its value among all distinct values
        values = pc.unique(pa.concat_arrays([c.dictionary for c in chunks])).drop_null()
        parts = []
        for c in chunks:  # loop over chunks, not rows
            remap = np.asarray(
                pc.fill_null(pc.index_in(c.dictionary, value_set=values), -1).to_numpy(zero_copy_only=False),
                dtype=np.int64,
            )
            remap = np.r_[remap, -1]  # a null index (-1) stays -1
            parts.append(
                remap[np.asarray(pc.fill_null(c.indices, -1).to_numpy(zero_copy_only=False), dtype=np.int64)]
            )
        return np.concatenate(parts)
    uniques = pc.unique(arr).drop_null()
    idx = pc.index_in(arr, value_set=uniques)
    return np.asarray(pc.fill_null(idx, -1).to_numpy(zero_copy_only=False), dtype=np.int64)


def plain(arr: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """``arr`` with dictionary encoding undone (use on small selections only)."""
    return pc.cast(arr, arr.type.value_type) if is_dict(arr) else arr


def string_mask(arr: pa.ChunkedArray | pa.Array, test: Callable[[Any], Any]) -> B:
    """``test`` (a vectorised string predicate) per row; applied once per distinct value when dictionary-encoded."""
    if is_dict(arr):
        chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
        if not chunks:
            return np.zeros(0, dtype=bool)
        out = []
        for c in chunks:  # loop over chunks, not rows
            on_dict = np.asarray(
                pc.fill_null(test(c.dictionary), False).to_numpy(zero_copy_only=False), dtype=bool
            )
            on_dict = np.r_[on_dict, False]  # a null index (-1) is False
            out.append(
                on_dict[
                    np.asarray(pc.fill_null(c.indices, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
                ]
            )
        return np.concatenate(out)
    return np.asarray(pc.fill_null(test(arr), False).to_numpy(zero_copy_only=False), dtype=bool)


def coalesce_codes(*arrs: pa.ChunkedArray | pa.Array) -> I64:
    """One code per row for the first non-null of ``arrs`` (the value spaces kept apart), -1 if all null."""
    out = np.full(len(arrs[0]), -1, dtype=np.int64)
    offset = 0
    for arr in arrs:
        codes = codes_of(arr)
        take = (out < 0) & (codes >= 0)
        out[take] = codes[take] + offset
        offset += int(codes.max()) + 1 if len(codes) else 0
    return out


def first_value(info: dict[str, Any], *names: str) -> Any:
    """The first non-null of ``names`` in a row's attribution dict."""
    return next((info[n] for n in names if info.get(n) is not None), None)


def combine(*codes: I64) -> I64:
    """One dense code per combination of the given code columns (-1 when any part is -1)."""
    valid = np.ones(len(codes[0]), dtype=bool)
    combined = np.zeros(len(codes[0]), dtype=np.int64)
    for c in codes:
        valid &= c >= 0
        width = int(c.max()) + 2 if len(c) else 1
        combined = combined * width + (c + 1)
    out = np.full(len(combined), -1, dtype=np.int64)
    if valid.any():
        _, inverse = np.unique(combined[valid], return_inverse=True)
        out[valid] = inverse
    return out


@dataclass(frozen=True)
class Segments:
    """Segments of an array sorted by group code."""

    starts: I64
    lengths: I64
    codes: I64

    @property
    def ends(self) -> I64:
        ends: I64 = self.starts + self.lengths
        return ends

    def __len__(self) -> int:
        return len(self.starts)

    def expand(self, per_group: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Repeat one value per segment to one value per row."""
        return np.repeat(per_group, self.lengths)

    def sum(self, values: npt.NDArray[Any]) -> npt.NDArray[Any]:
        if len(self.starts) == 0:
            return np.zeros(0, dtype=values.dtype)
        return np.add.reduceat(values, self.starts)

    def min(self, values: npt.NDArray[Any]) -> npt.NDArray[Any]:
        if len(self.starts) == 0:
            return np.zeros(0, dtype=values.dtype)
        return np.minimum.reduceat(values, self.starts)

    def max(self, values: npt.NDArray[Any]) -> npt.NDArray[Any]:
        if len(self.starts) == 0:
            return np.zeros(0, dtype=values.dtype)
        return np.maximum.reduceat(values, self.starts)

    def index(self) -> I64:
        """Segment number of every row."""
        return np.repeat(np.arange(len(self.starts), dtype=np.int64), self.lengths)


def segments(sorted_codes: I64) -> Segments:
    """Segments of an array already sorted by group code."""
    n = len(sorted_codes)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Segments(empty, empty, empty)
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]).astype(np.int64)
    lengths = np.diff(np.r_[starts, n]).astype(np.int64)
    return Segments(starts, lengths, sorted_codes[starts])


def median_of(values: F64, starts: I64, lengths: I64) -> F64:
    """Median of each slice ``values[start:start+length]`` of an array sorted within slices (length ≥ 1)."""
    if len(starts) == 0:
        return np.zeros(0)
    lo = starts + (lengths - 1) // 2
    hi = starts + lengths // 2
    return np.asarray((values[lo] + values[hi]) / 2.0, dtype=np.float64)


def quantile_of(values: F64, seg: Segments, q: float) -> F64:
    """Nearest-rank (lower) quantile of each segment of an array sorted within segments."""
    if len(seg) == 0:
        return np.zeros(0)
    return np.asarray(values[seg.starts + np.floor(q * (seg.lengths - 1)).astype(np.int64)], dtype=np.float64)


def sort_within(codes: I64, values: F64) -> tuple[I64, F64, I64]:
    """Sort rows by (code, value); returns sorted codes, sorted values and the permutation."""
    order = np.lexsort((values, codes))
    return codes[order], values[order], order


@dataclass(frozen=True)
class Times:
    """Flow times in seconds since the epoch, with what had to be left out and why."""

    start: F64
    end: F64
    valid: B
    missing: int
    future: int
    reversed: int


def flow_times(table: pa.Table, now: datetime | None) -> Times:
    """Start and end of each flow in float seconds; flows without a usable start are not ``valid``.

    Missing start times and starts more than a day after ``now`` (a clock jump) make a flow invalid
    for time-based detections; an end before the start (a clock stepped back) is taken as the start.
    Converted batch by batch into arrays allocated once, so memory stays bounded on large tables.
    """
    now = now or datetime.now(UTC)
    limit = now.timestamp() + 86_400.0
    n = table.num_rows
    start = np.zeros(n)
    end = np.zeros(n)
    missing = np.zeros(n, dtype=bool)
    ts = pa.timestamp("us", tz="UTC")
    cols = {}
    for name in ("first_seen", "last_seen"):
        col = column(table, name)
        cols[name] = col if pa.types.is_timestamp(col.type) else pa.chunked_array([pa.nulls(n, ts)])
    times = pa.table(cols)
    pos = 0
    for batch in times.to_batches(max_chunksize=1_000_000):  # loop over batches, vectorised within
        m = batch.num_rows
        f = pc.cast(pc.cast(batch.column(0), ts), pa.int64())
        e = pc.cast(pc.cast(batch.column(1), ts), pa.int64())
        missing[pos : pos + m] = np.asarray(pc.is_null(f).to_numpy(zero_copy_only=False), dtype=bool)
        start[pos : pos + m] = np.asarray(pc.fill_null(f, 0).to_numpy(zero_copy_only=False), dtype=np.float64)
        end[pos : pos + m] = np.asarray(pc.fill_null(e, f).to_numpy(zero_copy_only=False), dtype=np.float64)
        pos += m
    start /= US_PER_S
    end /= US_PER_S
    future = (~missing) & ((start > limit) | (start < 0))
    backwards = (~missing) & (~future) & (end < start)
    np.copyto(end, start, where=backwards | (end > limit))
    return Times(
        start=start,
        end=end,
        valid=~(missing | future),
        missing=int(missing.sum()),
        future=int(future.sum()),
        reversed=int(backwards.sum()),
    )


#: (first, last) start time in seconds of the valid outbound flows of the whole table: the clock the
#: windows and baselines are cut from, the same for every partition of a large table.
Frame = tuple[float, float]


def outbound_frame(table: pa.Table, now: datetime | None) -> Frame | None:
    times = flow_times(table, now)
    ok = mask_eq(column(table, "direction"), "outbound") & times.valid
    if not ok.any():
        return None
    start = times.start[ok]
    return float(start.min()), float(start.max())


def as_datetime(seconds: float) -> datetime:
    return datetime.fromtimestamp(float(seconds), tz=UTC)


def strings(table: pa.Table, name: str) -> pa.ChunkedArray:
    return column(table, name)


def mask_eq(arr: pa.ChunkedArray, value: str) -> B:
    return string_mask(arr, lambda a: pc.equal(a, value))


def ints(table: pa.Table, name: str) -> I64:
    """An integer column as int64 with nulls (and negative values) as 0, converted chunk by chunk."""
    arr = column(table, name)
    out = np.zeros(table.num_rows, dtype=np.int64)
    pos = 0
    for chunk in arr.chunks:  # loop over chunks, vectorised within
        c = (
            chunk
            if pa.types.is_integer(chunk.type) or pa.types.is_null(chunk.type)
            else pc.cast(chunk, pa.int64(), safe=False)
        )
        out[pos : pos + len(c)] = np.asarray(
            pc.fill_null(pc.cast(c, pa.int64()), 0).to_numpy(zero_copy_only=False)
        )
        pos += len(c)
    np.maximum(out, 0, out=out)
    return out


def take_values(arr: pa.ChunkedArray, rows: I64) -> list[Any]:
    """Python values of ``arr`` at ``rows`` (for the few rows an alert names)."""
    if len(rows) == 0:
        return []
    return pc.take(arr, pa.array(rows, pa.int64())).to_pylist()  # type: ignore[no-any-return]


def outbound_rows(flows: pa.Table, now: datetime | None) -> tuple[Times, B] | None:
    """The flow times and the mask of outbound flows with usable times; None when there are none."""
    if flows.num_rows == 0:
        return None
    times = flow_times(flows, now)
    ok = mask_eq(column(flows, "direction"), "outbound") & times.valid
    return (times, ok) if ok.any() else None
