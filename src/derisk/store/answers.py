"""DuckDB adapter: name flows after the DNS answers that gave their destination address.

Only modules under ``derisk.store`` may import duckdb; this one lends DuckDB's ASOF JOIN to the
readers of logs that carry DNS answers beside flows (Suricata's EVE, see ``docs/ingest-eve.md``).
The rule is Zeek's (``docs/ingest-zeek.md``, "Names from DNS answers"): among the A/AAAA answers that
listed the flow's destination address and were given at or before the flow's start, the most recent
one asked by the flow's own client wins, else the most recent one asked by anyone. Answers given at
the same instant are told apart by their order of arrival (the later wins), so the result does not
depend on DuckDB's scheduling.
"""

from __future__ import annotations

import threading
from typing import Final

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from derisk.store.spill import spill_directory

#: What :meth:`AnswerIndex.add` takes.
ANSWER_SCHEMA: Final = pa.schema(
    [
        pa.field("client", pa.string()),
        pa.field("address", pa.string()),
        pa.field("ts", pa.int64()),  # µs since the epoch
        pa.field("name", pa.string()),
    ]
)

#: Lookup tables, rebuilt when answers were added: per (client, address, time) and per (address,
#: time) the latest answer given; and the addresses all of whose answers name one name, with the
#: time of the first (for them the rule reduces to "answered before the flow": a hash join).
_INDEX: Final = (
    "CREATE OR REPLACE TABLE own AS "
    "SELECT client, address, ts, arg_max(name, seq) AS name FROM _answers GROUP BY ALL",
    "CREATE OR REPLACE TABLE anyone AS "
    "SELECT address, ts, arg_max(name, seq) AS name FROM _answers GROUP BY ALL",
    "CREATE OR REPLACE TABLE single AS "
    "SELECT address, min(ts) AS first, min(name) AS name FROM _answers GROUP BY address "
    "HAVING count(DISTINCT name) = 1",
)
#: Flows to the other answered addresses: the latest answer at or before the flow, own client first.
_MIXED: Final = """
    SELECT row, name FROM (
        SELECT m.row, coalesce(o.name, a.name) AS name FROM _flows m
        ASOF LEFT JOIN own o ON m.client = o.client AND m.address = o.address AND m.ts >= o.ts
        ASOF LEFT JOIN anyone a ON m.address = a.address AND m.ts >= a.ts
    ) WHERE name IS NOT NULL
"""


class AnswerIndex:
    """DNS answers collected as a log is read, and the names they give flows.

    Memory grows with the number of answers (not of flows). Lookups may come from several threads
    (each uses its own cursor); adding answers must not overlap them. Close it when done.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection | None = None) -> None:
        """``con``: a private in-memory connection to share (its owner closes it), else one is opened."""
        self._parts: list[pa.Table] = []
        self._count = 0
        self._con: duckdb.DuckDBPyConnection | None = con.cursor() if con is not None else None
        self._indexed = 0  # answers in the lookup tables
        self._single = pa.table({"address": [], "first": [], "name": []})  # addresses with one name
        self._mixed = pa.array([], pa.string())  # the other answered addresses
        self._lock = threading.Lock()
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []

    def __len__(self) -> int:
        return self._count

    def add(self, answers: pa.Table) -> None:
        """Answers in :data:`ANSWER_SCHEMA`, in the order they were given."""
        if answers.num_rows == 0:
            return
        seq = pa.array(range(self._count, self._count + answers.num_rows), pa.int64())
        self._parts.append(answers.select(ANSWER_SCHEMA.names).cast(ANSWER_SCHEMA).append_column("seq", seq))
        self._count += answers.num_rows

    def truncate(self, count: int) -> None:
        """Forget the answers added after the first ``count`` (to read a file again)."""
        if count >= self._count:
            return
        kept = pa.concat_tables(self._parts).slice(0, count) if count else None
        self._parts = [kept.combine_chunks()] if kept is not None else []
        self._count = count
        self._indexed = -1  # rebuild the lookup tables at the next use

    def _index(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._con is None:
                config: dict[str, str | bool | int | float | list[str]] = {
                    "autoinstall_known_extensions": False,
                    "autoload_known_extensions": False,
                    "temp_directory": spill_directory(),
                    "threads": 2,
                }
                self._con = duckdb.connect(":memory:", config=config)
                self._con.execute("SET enable_progress_bar = false")
            if self._indexed != self._count:
                answers = pa.concat_tables(self._parts).combine_chunks()
                self._parts = [answers]
                self._con.register("_answers", answers)
                try:
                    for statement in _INDEX:
                        self._con.execute(statement)
                finally:
                    self._con.unregister("_answers")
                single = self._con.sql("SELECT address, first, name FROM single").to_arrow_table()
                self._single = single.combine_chunks()
                every = pc.unique(answers.column("address").combine_chunks()).drop_null()
                known = self._single.column("address").combine_chunks().cast(pa.string())
                self._mixed = every.filter(pc.invert(pc.is_in(every, value_set=known)))
                self._indexed = self._count
            return self._con

    def names(self, client: pa.Array, address: pa.Array, ts: pa.Array) -> pa.Array:
        """For each flow (its client, destination address and start in µs): a name, or null."""
        n = len(address)
        if self._count == 0 or n == 0:
            return pa.nulls(n, pa.string())
        con = self._index()
        address = address.cast(pa.string())
        ts = ts.cast(pa.int64())
        # Addresses that only ever answered one name: that name, if the flow started at or after
        # the first answer (Arrow's hash lookup; the rule reduces to this for them).
        single = self._single
        index = pc.index_in(address, value_set=single.column("address").combine_chunks().cast(pa.string()))
        first = single.column("first").combine_chunks().take(index)
        names = pc.if_else(
            pc.fill_null(pc.greater_equal(ts, first), False),
            single.column("name").combine_chunks().take(index),
            pa.scalar(None, pa.string()),
        )
        if len(self._mixed) == 0:
            return names
        wanted = pc.fill_null(pc.is_in(address, value_set=self._mixed), False)
        if not pc.any(wanted).as_py():
            return names
        flows = pa.table(
            {
                "row": pa.array(np.arange(n, dtype=np.int64)).filter(wanted),
                "client": client.cast(pa.string()).filter(wanted),
                "address": address.filter(wanted),
                "ts": ts.filter(wanted),
            }
        )
        cursor = self._cursor(con)
        cursor.register("_flows", flows)
        try:
            named = cursor.sql(_MIXED).to_arrow_table()
        finally:
            cursor.unregister("_flows")
        where = np.full(n, -1, dtype=np.int64)
        where[named.column("row").to_numpy()] = np.arange(named.num_rows, dtype=np.int64)
        mixed = named.column("name").combine_chunks().take(pa.array(where, mask=where < 0))
        return pc.coalesce(names, mixed)

    def _cursor(self, con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
        """This thread's cursor (opening one per lookup costs more than the lookup)."""
        cursor: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = con.cursor()
            self._local.cursor = cursor
            with self._lock:
                self._cursors.append(cursor)
        return cursor

    def close(self) -> None:
        for cursor in self._cursors:
            cursor.close()
        self._cursors = []
        self._local = threading.local()
        if self._con is not None:
            self._con.close()
            self._con = None
        self._parts = []
