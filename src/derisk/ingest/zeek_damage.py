"""What reading a Zeek log left out, and whether what is left can stand for the log.

A log still being written (or copied while written) ends inside its last line; logs that two Zeek
runs wrote into at once have lines run together and a second header mid-file; a damaged copy has a
few bad lines. Unless ``--strict``, derisk reads what is readable, as it reads a capture cut short:

* a last line cut short (no line end) is left out, even when it has all its fields (its last value
  may be cut: 20863 read as 208), with a warning naming the file, the line and its byte offset;
* lines DuckDB rejects (wrong number of fields, a value of the wrong type) and conn records without
  ``ts``, ``uid`` or an address, or with an implausible time, are left out and counted, with one
  warning per file naming the first of them as the refusal would (:func:`derisk.ingest.zeek_tsv.find_problem`);
* a conn log of which more lines are bad than read is refused as before: a wrong file must not
  become an empty success. A companion log (ssl, quic, http, dns) so damaged is left out whole with
  a warning instead: the input keeps its flows, only without the names that log would give (a tiny
  log of two runs, its one line two records run together, is such a log).

With ``strict`` the first problem refuses the log, as before. Contract: ``docs/ingest-zeek.md``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from derisk.errors import InputError
from derisk.ingest.zeek_log import MAX_EPOCH_SECONDS, ZeekLog
from derisk.store import zeeklines, zeekread

#: The warning (and note) for a last line cut short.
CUT: Final = "last line (line {line:,}, byte {byte:,}) cut short, as in a log still being written"
#: conn record columns (as :func:`derisk.store.zeekread.read_conn` names them) that must be set.
_SET: Final = ("first_us", "uid", "src_ip", "dst_ip")


def cut_warning(log: ZeekLog, strict: bool) -> str | None:
    """The warning for a log whose last line is cut short (None when it is whole); with ``strict``
    the log is refused instead."""
    if log.cut is None:
        return None
    try:
        line = zeeklines.count_lines(log.path, log.cut) + 1
    except OSError:
        line = 0
    text = CUT.format(line=line, byte=log.cut)
    if strict:
        raise InputError(f"{text}; refused with --strict", source=log.display)
    return f"{text}; read up to it"


def gzip_cut(log: ZeekLog, problem: str | None, strict: bool) -> ZeekLog | None:
    """The log to read up to its last whole line when its gzip data is truncated (and not
    ``strict``); None when it must be refused (``problem`` is :func:`derisk.store.zeekread.check_gzip`'s)."""
    if problem != "truncated" or strict or log.gzip_cut:
        return None
    return dataclasses.replace(log, gzip_cut=True)


def gzip_cut_warning(log: ZeekLog) -> str:
    try:
        size = f" (the file ends at byte {log.path.stat().st_size:,})"
    except OSError:
        size = ""
    return (
        f"gzip data is truncated{size}, as in a log still being written; read up to the last whole "
        "line before the cut"
    )


@dataclass
class Damage:
    """What was left out of one log while reading it without ``strict``."""

    log: ZeekLog
    not_null: frozenset[str]
    #: Lines DuckDB's tolerant options rejected (filled by the read).
    rejected: zeekread.Rejected = field(default_factory=zeekread.Rejected)
    #: Records read but unusable (an unset ``ts``, ``uid`` or address, an implausible time).
    dropped: int = 0
    #: The first bad line, described as a refusal would name it, once known.
    first: str | None = None
    #: Whether the whole log was left out (a companion log mostly bad, see :meth:`conclude`).
    whole: bool = False

    @property
    def left_out(self) -> int:
        return self.rejected.lines + self.dropped

    def usable(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The conn records of ``batch`` that can be used; the others are counted."""
        keep = pc.and_(
            pc.greater_equal(batch.column("first_us"), 0),
            pc.less(batch.column("first_us"), int(MAX_EPOCH_SECONDS * 1e6)),
        )
        for name in _SET[1:]:
            keep = pc.and_(keep, pc.is_valid(batch.column(name)))
        keep = pc.fill_null(keep, False)
        kept = int(pc.sum(keep).as_py() or 0)
        if kept == batch.num_rows:
            return batch
        self.dropped += batch.num_rows - kept
        return batch.filter(keep)

    def conclude(self, rows: int, *, companion: bool = False) -> str | None:
        """After the log was read (``rows`` records kept): the warning saying what was left out, or
        None. When more lines were bad than read, a conn log is refused (:class:`InputError`); a
        ``companion`` log (which cannot leave the input without flows) is left out whole, said in
        the warning, and :attr:`whole` set."""
        if self.first is None and self.left_out:
            cause = zeekread.ZeekReadError(self.rejected.first_message, line=self.rejected.first_line)
            found = self.log.diagnose(cause, self.not_null)
            self.first = (
                f"line {self.rejected.first_line}: {self.rejected.first_message}"
                if found.message.startswith("cannot read the log") and self.rejected.first_line
                else found.message
            )
        if self.first is None:
            return None
        left = self.left_out
        if left > rows:
            said = f"{left:,} of its {left + rows:,} records cannot be read, the first: {self.first}"
            if not companion:
                raise InputError(f"{said}; not read as a Zeek log", source=self.log.display)
            self.whole, self.dropped = True, self.dropped + rows
            return f"{said}; the whole log left out"
        if left:
            return f"{left:,} line{'' if left == 1 else 's'} that cannot be read left out (the first: {self.first})"
        if "UTF-8" in self.first:  # DuckDB's tolerant options read it, replacing the bytes
            return f"{self.first}; read with its bytes that are not UTF-8 replaced"
        return None


@dataclass
class Said:
    """What the logs of one input left out, for the warnings and the analysis notes."""

    warnings: list[str] = field(default_factory=list)
    lines_left_out: int = 0
    last_lines_cut: int = 0
    #: Where the first log cut short was cut (the start of its last line).
    cut_at_byte: int | None = None

    def cut(self, log: ZeekLog) -> None:
        if log.cut is not None or log.gzip_cut:
            self.last_lines_cut += 1
            if self.cut_at_byte is None:
                self.cut_at_byte = log.cut

    def notes(self) -> dict[str, object]:
        return {
            "file_format": "zeek",
            "lines_left_out": self.lines_left_out,
            "last_lines_cut": self.last_lines_cut,
            "cut_at_byte": self.cut_at_byte,
            "warnings": list(self.warnings),
        }
