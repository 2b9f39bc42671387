"""DuckDB adapter: join conn.log batches with Zeek's companion logs by ``uid``.

Only modules under ``derisk.store`` may import duckdb; this one lends DuckDB's joins to
:mod:`derisk.ingest.zeek_join`. The caller hands over the companion rows already prepared (text
bounded, names normalised), each with the columns it has among ``sni``, ``ja4``, ``host``,
``user_agent`` and ``dns_query`` and a ``seq`` giving the order the rows were logged in. They are
reduced once, in a private in-memory database, to one row per uid:

* each column's first value that is set, in logged order (``arg_min(value, seq)`` over the rows
  where it is set): the first handshake with an SNI, the first request with a Host, the first query;
* ``server_name`` the SNI, else the Host; ``server_name_source`` ``sni`` or ``http-host``.

The reduced rows are kept in memory ordered by DuckDB's ``hash(uid)``. A conn batch read by
:func:`derisk.store.zeekread.read_conn` carries the same hash of each uid (computed by DuckDB on its
reading threads), so it is matched in the batch's order by a binary search of the sorted hashes and a
comparison of the uids found (a hash collision is no match). A batch without the hashes, or a
reduction in which two uids share a hash, is matched by a ``LEFT JOIN`` on the uid instead (DuckDB
hashes the smaller side), ordered back to the batch's order. Batches may come from several threads:
each uses its own cursor.
"""

from __future__ import annotations

import threading
from typing import Final

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from derisk.store import zeekread

#: The columns a batch gains, in this order.
COLUMNS: Final = ("server_name", "server_name_source", "ja4", "user_agent", "dns_query")
_VALUES: Final = ("sni", "ja4", "host", "user_agent", "dns_query")

#: Only the rows that match come back, with their place in the batch (no ORDER BY: cheaper to place
#: them back with NumPy than to sort the batch in DuckDB).
_JOIN: Final = """
    SELECT b.pos, u.server_name, u.server_name_source, u.ja4, u.user_agent, u.dns_query
    FROM _batch b JOIN by_uid u ON b.uid = u.uid
"""


#: An input's private DuckDB database, as other layers hold it (they never use it themselves).
Database = duckdb.DuckDBPyConnection


def connect() -> Database:
    """A private in-memory DuckDB database for one Zeek input's reads and joins (opening one costs
    about a tenth of a second, so an input opens one): no extension loading, no progress bar."""
    return zeekread.private_connection()


