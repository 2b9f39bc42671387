"""The incremental detection state in the workspace: what :mod:`derisk.detect.incremental` keeps
between the batches of ``derisk watch``, written in the batch's own transaction.

``detect_state_keys`` holds one JSON document per key (aggregates, alert lists, the state's own
counters under ``meta``), replaced key by key when it changed (``INSERT OR REPLACE`` on the primary
key, so a batch writes what it touched, not the whole state); ``detect_state_names`` holds the
distinct DNS query names per registrable domain, appended as new ones are seen.

:class:`WindowRows` keeps the rows of the detection window out of memory, in files of a private
temporary folder (not in the workspace: they are read back from its flows after a restart).
"""

from __future__ import annotations

import contextlib
import weakref
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from derisk import scratch
from derisk.errors import StoreError
from derisk.store.workspace import registered

_DDL: Final = (
    "CREATE TABLE IF NOT EXISTS detect_state_keys (key VARCHAR PRIMARY KEY, doc VARCHAR)",
    "CREATE TABLE IF NOT EXISTS detect_state_names (domain VARCHAR, name VARCHAR, length DOUBLE, entropy DOUBLE)",
)
_TABLES: Final = ("detect_state_keys", "detect_state_names")


def _exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    rows = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
    ).fetchall()
    return bool(rows and rows[0][0])


def read_docs(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """Every (key, JSON document) stored; empty when no state was stored yet."""
    if not _exists(con, "detect_state_keys"):
        return []
    try:
        return [(str(k), str(d)) for k, d in con.execute("SELECT key, doc FROM detect_state_keys").fetchall()]
    except duckdb.Error as exc:
        raise StoreError(f"could not read the detection state: {exc}") from None


def read_doc(con: duckdb.DuckDBPyConnection, key: str) -> str | None:
    """The document stored under ``key`` (a primary-key lookup), or None."""
    if not _exists(con, "detect_state_keys"):
        return None
    try:
        rows = con.execute("SELECT doc FROM detect_state_keys WHERE key = ?", [key]).fetchall()
    except duckdb.Error as exc:
        raise StoreError(f"could not read the detection state: {exc}") from None
    return str(rows[0][0]) if rows else None


def read_names(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, float, float]]:
    """The DNS names stored, in the order they were first seen."""
    if not _exists(con, "detect_state_names"):
        return []
    try:
        rows = con.execute("SELECT domain, name, length, entropy FROM detect_state_names").fetchall()
    except duckdb.Error as exc:
        raise StoreError(f"could not read the detection state: {exc}") from None
    return [(str(d), str(n), float(ln), float(h)) for d, n, ln, h in rows]


def write(
    con: duckdb.DuckDBPyConnection,
    docs: Iterable[tuple[str, str]],
    names: list[tuple[str, str, float, float]],
    *,
    clear: bool = False,
    delete: list[str] | None = None,
) -> None:
    """Replace the documents of these keys, delete those of ``delete``, and append these names (after
    deleting everything when ``clear``), in the transaction ``con`` holds."""
    keys, values = [], []
    for k, d in docs:
        keys.append(k)
        values.append(d)
    try:
        for ddl in _DDL:
            con.execute(ddl)
        if clear:
            for table in _TABLES:
                con.execute(f"DELETE FROM {table}")
        if delete:
            gone = pa.table({"key": pa.array(delete, pa.string())})
            with registered(con, "_derisk_gone", gone):
                con.execute("DELETE FROM detect_state_keys WHERE key IN (SELECT key FROM _derisk_gone)")
        if keys:
            table = pa.table({"key": pa.array(keys, pa.string()), "doc": pa.array(values, pa.string())})
            with registered(con, "_derisk_state", table):
                con.execute("INSERT OR REPLACE INTO detect_state_keys SELECT key, doc FROM _derisk_state")
        if names:
            cols = list(zip(*names, strict=True))
            table = pa.table(
                {
                    "domain": pa.array(cols[0], pa.string()),
                    "name": pa.array(cols[1], pa.string()),
                    "length": pa.array(cols[2], pa.float64()),
                    "entropy": pa.array(cols[3], pa.float64()),
                }
            )
            with registered(con, "_derisk_names", table):
                con.execute("INSERT INTO detect_state_names SELECT * FROM _derisk_names")
    except duckdb.Error as exc:
        raise StoreError(f"could not store the detection state: {exc}") from None


