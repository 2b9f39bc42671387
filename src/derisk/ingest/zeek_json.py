"""Zeek's JSON-lines log format (``LogAscii::use_json=T``): the first record, and naming a bad line.

One object per line with flat dotted keys (``id.orig_h``, or ``id_orig_h`` with another scope
separator, see :mod:`.zeek_fields`); unset fields are left out; ``ts`` is epoch seconds, epoch
milliseconds (``JSON::TS_MILLIS``, an integer of 10^11 or more) or, with
``LogAscii::json_timestamps=JSON::TS_ISO8601``, an ISO 8601 string. The first line is parsed in
Python to learn which and how the keys are spelt (and to check the keys we need); the body is read
by DuckDB's JSON reader (:mod:`derisk.store.zeekread`) with explicit types for only the fields we
use. When DuckDB rejects the body, :func:`diagnose` re-reads the file line by line (only on error)
to name the first bad line.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from contextlib import closing
from datetime import datetime
from pathlib import Path

from derisk.errors import InputError
from derisk.ingest.zeek_fields import canonical_names
from derisk.ingest.zeek_io import MAX_LINE_BYTES, is_utf8, open_text_lines

_LIST_TYPES = ("set[", "vector[")
#: Epoch numbers from here on are milliseconds (10^11 seconds is the year 5138).
MILLIS_FROM = 1e11


def looks_json(head: bytes) -> bool:
    """Whether the content starts like JSON lines rather than a Zeek TSV header."""
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{")


def first_record(path: Path, required: Sequence[str], display: str) -> tuple[str, dict[str, str]]:
    """Check the first object names every required field.

    Returns how ``ts`` is written (``number``: epoch seconds, ``millis``: epoch milliseconds,
    ``string``: ISO 8601) and ``{Zeek's name: the key in this log}`` for keys spelt otherwise.
    """
    with closing(open_text_lines(path, display)) as numbered:
        for number, line in numbered:
            text = line.strip()
            if not text:
                continue
            record = _parse(text, number, display)
            names = {canonical: key for key, canonical in canonical_names(record).items()}
            missing = [name for name in required if names.get(name, name) not in record]
            if missing:
                raise InputError(f"line {number} lacks the fields {', '.join(missing)}", source=display)
            ts = record.get("ts")
            if isinstance(ts, str):
                return "string", names
            if isinstance(ts, (int, float)) and not isinstance(ts, bool):
                return ("millis" if ts >= MILLIS_FROM else "number"), names
            raise InputError(f"line {number}: ts is not a timestamp: {str(ts)[:40]!r}", source=display)
    raise InputError("empty log: no records", source=display)


def _parse(text: str, number: int, display: str) -> dict[str, object]:
    try:
        record = json.loads(text)
    except ValueError:
        raise InputError(f"line {number} is not JSON", source=display) from None
    if not isinstance(record, dict):
        raise InputError(f"line {number} is not a JSON object", source=display)
    return record


def diagnose(
    path: Path,
    columns: Mapping[str, str],
    ts_kind: str,
    display: str,
    cause: str,
    not_null: frozenset[str] = frozenset(),
    names: Mapping[str, str] | None = None,
) -> InputError:
    """Find the first line Arrow could not take and say what is wrong with it (slow path)."""
    with closing(open_text_lines(path, display)) as numbered:
        for number, line in numbered:
            text = line.strip()
            if not text:
                continue
            if len(line) >= MAX_LINE_BYTES:
                return InputError(
                    f"line {number} is longer than {MAX_LINE_BYTES} bytes; not a Zeek log line",
                    source=display,
                )
            if not is_utf8(text):
                return InputError(f"line {number} is not UTF-8 text", source=display)
            try:
                record = _parse(text, number, display)
            except InputError as exc:
                return exc
            for name, kind in columns.items():
                value = record.get((names or {}).get(name, name))
                if name in not_null and value is None:
                    return InputError(f"line {number}: {name} is missing", source=display)
                problem = _value_problem(value, kind, ts_kind)
                if problem:
                    return InputError(f"line {number}: {name} {problem}", source=display)
    return InputError(f"cannot read the log ({cause})", source=display)


def _value_problem(value: object, kind: str, ts_kind: str) -> str | None:
    if value is None:
        return None
    short = str(value)[:40]
    if kind == "time":
        if ts_kind == "string":
            try:
                datetime.fromisoformat(str(value))
            except ValueError:
                return f"is not an ISO 8601 timestamp: {short!r}"
            return None if isinstance(value, str) else f"is not an ISO 8601 timestamp: {short!r}"
        scale = 1000 if ts_kind == "millis" else 1
        if not _is_number(value) or not 0 <= float(value) / scale < 1e11:  # type: ignore[arg-type]
            return f"is not a timestamp: {short!r}"
        return None
    if kind in ("interval", "double"):
        finite = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return None if finite else f"is not a finite number: {short!r}"
    if kind in ("count", "int", "port"):
        return (
            None
            if isinstance(value, int) and not isinstance(value, bool)
            else f"is not an integer: {short!r}"
        )
    if kind.startswith(_LIST_TYPES):
        return None if isinstance(value, list) else f"is not a list: {short!r}"
    return None if isinstance(value, str) else f"is not a string: {short!r}"


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
