"""The capture feed: the meter reads a capture through a pipe that a reader thread fills.

NFStream's meter reads a file with libpcap. A capture rarely needs to go to it exactly as it is
on disk: it may be compressed (:mod:`derisk.ingest.decompress`), of a link type NFStream ignores
(:mod:`derisk.ingest.linktypes`), cut short at its end, or hold a packet dated years away from the
others, which NFStream's meter would use as its clock for every later packet. The feed reads the
capture's records in order, in a thread, and writes a classic pcap into a named pipe (FIFO) that
the meter opens as its source (and, when the DNS pass cannot read the file itself, the same stream
into a second pipe for it: :mod:`.feed_writer`, so a capture is decompressed and converted once):

* records are read and written in chunks of 1 MiB; memory stays bounded whatever the file's size,
  and nothing is written to disk;
* frames of a link type NFStream cannot read become Ethernet frames;
* a last record cut short ends the stream where the cut starts; the report keeps the byte offset;
* a packet dated more than a day in the future, one dated more than :data:`JUMP_US` ahead of the
  packets before it and followed by packets back at their time, and one dated more than
  :data:`JUMP_US` before them, are left out and counted.

Framing that cannot be a capture (a record longer than any link carries, a pcapng block of
impossible length) stops the feed with an :class:`InputError`.
"""

from __future__ import annotations

import struct
import threading
import time
from dataclasses import dataclass, field
from io import BufferedIOBase
from itertools import pairwise
from pathlib import Path
from typing import Final

from derisk.errors import InputError
from derisk.ingest import feed_block, feed_pcapng, linktypes, modified_pcap
from derisk.ingest.decompress import decompress_errors, ends_early
from derisk.ingest.feed_writer import Outputs, Writer
from derisk.ingest.framing import timestamp_resolution
from derisk.ingest.probe import PCAP_MAGICS, PCAPNG_SHB, Probe

#: Larger than any record; a record that claims more is corruption, not a frame.
MAX_RECORD: Final = 1 << 20
#: A packet this far (µs) ahead of or behind the packets around it is taken for a wild timestamp.
JUMP_US: Final = 3600 * 1_000_000
#: How many first records may pass before two agree on the time; then the first one sets the clock.
START_LOOKAHEAD: Final = 8
#: A packet dated this far (µs) after the wall clock is in the future.
FUTURE_US: Final = 86400 * 1_000_000

#: The last time (µs) a classic pcap record can carry (32-bit seconds); pcapng's 64-bit units go further.
LAST_PCAP_US: Final = (1 << 32) * 1_000_000 - 1

_CHUNK: Final = 1 << 20
_OUT_RECORD = struct.Struct("<IIII")


@dataclass
class FeedReport:
    """What the feed did to one capture, for warnings and the analysis."""

    records: int = 0
    written: int = 0
    converted: int = 0
    unusable: int = 0
    future: int = 0
    jumped: int = 0
    behind: int = 0
    cut_at: int | None = None
    cut_what: str = ""
    error: InputError | None = None
    linktypes: set[int] = field(default_factory=set)

    @property
    def wild(self) -> int:
        """Packets left out because of their timestamp."""
        return self.future + self.jumped + self.behind


def _fail(path: Path, what: str) -> InputError:
    return InputError(what, source=str(path))