class UidJoin:
    """Companion rows reduced to one row per uid, and the join of conn batches with them."""

    def __init__(self, parts: list[pa.Table], con: duckdb.DuckDBPyConnection | None = None) -> None:
        """``parts``: tables with ``uid``, ``seq`` and some of the value columns (all strings);
        ``con``: a private in-memory connection to share (its owner closes it), else one is opened."""
        self._con: duckdb.DuckDBPyConnection | None = None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._sorted: pa.Table | None = None  # by_uid ordered by hash(uid), when the hashes are distinct
        self._hashes = np.zeros(0, dtype=np.int64)
        rows = [self._normalised(part) for part in parts if part.num_rows]
        if not rows:
            return
        self._con = con.cursor() if con is not None else connect()
        self._con.register("_rows", pa.concat_tables(rows))
        first = ", ".join(
            f"arg_min({name}, seq) FILTER (WHERE {name} IS NOT NULL) AS {name}" for name in _VALUES
        )
        try:
            self._con.execute(
                "CREATE TABLE by_uid AS SELECT hash(uid) AS h, uid, coalesce(sni, host) AS server_name, "
                "CASE WHEN sni IS NOT NULL THEN 'sni' WHEN host IS NOT NULL THEN 'http-host' END "
                "AS server_name_source, ja4, user_agent, dns_query "
                f"FROM (SELECT uid, {first} FROM _rows WHERE uid IS NOT NULL GROUP BY uid)"
            )
            reduced = self._con.sql("SELECT * FROM by_uid").to_arrow_table().combine_chunks()
        finally:
            self._con.unregister("_rows")
        # The hashes as int64 (the same bits, ordered as int64: the batches' hashes are viewed alike).
        signed = reduced.column("h").to_numpy().view(np.int64)
        order = np.argsort(signed, kind="stable")
        hashes = signed[order]
        if len(hashes) and not np.any(hashes[1:] == hashes[:-1]):  # else two uids share a hash
            self._sorted = reduced.take(pa.array(order))
            self._hashes = hashes

    @staticmethod
    def _normalised(part: pa.Table) -> pa.Table:
        n = part.num_rows
        columns = {"uid": part.column("uid").cast(pa.string()), "seq": part.column("seq").cast(pa.int64())}
        for name in _VALUES:
            columns[name] = (
                part.column(name).cast(pa.string()) if name in part.column_names else pa.nulls(n, pa.string())
            )
        return pa.table(columns)

    def join(self, uid: pa.Array, hashes: pa.Array | None = None) -> dict[str, pa.Array]:
        """The companion columns (:data:`COLUMNS`) for a batch of conn.log uids, in the batch's order.

        ``hashes``: DuckDB's ``hash(uid)`` of each uid, when the batch carries it (see the module).
        """
        n = len(uid)
        if self._con is None or n == 0:
            return {name: pa.nulls(n, pa.string()) for name in COLUMNS}
        if hashes is not None and self._sorted is not None:
            return self._lookup(uid, hashes)
        batch = pa.table({"pos": pa.array(np.arange(n, dtype=np.int64)), "uid": uid.cast(pa.string())})
        cursor: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cursor is None:  # one per thread: opening one per batch costs more than the join
            cursor = self._con.cursor()
            self._local.cursor = cursor
            with self._lock:
                self._cursors.append(cursor)
        cursor.register("_batch", batch)
        try:
            result = cursor.sql(_JOIN).to_arrow_table()
        finally:
            cursor.unregister("_batch")
        return _placed(result, n, COLUMNS)

    def _lookup(self, uid: pa.Array, hashes: pa.Array) -> dict[str, pa.Array]:
        """The join by a binary search of the sorted hashes (the uids found are compared)."""
        assert self._sorted is not None
        wanted = hashes.to_numpy(zero_copy_only=False).view(np.int64)
        order = np.argsort(wanted)  # sorted needles: a search that walks the hashes in order
        index = np.empty(len(wanted), dtype=np.int64)
        index[order] = np.minimum(np.searchsorted(self._hashes, wanted[order]), len(self._hashes) - 1)
        found = self._hashes[index] == wanted
        if not found.any():
            return {name: pa.nulls(len(uid), pa.string()) for name in COLUMNS}
        where = pa.array(index, mask=~found)
        same = pc.equal(self._sorted.column("uid").take(where), uid.cast(pa.string()))
        found &= pc.fill_null(same, False).to_numpy(zero_copy_only=False)
        where = pa.array(index, mask=~found)
        return {name: self._sorted.column(name).take(where).combine_chunks() for name in COLUMNS}

    def close(self) -> None:
        for cursor in self._cursors:
            cursor.close()
        self._cursors = []
        self._local = threading.local()
        if self._con is not None:
            self._con.close()
            self._con = None


def place(positions: pa.Array, n: int) -> pa.Array:
    """For each of ``n`` rows, the index of the result row placed there (null where none).

    ``positions`` holds each result row's place; places are distinct.
    """
    index = np.full(n, -1, dtype=np.int64)
    index[positions.to_numpy(zero_copy_only=False)] = np.arange(len(positions), dtype=np.int64)
    return pa.array(index, mask=index < 0)


def _placed(result: pa.Table, n: int, names: tuple[str, ...]) -> dict[str, pa.Array]:
    where = place(result.column("pos").combine_chunks(), n)
    return {name: result.column(name).combine_chunks().take(where) for name in names}
