"""Read pcap and pcapng captures into the canonical flow table, through NFStream.

NFStream meters flows and nDPI labels them; derisk does not meter packets itself. This module

1. probes the file (:mod:`derisk.ingest.probe`): compressed or not, pcap or pcapng, a link type
   derisk can meter; anything else is a one-line error before any process starts;
2. starts the feed (:mod:`derisk.ingest.feed`): a thread that decompresses, converts link types
   NFStream ignores, stops at a cut and leaves out wild timestamps, writing a pcap into a named pipe
   that NFStream's meter reads;
3. collects DNS answers in a filtered libpcap pass beside the meter (BPF ``port 53``, DNS datagrams
   decoded by :mod:`derisk.ingest.dnsanswers`), over the file itself or a second feed, so that flows
   with no TLS SNI or HTTP Host still get the server name a client resolved; the same pass finds a
   corrupt file before any batch leaves;
4. meters every flow with IP-layer byte accounting (the IP total length, so a capture cut to a short
   snap length still counts what was on the wire) and yields :data:`derisk.flows.INGEST_SCHEMA`
   batches of :data:`derisk.flows.MIN_BATCH_ROWS` rows as flows come out of the meter, so that the
   rest of the pipeline works on them while the meter runs; a watchdog
   (:mod:`derisk.ingest.meterwatch`) turns a crashed meter into an error.

Only :mod:`derisk.ingest.nfstream_engine` and the watchdog import nfstream.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

import dpkt
import pyarrow as pa

from derisk import scratch
from derisk.errors import InputError
from derisk.flows import INGEST_SCHEMA, MIN_BATCH_ROWS, batch_from_columns
from derisk.ingest import linktypes, wiretap
from derisk.ingest.dnsanswers import AnswerMap, LongQueries, decode_ip, note, scan_capture
from derisk.ingest.feed import Feed, FeedReport
from derisk.ingest.flow_exports import ExportShare
from derisk.ingest.framing import CaptureInfo, capture_format, inspect_capture, os_error
from derisk.ingest.initiator import by_opener
from derisk.ingest.meterwatch import MeterWatch
from derisk.ingest.nfstream_engine import NFSTREAM_OPTIONS
from derisk.ingest.nfstream_engine import libpcap as _libpcap
from derisk.ingest.nfstream_engine import load_nfstream as _load_nfstream
from derisk.ingest.nfstream_engine import streamer as _streamer
from derisk.ingest.probe import Probe, probe
from derisk.ingest.vlan_halves import HalfJoiner
from derisk.safetext import bound

__all__ = ["CaptureInfo", "capture_format", "inspect_capture", "read_pcap", "scan"]

log = logging.getLogger(__name__)

#: BPF filter of the DNS pass.
DNS_FILTER: Final = "port 53"
#: On Ethernet, DNS inside up to two VLAN tags too. libpcap shifts its offsets after each ``vlan`` or
#: ``mpls`` keyword for the rest of the expression, so one filter cannot take both: captures whose
#: first frames carry MPLS get their own.
DNS_FILTER_VLAN: Final = "port 53 or (vlan and (port 53 or (vlan and port 53)))"
DNS_FILTER_MPLS: Final = "port 53 or (mpls and port 53)"

#: nDPI keeps the last 80 characters of a DNS name; names that long are looked up in the DNS pass.
LONG_QUERY_SHOWN: Final = 60

#: Calls to ``progress`` come at least this often (in flows), whatever the batch size.
PROGRESS_EVERY: Final = 4096

_TLS_FAMILY = {"TLS", "QUIC", "DTLS"}
_HTTP_FAMILY = {"HTTP", "HTTP_Proxy", "HTTP_Connect"}
_DNS_FAMILY = {"DNS", "MDNS", "LLMNR"}
_PORTED = {6, 17, 132}  # TCP, UDP, SCTP: the protocols whose flows have ports


def _fail(path: Path, what: str) -> InputError:
    return InputError(what, source=str(path))


def _dns_plugin() -> Any:
    plugin_base = _load_nfstream().NFPlugin

    class DnsMessages(plugin_base):  # type: ignore[misc,valid-type]
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


def scan(
    path: Path, fmt: str, *, strict: bool = False, name: Path | None = None, bpf: str = DNS_FILTER
) -> tuple[AnswerMap, LongQueries]:
    """One libpcap pass over ``path``: the DNS answers and long names; a corrupt file raises.

    A file cut short is read up to the cut (the feed reports where) unless ``strict``. ``name`` is
    the capture named in messages when ``path`` is the feed's pipe.
    """
    shown = name or path
    library = _libpcap()
    try:
        result = scan_capture(library, path, bpf) if library else None
    except (OSError, AttributeError) as exc:  # the engine does not export libpcap: use the fallback
        log.debug("libpcap not usable from %s (%s): fallback DNS pass", library, exc)
        result = None
    if result is None:
        return dns_pass(path)
    if result.error is not None:
        cut = "truncated" in result.error
        said = f"libpcap says: {bound(result.error, 200)}"
        if not cut:
            raise _fail(shown, f"corrupt {fmt}: {said}")
        if strict:
            raise _fail(shown, f"truncated {fmt}: capture cut off ({said}); refused with --strict")
    if result.queries.dropped:
        log.warning(
            "%s: %d long DNS names beyond the first %d keep nDPI's shortened form",
            shown,
            result.queries.dropped,
            len(result.queries),
        )
    return result.answers, result.queries


def _run(path: Path, streamer: Any) -> Iterator[Any]:
    """Iterate NFStream's flows, turning its failures (a meter that crashed too) into one-line input errors."""
    flows = iter(streamer)
    try:
        with MeterWatch(flows):
            yield from flows
    except (ValueError, OSError, RuntimeError, EOFError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        if "crashed" in message:
            message += "; the capture is probably malformed"
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


def read_pcap(
    path: Path,
    *,
    progress: Callable[[int], None] | None = None,
    strict: bool = False,
    notes: dict[str, Any] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Yield the flows of a pcap or pcapng file as :data:`derisk.flows.INGEST_SCHEMA` batches.

    ``src`` is the side that sent the flow's first packet; ``bytes_out`` what it sent, counted at the
    IP layer. ``progress``, when given, is called with the number of packets accounted for since its
    last call (its total is :func:`inspect_capture`'s ``packets``, less packets NFStream ignores).
    The capture may be compressed (gzip, zstd, xz, bzip2) and of any link type
    :mod:`derisk.ingest.linktypes` knows; the meter reads it through :mod:`derisk.ingest.feed`.
    A capture cut short is read up to the cut, with a warning, unless ``strict``. What the feed
    found (cut, packets with wild timestamps, conversions) goes into ``notes`` when given.
    Raises :class:`derisk.errors.InputError` naming the file when it cannot be used; no batch is
    yielded before the file has been checked and its DNS answers collected.
    """
    found = _probe(path)
    # NFStream pins the process that iterates it to the first CPUs; give the rest of derisk its CPUs back.
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    feeds: list[Feed] = []
    # The libpcap pass (framing check, DNS answers) runs beside the meter, which works in its own
    # process; names are filled in when a batch is built, so no batch leaves before the file is checked.
    with (
        scratch.directory("feed") as pipes,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="derisk-dns") as pool,
    ):
        try:
            meter_pipe = _pipe(Path(pipes) / "meter")
            if found.compression is None and found.linktype in SCAN_LINKTYPES and not found.rewrite:
                feed = Feed(path, found)
                feeds.append(feed)
                feed.start(meter_pipe)
                bpf = _dns_filter(found.linktype, found.mpls)
                scanning = pool.submit(_scan_file, path, found, strict, bpf, Path(pipes))
            else:  # libpcap reads the same decompressed, converted stream as the meter, from a second pipe
                scan_pipe = _pipe(Path(pipes) / "scan")
                out = _tee_linktype(found)
                feed = Feed(path, found, ethernet=out == 1)
                feed.dns_only = True  # the DNS pass's pipe: the few records its filter may take
                feeds.append(feed)
                feed.start(meter_pipe, scan_pipe)
                scanning = pool.submit(_scan_fed, feed, scan_pipe, path, strict, _dns_filter(out, found.mpls))
            joiner = HalfJoiner(NFSTREAM_OPTIONS["idle_timeout"])
            exports = ExportShare()
            yield from _meter(path, meter_pipe, scanning, progress, joiner, exports)
            _conclude(path, found, feed.join(), strict, notes, joiner.joined)
            exports.conclude(path, notes)
        finally:
            for running in feeds:
                running.stop()
            if affinity is not None:
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(0, affinity)


#: Link types whose frames the libpcap pass decodes itself (see derisk.ingest.dnsanswers).
SCAN_LINKTYPES: Final = frozenset({0, 1, 12, 101, 108, 113, 276})


def _probe(path: Path) -> Probe:
    try:
        if path.is_dir():
            raise _fail(path, "is a directory, not a capture file")
        if path.stat().st_size == 0:
            raise _fail(path, "empty file (0 bytes), not a capture")
        return probe(path)
    except OSError as exc:
        raise os_error(path, exc) from None


def _pipe(where: Path) -> Path:
    os.mkfifo(where, 0o600)
    return where


def _dns_filter(linktype: int, mpls: bool) -> str:
    if linktype != 1:
        return DNS_FILTER
    return DNS_FILTER_MPLS if mpls else DNS_FILTER_VLAN


def _tee_linktype(found: Probe) -> int:
    """The link type of the stream the meter and the DNS pass both read from one feed: the capture's
    own where both read it (a classic pcap), else Ethernet."""
    if (
        found.fmt == "pcap"
        and found.linktype in SCAN_LINKTYPES
        and linktypes.converter(found.linktype) is None
    ):
        return found.linktype
    return 1


#: How libpcap refuses a pcapng interface unlike its first one (in link type or snapshot length).
_UNLIKE_INTERFACE: Final = "different from the"


def _scan_file(
    path: Path, found: Probe, strict: bool, bpf: str, pipes: Path
) -> tuple[AnswerMap, LongQueries]:
    """The libpcap pass over the file itself. A pcapng that describes an interface unlike its first
    one beyond the probe's first 64 KiB (libpcap refuses it) is scanned again from a feed that writes
    every frame as Ethernet, as the meter reads it."""
    try:
        return scan(path, found.fmt, strict=strict, bpf=bpf)
    except InputError as exc:
        if found.fmt != "pcapng" or _UNLIKE_INTERFACE not in str(exc):
            raise
    feed = Feed(path, dataclasses.replace(found, rewrite=True), ethernet=True)
    pipe = _pipe(pipes / "rescan")
    feed.start(pipe)
    try:
        answers = scan(pipe, "pcap", strict=strict, name=path, bpf=_dns_filter(1, found.mpls))
        report = feed.join()
        if report.error is not None:
            raise report.error
        return answers
    finally:
        feed.stop()


def _scan_fed(feed: Feed, pipe: Path, path: Path, strict: bool, bpf: str) -> tuple[AnswerMap, LongQueries]:
    """The libpcap pass over the feed's second pipe; the feed's own diagnosis (corrupt, cut) comes first."""
    try:
        found = scan(pipe, "pcap", strict=strict, name=path, bpf=bpf)
    finally:
        feed.release()  # however the pass ended, the meter's pipe goes on alone
    report = feed.join()
    if report.error is not None:
        raise report.error
    if strict and report.cut_at is not None:
        raise _fail(path, f"{_cut_text(report)}; refused with --strict")
    return found


def _cut_text(report: FeedReport) -> str:
    return f"capture cut off at byte {report.cut_at:,} ({report.cut_what})"


def _conclude(
    path: Path, found: Probe, report: FeedReport, strict: bool, notes: dict[str, Any] | None, joined: int
) -> None:
    """Errors and warnings from what the feed met, once the meter has read everything."""
    if report.error is not None:
        raise report.error
    warnings: list[str] = []
    if report.cut_at is not None:
        if strict:
            raise _fail(path, f"{_cut_text(report)}; refused with --strict")
        if report.records == 0:
            raise _fail(path, f"truncated {found.fmt}: {_cut_text(report)}, before its first packet")
        warnings.append(f"{_cut_text(report)}; the {report.records:,} packets before the cut were read")
    if report.wild:
        warnings.append(
            f"{report.wild:,} packets left out for their timestamps ({report.future:,} in the future, "
            f"{report.jumped:,} far ahead of the packets around them, {report.behind:,} far behind them)"
        )
    if report.unusable:
        warnings.append(f"{report.unusable:,} frames without an IP packet left out")
    for warning in warnings:
        log.warning("%s: %s", path, warning)
    if joined:
        log.info(
            "%s: %d one-way halves tagged on different VLANs joined into %d flows", path, joined, joined // 2
        )
    converted = found.compression is not None and wiretap.converts(found.compression)
    if notes is not None:
        notes.update(
            link_type=linktypes.name(found.linktype),
            compression=None if converted else found.compression,
            # the file's own format: pcap, pcapng, or wiretap's name of a format editcap converted
            file_format=wiretap.base(found.compression) if converted and found.compression else found.fmt,
            packets=report.records,
            converted=report.converted,
            wild_timestamps=report.wild,
            cut_at_byte=report.cut_at,
            vlan_halves_joined=joined,
            warnings=warnings,
        )


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


def _checked(path: Path, source: Path, scanning: Future[tuple[AnswerMap, LongQueries]]) -> Iterator[Any]:
    """NFStream's flows; when the meter fails, the file check's diagnosis (if it found one) is the error."""
    try:
        yield from _run(path, _streamer(source, **NFSTREAM_OPTIONS))
    except InputError:
        problem = scanning.exception()
        if problem is not None:
            raise problem from None
        raise


def _batches(table: pa.Table) -> Iterator[pa.RecordBatch]:
    for batch in table.to_batches(max_chunksize=MIN_BATCH_ROWS):
        if batch.num_rows:
            yield batch


def _meter(
    path: Path,
    pipe: Path,
    scanning: Future[tuple[AnswerMap, LongQueries]],
    progress: Callable[[int], None] | None,
    joiner: HalfJoiner,
    exports: ExportShare,
) -> Iterator[pa.RecordBatch]:
    """The meter's flows in batches; halves of one connection split by VLAN tags joined (``joiner``)."""
    columns: dict[str, list[Any]] = {name: [] for name in _COLUMNS}
    vlans: list[int] = []
    #: Rows whose name depends on the scan: (row, src, dst, sport, dport, proto, first ms).
    pending: list[tuple[int, str, str, int, int, int, int]] = []
    pending_packets = rows = flows = 0

    def batch() -> Iterator[pa.RecordBatch]:
        _resolve_names(columns, pending, scanning.result())
        yield from map(by_opener, _batches(joiner.push(batch_from_columns(columns), vlans)))

    for flow in _checked(path, pipe, scanning):
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
        application = _text(flow.application_name)
        columns["application"].append(application)
        exports.add(application, flow.bidirectional_bytes, flow.dst_port if ported else None)
        columns["ja4"].append(_text(flow.client_fingerprint))
        columns["user_agent"].append(_text(flow.user_agent))
        columns["dns_query"].append(dns_query)
        vlans.append(flow.vlan_id or 0)
        pending_packets += flow.bidirectional_packets
        rows += 1
        flows += 1
        if progress is not None and flows % PROGRESS_EVERY == 0:
            progress(pending_packets)
            pending_packets = 0
        if rows == MIN_BATCH_ROWS:
            yield from batch()
            columns = {name: [] for name in _COLUMNS}
            pending, vlans = [], []
            rows = 0
    scanning.result()  # the file's check decides even when it held no flow
    if rows:
        yield from batch()
    yield from map(by_opener, _batches(joiner.finish()))
    if flows == 0:
        log.warning("%s: the capture holds no IP flows", path)
    if progress is not None and pending_packets:
        progress(pending_packets)
