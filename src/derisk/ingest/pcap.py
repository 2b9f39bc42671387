"""Read pcap and pcapng captures into the canonical flow table, through NFStream.

NFStream meters flows and nDPI labels them; this module does not parse packets. It

1. checks the file itself first (readable, not empty, a pcap or pcapng, no record cut short), because
   NFStream silently stops at a truncated record and reports odd errors from its meter processes;
2. collects DNS answers in a first, filtered pass (NFStream with the BPF filter ``port 53`` and a
   plugin that hands each DNS datagram to :mod:`derisk.ingest.dnsanswers`), so that flows with no TLS
   SNI or HTTP Host still get the server name a client resolved;
3. meters every flow with IP-layer byte accounting (the IP total length, so a capture cut to a short
   snap length still counts what was on the wire) and yields :data:`derisk.flows.INGEST_SCHEMA`
   batches of :data:`derisk.flows.MIN_BATCH_ROWS` rows as flows come out of the meter, so that the
   rest of the pipeline works on them while the meter runs.

This is the only module that imports nfstream.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import logging
import os
import struct
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final

import dpkt
import pyarrow as pa

from derisk.errors import InputError
from derisk.flows import INGEST_SCHEMA, MIN_BATCH_ROWS, batch_from_columns
from derisk.ingest.dnsanswers import AnswerMap, LongQueries, decode_ip, note, scan_capture
from derisk.safetext import bound

log = logging.getLogger(__name__)

#: NFStream options shared by the meter and the benchmark's bare run, so the two measure the same work.
NFSTREAM_OPTIONS: Final[dict[str, Any]] = {
    "decode_tunnels": True,
    "idle_timeout": 120,
    "active_timeout": 1800,
    "accounting_mode": 1,  # IP layer: the IP total length of each packet
    "n_dissections": 20,
    "statistical_analysis": False,
    "splt_analysis": 0,
}

#: BPF filter of the DNS pass.
DNS_FILTER: Final = "port 53"

#: nDPI keeps the last 80 characters of a DNS name; names that long are looked up in the DNS pass.
LONG_QUERY_SHOWN: Final = 60

#: Calls to ``progress`` come at least this often (in flows), whatever the batch size.
PROGRESS_EVERY: Final = 4096

_PCAP_MAGIC = {
    b"\xd4\xc3\xb2\xa1": "<",
    b"\xa1\xb2\xc3\xd4": ">",
    b"\x4d\x3c\xb2\xa1": "<",  # nanosecond resolution
    b"\xa1\xb2\x3c\x4d": ">",
}
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
_PCAPNG_PACKET_BLOCKS = {2, 3, 6}
_MAX_RECORD = 1 << 20  # no link layer carries a frame of a mebibyte; a larger record means corruption

_TLS_FAMILY = {"TLS", "QUIC", "DTLS"}
_HTTP_FAMILY = {"HTTP", "HTTP_Proxy", "HTTP_Connect"}
_DNS_FAMILY = {"DNS", "MDNS", "LLMNR"}
_PORTED = {6, 17, 132}  # TCP, UDP, SCTP: the protocols whose flows have ports


@dataclass(frozen=True)
class CaptureInfo:
    """What the file check learned: the format and how many packet records the file holds."""

    fmt: str
    packets: int


def _fail(path: Path, what: str) -> InputError:
    return InputError(what, source=str(path))


def _os_error(path: Path, exc: OSError) -> InputError:
    if isinstance(exc, FileNotFoundError):
        return _fail(path, "no such file")
    if isinstance(exc, PermissionError):
        return _fail(path, "cannot read: permission denied")
    if isinstance(exc, IsADirectoryError):
        return _fail(path, "is a directory, not a capture file")
    reason = exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc))
    return _fail(path, f"cannot read: {reason}")


def capture_format(path: Path) -> str:
    """``"pcap"`` or ``"pcapng"`` from the file's first bytes; :class:`InputError` for anything else.

    Cheap (reads four bytes): the full check of the record framing is :func:`inspect_capture`.
    """
    try:
        if path.is_dir():
            raise _fail(path, "is a directory, not a capture file")
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise _os_error(path, exc) from None
    if not head:
        raise _fail(path, "empty file (0 bytes), not a capture")
    if head[:2] == b"\x1f\x8b":
        raise _fail(path, "is gzip-compressed; decompress it first (gunzip)")
    if head in _PCAP_MAGIC:
        return "pcap"
    if head == _PCAPNG_SHB:
        return "pcapng"
    raise _fail(path, f"not a pcap or pcapng capture (starts with bytes {head.hex()})")


def inspect_capture(path: Path) -> CaptureInfo:
    """Check that ``path`` is a complete pcap or pcapng file and count its packet records.

    Raises :class:`InputError` naming the file for a missing, unreadable, empty, non-capture or
    truncated file. Reads the record framing only (no packet contents), in 4 MiB chunks.
    """
    fmt = capture_format(path)
    try:
        with path.open("rb", buffering=0) as fh:
            window = _Window(fh, path.stat().st_size)
            if fmt == "pcap":
                head, _ = window.view(0, 4)
                return CaptureInfo(fmt, _walk_pcap(path, window, _PCAP_MAGIC[head[:4]]))
            return CaptureInfo(fmt, _walk_pcapng(path, window))
    except OSError as exc:
        raise _os_error(path, exc) from None


class _Window:
    """Reads a file in large chunks so the framing walk touches each byte once with bounded memory."""

    CHUNK = 4 << 20  # larger than any record or block the walk accepts

    def __init__(self, fh: BinaryIO, size: int) -> None:
        self.fh, self.size = fh, size
        self.start, self.buf = 0, b""

    def view(self, offset: int, length: int) -> tuple[bytes, int]:
        """A buffer holding bytes [offset, offset + length) of the file, and where offset is in it."""
        if offset < self.start or offset + length > self.start + len(self.buf):
            self.fh.seek(offset)
            self.buf = self.fh.read(max(self.CHUNK, length))
            self.start = offset
        return self.buf, offset - self.start


def _walk_pcap(path: Path, data: _Window, endian: str) -> int:
    size = data.size
    if size < 24:
        raise _fail(path, f"truncated pcap: the file header needs 24 bytes, the file has {size}")
    captured_at = struct.Struct(endian + "I").unpack_from  # incl_len, 8 bytes into a record header
    offset, packets = 24, 0
    buf, base = data.view(offset, 16)
    base = offset - base  # file offset of buf[0]
    end = base + len(buf)
    while offset < size:
        if size - offset < 16:
            raise _fail(path, f"truncated pcap: record {packets + 1} header cut off at byte {offset}")
        if offset + 16 > end:  # the hot loop keeps the window inline: a method call per record is slow
            buf, at = data.view(offset, 16)
            base, end = offset - at, offset - at + len(buf)
        (captured,) = captured_at(buf, offset - base + 8)
        if captured > _MAX_RECORD:
            raise _fail(path, f"corrupt pcap: record {packets + 1} claims {captured} bytes")
        offset += 16 + captured
        if offset > size:
            raise _fail(path, f"truncated pcap: record {packets + 1} cut off ({offset - size} bytes missing)")
        packets += 1
    return packets


def _walk_pcapng(path: Path, data: _Window) -> int:
    size = data.size
    offset, packets, blocks, endian = 0, 0, 0, "<"
    while offset < size:
        if size - offset < 12:
            raise _fail(path, f"truncated pcapng: block {blocks + 1} cut off at byte {offset}")
        buf, at = data.view(offset, 12)
        if buf[at : at + 4] == _PCAPNG_SHB:
            magic = buf[at + 8 : at + 12]
            if magic == b"\x4d\x3c\x2b\x1a":
                endian = "<"
            elif magic == b"\x1a\x2b\x3c\x4d":
                endian = ">"
            else:
                raise _fail(path, f"corrupt pcapng: section header at byte {offset} has no byte-order magic")
        kind, length = struct.unpack_from(endian + "II", buf, at)
        if length < 12 or length % 4 or length > _MAX_RECORD + 64:
            raise _fail(path, f"corrupt pcapng: block {blocks + 1} at byte {offset} has length {length}")
        if offset + length > size:
            missing = offset + length - size
            raise _fail(path, f"truncated pcapng: block {blocks + 1} cut off ({missing} bytes missing)")
        buf, at = data.view(offset + length - 4, 4)
        (trailer,) = struct.unpack_from(endian + "I", buf, at)
        if trailer != length:
            raise _fail(path, f"corrupt pcapng: block {blocks + 1} at byte {offset} has mismatched lengths")
        if kind in _PCAPNG_PACKET_BLOCKS:
            packets += 1
        blocks += 1
        offset += length
    return packets


def _load_nfstream() -> Any:
    """Import NFStream on first use: it takes a while (pandas) and ``derisk --help`` needs none of it."""
    import nfstream

    return nfstream


def _streamer(path: Path, **options: Any) -> Any:
    return _load_nfstream().NFStreamer(source=str(path), **options)


def _dns_plugin() -> Any:
    from nfstream import NFPlugin

    class DnsMessages(NFPlugin):  # type: ignore[misc]
        """Records the DNS messages of a flow's packets (the fallback DNS pass)."""

        def on_init(self, packet: Any, flow: Any) -> None:
            flow.udps.dns = AnswerMap(), LongQueries()
            self.on_update(packet, flow)

        def on_update(self, packet: Any, flow: Any) -> None:
            ip = packet.ip_packet
            try:
                parsed = dpkt.ip.IP(ip) if packet.ip_version == 4 else dpkt.ip6.IP6(ip)
            except Exception:  # a packet dpkt cannot read carries no usable answer
                return
            message = decode_ip(parsed)
            if message is not None:
                note(message, parsed, int(packet.time), *flow.udps.dns)

    return DnsMessages()


