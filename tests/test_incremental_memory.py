"""What keeps the incremental detection state small: pair codes without a string per pair, key tables
and buffer dictionaries that forget what the window no longer holds, and a save that writes only the
alert lists that changed (a withdrawn list deleted, never stored empty)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from derisk.detect import detect
from derisk.detect.config import load_config
from derisk.detect.incremental import DetectionState
from derisk.detect.incremental_interners import Interner, PairInterner, distinct
from derisk.detect.incremental_rows import compact, trim_dictionaries
from derisk.flows import FLOW_SCHEMA

T0 = 1_790_000_000.0


def test_pairs_are_coded_named_and_found_by_name() -> None:
    pairs = PairInterner()
    first = pairs.codes(pa.array(["10.0.0.1", "10.0.0.2", None, "10.0.0.1"]), pa.array(["a", "b", "a", None]))
    again = pairs.codes(pa.array(["10.0.0.1", "10.0.0.3", "10.0.0.2"]), pa.array(["a", "a", "b"]))
    assert first.tolist() == [0, 1, -1, -1]  # a null on either side: no pair
    assert again.tolist() == [0, 2, 1]  # the same pair keeps its code across batches
    assert [pairs.name(c) for c in range(len(pairs))] == ["10.0.0.1\x1fa", "10.0.0.2\x1fb", "10.0.0.3\x1fa"]
    assert pairs.code_of("10.0.0.3\x1fa") == 2
    assert pairs.code_of("10.0.0.3\x1fb") == -1
    assert pairs.code_of("10.0.0.9\x1fa") == -1
    assert pairs.code_of("no separator") == -1


def test_compacting_keeps_the_live_keys_and_their_names() -> None:
    pairs = PairInterner()
    hosts = [f"10.1.{i // 250}.{i % 250}" for i in range(20_000)]
    codes = pairs.codes(pa.array(hosts), pa.array([f"d{i % 7}" for i in range(20_000)]))
    live = codes[-50:]
    names = [pairs.name(int(c)) for c in live]
    renumbered = pairs.compact(np.r_[live, -1])
    assert len(pairs) == 50 and len(pairs.left) == 50 and len(pairs.right) == 7
    assert renumbered[-1] == -1
    assert [pairs.name(int(c)) for c in renumbered[:-1]] == names
    assert [pairs.code_of(n) for n in names] == renumbered[:-1].tolist()
    # a key seen again after being forgotten gets a code again
    assert pairs.codes(pa.array([hosts[0]]), pa.array(["d0"])).tolist() == [50]

    strings = Interner()
    codes = strings.codes(pa.array([f"s{i}" for i in range(10_000)]))
    kept = strings.compact(codes[[5, 9_999, 5]])
    assert strings.names == ["s5", "s9999"] and kept.tolist() == [0, 1, 0]
    assert strings.code_of("s9999") == 1 and strings.code_of("s6") == -1
    assert distinct(np.array([3, -1, 3, 0])).tolist() == [0, 3]


def test_trimmed_dictionaries_keep_every_value() -> None:
    n = 120_000  # a dictionary past the size below which it is left as it is
    col = pc.dictionary_encode(pa.array([f"name{i}" if i % 3 else None for i in range(n)]))
    table = pa.table({"v": col, "n": pa.array(np.arange(n))})
    rows = table.filter(pc.less(table["n"], 30))
    table = pa.concat_tables([rows, rows.slice(5, 10)])
    trimmed = trim_dictionaries(table)
    assert trimmed.column("v").to_pylist() == table.column("v").to_pylist()
    assert len(trimmed.column("v").chunk(0).dictionary) < 30
    assert len(table.column("v").chunk(0).dictionary) > n // 2


def _stream(n: int, offset: int, beacon: bool) -> pa.Table:
    """``n`` outbound flows from ``offset`` on, 2 s apart: each to an address never seen before (the
    key tables would grow forever if nothing were forgotten), and, while ``beacon``, one flow a
    minute from one host to one server."""
    i = np.arange(offset, offset + n)
    start = T0 + i * 2.0
    src = [f"10.2.{k % 50}.{k % 200}" for k in i.tolist()]
    dst = [f"198.{18 + k // 65536 % 200}.{k // 256 % 256}.{k % 256}" for k in i.tolist()]
    out = np.full(n, 900)
    if beacon:
        b = i % 30 == 0
        for k in np.flatnonzero(b).tolist():
            src[k], dst[k] = "10.9.9.9", "203.0.113.5"
        out = np.where(b, 420, out)
    ts = FLOW_SCHEMA.field("first_seen").type
    return pa.table(
        {
            "flow_id": pa.array([f"t#{k}" for k in i.tolist()]),
            "direction": pa.array(["outbound"] * n),
            "first_seen": pa.array((start * 1e6).astype(np.int64)).cast(ts),
            "last_seen": pa.array(((start + 1.0) * 1e6).astype(np.int64)).cast(ts),
            "src_ip": pa.array(src),
            "src_port": pa.array((32_768 + i % 20_000).astype(np.int32)),
            "dst_ip": pa.array(dst),
            "dst_port": pa.array(np.full(n, 443, dtype=np.int32)),
            "protocol": pa.array(np.full(n, 6, dtype=np.int16)),
            "bytes_out": pa.array(out.astype(np.int64)),
            "bytes_in": pa.array(np.full(n, 1_000, dtype=np.int64)),
        }
    )


def test_state_and_its_save_stay_within_the_window(tmp_path: Path) -> None:
    """Twenty hours of new pairs through a one-hour window: the key tables hold about the window's
    keys, a beacon's alert is stored while it lasts and deleted once its flows left the window,
    no empty alert list is stored, and the alerts are those of one analysis of every flow."""
    cfg = load_config(None, None).with_values("beacon", window_hours=1.0)
    state = DetectionState()
    con = duckdb.connect(str(tmp_path / "state.duckdb"))
    per = 900  # half an hour a batch
    stored_beacon = []
    feed = []
    for b in range(40):
        batch = _stream(per, b * per, beacon=b < 8)
        feed.append(batch)
        state._ingest(compact(batch), cfg, lambda _j: [])
        state._changed({})
        con.execute("BEGIN")
        state.save(con)
        con.execute("COMMIT")
        keys = [k for (k,) in con.execute("SELECT key FROM detect_state_keys").fetchall()]
        stored_beacon.append(sum(k.startswith("b\x1f") for k in keys))
        rows = state.buffer_rows
        assert len(state.keys["pair"]) <= 2 * rows + 4096
        assert len(state._pairs("pair").right) <= 2 * rows + 4096
    assert len(state.keys["pair"]) < 40 * per // 4  # most of the 36,000 pairs were forgotten
    assert max(stored_beacon) > 0 and stored_beacon[-1] == 0  # stored, then deleted
    empty = con.execute("SELECT count(*) FROM detect_state_keys WHERE doc = '[]'").fetchall()[0][0]
    assert empty == 0
    everything = compact(pa.concat_tables(feed))
    expected = detect(everything, cfg, laws_for=lambda _j: []).alerts
    got = state.current_alerts()
    assert sorted(a.alert_id for a in got) == sorted(a.alert_id for a in expected)
