"""The groups of whole senders an upload scoring of the detection window is cut into, and the\nper-row records appended in place."""

from __future__ import annotations

import numpy as np
import pytest

from derisk.detect import incremental_rows
from derisk.detect.incremental_rows import grown
from derisk.detect.incremental_upload import count_groups


@pytest.mark.parametrize("limit", [1, 7, 50, 10_000])
def test_count_groups_hold_whole_senders_within_the_limit(
    monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    monkeypatch.setattr(incremental_rows, "SCORE_ROWS", limit)
    rng = np.random.default_rng(limit)
    count = rng.zipf(1.6, 40).astype(np.int64) * 30  # skewed: some senders above small limits
    senders = rng.permutation(40)[:30].astype(np.int64)
    groups = list(count_groups(senders, count))
    # every sender once, in the order given
    assert np.concatenate(groups).tolist() == senders.tolist()
    for g in groups:
        assert len(g) > 0
        assert int(count[g].sum()) <= limit or len(g) == 1  # only a sender alone may pass the limit
    if limit >= int(count[senders].sum()):
        assert len(groups) == 1


def test_count_groups_of_nothing() -> None:
    assert list(count_groups(np.zeros(0, dtype=np.int64), np.zeros(3, dtype=np.int64))) == []


def test_grown_appends_in_place_and_keeps_earlier_views() -> None:
    arr = np.zeros(0, dtype=np.int32)
    want: list[int] = []
    views = []
    bases = set()
    for n in range(1, 400):
        add = np.arange(n, dtype=np.int64) * 3 + n  # cast to the array's type, as the buffer's codes
        arr = grown(arr, add)
        want.extend(add.tolist())
        views.append((arr, list(want)))
        bases.add(arr.base.__array_interface__["data"][0] if arr.base is not None else None)
        assert arr.dtype == np.int32
        assert arr.tolist() == want
    # a view taken earlier still reads what it read then
    assert all(v.tolist() == w for v, w in views[::37])
    assert len(bases) < 40  # mostly written in place, not a new array per append
    # a filtered copy (as dropping rows makes) grows into a new array
    kept = arr[arr % 2 == 0]
    assert grown(kept, np.array([7])).tolist() == [*kept.tolist(), 7]


def test_compact_returns_a_table_it_made_as_it_is() -> None:
    """``watch`` compacts a batch before the detections (so the batch's full columns can go before
    the window is scored): compacting it again is the same table, not a second copy."""
    import pyarrow as pa

    from derisk.detect.incremental_rows import SCHEMA, compact

    full = pa.table(
        {
            "flow_id": ["a#0", "a#1", "a#2"],
            "src_ip": ["10.0.0.1", "10.0.0.2", "10.0.0.1"],
            "dst_ip": ["198.51.100.1", None, "198.51.100.1"],
            "bytes_out": pa.array([1, 2, 3], pa.int64()),
            "note": ["not a detection column", "x", "y"],
        }
    )
    once = compact(full)
    assert once.column_names == SCHEMA.names
    assert pa.types.is_dictionary(once.schema.field("src_ip").type)
    assert compact(once) is once
    assert compact(once.filter(pa.array([True, False, True]))).to_pylist() == once.take([0, 2]).to_pylist()
    plain = pa.table({c: once.column(c) for c in once.column_names})  # same values, not marked
    assert compact(plain) is not plain and compact(plain).to_pylist() == once.to_pylist()