def dns_pass(path: Path) -> tuple[AnswerMap, LongQueries]:
    """Fallback DNS pass through NFStream (BPF ``port 53`` and a plugin), when libpcap is not at hand."""
    answers, queries = AnswerMap(), LongQueries()
    options = dict(NFSTREAM_OPTIONS, n_dissections=0, bpf_filter=DNS_FILTER, udps=_dns_plugin())
    for flow in _run(path, _streamer(path, **options)):
        flow_answers, flow_queries = flow.udps.dns
        for address, entries in flow_answers.items():
            for time_ms, name in entries:
                answers.add(time_ms, name, address)
        queries.merge(flow_queries)
    return answers, queries


def _libpcap() -> str | None:
    """The shared library with libpcap that NFStream ships (its engine exports libpcap's functions)."""
    spec = importlib.util.find_spec("_lib_engine")
    return spec.origin if spec is not None and spec.origin else None


def scan(path: Path, fmt: str) -> tuple[AnswerMap, LongQueries]:
    """One libpcap pass: a truncated or corrupt file raises; otherwise the DNS answers and long names."""
    library = _libpcap()
    try:
        result = scan_capture(library, path, DNS_FILTER) if library else None
    except (OSError, AttributeError) as exc:  # the engine does not export libpcap: use the fallback
        log.debug("libpcap not usable from %s (%s): fallback DNS pass", library, exc)
        result = None
    if result is None:
        inspect_capture(path)
        return dns_pass(path)
    if result.error is not None:
        kind = "truncated" if "truncated" in result.error else "corrupt"
        raise _fail(path, f"{kind} {fmt}: libpcap says: {bound(result.error, 200)}")
    if result.queries.dropped:
        log.warning(
            "%s: %d long DNS names beyond the first %d keep nDPI's shortened form",
            path,
            result.queries.dropped,
            len(result.queries),
        )
    return result.answers, result.queries


