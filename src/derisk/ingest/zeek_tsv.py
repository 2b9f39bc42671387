"""Zeek's tab-separated log format: the header, Zeek's escapes, and naming a bad line.

A Zeek ASCII log starts with ``#``-lines: ``#separator`` (written as an escape such as ``\\x09``),
``#set_separator``, ``#empty_field``, ``#unset_field``, ``#path``, ``#fields`` and ``#types``; then one
record per line; then a ``#close`` line. Values are never quoted: Zeek escapes the separator and
non-printable bytes as ``\\xHH`` instead. The header is parsed here; the body is read by DuckDB
(:mod:`derisk.store.zeekread`, told the separator, the fields, their types and the null markers).
When DuckDB rejects the body, :func:`diagnose` re-reads the file line by line (the slow path, only
on error) to name the first bad line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from derisk.errors import InputError
from derisk.ingest.zeek_io import GZIP_MAGIC, MAX_LINE_BYTES, is_utf8, open_text_lines

#: Longest header we accept before deciding the file is not a Zeek log.
MAX_HEADER_LINES = 64
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
