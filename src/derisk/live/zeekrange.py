"""Zeek log lines read by the follower, as canonical flows: the batch reader's parsing and conversion
applied to a range of complete lines instead of a whole file.

Each followed file is opened once with :func:`derisk.ingest.zeek_log.open_log` (its TSV header or
first JSON record decides the columns); a range of its lines is read by :meth:`ZeekLog.parse` and
converted by :func:`derisk.ingest.zeek_convert.to_flows`, which the Zeek reader exposes for
followers: the same reading and conversion as ``derisk analyze`` applies to a whole log. Companion records (ssl, quic, http, dns) are kept in the workspace
(:mod:`derisk.store.checkpoints`) and joined to conn records through the batch reader's own
:class:`~derisk.ingest.zeek_join.Companions`, given the kept records that share a uid with the
range's conn records or answered one of their responder addresses.

A range with a bad line is parsed again line by line: the bad lines are skipped and counted, the
good ones kept, and the follower goes on.
"""

from __future__ import annotations

import logging
from typing import Final

import duckdb
import pyarrow as pa

from derisk.errors import InputError
from derisk.flows import BATCH_ROWS
from derisk.ingest import zeek
from derisk.ingest.zeek_convert import to_flows
from derisk.ingest.zeek_join import Companions
from derisk.ingest.zeek_log import ZeekLog, column, open_log, text, timestamps
from derisk.live.follow import Piece
from derisk.store import checkpoints

log = logging.getLogger(__name__)

#: ``ts`` is read from every companion too: it stamps kept records in data time and tells how far a
#: companion log has been read (:mod:`derisk.live.zeekhold`).
_TS: Final = {"ts": "time"}
_SPECS: Final = {
    "conn": (zeek.CONN_REQUIRED, zeek.CONN_OPTIONAL, frozenset(zeek.CONN_REQUIRED)),
    "ssl": (zeek.SSL_REQUIRED, {**zeek.SSL_OPTIONAL, **_TS}, frozenset({"uid", "ts"})),
    "quic": (zeek.SSL_REQUIRED, {**zeek.SSL_OPTIONAL, **_TS}, frozenset({"uid", "ts"})),
    "http": (zeek.HTTP_REQUIRED, {**zeek.HTTP_OPTIONAL, **_TS}, frozenset({"uid", "ts"})),
    "dns": (zeek.DNS_REQUIRED, zeek.DNS_OPTIONAL, frozenset({"uid", "ts"})),
}
_TEXT: Final = frozenset({"server_name", "ja4", "host", "user_agent", "query"})
_PARSE_ERRORS: Final = (InputError, pa.ArrowInvalid, ValueError, OSError, EOFError)


def has_records(data: bytes) -> bool:
    return any(line.strip() and not line.startswith(b"#") for line in data.split(b"\n"))


class ZeekRanges:
    """Parses ranges of followed Zeek logs; remembers each file's header."""

    def __init__(self) -> None:
        self._logs: dict[str, ZeekLog] = {}
        self.bad_lines = 0

    def forget(self, key: str) -> None:
        self._logs.pop(key, None)

    def _log(self, piece: Piece) -> ZeekLog:
        key = piece.position.key
        found = self._logs.get(key)
        if found is None or str(found.path) != str(piece.path):
            required, optional, always = _SPECS[piece.kind]
            found = self._logs[key] = open_log(piece.path, required, optional, always)
        return found

    def _parse(self, piece: Piece, zlog: ZeekLog) -> pa.Table | None:
        try:
            return zlog.parse(pa.py_buffer(piece.data))
        except _PARSE_ERRORS:
            pass
        good = []
        for number, line in enumerate(piece.data.split(b"\n")):
            if not line.strip() or line.startswith(b"#"):
                continue
            try:
                good.append(zlog.parse(pa.py_buffer(line + b"\n")))
            except _PARSE_ERRORS as exc:
                self.bad_lines += 1
                log.warning(
                    "%s: line %d of the lines read from byte %d cannot be read (%s); skipped",
                    piece.path,
                    number + 1,
                    piece.start,
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                )
        return pa.concat_tables(good) if good else None

    def companion(self, piece: Piece) -> pa.Table | None:
        """The companion records of a range (ssl, quic, http or dns), converted as the batch reader does."""
        if not has_records(piece.data):
            return None
        zlog = self._log(piece)
        table = self._parse(piece, zlog)
        if table is None or table.num_rows == 0:
            return None
        columns: dict[str, pa.Array] = {}
        for name in zlog.columns:
            values = column(table, name)
            if name == "ts":
                values = timestamps(values, zlog, frozenset({"ts"}))
            elif name == "answers":
                values = zeek._answers(values, zlog)
            elif name in _TEXT:
                values = text(values, zlog)
            columns[name] = values
        return pa.table(columns)

    def records(self, piece: Piece) -> tuple[ZeekLog, pa.Table] | None:
        """A range of conn records as read (Zeek's names, ``ts`` in µs), before any join."""
        if not has_records(piece.data):
            return None
        zlog = self._log(piece)
        table = self._parse(piece, zlog)
        if table is None or table.num_rows == 0:
            return None
        return zlog, table.combine_chunks()

    def conn(
        self,
        piece: Piece,
        zlog: ZeekLog,
        table: pa.Table,
        con: duckdb.DuckDBPyConnection,
        *,
        lookup: bool = True,
    ) -> list[pa.RecordBatch]:
        """The flows of conn records (from :meth:`records`), joined with the kept companion records
        (none are looked up when ``lookup`` is False: the workspace keeps none)."""
        if table.num_rows == 0:
            return []
        kept: dict[str, pa.Table | None] = {"ssl": None, "http": None, "dns": None}
        if lookup:
            uids, addresses = column(table, "uid"), column(table, "id.resp_h")
            kept = checkpoints.companions_for(con, uids, addresses)
        companions = Companions(ssl=kept["ssl"], http=kept["http"], dns=kept["dns"])
        out: list[pa.RecordBatch] = []
        try:
            for batch in table.to_batches(max_chunksize=BATCH_ROWS):
                if not batch.num_rows:
                    continue
                try:
                    out.append(to_flows(batch, zlog, companions))
                except InputError as exc:  # a record with an unset uid, an implausible time ...
                    self.bad_lines += batch.num_rows
                    log.warning("%s: %d records from byte %d skipped: %s", piece.path, batch.num_rows,
                                piece.start, exc.message)  # fmt: skip
        finally:
            companions.close()
        return out
