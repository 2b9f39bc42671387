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

from typing import Final

import duckdb
import pyarrow as pa

#: What :meth:`AnswerIndex.add` takes.
ANSWER_SCHEMA: Final = pa.schema(
    [
        pa.field("client", pa.string()),
        pa.field("address", pa.string()),
        pa.field("ts", pa.int64()),  # µs since the epoch
        pa.field("name", pa.string()),
    ]
)

#: The answers, one per (client, address, time) and one per (address, time): the latest given wins.
_INDEX: Final = (
    "CREATE OR REPLACE TEMP TABLE own AS "
    "SELECT client, address, ts, arg_max(name, seq) AS name FROM _answers GROUP BY ALL",
    "CREATE OR REPLACE TEMP TABLE anyone AS "
    "SELECT address, ts, arg_max(name, seq) AS name FROM _answers GROUP BY ALL",
)
_LOOKUP: Final = """
    SELECT coalesce(o.name, a.name) AS name
    FROM _flows f
    ASOF LEFT JOIN own o ON f.client = o.client AND f.address = o.address AND f.ts >= o.ts
    ASOF LEFT JOIN anyone a ON f.address = a.address AND f.ts >= a.ts
    ORDER BY f.row
"""


class AnswerIndex:
    """DNS answers collected as a log is read, and the names they give flows.

    Memory grows with the number of answers (not of flows). Close it when done.
    """

    def __init__(self) -> None:
        self._parts: list[pa.Table] = []
        self._count = 0
        self._con: duckdb.DuckDBPyConnection | None = None
        self._indexed = 0  # answers in the tables ``own`` and ``anyone``

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

    def names(self, client: pa.Array, address: pa.Array, ts: pa.Array) -> pa.Array:
        """For each flow (its client, destination address and start in µs): a name, or null."""
        n = len(address)
        if self._count == 0 or n == 0:
            return pa.nulls(n, pa.string())
        con = self._connect()
        if self._indexed != self._count:
            answers = pa.concat_tables(self._parts).combine_chunks()
            self._parts = [answers]
            con.register("_answers", answers)
            try:
                for statement in _INDEX:
                    con.execute(statement)
            finally:
                con.unregister("_answers")
            self._indexed = self._count
        flows = pa.table(
            {
                "row": pa.array(range(n), pa.int64()),
                "client": client.cast(pa.string()),
                "address": address.cast(pa.string()),
                "ts": ts.cast(pa.int64()),
            }
        )
        con.register("_flows", flows)
        try:
            result = con.sql(_LOOKUP).to_arrow_table()
        finally:
            con.unregister("_flows")
        column = result.column("name")
        return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column

    def _connect(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            config: dict[str, str | bool | int | float | list[str]] = {
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
                "threads": 2,
            }
            self._con = duckdb.connect(":memory:", config=config)
            self._con.execute("SET enable_progress_bar = false")
        return self._con

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
        self._parts = []
