"""One opened Zeek log: its format, what its header (TSV) or first line (JSON) told, and the
column conversions every kind of log shares (timestamps, text)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from derisk.errors import InputError
from derisk.flows import TS
from derisk.ingest import zeek_json, zeek_tsv
from derisk.ingest.logtext import bound_text
from derisk.ingest.zeek_fields import canonical_names
from derisk.ingest.zeek_io import is_arrow_read_error, read_error, segments, sniff

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

    def segments(self) -> Generator[tuple[pa.Buffer, int], None, None]:
        return segments(self.path, self.display, zeek_tsv.SEGMENT_BYTES)

    def parse(self, data: pa.Buffer, dictionary: frozenset[str] = frozenset()) -> pa.Table:
        if self.header is not None:
            return zeek_tsv.parse_segment(data, self.header, self.columns, dictionary)
        return zeek_json.parse_segment(data, self.columns, self.ts_kind, self.names)

    def diagnose(self, cause: BaseException, not_null: frozenset[str]) -> InputError:
        if is_arrow_read_error(cause):
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
    if zeek_json.looks_json(head):
        ts_kind, names = zeek_json.first_record(path, [name for name in required if name in always], display)
        return ZeekLog(path, display, {**required, **optional}, None, ts_kind, names)
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
    return ZeekLog(path, display, {name: wanted[name] for name in present}, header, "number")


def timestamps(values: pa.Array, log: ZeekLog, not_null: frozenset[str]) -> pa.Array:
    """Zeek ``ts`` (epoch seconds or ISO 8601) as :data:`derisk.flows.TS`."""
    if pa.types.is_string(values.type):
        try:
            return values.cast(TS)
        except pa.ArrowInvalid:
            try:
                return values.cast(pa.timestamp("us")).cast(TS)
            except pa.ArrowInvalid as exc:
                raise log.diagnose(exc, not_null) from None
    if log.ts_kind == "millis":
        values = pc.divide(values.cast(pa.float64()), 1000.0)
    if len(values) > values.null_count:
        total = pc.sum(values).as_py()
        bounds = pc.min_max(values).as_py()
        if not math.isfinite(total) or bounds["min"] < 0 or bounds["max"] >= MAX_EPOCH_SECONDS:
            raise log.diagnose(ValueError("implausible timestamp"), not_null)
    return micros(values).cast(TS)


def micros(seconds: pa.Array) -> pa.Array:
    return pc.round(pc.multiply(seconds, 1e6)).cast(pa.int64())


def text(values: pa.Array, log: ZeekLog) -> pa.Array:
    if log.header is not None:
        values = zeek_tsv.unescape_column(values)
    return bound_text(values)


def column(batch: pa.RecordBatch | pa.Table, name: str) -> pa.Array:
    column = batch.column(name)
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
