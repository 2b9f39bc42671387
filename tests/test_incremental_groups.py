"""The groups of whole senders an upload scoring of the detection window is cut into."""

from __future__ import annotations

import numpy as np
import pytest

from derisk.detect import incremental_rows
from derisk.detect.incremental_rows import grown
from derisk.detect.incremental_upload import sender_groups


@pytest.mark.parametrize("limit", [1, 7, 50, 10_000])
def test_sender_groups_hold_whole_senders_within_the_limit(
    monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    monkeypatch.setattr(incremental_rows, "SCORE_ROWS", limit)
    rng = np.random.default_rng(limit)
    size = 40
    # skewed senders (one much larger than the limit at small limits), some rows without a sender
    who = np.where(rng.random(3_000) < 0.05, -1, rng.zipf(1.6, 3_000) % size).astype(np.int32)
    sel = rng.random(3_000) < 0.7
    groups = list(sender_groups(who, sel, size))
    rows = np.concatenate(groups)
    # every selected row with a sender, once
    assert np.array_equal(np.sort(rows), np.flatnonzero(sel & (who >= 0)))
    seen: set[int] = set()
    for g in groups:
        assert len(g) > 0
        assert np.all(np.diff(g) > 0)  # rising: buffer order within the group
        senders = set(who[g].tolist())
        assert not senders & seen  # a sender's rows all in one group
        seen |= senders
        assert len(g) <= limit or len(senders) == 1  # only a sender alone may pass the limit
    if limit >= 3_000:
        assert len(groups) == 1


def test_sender_groups_of_nothing() -> None:
    who = np.array([-1, 3, 2], dtype=np.int32)
    assert list(sender_groups(who, np.array([True, False, False]), 5)) == []


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
