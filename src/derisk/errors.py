"""The one exception hierarchy of derisk.

Library code raises these; only :mod:`derisk.cli` turns them into a message and an exit code.
Every error names the input it is about and says what is wrong, in one line, so that a user can fix
it without reading a traceback. Exit codes are part of the public contract (README, "Exit codes").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class DeriskError(Exception):
    """Base of every error derisk reports to a user."""

    exit_code = 1

    def __init__(self, message: str, *, source: str | None = None, details: Sequence[str] = ()) -> None:
        self.message = message
        self.source = source
        self.details = tuple(details)
        super().__init__(self.one_line())

    def one_line(self) -> str:
        head = f"{self.source}: {self.message}" if self.source else self.message
        if self.details:
            return f"{head}: " + "; ".join(self.details)
        return head


class UsageError(DeriskError):
    """The command line itself is wrong (an option out of range, a missing argument)."""

    exit_code = 2


class InputError(DeriskError):
    """An input file (capture, log, deal, trade data, FtM file) cannot be used."""

    exit_code = 3


class ConfigError(DeriskError):
    """A configuration file (site file, thresholds, allow-lists, register) is invalid."""

    exit_code = 4


class DataError(DeriskError):
    """Reference data is missing, corrupt or inconsistent (IP data, curated registry, laws, regimes)."""

    exit_code = 5


class StoreError(DeriskError):
    """The workspace cannot be opened, is locked, or an operation on it failed; it was left unchanged."""

    exit_code = 6


class NotFoundError(DeriskError):
    """A named thing (entity, alert, case) does not exist; candidates may be listed in details."""

    exit_code = 7


class NetworkError(DeriskError):
    """A download (only ``derisk data update`` downloads) failed or did not verify."""

    exit_code = 8


EXIT_INTERRUPTED = 130

EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "unexpected error (a bug: please report it)",
    UsageError.exit_code: "usage error: the command line is wrong",
    InputError.exit_code: "an input file cannot be used (capture, Zeek log, deal, trade data, FtM file)",
    ConfigError.exit_code: "a configuration file is invalid (site file, thresholds, allow-lists)",
    DataError.exit_code: "reference data missing or invalid (run `derisk data update`)",
    StoreError.exit_code: "the workspace cannot be used; it was left unchanged",
    NotFoundError.exit_code: "the named thing does not exist",
    NetworkError.exit_code: "a download failed or did not verify",
    EXIT_INTERRUPTED: "interrupted; the workspace was left unchanged",
}


@dataclass(frozen=True)
class Problem:
    """One problem found while checking an input; many are collected and raised together."""

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}" if self.where else self.what


def raise_problems(
    problems: Iterable[Problem], *, source: str, kind: type[DeriskError], summary: str = "invalid"
) -> None:
    """Raise ``kind`` listing every problem at once, or return when there are none."""
    found = [str(p) for p in problems]
    if found:
        noun = "problem" if len(found) == 1 else "problems"
        raise kind(f"{summary} ({len(found)} {noun})", source=source, details=found)
