"""Streaming a large published CSV file as Arrow batches, every broken row reported, none fatal.

Used by the GLEIF readers. Rows with the wrong number of fields (a truncated file) and rows that are
not UTF-8 are dropped and reported with their row number; a field larger than the read block (64 MB)
ends the reading with a problem, keeping the rows before it. Columns are read as text.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from derisk.errors import InputError, Problem

BLOCK: Final = 64 << 20
#: Longest name or other text value kept (longer: the record is dropped and reported).
MAX_TEXT: Final = 2_000


def header(path: Path) -> list[str]:
    """The column names of the first line (InputError when the file cannot be read as CSV)."""
    import csv

    try:
        with path.open("rb") as fh:
            first = fh.readline(1 << 20)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", source=str(path)) from None
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"header is not UTF-8 (byte {exc.start})", source=str(path)) from None
    return next(csv.reader([text]), [])


def require(path: Path, found: list[str], required: list[str], what: str) -> None:
    missing = [c for c in required if c not in found]
    if missing:
        shown = ", ".join(found[:8]) + (" …" if len(found) > 8 else "")
        raise InputError(
            f"not a {what} file: missing column(s) {', '.join(missing)} (found: {shown or 'nothing'})",
            source=str(path),
        )


def batches(path: Path, columns: list[str], problems: list[Problem]) -> Iterator[tuple[int, pa.Table]]:
    """(number of the batch's first data row, table of ``columns`` as UTF-8 text) for the whole file."""
    import pyarrow.csv as pcsv

    def invalid(row: pcsv.InvalidRow) -> str:
        where = f"row {row.number}" if row.number is not None else "a row"
        problems.append(
            Problem(where, f"{row.actual_columns} fields instead of {row.expected_columns}; dropped")
        )
        return "skip"

    try:
        reader = pcsv.open_csv(
            str(path),
            read_options=pcsv.ReadOptions(block_size=BLOCK, use_threads=False),
            parse_options=pcsv.ParseOptions(newlines_in_values=True, invalid_row_handler=invalid),
            convert_options=pcsv.ConvertOptions(
                column_types={c: pa.binary() for c in columns},
                include_columns=columns,
                include_missing_columns=True,
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"cannot read as CSV: {_reason(exc)}", source=str(path)) from None
    row = 2
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except (pa.ArrowInvalid, OSError) as exc:
            problems.append(Problem(f"after row {row - 1}", f"reading stopped: {_reason(exc)}"))
            return
        table = pa.Table.from_batches([batch])
        yield row, _text(table, row, problems)
        row += batch.num_rows


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "straddling" in text.lower() or "block" in text.lower():
        return "a field larger than 64 MB"
    return text[:200]


def _text(table: pa.Table, first_row: int, problems: list[Problem]) -> pa.Table:
    """Binary columns as strings; rows with bytes that are not UTF-8 become null rows (reported)."""
    out = []
    bad_rows: set[int] = set()
    for name in table.column_names:
        column = table.column(name)
        try:
            out.append(column.cast(pa.string()))
            continue
        except pa.ArrowInvalid:
            pass
        values = column.to_pylist()
        fixed: list[str | None] = []
        for index, value in enumerate(values):
            try:
                fixed.append(None if value is None else value.decode("utf-8"))
            except UnicodeDecodeError as exc:
                fixed.append(None)
                if index not in bad_rows:
                    bad_rows.add(index)
                    problems.append(
                        Problem(
                            f"row {first_row + index}", f"{name} is not UTF-8 (byte {exc.start}); dropped"
                        )
                    )
        out.append(pa.chunked_array([pa.array(fixed, type=pa.string())]))
    result = pa.table(dict(zip(table.column_names, out, strict=True)))
    if bad_rows:
        keep = pa.array([i not in bad_rows for i in range(result.num_rows)])
        result = result.filter(keep)
        result = result.append_column(
            "_row", pa.array([first_row + i for i in range(table.num_rows) if i not in bad_rows], pa.int64())
        )
    else:
        result = result.append_column("_row", pc.add(pa.array(range(result.num_rows), pa.int64()), first_row))
    return result


def too_long(table: pa.Table, column: str, problems: list[Problem], label: str) -> pa.Table:
    """Drop rows whose ``column`` is longer than MAX_TEXT characters, reporting each."""
    lengths = pc.utf8_length(table.column(column))
    over = pc.fill_null(pc.greater(lengths, MAX_TEXT), False)
    if not pc.any(over).as_py():
        return table
    bad = table.filter(over)
    for row, length in zip(
        bad.column("_row").to_pylist(), pc.utf8_length(bad.column(column)).to_pylist(), strict=True
    ):
        problems.append(
            Problem(f"row {row}", f"{label} of {length:,} characters (over {MAX_TEXT:,}); dropped")
        )
    return table.filter(pc.invert(over))
