"""DuckDB adapter: join conn.log batches with Zeek's companion logs by ``uid``.

Only modules under ``derisk.store`` may import duckdb; this one lends DuckDB's joins to
:mod:`derisk.ingest.zeek_join`. The caller hands over the companion rows already prepared (text
bounded, names normalised), each with the columns it has among ``sni``, ``ja4``, ``host``,
``user_agent`` and ``dns_query`` and a ``seq`` giving the order the rows were logged in. They are
reduced once to one row per uid:

* each column's first value that is set, in logged order (what ``arg_min(value, seq)`` over the rows
  where it is set gives): the first handshake with an SNI, the first request with a Host, the first
  query;
* ``server_name`` the SNI, else the Host; ``server_name_source`` ``sni`` or ``http-host``.

DuckDB hashes the uids (``hash(uid)``); the rows are grouped by sorting the hashes with NumPy and the
reduced rows kept in memory ordered by hash, with the start of each bucket of hashes (their top
bits). A conn batch read by :func:`derisk.store.zeekread.read_conn` carries the same hash of each uid
(computed by DuckDB on its reading threads), so it is matched in the batch's order by reading the
few hashes of its bucket and comparing the uids found (a hash collision is no match). A batch
without the hashes is matched by a ``LEFT JOIN`` on the uid in DuckDB instead (DuckDB hashes the
smaller side), ordered back to the batch's order; when two distinct uids share a hash, DuckDB also
does the reduction (``GROUP BY uid`` with ``arg_min``). Batches may come from several threads:
each uses its own cursor.
"""

from __future__ import annotations

import threading
from typing import Final

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from derisk.flows import contiguous
from derisk.store import zeekread