class Feed:
    """Reads one capture in a thread and writes it, as a classic pcap, to a named pipe."""

    def __init__(self, path: Path, found: Probe, *, guard_time: bool = True, ethernet: bool = False) -> None:
        """``ethernet``: write every frame as Ethernet, also of link types NFStream reads as they are."""
        self.path, self.probe, self.guard_time, self.ethernet = path, found, guard_time, ethernet
        self.report = FeedReport()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._outputs = Outputs(self._stop)
        self._now_us = int(time.time() * 1_000_000)
        self._clock: int | None = None
        self._held: tuple[int, bytes] | None = None
        #: The first records, held until two of them agree on the time (see :meth:`_settle`).
        self._start: list[tuple[int, bytes]] | None = [] if guard_time else None
        #: Whether buffers may go through :mod:`.feed_block` (tests compare with the walk alone).
        self.block = True
        #: Whether the second pipe gets, from the buffers :mod:`.feed_block` converts, only the
        #: records a DNS pass's BPF filter may take (:func:`.feed_block.dns_candidates`) instead of all.
        self.dns_only = False
        self._ended = False

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self, fifo: Path, also: Path | None = None) -> None:
        """Write into ``fifo`` (the meter's pipe) and, when given, the same stream into ``also``."""
        fifos = [fifo] if also is None else [fifo, also]
        self._thread = threading.Thread(target=self._run, args=(fifos,), name="derisk-feed", daemon=True)
        self._thread.start()

    def release(self) -> None:
        """The reader of the second pipe reads no more (it ended or failed): the meter's goes on alone."""
        self._outputs.release(1)

    def stop(self) -> None:
        """Stop the thread, also when it waits on a pipe nobody reads any more (the meter stopped early)."""
        self._stop.set()
        thread = self._thread
        try:
            if thread is None or not thread.is_alive():
                if thread is not None:
                    thread.join(timeout=5)
                return
            # read what it is blocked writing, until it notices the stop and closes its end
            deadline = time.monotonic() + 5
            while thread.is_alive() and time.monotonic() < deadline:
                self._outputs.drain()
                time.sleep(0.001)
            thread.join(timeout=1)
        finally:
            self._outputs.close_drains()

    def join(self) -> FeedReport:
        if self._thread is not None:
            self._thread.join()
        return self.report

    def _run(self, fifos: list[Path]) -> None:
        outputs = self._outputs
        try:
            for index, fifo in enumerate(fifos):
                if not outputs.open(fifo, index) and index == 0:
                    return
        except OSError as exc:
            self.report.error = _fail(self.path, f"cannot feed the meter: {exc.strerror}")
            outputs.close()
            return
        try:
            with modified_pcap.opened(self.path, self.probe, self.report) as source:
                self._pump(source, Writer(outputs))
        except InputError as exc:
            self.report.error = exc
        except BrokenPipeError:  # the meter stopped reading: it ended or was stopped
            pass
        except decompress_errors() as exc:
            text = " ".join(str(exc).split())[:160]
            if self.probe.compression is not None and isinstance(exc, EOFError):
                self.report.cut_what = ends_early(self.probe.compression)
            else:
                self.report.error = _fail(self.path, f"cannot be read: {text}")
        finally:
            outputs.close()

    # ---- the walk --------------------------------------------------------------------------------

    def _pump(self, source: BufferedIOBase, writer: Writer) -> None:
        if self.probe.fmt == "pcap":
            self._pcap(source, writer)
        else:
            self._pcapng(source, writer)
        if self._start:
            self._settle(writer, final=True)
        if self._held is not None:  # a jump at the very end: nothing after it says it is wild
            writer.add(self._held[1])
            self.report.written += 1
        writer.flush()

    def _settle(self, writer: Writer, *, final: bool) -> None:
        """Set the first clock from the capture's first records: the first time the next record
        confirms (within :data:`JUMP_US`), so that a wild first packet (a file that starts with a
        packet of another day) does not become the clock and send every packet after it "far
        behind"; without two that agree among the first :data:`START_LOOKAHEAD` records, or at
        the end of the file, the first time. The held records then go through :meth:`_timed`."""
        start = self._start or []
        agreed = next((a for (a, _), (b, _) in pairwise(start) if abs(b - a) <= JUMP_US), None)
        if agreed is None and not final and len(start) < START_LOOKAHEAD:
            return
        self._start = None
        self._clock = start[0][0] if agreed is None else agreed
        for ts, record in start:
            self._timed(writer, ts, record)

    def _timed(self, writer: Writer, ts: int, record: bytes) -> None:
        """Write one output record unless its time is wild (see the module's docstring)."""
        report = self.report
        if ts > self._now_us + FUTURE_US:
            report.future += 1
            return
        if self._clock is None and self._start is not None:
            self._start.append((ts, record))
            self._settle(writer, final=False)
            return
        clock = self._clock
        if self._held is not None:
            held_ts, held = self._held
            self._held = None
            if clock is not None and ts > clock + JUMP_US:  # the capture moved on: a gap, not a wild packet
                writer.add(held)
                report.written += 1
                clock = self._clock = held_ts
            else:
                report.jumped += 1
        if clock is None:
            clock = self._clock = ts
        if ts > clock + JUMP_US:
            self._held = (ts, record)
            return
        if ts < clock - JUMP_US:
            report.behind += 1
            return
        if ts > clock:
            self._clock = ts
        writer.add(record)
        report.written += 1

    def _frame(
        self, writer: Writer, ts: int, frame: bytes, wire: int, convert: linktypes.Frame | None
    ) -> None:
        """Convert one frame (when its link type needs it) and write it as a microsecond pcap record."""
        if convert is not None:
            out = convert(frame)
            if out is None:
                self.report.unusable += 1
                return
            if out is not frame:
                self.report.converted += 1
                wire = max(wire + len(out) - len(frame), len(out))
                frame = out
        if ts > LAST_PCAP_US:  # a pcapng date past 2106 (as a wrong if_tsresol makes): in the future
            self.report.future += 1
            return
        record = _OUT_RECORD.pack(ts // 1_000_000, ts % 1_000_000, len(frame), wire) + frame
        if self.guard_time:
            self._timed(writer, ts, record)
        else:
            writer.add(record)
            self.report.written += 1

    def _read(self, source: BufferedIOBase) -> bytes:
        """The next piece of the (decompressed) capture, about :data:`_CHUNK` bytes (a decompressor
        gives a few dozen KiB at a time; the walk and feed_block are cheaper per byte on whole
        pieces); b"" at its end, also when a compressed stream is cut."""
        if self._ended:
            return b""
        parts: list[bytes] = []
        size = 0
        try:
            while size < _CHUNK:
                piece = source.read1(_CHUNK - size)
                if not piece:
                    self._ended = True
                    break
                parts.append(piece)
                size += len(piece)
        except EOFError:  # what came before the cut is still written
            self.report.cut_what = ends_early(self.probe.compression)
            self._ended = True
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _pcap(self, source: BufferedIOBase, writer: Writer) -> None:
        head = source.read(24)
        endian, factor = PCAP_MAGICS[head[:4]]
        record = struct.Struct(endian + "IIII")
        linktype = self.probe.linktype
        self.report.linktypes.add(linktype)
        ethernet = linktype == 1  # Ethernet is native; only frames with an outer tag are rewritten (inline)
        if ethernet:
            convert = None
        else:
            convert = linktypes.to_ethernet(linktype) if self.ethernet else linktypes.converter(linktype)
        writer.header(1 if convert is not None else linktype)
        # Records are copied as they are when the input is already a little-endian microsecond pcap.
        verbatim = endian == "<" and factor == 1_000
        outer = linktypes.OUTER_TAGS
        fix = linktypes.fix_ethernet
        out_record = _OUT_RECORD.pack
        report, guard = self.report, self.guard_time
        # Fast path: a run of records copied as they are (native link type, little-endian microsecond
        # pcap, time within the window around the clock) is written as one slice of the buffer.
        fast = verbatim and convert is None
        # Faster still: whole buffers at once, for the link types feed_block converts.
        block = verbatim and linktype in feed_block.BLOCK_LINKTYPES and self.block
        block = block and not (convert is not None and linktype in feed_block.PASSED)  # written as Ethernet
        future = self._now_us + FUTURE_US
        buf, pos, base, eof, records = b"", 0, 24, False, 0
        need = 0  # the bytes of a record longer than what is left of the buffer (up to MAX_RECORD + 16)
        while not self._stop.is_set():
            if not eof and len(buf) - pos < max(_CHUNK, need):
                more = self._read(source)
                if more:
                    buf, base, pos = buf[pos:] + more, base + pos, 0
                else:
                    eof = True
            end = len(buf)
            if block and self._held is None:  # the common case, column-wise (see feed_block)
                made = feed_block.convert(
                    buf, pos, end, linktype, limit=MAX_RECORD, clock=self._clock,
                    window=(JUMP_US, future) if guard else None, dns=writer.tee and self.dns_only,
                )  # fmt: skip
                if made is not None:
                    if made.data:  # the DNS pass's pipe gets only what its filter may take
                        writer.add(made.data, made.dns)
                    records += made.records
                    report.written += made.records
                    report.converted += made.converted
                    self._clock, pos = made.clock, made.end
            run, in_run = pos, 0
            clock = self._clock
            if not guard:
                low, high = -1, 1 << 62
            elif clock is None or self._held is not None:
                low, high = 1, 0  # the next record decides: no fast path
            else:
                low, high = clock - JUMP_US, min(clock + JUMP_US, future)
            while pos + 16 <= end:
                sec, frac, captured, wire = record.unpack_from(buf, pos)
                if captured > MAX_RECORD:
                    raise _fail(self.path, f"corrupt pcap: record {records + 1} at byte {base + pos} "
                                f"claims {captured} bytes")  # fmt: skip
                stop = pos + 16 + captured
                if stop > end:
                    need = stop - pos
                    break
                records += 1
                ts = sec * 1_000_000 + frac * factor // 1_000
                if fast and low <= ts <= high and not (ethernet and buf[pos + 28 : pos + 30] in outer):
                    if guard and ts > clock:
                        clock = ts
                        low, high = clock - JUMP_US, min(clock + JUMP_US, future)
                    in_run += 1
                    pos = stop
                    continue
                if in_run:
                    writer.add(buf[run:pos])
                    report.written += in_run
                    in_run = 0
                tagged = ethernet and buf[pos + 28 : pos + 30] in outer
                if (convert is not None or tagged) and low <= ts <= high:
                    # A frame to convert, its time within the window: written here, as _frame and
                    # _timed would write it, without their calls (the common case of a converted capture).
                    frame = buf[pos + 16 : stop]
                    out = (fix if tagged else convert)(frame)  # type: ignore[misc]
                    if out is None:
                        report.unusable += 1
                    else:
                        if out is not frame:
                            report.converted += 1
                            wire = max(wire + len(out) - captured, len(out))
                        writer.add(out_record(ts // 1_000_000, ts % 1_000_000, len(out), wire) + out)
                        report.written += 1
                        if guard and ts > clock:
                            clock = ts
                            low, high = clock - JUMP_US, min(clock + JUMP_US, future)
                    pos = run = stop
                    continue
                if guard:
                    self._clock = clock
                if tagged:
                    self._frame(writer, ts, buf[pos + 16 : stop], wire, fix)
                elif convert is not None or not verbatim:
                    self._frame(writer, ts, buf[pos + 16 : stop], wire, convert)
                elif guard:
                    self._timed(writer, ts, buf[pos:stop])
                else:
                    writer.add(buf[pos:stop])
                    report.written += 1
                pos = run = stop
                clock = self._clock
                if not guard:
                    pass
                elif clock is None or self._held is not None:
                    low, high = 1, 0
                else:
                    low, high = clock - JUMP_US, min(clock + JUMP_US, future)
            if in_run:
                writer.add(buf[run:pos])
                report.written += in_run
            if guard:
                self._clock = clock
            if eof:
                if pos < len(buf) or report.cut_what:
                    report.cut_at = base + pos
                    report.cut_what = report.cut_what or f"record {records + 1} cut off"
                break
        report.records = records

    def _pcapng(self, source: BufferedIOBase, writer: Writer) -> None:
        report = self.report
        #: per interface: (link type, microseconds per timestamp unit as a fraction num/den, converter)
        interfaces: list[tuple[int, int, int, linktypes.Frame | None]] = []
        out_linktype: int | None = None
        endian = "<"
        buf, pos, base, eof, records, blocks, need = b"", 0, 0, False, 0, 0, 0
        while not self._stop.is_set():
            if not eof and len(buf) - pos < max(_CHUNK, need):
                more = self._read(source)
                if more:
                    buf, base, pos = buf[pos:] + more, base + pos, 0
                else:
                    eof = True
            end = len(buf)
            ready = self.block and self._held is None and not self._start
            if ready and out_linktype is not None and endian == "<":
                made = feed_pcapng.convert(
                    buf, pos, end, interfaces, out_linktype, limit=MAX_RECORD + 64, clock=self._clock,
                    window=(JUMP_US, self._now_us + FUTURE_US) if self.guard_time else None,
                    last_us=LAST_PCAP_US, dns=writer.tee and self.dns_only,
                )  # fmt: skip
                if made is not None:  # a run of packets, column-wise (see feed_pcapng)
                    writer.add(made.data, made.dns)
                    records, blocks = records + made.records, blocks + made.records
                    report.written += made.records
                    report.converted += made.converted
                    self._clock, pos = made.clock, made.end
            while pos + 12 <= end:
                if buf[pos : pos + 4] == PCAPNG_SHB:
                    magic = buf[pos + 8 : pos + 12]
                    if magic == b"\x4d\x3c\x2b\x1a":
                        endian = "<"
                    elif magic == b"\x1a\x2b\x3c\x4d":
                        endian = ">"
                    else:
                        raise _fail(self.path, f"corrupt pcapng: section header at byte {base + pos} "
                                    "has no byte-order magic")  # fmt: skip
                kind, length = struct.unpack_from(endian + "II", buf, pos)
                if length < 12 or length % 4 or length > MAX_RECORD + 64:
                    raise _fail(self.path, f"corrupt pcapng: block {blocks + 1} at byte {base + pos} "
                                f"has length {length}")  # fmt: skip
                stop = pos + length
                if stop > end:
                    need = length  # a block longer than what is left of the buffer: read on
                    break
                if struct.unpack_from(endian + "I", buf, stop - 4)[0] != length:
                    raise _fail(self.path, f"corrupt pcapng: block {blocks + 1} at byte {base + pos} "
                                "has mismatched lengths")  # fmt: skip
                blocks += 1
                if kind == 0x0A0D0D0A:
                    interfaces = []
                elif kind == 1:
                    linktype = struct.unpack_from(endian + "H", buf, pos + 8)[0]
                    num, den = timestamp_resolution(buf[pos + 16 : stop - 4], endian)
                    report.linktypes.add(linktype)
                    interface = (linktype, num, den, None)
                    interfaces.append(
                        interface if out_linktype is None else feed_pcapng.fixed(interface, out_linktype)
                    )
                elif kind in (6, 2, 3):
                    records += 1
                    if out_linktype is None:
                        out_linktype = feed_pcapng.output_linktype(interfaces, self.ethernet)
                        writer.header(out_linktype)
                        interfaces = [feed_pcapng.fixed(i, out_linktype) for i in interfaces]
                    self._packet(writer, buf, pos, stop, kind, endian, interfaces)
                pos = stop
            if eof:
                if pos < len(buf) or report.cut_what:
                    report.cut_at = base + pos
                    report.cut_what = report.cut_what or f"block {blocks + 1} cut off"
                break
        if out_linktype is None:
            writer.header(self.probe.linktype)
        report.records = records

    def _packet(
        self,
        writer: Writer,
        buf: bytes,
        pos: int,
        stop: int,
        kind: int,
        endian: str,
        interfaces: list[tuple[int, int, int, linktypes.Frame | None]],
    ) -> None:
        if kind == 3:  # simple packet block: interface 0, no timestamp
            (wire,) = struct.unpack_from(endian + "I", buf, pos + 8)
            index, units, captured, data = 0, None, min(wire, stop - pos - 16), pos + 12
        else:
            if kind == 6:
                index, high, low, captured, wire = struct.unpack_from(endian + "IIIII", buf, pos + 8)
            else:
                index, _, high, low, captured, wire = struct.unpack_from(endian + "HHIIII", buf, pos + 8)
            units, data = (high << 32) | low, pos + 28
        if index >= len(interfaces) or data + captured > stop - 4:
            self.report.unusable += 1
            return
        _, num, den, convert = interfaces[index]
        ts = (self._clock or 0) if units is None else units * num // den
        self._frame(writer, ts, buf[data : data + captured], wire, convert)