#: Files the window's rows are spread over, by a hash of the host (each file holds whole hosts). A
#: scoring holds one part's rows at a time: at 20 M window rows a part is about 310,000 rows (64
#: parts; with 32 a 20 M-row scoring peaked above 1 GB).
WINDOW_PARTS: Final = 64


#: Rows of one record batch of a window file at most.
_BATCH_ROWS: Final = 32_768


def window_part(hosts: list[str]) -> np.ndarray:
    """The file (0 .. :data:`WINDOW_PARTS` - 1) of each host: a hash of its address that does not
    change between runs, so every row of one host goes to one file."""
    return np.array([zlib.crc32(h.encode()) % WINDOW_PARTS for h in hosts], dtype=np.int8)


def _trimmed(table: pa.Table) -> pa.Table:
    """``table`` (one chunk), each dictionary larger than its rows cut to the values they use (a part
    takes a slice of a batch, whose dictionaries would otherwise be written whole to every part's
    file: a dictionary is kept at most as long as the rows)."""
    cols = []
    for col in table.columns:
        arr = col.chunk(0) if col.num_chunks == 1 else None
        if isinstance(arr, pa.DictionaryArray) and len(arr.dictionary) > len(arr):
            valid = np.asarray(arr.indices.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
            idx = np.asarray(pc.fill_null(arr.indices, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
            used, inverse = np.unique(idx[valid], return_inverse=True)
            new_idx = np.zeros(len(idx), dtype=np.int32)
            new_idx[valid] = inverse
            col = pa.chunked_array(
                [
                    pa.DictionaryArray.from_arrays(
                        pa.array(new_idx, arr.type.index_type, mask=~valid),
                        arr.dictionary.take(pa.array(used, pa.int64())),
                    )
                ],
                col.type,
            )
        cols.append(col)
    return pa.table(cols, schema=table.schema)


def _close(writers: dict[int, Any], folder: str | None) -> None:
    for sink, writer in writers.values():
        with contextlib.suppress(OSError, pa.ArrowException):
            writer.close()
            sink.close()
    writers.clear()
    if folder is not None:
        scratch.remove(folder)


class WindowRows:
    """The rows of the detection window kept on disk, not in memory: one Arrow IPC stream per part
    (:func:`window_part` of the host) in a private temporary folder, each row under its sequence
    number. The state keeps only integer arrays per row (start, sequence number, key codes, bytes,
    part); a scoring reads back one part at a time (whole hosts), so memory holds one part's rows,
    not the window's. Rows dropped from the window stay in their file until its dead rows outnumber
    the live ones (:meth:`rewrite`). The folder is not state: after a restart the window is read back
    from the workspace's flows; it is removed when the state is garbage-collected or the process
    exits, and by the next process after a ``kill -9``."""

    def __init__(self) -> None:
        self._folder: str | None = None
        self._writers: dict[int, tuple[pa.NativeFile, pa.ipc.RecordBatchStreamWriter]] = {}
        self.written = np.zeros(WINDOW_PARTS, dtype=np.int64)  # rows per file, live or dropped
        self._done = weakref.finalize(self, _close, self._writers, None)

    def _path(self, part: int) -> Path:
        if self._folder is None:
            self._folder = scratch.make_dir("window")
            self._done.detach()
            self._done = weakref.finalize(self, _close, self._writers, self._folder)
        return Path(self._folder) / f"part-{part}.arrows"

    def append(self, rows: pa.Table, seq: np.ndarray, part: np.ndarray) -> None:
        """Write ``rows`` (sequence numbers ``seq``, rising; parts ``part``) to their files."""
        if rows.num_rows == 0:
            return
        table = pa.table([pa.array(seq, pa.int64()), *rows.columns], names=["_seq", *rows.column_names])
        order = np.argsort(part, kind="stable")
        bounds = np.flatnonzero(np.r_[True, part[order][1:] != part[order][:-1], True])
        table = table.take(pa.array(order, pa.int64())).combine_chunks()  # by part, then in order
        try:
            for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
                p = int(part[order[lo]])
                if p not in self._writers:
                    sink = pa.OSFile(str(self._path(p)), "wb")
                    self._writers[p] = (sink, pa.ipc.new_stream(sink, table.schema))
                # in record batches of at most _BATCH_ROWS rows (a rewritten part is one table), so
                # that :meth:`take` reads a bounded batch at a time
                for at in range(lo, hi, _BATCH_ROWS):
                    piece = table.slice(at, min(hi, at + _BATCH_ROWS) - at)
                    self._writers[p][1].write_table(_trimmed(piece))
                self.written[p] += hi - lo
        except (OSError, pa.ArrowException) as exc:
            raise StoreError(f"could not write the detection window's rows: {exc}") from None

    def take(self, part: int, seq: np.ndarray) -> pa.Table:
        """The rows of ``part`` with these sequence numbers (rising), in that order, without the
        sequence number. The file is read one record batch at a time (its rows are in rising
        sequence order) and only the rows asked for are kept: memory holds what is taken and one
        batch, not the whole file besides (at 20 M window rows a part's file is about 100 MB)."""
        if part not in self._writers or len(seq) == 0:
            return pa.table({})
        picked: list[pa.RecordBatch] = []
        found = 0
        try:
            with pa.OSFile(str(self._path(part))) as f:
                reader = pa.ipc.open_stream(f)
                schema = reader.schema
                for batch in reader:
                    if found == len(seq):
                        break
                    held = np.asarray(batch.column(0).to_numpy(), dtype=np.int64)
                    upto = int(np.searchsorted(seq, held[-1], "right")) if len(held) else found
                    if upto == found:
                        continue
                    want = seq[found:upto]
                    at = np.searchsorted(held, want)
                    if np.any(at >= len(held)) or np.any(held[np.minimum(at, len(held) - 1)] != want):
                        break  # a row asked for is not where it must be: reported below
                    # every row of the batch asked for (a scoring of the whole window): no copy
                    whole = len(at) == len(held)
                    picked.append(batch if whole else batch.take(pa.array(at, pa.int64())))
                    found = upto
        except (OSError, pa.ArrowException) as exc:
            raise StoreError(f"could not read the detection window's rows: {exc}") from None
        if found != len(seq):
            raise StoreError("the detection window's rows on disk miss rows the state holds")
        # one chunk, its dictionaries unified once: the scoring cuts host groups from it, and a
        # take from a table of many chunks unifies them again at every take (about ten times dearer)
        return pa.Table.from_batches(picked, schema).drop_columns(["_seq"]).combine_chunks()

    def rewrite(self, part: int, live: np.ndarray) -> None:
        """Keep in ``part``'s file only the rows with these sequence numbers (rising)."""
        if part not in self._writers:
            return
        kept = self.take(part, live).combine_chunks()
        sink, writer = self._writers.pop(part)
        try:
            writer.close()
            sink.close()
        except (OSError, pa.ArrowException) as exc:
            raise StoreError(f"could not rewrite the detection window's rows: {exc}") from None
        self.written[part] = 0
        if kept.num_rows:
            self.append(kept, live, np.full(len(live), part, dtype=np.int8))

    def close(self) -> None:
        """Remove the folder now (also done when the state is garbage-collected)."""
        self._done()