#: The columns a batch gains, in this order.
COLUMNS: Final = ("server_name", "server_name_source", "ja4", "user_agent", "dns_query")
_VALUES: Final = ("sni", "ja4", "host", "user_agent", "dns_query")
#: At most 2**22 buckets (32 MiB of bucket starts) however many uids the companions hold.
_MAX_BUCKET_BITS: Final = 22

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
        self._table = False  # whether by_uid is a table of the database (for the join in DuckDB)
        self._sorted: pa.Table | None = None  # by_uid ordered by hash(uid), when the hashes are distinct
        self._hashes = np.zeros(0, dtype=np.uint64)
        self._bits = 1  # the hashes' top bits that pick a bucket
        self._starts = np.zeros(3, dtype=np.int64)  # where each bucket starts in the sorted hashes
        self._empty: frozenset[str] = frozenset()  # columns with no value set in any row
        self._columns: dict[str, pa.Array] = {}  # the columns of _sorted
        rows = [self._normalised(part) for part in parts if part.num_rows]
        if not rows:
            return
        self._con = con.cursor() if con is not None else connect()
        table = pa.concat_tables(rows).combine_chunks()
        if table.column("uid").null_count:
            table = table.filter(pc.is_valid(table.column("uid")))
        seq = table.column("seq").to_numpy(zero_copy_only=False)
        if len(seq) > 1 and not np.all(seq[1:] > seq[:-1]):  # in logged order, as "first" means
            table = table.take(pa.array(np.argsort(seq, kind="stable")))
        reduced = self._reduce(table)
        if reduced is None:  # two uids share a hash: reduced and joined by DuckDB alone
            self._reduce_in_duckdb(table)
            return
        self._sorted = reduced
        # Its columns as single arrays: a take from one gives the batch's column without the copy
        # that joining a chunked result costs.
        self._columns = {name: contiguous(reduced.column(name)) for name in ("uid", *COLUMNS)}
        self._hashes = reduced.column("h").to_numpy()
        # Buckets by the top bits (four to eight per hash): a lookup reads a bucket's few hashes
        # instead of searching them all (a binary search per uid cost more than the reading), and
        # most uids of a batch fall in an empty bucket (two to four buckets per hash cost 2.5-3x
        # more per batch: 0.045 against 0.016 thread CPU s per 1 M lines with 13.5 k uids).
        self._bits = min(_MAX_BUCKET_BITS, max(1, len(self._hashes).bit_length() + 2))
        counts = np.bincount(self._bucket(self._hashes), minlength=1 << self._bits)
        self._starts = np.concatenate(([0], np.cumsum(counts)))
        self._empty = frozenset(
            name for name in COLUMNS if reduced.column(name).null_count == reduced.num_rows
        )

    def _reduce(self, table: pa.Table) -> pa.Table | None:
        """The rows reduced to one per uid (see the module), ordered by DuckDB's ``hash(uid)``;
        None when two distinct uids share a hash.

        Rows are grouped by sorting their hashes (a stable sort keeps each uid's rows in logged
        order), so each column's first value set is the first one in its group: NumPy over the
        row positions, the strings taken once, instead of DuckDB's ``GROUP BY`` with an
        ``arg_min`` per column (which cost several times more on large companion logs).
        """
        assert self._con is not None
        uid = table.column("uid")
        self._con.register("_rows", pa.table({"uid": uid}))
        try:
            hashed = self._con.sql("SELECT hash(uid) AS h FROM _rows").to_arrow_table().column("h")
        finally:
            self._con.unregister("_rows")
        hashes = hashed.to_numpy()
        order = np.argsort(hashes, kind="stable")
        ordered = hashes[order]
        starts = np.ones(len(ordered), dtype=bool)  # where each hash's group starts
        starts[1:] = ordered[1:] != ordered[:-1]
        repeated = np.flatnonzero(~starts)
        if len(repeated):  # the same hash again: the same uid, or a collision
            before, after = uid.take(order[repeated - 1]), uid.take(order[repeated])
            if not pc.all(pc.equal(before, after)).as_py():
                return None
        group = np.cumsum(starts) - 1
        heads = order[starts]
        columns: dict[str, pa.Array] = {"h": pa.array(ordered[starts]), "uid": uid.take(heads)}
        for name in _VALUES:
            values = table.column(name)
            if values.null_count == len(values):
                columns[name] = pa.nulls(len(heads), pa.string())
                continue
            valid = np.flatnonzero(values.is_valid().to_numpy(zero_copy_only=False)[order])
            owner = group[valid]  # the group of each row with a value, groups in order
            first = np.ones(len(owner), dtype=bool)
            first[1:] = owner[1:] != owner[:-1]
            index = np.full(len(heads), -1, dtype=np.int64)
            index[owner[first]] = order[valid[first]]
            columns[name] = values.take(pa.array(index, mask=index < 0))
        sni, host = columns.pop("sni"), columns.pop("host")
        source = pc.if_else(
            pc.is_valid(sni),
            pa.scalar("sni"),
            pc.if_else(pc.is_valid(host), pa.scalar("http-host"), pa.scalar(None, pa.string())),
        )
        return pa.table(
            {
                "h": columns["h"],
                "uid": columns["uid"],
                "server_name": pc.coalesce(sni, host),
                "server_name_source": source,
                "ja4": columns["ja4"],
                "user_agent": columns["user_agent"],
                "dns_query": columns["dns_query"],
            }
        )

    def _reduce_in_duckdb(self, table: pa.Table) -> None:
        """by_uid as a table of the database, reduced by DuckDB (each uid joined there)."""
        assert self._con is not None
        first = ", ".join(
            f"arg_min({name}, seq) FILTER (WHERE {name} IS NOT NULL) AS {name}" for name in _VALUES
        )
        self._con.register("_rows", table)
        try:
            self._con.execute(
                "CREATE TABLE by_uid AS SELECT hash(uid) AS h, uid, coalesce(sni, host) AS server_name, "
                "CASE WHEN sni IS NOT NULL THEN 'sni' WHEN host IS NOT NULL THEN 'http-host' END "
                "AS server_name_source, ja4, user_agent, dns_query "
                f"FROM (SELECT uid, {first} FROM _rows GROUP BY uid)"
            )
        finally:
            self._con.unregister("_rows")
        self._table = True

    def _ensure_table(self) -> None:
        """by_uid as a table of the database (for a batch without hashes), from the reduced rows."""
        with self._lock:
            if self._table:
                return
            assert self._con is not None and self._sorted is not None
            self._con.register("_reduced", self._sorted)
            try:
                self._con.execute("CREATE TABLE by_uid AS SELECT * FROM _reduced")
            finally:
                self._con.unregister("_reduced")
            self._table = True

    @property
    def has_rows(self) -> bool:
        """Whether any companion row was given (else every join finds nothing)."""
        return self._con is not None

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
        self._ensure_table()
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

    def _bucket(self, hashes: np.ndarray) -> np.ndarray:
        """Each hash's bucket: its top bits (buckets in the order of the hashes, uint64)."""
        return (hashes >> np.uint64(64 - self._bits)).astype(np.intp)

    def _lookup(self, uid: pa.Array, hashes: pa.Array) -> dict[str, pa.Array]:
        """The join by the buckets of the sorted hashes (the uids found are compared)."""
        assert self._sorted is not None
        wanted = hashes.to_numpy(zero_copy_only=False)
        bucket = self._bucket(wanted)
        start, end = self._starts[bucket], self._starts[bucket + 1]
        index = np.full(len(wanted), -1, dtype=np.int64)
        rows = np.flatnonzero(start < end)
        while len(rows):  # the i-th hash of every bucket still searched (hashes are distinct)
            at = start[rows]
            hit = self._hashes[at] == wanted[rows]
            index[rows[hit]] = at[hit]
            start[rows] += 1
            rows = rows[~hit]
            rows = rows[start[rows] < end[rows]]
        rows = np.flatnonzero(index >= 0)
        if not len(rows):
            return {name: pa.nulls(len(uid), pa.string()) for name in COLUMNS}
        # A hash that matched is a uid that matched only if the uids are equal (a collision is not).
        same = pc.equal(self._columns["uid"].take(index[rows]), uid.cast(pa.string()).take(rows))
        index[rows[~pc.fill_null(same, False).to_numpy(zero_copy_only=False)]] = -1
        where = pa.array(index, mask=index < 0)
        return {
            name: pa.nulls(len(uid), pa.string()) if name in self._empty else self._columns[name].take(where)
            for name in COLUMNS
        }

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
