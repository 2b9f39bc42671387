"""The detection window's rows on disk (:class:`derisk.store.detect_state.WindowRows`): rows come back
as written, by part and in order, a part's file can be cut to its live rows, and the private folder
is removed when the state goes and by a later process after a ``kill -9``."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from derisk import scratch
from derisk.detect.incremental_rows import compact
from derisk.errors import StoreError
from derisk.store import detect_state
from derisk.store.detect_state import WINDOW_PARTS, WindowRows, window_part


def _rows(n: int, first: int) -> pa.Table:
    ts = pa.timestamp("us", tz="UTC")
    i = np.arange(first, first + n)
    return compact(
        pa.table(
            {
                "flow_id": pa.array([f"f{k}" for k in i]),
                "direction": pa.array(["outbound"] * n),
                "first_seen": pa.array((1_790_000_000 + i) * 1_000_000).cast(ts),
                "src_ip": pa.array([f"10.0.0.{k % 7}" for k in i]),
                "dst_ip": pa.array([f"198.51.100.{k % 11}" for k in i]),
                "server_name": pa.array([None if k % 3 else f"n{k}.example" for k in i]),
                "bytes_out": pa.array(i * 10, pa.int64()),
            }
        )
    )


def _parts(table: pa.Table) -> np.ndarray:
    hosts = table.column("src_ip").to_pylist()
    return window_part([str(h) for h in hosts])


def test_rows_come_back_by_part_in_order_and_a_part_can_be_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    store = WindowRows()
    a, b = _rows(50, 0), _rows(30, 50)
    store.append(a, np.arange(0, 50), _parts(a))
    store.append(b, np.arange(50, 80), _parts(b))
    both = pa.concat_tables([a, b]).combine_chunks()
    parts = np.r_[_parts(a), _parts(b)]
    assert int(store.written.sum()) == 80
    assert len(set(parts.tolist())) > 1 and parts.max() < WINDOW_PARTS
    for p in np.unique(parts).tolist():
        seq = np.flatnonzero(parts == p)
        got = compact(store.take(p, seq))
        assert got.to_pylist() == both.take(pa.array(seq)).to_pylist()
    p = int(parts[0])
    live = np.flatnonzero(parts == p)[1::2]
    store.rewrite(p, live)
    assert store.written[p] == len(live)
    assert compact(store.take(p, live)).to_pylist() == both.take(pa.array(live)).to_pylist()
    with pytest.raises(StoreError, match="miss rows"):
        store.take(p, np.flatnonzero(parts == p)[:1])  # dropped by the rewrite
    folders = list(tmp_path.glob("derisk-window-*"))
    assert len(folders) == 1
    store.close()
    assert not folders[0].exists()


def test_a_part_is_read_one_bounded_batch_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``take`` keeps only the rows asked for from each record batch of a file (the file is never
    held whole), a rewritten part is written in batches of at most ``_BATCH_ROWS`` rows, and a row
    asked for that the file lacks is an error wherever it falls."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(detect_state, "_BATCH_ROWS", 8)
    store = WindowRows()
    tables = [_rows(37, 37 * k) for k in range(6)]
    for k, t in enumerate(tables):
        store.append(t, np.arange(37 * k, 37 * (k + 1)), _parts(t))
    every = pa.concat_tables(tables).combine_chunks()
    parts = _parts(every)
    p = int(np.bincount(parts).argmax())
    mine = np.flatnonzero(parts == p)
    rng = np.random.default_rng(7)
    for size in (1, 5, len(mine) // 2, len(mine)):
        seq = np.sort(rng.choice(mine, size=size, replace=False))
        assert compact(store.take(p, seq)).to_pylist() == every.take(pa.array(seq)).to_pylist()
    live = mine[mine % 3 != 0]
    store.rewrite(p, live)
    path = next(tmp_path.glob("derisk-window-*")) / f"part-{p}.arrows"
    with pa.OSFile(str(path)) as f:
        sizes = [b.num_rows for b in pa.ipc.open_stream(f)]
    assert sum(sizes) == len(live) and max(sizes) <= 8 and len(sizes) > 1
    assert compact(store.take(p, live)).to_pylist() == every.take(pa.array(live)).to_pylist()
    dropped = mine[mine % 3 == 0]
    assert len(dropped) >= 3
    for gone in (dropped[0], dropped[len(dropped) // 2], dropped[-1]):  # first, middle, last batch
        with pytest.raises(StoreError, match="miss rows"):
            store.take(p, np.sort(np.r_[live[:3], gone]))
    with pytest.raises(StoreError, match="miss rows"):
        store.take(p, np.r_[live, live[-1] + 10_000])  # past the file's end
    store.close()


def test_a_part_keeps_only_the_dictionary_values_its_rows_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    names = pa.array([f"n{k}.example" for k in range(1_000)])
    rows = _rows(40, 0)
    picked = pa.DictionaryArray.from_arrays(pa.array(np.arange(0, 400, 10), pa.int32()), names)
    rows = rows.set_column(rows.schema.get_field_index("server_name"), "server_name", picked)
    store = WindowRows()
    parts = _parts(rows)
    store.append(rows, np.arange(40), parts)
    for p in np.unique(parts).tolist():
        seq = np.flatnonzero(parts == p)
        got = store.take(p, seq).column("server_name")
        assert got.to_pylist() == [f"n{10 * k}.example" for k in seq.tolist()]
        assert sum(len(c.dictionary) for c in got.chunks) == len(seq)  # not the 1,000 values
    store.close()


def test_a_dead_process_folder_is_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead = tmp_path / f"derisk-window-{int(done.stdout)}.{scratch.namespace()}-old"
    dead.mkdir()
    (dead / "part-0.arrows").write_bytes(b"left by kill -9")
    alive = tmp_path / f"derisk-window-1.{scratch.namespace()}-init"  # pid 1 runs
    alive.mkdir()
    store = WindowRows()
    rows = _rows(5, 0)
    store.append(rows, np.arange(5), _parts(rows))
    assert not dead.exists() and alive.exists()
    del store  # garbage-collected: its folder goes with it
    assert [p.name for p in tmp_path.iterdir()] == [alive.name]
