"""Zeek's tab-separated log format: header parsing, streaming reads through Arrow's CSV reader.

A Zeek ASCII log starts with ``#``-lines: ``#separator`` (written as an escape such as ``\\x09``),
``#set_separator``, ``#empty_field``, ``#unset_field``, ``#path``, ``#fields`` and ``#types``; then one
record per line; then a ``#close`` line. Values are never quoted: Zeek escapes the separator and
non-printable bytes as ``\\xHH`` instead. We hand the body to :func:`pyarrow.csv.open_csv` (the
declared separator, quoting off, the unset and empty markers as nulls) so no line is parsed in a
Python loop; ``#``-lines in the body are skipped by the invalid-row handler. When Arrow rejects the
body, :func:`diagnose` re-reads the file line by line (the slow path, only on error) to name the first
bad line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from derisk.errors import InputError
from derisk.ingest.zeek_io import GZIP_MAGIC, MAX_LINE_BYTES, is_utf8, open_text_lines

#: Longest header we accept before deciding the file is not a Zeek log.
MAX_HEADER_LINES = 64
#: Bytes of log body parsed at a time: about 50,000 conn.log lines, near :data:`derisk.flows.BATCH_ROWS`.
SEGMENT_BYTES = 1 << 23

_DICTIONARY = pa.dictionary(pa.int32(), pa.string())
_ESCAPE = re.compile(rb"\\x([0-9a-fA-F]{2})")


@dataclass(frozen=True)
class TsvHeader:
    """What a Zeek TSV header declares."""

    separator: str
    set_separator: str
    empty_field: str
    unset_field: str
    path_name: str | None
    fields: tuple[str, ...]
    types: tuple[str, ...] | None
    header_lines: int


def unescape_bytes(raw: bytes) -> bytes:
    """Undo Zeek's ``\\xHH`` escapes."""
    return _ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), raw)


def _header_value(raw: str) -> str:
    return unescape_bytes(raw.encode("utf-8", "surrogateescape")).decode("utf-8", "replace")


def read_header(path: Path, display: str) -> TsvHeader:
    """Parse the ``#`` header of a Zeek TSV log; :class:`InputError` when it is missing or broken."""
    separator = "\t"
    meta: dict[str, list[str]] = {}
    count = 0
    with closing(open_text_lines(path, display)) as numbered:
        for number, line in numbered:
            if not line.startswith("#"):
                break
            count = number
            if number > MAX_HEADER_LINES:
                raise InputError(
                    f"header longer than {MAX_HEADER_LINES} lines; not a Zeek log", source=display
                )
            if not is_utf8(line):
                raise InputError(f"line {number}: the header is not UTF-8 text", source=display)
            body = line[1:].rstrip("\r\n")
            if body.startswith("separator "):
                separator = _header_value(body[len("separator ") :])
                if len(separator) != 1:
                    raise InputError(
                        f"line {number}: separator {separator!r} is not one character; not supported",
                        source=display,
                    )
                continue
            key, _, rest = body.partition(separator)
            meta[key] = rest.split(separator) if key in ("fields", "types") else [_header_value(rest)]
    if "fields" not in meta:
        raise InputError(
            "no #fields header; expected a Zeek TSV log (with #fields/#types lines) or Zeek JSON lines",
            source=display,
        )
    fields = tuple(meta["fields"])
    types = tuple(meta["types"]) if "types" in meta else None
    if types is not None and len(types) != len(fields):
        raise InputError(
            f"#types declares {len(types)} columns but #fields names {len(fields)}", source=display
        )
    if len(set(fields)) != len(fields):
        raise InputError("#fields names a column twice", source=display)

    def single(key: str, default: str) -> str:
        return meta[key][0] if key in meta else default

    return TsvHeader(
        separator=separator,
        set_separator=single("set_separator", ","),
        empty_field=single("empty_field", "(empty)"),
        unset_field=single("unset_field", "-"),
        path_name=meta["path"][0] if "path" in meta else None,
        fields=fields,
        types=types,
        header_lines=count,
    )


def check_columns(
    header: TsvHeader, required: Mapping[str, str], optional: Mapping[str, str], display: str
) -> list[str]:
    """Check that the columns we need exist with the Zeek types we expect; return those present."""
    missing = [name for name in required if name not in header.fields]
    if missing:
        what = f" (this is a {header.path_name} log)" if header.path_name else ""
        raise InputError(f"#fields lacks the columns {', '.join(missing)}{what}", source=display)
    wanted = {**required, **optional}
    present = [name for name in wanted if name in header.fields]
    if header.types is not None:
        declared = dict(zip(header.fields, header.types, strict=True))
        wrong = [
            f"{name} is {declared[name]!r}, expected {wanted[name]!r}"
            for name in present
            if declared[name] != wanted[name] and not _compatible(declared[name], wanted[name])
        ]
        if wrong:
            raise InputError("#types disagrees with Zeek's", source=display, details=wrong)
    return present


def _compatible(declared: str, expected: str) -> bool:
    # Zeek versions differ on set vs vector for container fields, and "string" vs "enum" for names.
    if expected.startswith(("set[", "vector[")) and declared.startswith(("set[", "vector[")):
        return declared.split("[", 1)[1] == expected.split("[", 1)[1]
    return {declared, expected} <= {"string", "enum"}


def _arrow_type(zeek_type: str) -> pa.DataType:
    if zeek_type in ("time", "interval", "double"):
        return pa.float64()
    if zeek_type in ("count", "int"):
        return pa.int64()
    if zeek_type == "port":
        return pa.int32()
    return pa.string()


