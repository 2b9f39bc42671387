"""The detection window's per-row records on disk (:class:`derisk.detect.incremental_arrays.PartArrays`):
records come back as appended, per part and in order, with or without the memory cache; a part can be
replaced; the private folder goes with the object."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from derisk.detect import incremental_arrays as arrays
from derisk.detect.incremental_arrays import KEYS, PartArrays, ok_of, records


def _recs(first: int, n: int) -> np.ndarray:
    i = np.arange(first, first + n, dtype=np.int64)
    keys = {k: (i * (j + 2)) % 97 - (i % 13 == 0) for j, k in enumerate(KEYS)}  # some -1 (null)
    ok = {"beacon": i % 2 == 0, "long": i % 3 == 0, "upload": i % 5 == 0}
    return records(1_790_000_000.0 + i / 7.0, i, i * 100, i * 3, keys, ok)


@pytest.mark.parametrize("cache", [0, 1 << 20])
def test_records_come_back_per_part_in_order(monkeypatch: pytest.MonkeyPatch, cache: int) -> None:
    monkeypatch.setattr(arrays, "CACHE_BYTES", cache)
    win = PartArrays(4)
    whole = _recs(0, 3_000)
    part = (whole["host"] % 4).astype(np.int64)
    for lo in range(0, 3_000, 700):  # batches, each spread over the parts
        batch, where = whole[lo : lo + 700], part[lo : lo + 700]
        for p in range(4):
            win.append(p, batch[where == p])
    assert len(win) == 3_000
    assert win.parts() == [p for p in range(4) if (part == p).any()]
    for p, rec in win:
        assert rec.tobytes() == whole[part == p].tobytes()
    assert win.min_start() == float(whole["start"].min())
    assert ok_of(whole, "long").tolist() == (np.arange(3_000) % 3 == 0).tolist()
    assert whole["pair"].min() == -1


def test_a_part_replaced_and_emptied(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arrays, "CACHE_BYTES", 0)
    win = PartArrays(2)
    win.append(0, _recs(0, 100))
    win.append(1, _recs(100, 50))
    kept = win.get(0)[50:]
    win.put(0, kept)
    assert win.get(0).tobytes() == kept.tobytes()
    assert win.min_start() == float(kept["start"].min())
    win.append(0, _recs(200, 10))  # appended after the replaced records
    assert win.get(0)["seq"].tolist() == [*range(50, 100), *range(200, 210)]
    win.put(1, win.get(1)[:0])
    assert win.parts() == [0] and len(win) == 60


def test_the_folder_goes_with_the_object() -> None:
    win = PartArrays(2)
    win.append(1, _recs(0, 10))
    folder = Path(win._folder[0])
    assert folder.is_dir()
    win.close()
    assert not folder.exists()


def test_the_cache_stays_within_its_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts appended to batch by batch (cached ones grown in place) never hold more memory than
    :data:`~derisk.detect.incremental_arrays.CACHE_BYTES`; the records still come back whole."""
    monkeypatch.setattr(arrays, "CACHE_BYTES", 40_000)
    win = PartArrays(3)
    whole = _recs(0, 6_000)
    for lo in range(0, 6_000, 300):
        for p in range(3):
            batch = whole[lo : lo + 300]
            win.append(p, batch[batch["seq"] % 3 == p])
            win.get((p + 1) % 3)  # read back (and cached) between appends
            assert win.cached_bytes() <= 40_000
    for p, rec in win:
        assert rec.tobytes() == whole[whole["seq"] % 3 == p].tobytes()
