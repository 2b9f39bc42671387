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
from dataclasses import dataclass
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

#: Lookup tables for the addresses that answered more than one name (built when a flow to one of
#: them is first looked up): per (client, address, time) and per (address, time) the latest answer
#: given. The addresses all of whose answers name one name are indexed in Arrow instead
#: (:func:`_single_names`; for them the rule reduces to "answered before the flow": a hash lookup).
_INDEX: Final = (
    "CREATE OR REPLACE TABLE own AS "
    "SELECT client, address, ts, arg_max(name, seq) AS name FROM _answers GROUP BY ALL",
    "CREATE OR REPLACE TABLE anyone AS "
    "SELECT address, ts, arg_max(name, seq) AS name FROM _answers GROUP BY ALL",
)
#: Flows to the other answered addresses: the latest answer at or before the flow, own client first.
_MIXED: Final = """
    SELECT row, name FROM (
        SELECT m.row, coalesce(o.name, a.name) AS name FROM _flows m
        ASOF LEFT JOIN own o ON m.client = o.client AND m.address = o.address AND m.ts >= o.ts
        ASOF LEFT JOIN anyone a ON m.address = a.address AND m.ts >= a.ts
    ) WHERE name IS NOT NULL
"""


_SEQUENCED: Final = ANSWER_SCHEMA.append(pa.field("seq", pa.int64()))


@dataclass(frozen=True)
class _Single:
    """The addresses all of whose answers name one name: that name and the first answer's time."""

    address: pa.Array
    first: pa.Array  # int64 µs, null when no answer of the address has a time
    name: pa.Array


def _single_names(answers: pa.Table) -> tuple[_Single, pa.Array]:
    """The answers' addresses with one distinct name (the name, the earliest time), and the other
    addresses (none null). What ``GROUP BY address HAVING count(DISTINCT name) = 1`` with
    ``min(ts)`` and ``min(name)`` gives (unset names and times ignored, a null address its own
    group), computed with NumPy over dictionary codes instead of in DuckDB."""
    encoded = pc.dictionary_encode(answers.column("address").combine_chunks(), null_encoding="encode")
    addresses = encoded.dictionary
    group = encoded.indices.to_numpy()
    groups = len(addresses)
    named = pc.dictionary_encode(answers.column("name").combine_chunks())
    code = pc.fill_null(named.indices, -1).to_numpy()
    has_name = code >= 0
    low = np.full(groups, np.iinfo(np.int64).max, dtype=np.int64)
    high = np.full(groups, -1, dtype=np.int64)
    np.minimum.at(low, group[has_name], code[has_name])
    np.maximum.at(high, group[has_name], code[has_name])
    one = (high >= 0) & (low == high)
    ts = answers.column("ts").combine_chunks()
    has_ts = ts.is_valid().to_numpy(zero_copy_only=False)
    first = np.full(groups, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, group[has_ts], pc.fill_null(ts, 0).to_numpy()[has_ts])
    timed = np.zeros(groups, dtype=bool)
    timed[group[has_ts]] = True
    where = np.flatnonzero(one)
    single = _Single(
        address=addresses.take(pa.array(where)).cast(pa.string()),
        first=pa.array(first[where], pa.int64(), mask=~timed[where]),
        name=named.dictionary.take(pa.array(low[where])).cast(pa.string()),
    )
    return single, addresses.filter(pa.array(~one)).drop_null().cast(pa.string())


class AnswerIndex:
    """DNS answers collected as a log is read, and the names they give flows.

    Memory grows with the number of answers (not of flows). Lookups may come from several threads
    (each uses its own cursor); adding answers must not overlap them. Close it when done.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection | None = None) -> None:
        """``con``: a private in-memory connection to share (its owner closes it), else one is opened
        when a flow first needs the lookup tables."""
        self._parts: list[pa.Table] = []
        self._count = 0
        self._con: duckdb.DuckDBPyConnection | None = con.cursor() if con is not None else None
        self._indexed = 0  # answers in the index
        self._generation = 0  # of the index, rebuilt when answers were added or forgotten
        self._tables = -1  # the generation the DuckDB lookup tables were built for
        self._answers = _SEQUENCED.empty_table()
        self._single = _Single(pa.array([], pa.string()), pa.array([], pa.int64()), pa.array([], pa.string()))
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
        seq = pa.array(np.arange(self._count, self._count + answers.num_rows, dtype=np.int64))
        self._parts.append(answers.select(ANSWER_SCHEMA.names).cast(ANSWER_SCHEMA).append_column("seq", seq))
        self._count += answers.num_rows

    def truncate(self, count: int) -> None:
        """Forget the answers added after the first ``count`` (to read a file again)."""
        if count >= self._count:
            return
        kept = pa.concat_tables(self._parts).slice(0, count) if count else None
        self._parts = [kept.combine_chunks()] if kept is not None else []
        self._count = count
        self._indexed = -1  # rebuild the index at the next use

    def _index(self) -> None:
        """The addresses with one name indexed in Arrow, the others listed (no DuckDB work)."""
        with self._lock:
            if self._indexed != self._count:
                answers = pa.concat_tables(self._parts).combine_chunks()
                self._parts = [answers]
                self._answers = answers
                self._single, self._mixed = _single_names(answers)
                self._indexed = self._count
                self._generation += 1

    def _database(self) -> duckdb.DuckDBPyConnection:
        """The connection with the lookup tables of the addresses that answered several names."""
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
            if self._tables != self._generation:
                self._con.register("_answers", self._answers)
                try:
                    for statement in _INDEX:
                        self._con.execute(statement)
                finally:
                    self._con.unregister("_answers")
                self._tables = self._generation
            return self._con

    def names(self, client: pa.Array, address: pa.Array, ts: pa.Array) -> pa.Array:
        """For each flow (its client, destination address and start in µs): a name, or null."""
        n = len(address)
        if self._count == 0 or n == 0:
            return pa.nulls(n, pa.string())
        self._index()
        address = address.cast(pa.string())
        ts = ts.cast(pa.int64())
        # Addresses that only ever answered one name: that name, if the flow started at or after
        # the first answer (Arrow's hash lookup; the rule reduces to this for them).
        single = self._single
        index = pc.index_in(address, value_set=single.address)
        names = pc.if_else(
            pc.fill_null(pc.greater_equal(ts, single.first.take(index)), False),
            single.name.take(index),
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
        cursor = self._cursor(self._database())
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
        self._answers = self._answers.slice(0, 0)
