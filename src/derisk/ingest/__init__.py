"""Ingest: recognise each input and stream it as batches of the canonical flow schema.

One module per format (:mod:`~derisk.ingest.pcap` through NFStream, :mod:`~derisk.ingest.zeek` for
Zeek logs). This module only decides which one reads a path, by content rather than by name, and
checks every input before any is read, so a bad third input stops the run before the first is
stored.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Final

import pyarrow as pa

from derisk.errors import InputError
from derisk.flows import file_digest, files_digest, input_id_for

PCAP_MAGICS: Final = {
    b"\xd4\xc3\xb2\xa1": "pcap",
    b"\xa1\xb2\xc3\xd4": "pcap",
    b"\x4d\x3c\xb2\xa1": "pcap",
    b"\xa1\xb2\x3c\x4d": "pcap",
    b"\x34\xcd\xb2\xa1": "pcap",  # modified pcap (derisk.ingest.modified_pcap)
    b"\xa1\xb2\xcd\x34": "pcap",
    b"\x0a\x0d\x0d\x0a": "pcapng",
}
#: nfdump files: magic 0xA50C, layout 1 (nfdump 1.6) or 2 (1.7); see derisk.ingest.netflow.
NFCAPD_MAGICS: Final = (b"\x0c\xa5\x01\x00", b"\x0c\xa5\x02\x00")
ZEEK_LOG_KINDS: Final = ("conn", "dns", "ssl", "http", "quic")

Progress = Callable[[int], None]
#: The first line of Zeek columns cut from a log: ``zeek-cut -m``'s names (``uid<TAB>...``), or a record
#: starting with an epoch time or a connection uid (``C`` and 14 to 20 letters and digits).
_ZEEK_COLUMNS: Final = re.compile(rb"^(?:ts|uid|[0-9]{9,10}\.[0-9]{1,6}|C[0-9A-Za-z]{14,20})\t[^\n]*\t")


@dataclass(frozen=True, eq=False)
class InputSpec:
    """One input of a run: a capture file, or a Zeek conn.log or log directory.

    Its digest (the content hash behind the input id) is computed on first use, so that a run can
    hash a large capture in a worker thread while the capture is already being metered.
    """

    path: Path
    format: str
    files: tuple[Path, ...]
    size_bytes: int
    #: Refuse a capture cut short instead of reading it up to the cut (``derisk analyze --strict``).
    strict: bool = False
    #: What the reader found worth reporting (captures: link type, cut, packets with wild timestamps).
    notes: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def digest(self) -> str:
        return file_digest(self.files[0]) if len(self.files) == 1 else files_digest(self.files)

    @property
    def input_id(self) -> str:
        return input_id_for(self.digest, self.format)


def _head(path: Path, n: int = 4096) -> bytes:
    try:
        with path.open("rb") as fh:
            return fh.read(n)
    except PermissionError:
        raise InputError("cannot read (permission denied)", source=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", source=str(path)) from None


def _text_head(path: Path) -> bytes:
    head = _head(path)
    if head[:2] == b"\x1f\x8b":
        from derisk.ingest.decompress import decompress_errors

        try:
            with gzip.open(path, "rb") as fh:
                return fh.read(4096)
        except decompress_errors() as exc:  # zlib.error too: a gzip header over random bytes
            raise InputError(f"corrupt gzip file ({exc})", source=str(path)) from None
    return head


def _compressed_head(path: Path, head: bytes, n: int = 64) -> bytes:
    """The first ``n`` bytes of a zstd, xz, bzip2 or lz4 file once decompressed (b"" for anything else)."""
    from derisk.ingest.decompress import compression, decompress_errors, open_capture

    kind = compression(head)
    if kind is None:
        return b""
    try:
        with open_capture(path, kind) as fh:
            return fh.read(n)
    except decompress_errors() as exc:
        raise InputError(f"corrupt {kind} stream ({exc})", source=str(path)) from None


def sniff(path: Path) -> str:
    """The format of one file: ``pcap``, ``pcapng`` or ``zeek``; an InputError otherwise."""
    head = _head(path)
    if not head:
        raise InputError("empty file", source=str(path))
    if head[:4] in PCAP_MAGICS:
        return PCAP_MAGICS[head[:4]]
    if head[:4] in NFCAPD_MAGICS:
        return "nfcapd"  # written by nfdump's nfcapd (docs/ingest-netflow.md)
    from derisk.ingest.ipfix_file import is_ipfix_file

    if is_ipfix_file(head):
        return "ipfix"  # IPFIX messages one after another, RFC 5655 (docs/ingest-netflow.md)
    inner = _text_head(path) if head[:2] == b"\x1f\x8b" else _compressed_head(path, head)
    if inner[:4] in PCAP_MAGICS:  # a compressed capture, read streamed (derisk.ingest.decompress)
        return PCAP_MAGICS[inner[:4]]
    if is_ipfix_file(inner):
        return "ipfix"
    text = _text_head(path).removeprefix(b"\xef\xbb\xbf").lstrip()  # a UTF-8 BOM (a log saved on Windows)
    if text.startswith(b"{") and b'"event_type"' in text.split(b"\n", 1)[0]:
        return "eve"  # Suricata's EVE JSON (docs/ingest-eve.md)
    from derisk.ingest.eve import export_hint

    if (hint := export_hint(text)) is not None:  # EVE events as a JSON array or pretty-printed
        raise InputError(hint, source=str(path))
    if text.startswith(b"#separator") or text.startswith(b"#fields") or text.startswith(b"{"):
        return "zeek"
    from derisk.ingest import wiretap

    # ERF, NetMon, snoop, nettl, ...: wiretap reads them plain or gzipped, and is given the
    # decompressed start of the other compressions on its standard input
    plain = head[:2] == b"\x1f\x8b" or not inner
    foreign = (
        wiretap.identify(path) if plain else wiretap.identify(path, _compressed_head(path, head, 1 << 16))
    )
    if foreign is not None:
        return foreign
    if head[:2] == b"\x1f\x8b":
        raise InputError("compressed file that is neither a capture nor a Zeek log", source=str(path))
    if text.startswith(b"version https://git-lfs"):
        raise InputError(
            "a Git LFS pointer, not the file itself (it comes with `git lfs pull`)", source=str(path)
        )
    if _ZEEK_COLUMNS.match(text):  # zeek-cut's output: Zeek's columns, without Zeek's header
        raise InputError(
            "Zeek log columns without Zeek's header (#separator, #fields, #types), as zeek-cut writes "
            "them: give the log as Zeek wrote it, or keep its header with `zeek-cut -c`",
            source=str(path),
        )
    raise InputError(
        "not a capture (pcap, pcapng or a format Wireshark's editcap converts), a Zeek log, "
        "Suricata EVE JSON, an nfdump file or an IPFIX file",
        source=str(path),
    )


def _zeek_kind(name: str) -> str | None:
    stem = name.split(".", 1)[0]
    return stem if stem in ZEEK_LOG_KINDS else None


def _spec(path: Path, fmt: str, files: list[Path]) -> InputSpec:
    return InputSpec(path, fmt, tuple(files), sum(f.stat().st_size for f in files))


def resolve_inputs(paths: list[Path], *, strict: bool = False) -> list[InputSpec]:
    """Check every path and decide how each is read; raises before anything is ingested."""
    specs: list[InputSpec] = []
    for path in paths:
        if path.is_symlink() and not path.exists():
            raise InputError("broken or looping symbolic link", source=str(path))
        if not path.exists():
            raise InputError("no such file or directory", source=str(path))
        if path.is_dir():
            if not os.access(path, os.R_OK | os.X_OK):
                raise InputError("cannot read directory (permission denied)", source=str(path))
            entries = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            from derisk.ingest.zeek import has_conn_log, log_files

            if has_conn_log(path):  # its own conn logs, or those of Zeek's dated archive folders
                read = log_files(path)
                for log in read:
                    if sniff(log) != "zeek":
                        raise InputError("named like a Zeek log but is not one", source=str(log))
                specs.append(_spec(path, "zeek", read))
                continue
            from derisk.ingest.eve import EVE_NAME, eve_files

            if any(EVE_NAME.match(entry.name) for entry in entries):  # Suricata's eve.json, rotated
                specs.append(_spec(path, "eve", eve_files(path)))
                continue
            from derisk.ingest import wiretap

            captures = []
            netflow = []
            for entry in entries:
                try:
                    fmt = sniff(entry)
                except InputError:
                    continue
                if fmt in ("pcap", "pcapng", "ipfix") or fmt in wiretap.FORMATS:
                    captures.append(_spec(entry, fmt, [entry]))
                elif fmt == "nfcapd" and ".current." not in entry.name:  # not one nfcapd is writing
                    netflow.append(entry)
            if netflow:  # a collector's directory of nfcapd files: one input, read in time order
                captures.append(_spec(path, "nfcapd", netflow))
            if not captures:
                raise InputError(
                    "no usable input in this directory (expected captures, or Zeek logs with a conn log)",
                    source=str(path),
                )
            specs.extend(captures)
            continue
        if not path.is_file():
            raise InputError(
                "not a regular file (a pipe, socket or device cannot be ingested)", source=str(path)
            )
        fmt = sniff(path)
        specs.append(_spec(path, fmt, [path]))
    # The same path given twice is one input; the same content under two names is found by its
    # digest when the run records it, and is not ingested twice.
    seen: set[Path] = set()
    unique = []
    for spec in specs:
        key = spec.path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(dataclasses.replace(spec, strict=strict) if strict else spec)
    return unique


def read_input(spec: InputSpec, progress: Progress | None = None) -> Iterator[pa.RecordBatch]:
    """Stream one input as batches of :data:`derisk.flows.INGEST_SCHEMA`."""
    from derisk.ingest import wiretap

    if spec.format in ("pcap", "pcapng") or spec.format in wiretap.FORMATS:
        from derisk.ingest.pcap import read_pcap

        return read_pcap(spec.path, progress=progress, strict=spec.strict, notes=spec.notes)
    if spec.format == "ipfix":
        from derisk.ingest.ipfix_file import read_ipfix_file

        return read_ipfix_file(spec.path, progress=progress, strict=spec.strict, notes=spec.notes)
    if spec.format == "nfcapd":
        from derisk.ingest.netflow import read_nfcapd

        return read_nfcapd(spec.path, progress=progress, notes=spec.notes)
    if spec.format == "eve":
        from derisk.ingest.eve import read_eve

        return read_eve(spec.path, progress=progress, strict=spec.strict, notes=spec.notes)
    from derisk.ingest.zeek import read_zeek

    return read_zeek(spec.path, progress=progress, strict=spec.strict, notes=spec.notes)
