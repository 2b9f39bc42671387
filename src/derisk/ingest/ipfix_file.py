"""IPFIX files (RFC 5655): IPFIX messages one after another, as YAF, nProbe and IPFIX collectors write them.

:func:`read_ipfix_file` reads such a file message by message (streamed; gzip, zstd, xz or bzip2
around it are read through :mod:`.decompress`) and decodes each with the collector's decoder
(:mod:`.netflow_decode`: templates per observation domain, sampling, enterprise-specific elements,
RFC 5103 biflows), then pairs the two directions of a connection as the collector does
(:mod:`.netflow_pairs`). A file holds no exporter address; its records are named after the file.

A file cut inside its last message (an exporter still writing, a copy interrupted) is read up to the
cut with a warning naming the byte offset, or refused with ``--strict``. Bytes that are not an IPFIX
message header where one should start are refused (exit 3) with their offset: a file cannot be
resynchronised as a stream of datagrams can.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterator
from io import BufferedIOBase
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from derisk.errors import InputError

if TYPE_CHECKING:  # the decoder (NumPy, Arrow) is imported when a file is read, not when one is sniffed
    import pyarrow as pa

    from derisk.ingest.netflow_decode import Decoder

log = logging.getLogger(__name__)

#: An IPFIX message header: version (10), length, export time, sequence number, observation domain.
_HEADER: Final = struct.Struct("!HHIII")
_SET: Final = struct.Struct("!HH")


def is_ipfix_file(head: bytes) -> bool:
    """Whether ``head`` starts like an IPFIX file: a message header whose first set is a template,
    an options template or a data set that fits in the message."""
    if len(head) < _HEADER.size + _SET.size:
        return False
    version, length, _, _, _ = _HEADER.unpack_from(head)
    if version != 10 or length < _HEADER.size + _SET.size:
        return False
    set_id: int
    set_length: int
    set_id, set_length = _SET.unpack_from(head, _HEADER.size)
    return (set_id in (2, 3) or set_id >= 256) and 4 <= set_length <= length - _HEADER.size


def _read(source: BufferedIOBase, n: int) -> bytes:
    out = b""
    while len(out) < n:
        piece = source.read(n - len(out))
        if not piece:
            break
        out += piece
    return out


def _messages(path: Path, source: BufferedIOBase, report: dict[str, Any]) -> Iterator[bytes]:
    """The file's messages in order; a cut sets ``report["cut_at"]``, anything else not a message raises."""
    offset = 0
    while True:
        try:
            header = _read(source, 4)
            if not header:
                return
            version, length = struct.unpack("!HH", header) if len(header) == 4 else (10, 1 << 16)
            if len(header) == 4 and (version != 10 or length < _HEADER.size):
                raise InputError(
                    f"not an IPFIX message at byte {offset:,} (version {version}, length {length})",
                    source=str(path),
                )
            body = _read(source, length - 4) if len(header) == 4 else b""
        except EOFError:  # a compressed stream that ends early: a cut file
            body, length = b"", 1 << 16
        if len(header) < 4 or len(body) < length - 4:
            report["cut_at"] = offset
            return
        yield header + body
        offset += length


def read_ipfix_file(
    path: Path,
    *,
    progress: Callable[[int], None] | None = None,
    strict: bool = False,
    notes: dict[str, Any] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Yield the flows of an IPFIX file as ``INGEST_SCHEMA`` batches; what the decoder met goes into
    ``notes`` (records, malformed messages, records without a template, sampling rates, the cut)."""
    from derisk.flows import BATCH_ROWS
    from derisk.ingest.decompress import compression, decompress_errors, open_capture
    from derisk.ingest.netflow_decode import Chunk, Decoder, to_table
    from derisk.ingest.netflow_pairs import Pairer

    with path.open("rb") as fh:
        kind = compression(fh.read(8))
    decoder, pairer = Decoder(), Pairer()
    report: dict[str, Any] = {"cut_at": None}
    chunks: list[Chunk] = []
    pending = 0
    try:
        with open_capture(path, kind, stream=True) as source:
            for message in _messages(path, source, report):
                found = decoder.decode(message, path.name)
                chunks.extend(found)
                records = sum(len(c) for c in found)
                pending += records
                if progress is not None and records:
                    progress(records)
                if pending >= BATCH_ROWS:
                    yield from pairer.pair(to_table(chunks))
                    chunks, pending = [], 0
        decoder.finish()
        if report["cut_at"] is not None and strict:
            raise InputError(
                f"IPFIX file cut off at byte {report['cut_at']:,}; refused with --strict", source=str(path)
            )
        if chunks:
            yield from pairer.pair(to_table(chunks))
    except decompress_errors() as exc:
        raise InputError(f"cannot be read: {' '.join(str(exc).split())[:160]}", source=str(path)) from None
    finally:
        pairer.close()
    _conclude(path, decoder, report["cut_at"], notes)


def _conclude(path: Path, decoder: Decoder, cut_at: int | None, notes: dict[str, Any] | None) -> None:
    stats = decoder.stats
    warnings = []
    if cut_at is not None:
        warnings.append(
            f"IPFIX file cut off at byte {cut_at:,}; the {stats.datagrams:,} messages before the cut were read"
        )
    if stats.malformed:
        warnings.append(f"{stats.malformed:,} malformed messages left out ({'; '.join(stats.examples[:2])})")
    if stats.lost_without_template:
        warnings.append(
            f"{stats.lost_without_template:,} messages of data whose template never came, left out"
        )
    for exporter, rate in stats.sampling.items():
        warnings.append(
            f"{exporter} sampled 1 packet in {rate}; packets and bytes were scaled by {rate}, so volumes are estimates"
        )
    if not stats.records:
        warnings.append("no flow records in the file")
    for warning in warnings:
        log.warning("%s: %s", path, warning)
    if notes is not None:
        notes.update(
            file_format="ipfix",
            messages=stats.datagrams,
            records=stats.records,
            malformed=stats.malformed,
            lost_without_template=stats.lost_without_template,
            sampling_rate=max(stats.sampling.values(), default=1),
            cut_at_byte=cut_at,
            warnings=warnings,
        )