def _run(path: Path, streamer: Any) -> Iterator[Any]:
    """Iterate NFStream's flows, turning its failures into one-line input errors."""
    try:
        yield from streamer
    except (ValueError, OSError, RuntimeError, EOFError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise _fail(path, f"capture could not be read: {bound(message, 200)}") from None


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return bound(str(value))


def _names(flow: Any) -> tuple[str | None, str | None, str | None]:
    """(server_name, server_name_source, dns_query) from nDPI's requested server name."""
    requested = _text(flow.requested_server_name)
    if requested is None:
        return None, None, None
    application = flow.application_name or ""
    family = application.split(".", 1)[0]
    if family in _DNS_FAMILY:
        return None, None, requested
    if family in _TLS_FAMILY or flow.client_fingerprint:
        return requested, "sni", None
    if family in _HTTP_FAMILY or flow.user_agent:
        return requested, "http-host", None
    return None, None, None  # nDPI also fills this field from DHCP, NetBIOS and the like: not a server


_COLUMNS: Final = [field.name for field in INGEST_SCHEMA if field.name != "source_ref"]


def read_pcap(path: Path, *, progress: Callable[[int], None] | None = None) -> Iterator[pa.RecordBatch]:
    """Yield the flows of a pcap or pcapng file as :data:`derisk.flows.INGEST_SCHEMA` batches.

    ``src`` is the side that sent the flow's first packet; ``bytes_out`` what it sent, counted at the
    IP layer. ``progress``, when given, is called with the number of packets accounted for since its
    last call (its total is :func:`inspect_capture`'s ``packets``, less packets NFStream ignores).
    Raises :class:`derisk.errors.InputError` naming the file when it cannot be used; no batch is
    yielded before the file has been checked and its DNS answers collected.
    """
    fmt = capture_format(path)
    # NFStream pins the process that iterates it to the first CPUs; give the rest of derisk its CPUs back.
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    # The libpcap pass (framing check, DNS answers) runs beside the meter, which works in its own
    # process; names are filled in when a batch is built, so no batch leaves before the file is checked.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="derisk-dns") as pool:
        scanning = pool.submit(scan, path, fmt)
        try:
            yield from _meter(path, scanning, progress)
        finally:
            if affinity is not None:
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(0, affinity)


def _resolve_names(
    columns: dict[str, list[Any]],
    pending: list[tuple[int, str, str, int, int, int, int]],
    found: tuple[AnswerMap, LongQueries],
) -> None:
    """Fill server names from DNS answers and full DNS query names, once the scan is done."""
    answers, long_queries = found
    for row, src_ip, dst_ip, src_port, dst_port, protocol, first_ms in pending:
        query = columns["dns_query"][row]
        if query is not None:
            if len(query) >= LONG_QUERY_SHOWN and len(long_queries):
                key = (src_ip, src_port, dst_ip, dst_port, protocol)
                columns["dns_query"][row] = long_queries.get(key, first_ms) or query
        elif answers:
            name = answers.name_for(dst_ip, first_ms) or answers.name_for(src_ip, first_ms)
            if name is not None:
                columns["server_name"][row] = name
                columns["server_name_source"][row] = "dns-answer"


def _checked(path: Path, scanning: Future[tuple[AnswerMap, LongQueries]]) -> Iterator[Any]:
    """NFStream's flows; when the meter fails, the file check's diagnosis (if it found one) is the error."""
    try:
        yield from _run(path, _streamer(path, **NFSTREAM_OPTIONS))
    except InputError:
        problem = scanning.exception()
        if problem is not None:
            raise problem from None
        raise


def _meter(
    path: Path, scanning: Future[tuple[AnswerMap, LongQueries]], progress: Callable[[int], None] | None
) -> Iterator[pa.RecordBatch]:
    columns: dict[str, list[Any]] = {name: [] for name in _COLUMNS}
    #: Rows whose name depends on the scan: (row, src, dst, sport, dport, proto, first ms).
    pending: list[tuple[int, str, str, int, int, int, int]] = []
    pending_packets = rows = flows = 0

    def batch() -> pa.RecordBatch:
        _resolve_names(columns, pending, scanning.result())
        return batch_from_columns(columns)

    for flow in _checked(path, scanning):
        server_name, source, dns_query = _names(flow)
        first_ms = flow.bidirectional_first_seen_ms
        if (dns_query is not None and len(dns_query) >= LONG_QUERY_SHOWN) or (
            dns_query is None and server_name is None
        ):
            pending.append(
                (rows, flow.src_ip, flow.dst_ip, flow.src_port, flow.dst_port, flow.protocol, first_ms)
            )
        ported = flow.protocol in _PORTED
        columns["first_seen"].append(first_ms * 1000)
        columns["last_seen"].append(flow.bidirectional_last_seen_ms * 1000)
        columns["src_ip"].append(flow.src_ip)
        columns["src_port"].append(flow.src_port if ported else None)
        columns["dst_ip"].append(flow.dst_ip)
        columns["dst_port"].append(flow.dst_port if ported else None)
        columns["protocol"].append(flow.protocol)
        columns["bytes_out"].append(flow.src2dst_bytes)
        columns["bytes_in"].append(flow.dst2src_bytes)
        columns["packets_out"].append(flow.src2dst_packets)
        columns["packets_in"].append(flow.dst2src_packets)
        columns["server_name"].append(server_name)
        columns["server_name_source"].append(source)
        columns["application"].append(_text(flow.application_name))
        columns["ja4"].append(_text(flow.client_fingerprint))
        columns["user_agent"].append(_text(flow.user_agent))
        columns["dns_query"].append(dns_query)
        pending_packets += flow.bidirectional_packets
        rows += 1
        flows += 1
        if progress is not None and flows % PROGRESS_EVERY == 0:
            progress(pending_packets)
            pending_packets = 0
        if rows == MIN_BATCH_ROWS:
            yield batch()
            columns = {name: [] for name in _COLUMNS}
            pending = []
            rows = 0
    scanning.result()  # the file's check decides even when it held no flow
    if rows:
        yield batch()
    if flows == 0:
        log.warning("%s: the capture holds no IP flows", path)
    if progress is not None and pending_packets:
        progress(pending_packets)
