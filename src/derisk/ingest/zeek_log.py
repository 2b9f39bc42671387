"""One opened Zeek log: its format, what its header (TSV) or first line (JSON) told, how DuckDB reads
it (:class:`derisk.store.zeekread.LogSource`), and the column checks every kind of log shares."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from derisk import scratch
from derisk.errors import InputError
from derisk.flows import TS
from derisk.ingest import zeek_json, zeek_tsv
from derisk.ingest.logtext import bound_text
from derisk.ingest.zeek_fields import canonical_names
from derisk.ingest.zeek_io import GZIP_MAGIC, read_error, sniff
from derisk.store import zeeklines, zeekread

MAX_EPOCH_SECONDS: Final = 1e11


@dataclass(frozen=True)
class ZeekLog:
    """One opened log: its format and what its header (TSV) or first line (JSON) told us."""

    path: Path
    display: str
    columns: Mapping[str, str]
    header: zeek_tsv.TsvHeader | None
    ts_kind: str
    #: Zeek's name of a column -> its key in a JSON log, where they differ (a scope separator).
    names: Mapping[str, str] = field(default_factory=dict)
    gzip: bool = False
    #: Where the last line starts when it is cut short (a plain log still being written), else None.
    cut: int | None = None
    #: A gzip log cut short, to be read up to its last whole line (see :mod:`.zeek_damage`).
    gzip_cut: bool = False

    def source(self, path: Path | None = None, *, compressed: bool | None = None) -> zeekread.LogSource:
        """How DuckDB reads this log (or ``path``, holding lines of it)."""
        layout: zeekread.TsvLayout | zeekread.JsonLayout
        if self.header is not None:
            nulls = (self.header.unset_field, self.header.empty_field)
            layout = zeekread.TsvLayout(self.header.fields, self.header.separator, nulls)
        else:
            layout = zeekread.JsonLayout(self.ts_kind, self.names)
        return zeekread.LogSource(
            path or self.path,
            self.columns,
            layout,
            self.gzip if compressed is None else compressed,
            end=self.cut if path is None else None,
            gzip_cut=self.gzip_cut and path is None,
        )

    def parse(self, data: pa.Buffer | bytes) -> pa.Table:
        """Complete lines of this log (no header needed) read by DuckDB as :func:`read` reads a file.

        For a reader that follows a growing log: the lines go through a private temporary file.
        """
        payload = data.to_pybytes() if isinstance(data, pa.Buffer) else data
        handle, name = scratch.make_file("zeek", ".log")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(payload)
            return zeekread.read_table(self.source(Path(name), compressed=False))
        except zeekread.ZeekReadError as exc:
            raise InputError(f"lines cannot be read ({exc})", source=self.display) from None
        finally:
            scratch.remove(name)

    def read(
        self, database: zeekread.Database | None = None, rejected: zeekread.Rejected | None = None
    ) -> pa.Table:
        """The whole log read by DuckDB (a companion log): Zeek's names, ``ts`` in int64 µs.

        ``rejected``: count the lines that cannot be read there instead of refusing the log."""
        try:
            return zeekread.read_table(self.source(), database, rejected)
        except zeekread.ZeekReadError as exc:
            raise self.diagnose(exc, frozenset({"uid"})) from None

    def diagnose(self, cause: BaseException, not_null: frozenset[str]) -> InputError:
        """Find the first bad line (a slow scan, only after DuckDB failed) and describe it."""
        if isinstance(cause, InputError):
            return cause
        if isinstance(cause, (OSError, EOFError)):
            return read_error(cause, self.display)
        text = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
        if self.header is not None:
            return zeek_tsv.diagnose(self.path, self.header, self.columns, self.display, text, not_null)
        return zeek_json.diagnose(
            self.path, self.columns, self.ts_kind, self.display, text, not_null, self.names
        )


def open_log(
    path: Path, required: Mapping[str, str], optional: Mapping[str, str], always: frozenset[str]
) -> ZeekLog:
    """Open a log; JSON logs leave unset fields out, so only ``always`` must be in the first line."""
    display = str(path)
    head = sniff(path, display)
    if not head.strip():
        raise InputError("empty file" if not head else "empty log: no records", source=display)
    try:
        with path.open("rb") as raw:
            compressed = raw.read(2) == GZIP_MAGIC
        cut = None if compressed else _cut(path)
    except OSError as exc:
        raise read_error(exc, display) from exc
    if zeek_json.looks_json(head):
        ts_kind, names = zeek_json.first_record(path, [name for name in required if name in always], display)
        return ZeekLog(path, display, {**required, **optional}, None, ts_kind, names, compressed, cut)
    if not head.startswith(b"#"):
        raise InputError("not a Zeek log: no #fields header and not JSON lines", source=display)
    header = zeek_tsv.read_header(path, display)
    renamed = canonical_names(header.fields)
    if renamed:
        fields = tuple(renamed.get(name, name) for name in header.fields)
        if len(set(fields)) != len(fields):
            raise InputError("#fields names a column twice (with two scope separators)", source=display)
        header = dataclasses.replace(header, fields=fields)
    present = zeek_tsv.check_columns(header, required, optional, display)
    wanted = {**required, **optional}
    columns = {name: wanted[name] for name in present}
    return ZeekLog(path, display, columns, header, "number", gzip=compressed, cut=cut)


def _cut(path: Path) -> int | None:
    """Where a last line cut short starts: a record without its line end (a ``#``-line so cut, or a
    file of one line, is read as it is)."""
    end = zeeklines.last_line_end(path)
    if not end or zeeklines.tail_from(path, end, 1) == b"#":
        return None
    return end


def timestamps(values: pa.Array, log: ZeekLog, not_null: frozenset[str]) -> pa.Array:
    """``ts`` as DuckDB read it (int64 µs since the epoch) as :data:`derisk.flows.TS`, checked to
    lie between 1970 and :data:`MAX_EPOCH_SECONDS`."""
    if len(values) > values.null_count:
        bounds = pc.min_max(values).as_py()
        if bounds["min"] < 0 or bounds["max"] >= MAX_EPOCH_SECONDS * 1e6:
            raise log.diagnose(ValueError("implausible timestamp"), not_null)
    return values.cast(pa.int64()).cast(TS)


def text(values: pa.Array, log: ZeekLog) -> pa.Array:
    if log.header is not None:
        values = zeek_tsv.unescape_column(values)
    return bound_text(values)


def column(batch: pa.RecordBatch | pa.Table, name: str) -> pa.Array:
    column = batch.column(name)
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
