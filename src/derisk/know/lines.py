"""Reading a text import file line by line: streaming, every broken line reported, none fatal.

A line that is not UTF-8 (a file of mixed encodings) or longer than :data:`MAX_LINE` is dropped and
reported with its number; the rest of the file is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Final

from derisk.errors import InputError, Problem

#: Longest line read (a record over this size, e.g. a 50 MB name, is dropped and reported).
MAX_LINE: Final = 8 << 20


def open_binary(path: Path) -> None:
    """InputError when ``path`` cannot be opened for reading."""
    try:
        with path.open("rb"):
            pass
    except FileNotFoundError:
        raise InputError("no such file", source=str(path)) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a file", source=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", source=str(path)) from None


def numbered_lines(path: Path, problems: list[Problem]) -> Iterator[tuple[int, str]]:
    """(line number, text) for each readable line of ``path``."""
    open_binary(path)
    with path.open("rb") as fh:
        number = 0
        while True:
            raw = fh.readline(MAX_LINE + 1)
            if not raw:
                return
            number += 1
            if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
                problems.append(Problem(f"line {number}", f"longer than {MAX_LINE >> 20} MB; dropped"))
                while raw and not raw.endswith(b"\n"):
                    raw = fh.readline(MAX_LINE + 1)
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                problems.append(Problem(f"line {number}", f"not UTF-8 (byte {exc.start}); dropped"))
                continue
            if number == 1:
                text = text.removeprefix("\ufeff")
            yield number, text


def first_line(path: Path) -> str:
    """The first non-empty line (for detecting the format), or ''."""
    open_binary(path)
    with path.open("rb") as fh:
        for _ in range(50):
            raw = fh.readline(64 << 10)
            if not raw:
                break
            text = raw.decode("utf-8", errors="replace").removeprefix("\ufeff").strip()
            if text:
                return text
    return ""


def head(path: Path, size: int = 64 << 10) -> str:
    """The first ``size`` bytes as text (undecodable bytes replaced), for detecting the format."""
    open_binary(path)
    with path.open("rb") as fh:
        return fh.read(size).decode("utf-8", errors="replace").removeprefix("\ufeff")