def drop_comment_lines(data: pa.Buffer) -> pa.Buffer:
    """``data`` without its lines that start with ``#`` (found with NumPy; usually there are none)."""
    raw = np.frombuffer(data, dtype=np.uint8)
    hashes = np.flatnonzero(raw == ord("#"))
    if len(hashes):
        hashes = hashes[(hashes == 0) | (raw[np.maximum(hashes - 1, 0)] == ord("\n"))]
    if len(hashes) == 0:
        return data
    view = memoryview(data)
    pieces, start = [], 0
    for begin in hashes.tolist():
        if begin < start:
            continue
        pieces.append(view[start:begin])
        start = _line_end(raw, begin)
    pieces.append(view[start:])
    return pa.py_buffer(b"".join(pieces))


def _line_end(raw: np.ndarray, begin: int) -> int:
    """Index just after the line end at or after ``begin`` (or the end of ``raw``)."""
    window = 4096
    while True:
        newline = np.flatnonzero(raw[begin : begin + window] == ord("\n"))
        if len(newline):
            return begin + int(newline[0]) + 1
        if begin + window >= len(raw):
            return len(raw)
        window *= 16


def parse_segment(
    data: pa.Buffer, header: TsvHeader, columns: Mapping[str, str], dictionary: frozenset[str] = frozenset()
) -> pa.Table:
    """Parse whole lines of a TSV log body into a table of ``columns`` (name -> Zeek type).

    ``#``-lines (the header, ``#close``, the headers of concatenated logs) are removed first; any
    line with a wrong number of fields is an error. Columns named in ``dictionary`` (few distinct
    values, such as ``proto``) come dictionary-encoded.
    """
    data = drop_comment_lines(data)
    types = {name: _DICTIONARY if name in dictionary else _arrow_type(kind) for name, kind in columns.items()}
    if data.size < 1 << 16 and not data.to_pybytes().strip():  # nothing but header or blank lines
        return pa.table({name: pa.array([], kind) for name, kind in types.items()})
    return pacsv.read_csv(
        pa.BufferReader(data),
        read_options=pacsv.ReadOptions(
            column_names=list(header.fields), block_size=max(1 << 20, data.size + 1), use_threads=False
        ),
        parse_options=pacsv.ParseOptions(
            delimiter=header.separator,
            quote_char=False,
            double_quote=False,
            escape_char=False,
            newlines_in_values=False,
            ignore_empty_lines=True,
        ),
        convert_options=pacsv.ConvertOptions(
            include_columns=list(columns),
            column_types=types,
            null_values=[header.unset_field, header.empty_field],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
            true_values=["T"],
            false_values=["F"],
        ),
    )


def unescape_column(values: pa.Array) -> pa.Array:
    """Undo ``\\xHH`` escapes in a string column; only the rows that contain one go through Python."""
    if values.null_count == len(values):
        return values
    flagged = pc.fill_null(pc.match_substring(values, "\\x"), False)
    if not pc.any(flagged).as_py():
        return values
    out = values.to_pylist()
    for i in pc.indices_nonzero(flagged).to_pylist():
        text = out[i]
        if text is not None:
            out[i] = unescape_bytes(text.encode("utf-8", "surrogateescape")).decode("utf-8", "replace")
    return pa.array(out, type=pa.string())


def split_sets(values: pa.Array, header: TsvHeader) -> pa.Array:
    """Split a set/vector column at the declared set separator into a list column."""
    return pc.split_pattern(values, header.set_separator)


def diagnose(
    path: Path,
    header: TsvHeader,
    columns: Mapping[str, str],
    display: str,
    cause: str,
    not_null: frozenset[str] = frozenset(),
) -> InputError:
    """Find the first line Arrow could not take and say what is wrong with it (slow path)."""
    problem = find_problem(path, header, columns, display, not_null)
    return problem or InputError(f"cannot read the log ({cause})", source=display)


def find_problem(
    path: Path,
    header: TsvHeader,
    columns: Mapping[str, str],
    display: str,
    not_null: frozenset[str] = frozenset(),
) -> InputError | None:
    """The first bad line of the log body, described; None when every line looks right."""
    expected = len(header.fields)
    index = {name: header.fields.index(name) for name in columns}
    longest = MAX_LINE_BYTES
    with closing(open_text_lines(path, display)) as numbered:
        for number, line in numbered:
            if number <= header.header_lines or line.startswith("#"):
                continue
            text = line.rstrip("\r\n")
            if not text:
                continue
            if len(line) >= longest:
                return InputError(
                    f"line {number} is longer than {longest} bytes; not a Zeek log line", source=display
                )
            if not is_utf8(text):
                return InputError(f"line {number} is not UTF-8 text", source=display)
            values = text.split(header.separator)
            if len(values) != expected:
                return InputError(
                    f"line {number} has {len(values)} fields, expected {expected}", source=display
                )
            for name, kind in columns.items():
                value = values[index[name]]
                if value in (header.unset_field, header.empty_field):
                    if name in not_null:
                        return InputError(f"line {number}: {name} is unset", source=display)
                    continue
                problem = _value_problem(value, kind)
                if problem:
                    return InputError(f"line {number}: {name} {problem}", source=display)
    return None


def _value_problem(value: str, kind: str) -> str | None:
    short = value[:40]
    if kind in ("time", "interval", "double"):
        try:
            number = float(value)
        except ValueError:
            return f"is not a {'timestamp' if kind == 'time' else 'number'}: {short!r}"
        if kind == "time" and not 0 <= number < 1e11:
            return f"is not a plausible timestamp: {short!r}"
        if not math.isfinite(number):
            return f"is not a finite number: {short!r}"
        return None
    if kind in ("count", "int", "port"):
        try:
            int(value)
        except ValueError:
            return f"is not an integer: {short!r}"
    return None


def is_gzip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(2) == GZIP_MAGIC
