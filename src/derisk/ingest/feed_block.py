"""The feed's fast path: a whole buffer of classic pcap records converted at once, column-wise.

:class:`derisk.ingest.feed.Feed` walks records one by one in Python, which cost 1.5 µs a record for
an Ethernet capture and 3-4.5 µs for a converted link type (most of the CPU a converted or
compressed capture costs beyond its Ethernet twin; docs/benchmarks.md). Here a buffer's records are
found with the least Python a record can take (one unpack and one append), and everything else is
done on NumPy columns: the time window of :meth:`Feed._timed`, the conversion of the link-layer
header, the output headers. Each output record is the tail of its input record (its network layer)
behind a new prefix (the output record header, and the Ethernet header where one is made), written
in place over the bytes the conversion drops, so the output is a few slices of one copy of the buffer.

:func:`convert` handles the common cases exactly as the record-by-record walk does and declines a
buffer (returns None) for anything else: a packet outside the time window, a frame too short for
its header or of an unusual layout, nested outer tags. The walk then takes that buffer, so every
rare case keeps its one implementation; ``tests/test_feed_block.py`` checks that both give the same
bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from derisk.ingest import linktypes

#: Link types NFStream reads as they are, other than Ethernet: their records pass unchanged (only
#: their times are checked), as whole buffers instead of record by record.
PASSED: Final = linktypes.NATIVE - {1}
#: Link types this path converts (besides Ethernet, whose frames pass as they are unless tagged).
CONVERTED: Final = frozenset({192, 239, 276})
#: Link types this path takes.
BLOCK_LINKTYPES: Final = frozenset({1}) | CONVERTED | PASSED

_CAPLEN = struct.Struct("<I").unpack_from
_IPV4, _IPV6 = 0x0800, 0x86DD
#: Outer tags by EtherType (big-endian 16-bit value) with their length.
_TAGS: Final = {int.from_bytes(k, "big"): v for k, v in linktypes.OUTER_TAGS.items()}
_TAG_TYPES: Final = np.array(sorted(_TAGS), np.int64)
#: NFLOG attributes looked at before the one carrying the packet (type 9); more: the walk decides.
_NFLOG_STEPS: Final = 8

Ints = npt.NDArray[np.int64]
#: (tail start, tail end, prefix, changed) per record.
Layout = tuple[Ints, Ints, npt.NDArray[np.uint8], npt.NDArray[np.bool_]]


@dataclass
class Block:
    """What :func:`convert` made of a buffer."""

    data: bytes | memoryview  #: the output records
    end: int  #: where the first record not taken (incomplete) starts
    records: int
    converted: int
    clock: int | None
    #: With ``dns``: the output records a DNS pass's BPF filter might take (see :func:`dns_candidates`).
    dns: bytes | memoryview | None = None


def _starts(buf: bytes, pos: int, end: int, limit: int) -> tuple[list[int], int] | None:
    """Offsets of the complete records from ``pos``, and where the rest starts; None on a record
    longer than ``limit`` (corruption: the walk reports it)."""
    starts: list[int] = []
    append = starts.append
    while pos + 16 <= end:
        (captured,) = _CAPLEN(buf, pos + 8)
        if captured > limit:
            return None
        stop = pos + 16 + captured
        if stop > end:
            break
        append(pos)
        pos = stop
    return starts, pos


def _u16(data: npt.NDArray[np.uint8], at: Ints, order: str = "big") -> Ints:
    """The 16-bit values at offsets ``at`` of ``data``."""
    high, low = data[at].astype(np.int64), data[at + 1].astype(np.int64)
    return high << 8 | low if order == "big" else low << 8 | high


def in_window(ts: Ints, clock: int | None, window: tuple[int, int] | None) -> tuple[bool, int | None]:
    """Whether every packet is inside the window around the clock (as :meth:`Feed._timed` keeps
    it: the clock is the latest time kept), and the clock after them."""
    if window is None or not len(ts):
        return True, clock
    jump, future = window
    first = int(ts[0]) if clock is None else clock
    before = np.maximum.accumulate(np.concatenate(([first], ts[:-1])))
    ok = bool(np.all(ts <= future) and np.all(ts <= before + jump) and np.all(ts >= before - jump))
    return ok, max(first, int(ts.max()))


def convert(
    buf: bytes,
    pos: int,
    end: int,
    linktype: int,
    *,
    limit: int,
    clock: int | None,
    window: tuple[int, int] | None,
    dns: bool = False,
) -> Block | None:
    """Convert the complete little-endian microsecond pcap records of ``buf[pos:end]`` of
    ``linktype`` into Ethernet (or pass Ethernet as it is); None when the walk must take them.

    ``window``: (jump, future) in µs when wild timestamps are left out (any packet outside it
    declines the buffer), None when every packet is kept. ``dns``: also pick the output records
    a DNS pass needs (:attr:`Block.dns`); only output in Ethernet framing is picked from, a link
    type of :data:`PASSED` goes to the DNS pass whole (``Block.dns`` None).
    """
    found = _starts(buf, pos, end, limit)
    if found is None:
        return None
    starts, stop_at = found
    n = len(starts)
    if n == 0:
        return Block(b"", stop_at, 0, 0, clock)
    data = np.frombuffer(buf, np.uint8, count=stop_at)
    st = np.array(starts, np.int64)
    head = data[st[:, None] + np.arange(16)].view("<u4").astype(np.int64)
    sec, frac, cap, wire = head[:, 0], head[:, 1], head[:, 2], head[:, 3]
    ts = sec * 1_000_000 + frac
    ok, clock = in_window(ts, clock, window)
    if not ok:
        return None
    return build(buf, data, pos, stop_at, linktype, (st + 16, cap, wire, ts), clock=clock, dns=dns)


def build(
    buf: bytes,
    data: npt.NDArray[np.uint8],
    pos: int,
    stop_at: int,
    linktype: int,
    records: tuple[Ints, Ints, Ints, Ints],
    *,
    clock: int | None,
    dns: bool,
    headers_kept: bool = True,
) -> Block | None:
    """The output of the records of ``buf[pos:stop_at]`` (``data`` is a view of it), given per
    record as (frame offset, captured length, original length, time in µs); None when one needs
    the walk. ``headers_kept``: each frame follows its own classic pcap record header, which stays
    as it is when the frame does; else (pcapng) every record gets a new header in the 16 bytes
    before its frame."""
    frame, cap, wire, ts = records
    n = len(frame)
    dns = dns and linktype not in PASSED
    made = _layout(data, linktype, frame, cap)
    if made is None:
        return None
    tail, tail_end, prefix, converted = made
    width = prefix.shape[1]
    if headers_kept:
        rewrite = converted
    else:  # unchanged frames too: a new header, and the bytes of the prefix's link header as they are
        rewrite = np.ones(n, np.bool_)
        rows = np.flatnonzero(~converted)
        if len(rows) and width > 16:
            tail[rows] = frame[rows] + (width - 16)
            prefix[rows, 16:] = data[frame[rows, None] + np.arange(width - 16)]
    stop = np.where(converted, tail_end, frame + cap)
    new_cap = stop - tail + width - 16
    new_wire = np.where(converted, np.maximum(wire + new_cap - cap, new_cap), wire)
    head = np.stack([ts // 1_000_000, ts % 1_000_000, new_cap, new_wire], axis=1)
    prefix[:, :16] = head.astype("<u4").view(np.uint8)
    rows = np.flatnonzero(rewrite)
    if not len(rows):  # nothing to change: the records as they are, not even copied
        whole = memoryview(buf)[pos:stop_at]
        st = frame - 16
        picked = _picked(whole, dns_candidates(data, st, stop), st - pos, stop - pos) if dns else None
        return Block(whole, stop_at, n, 0, clock, picked)
    begin = tail - width
    # records left as they are (untagged Ethernet in a classic pcap) keep their bytes, header included
    keep = ~rewrite
    begin[keep] = frame[keep] - 16
    work = np.array(data[pos:stop_at])
    work[(begin[rows] - pos)[:, None] + np.arange(width)] = prefix[rows]
    # output: one slice per run of records that follow each other in the copy
    cuts = np.flatnonzero(begin[1:] != stop[:-1]) + 1
    firsts = (begin[np.concatenate(([0], cuts))] - pos).tolist()
    lasts = (stop[np.concatenate((cuts - 1, [n - 1]))] - pos).tolist()
    view = memoryview(work.data)
    out = b"".join(map(view.__getitem__, map(slice, firsts, lasts)))
    picked = None
    if dns:
        picked = _picked(view, dns_candidates(work, begin - pos, stop - pos), begin - pos, stop - pos)
    return Block(out, stop_at, n, int(np.count_nonzero(converted)), clock, picked)


#: Transport protocols whose ports libpcap's ``port`` primitive reads (TCP, UDP, SCTP).
_PORTED: Final = np.array([6, 17, 132], np.int64)
_DNS_PORT: Final = 53


def dns_candidates(out: npt.NDArray[np.uint8], begin: Ints, stop: Ints) -> npt.NDArray[np.bool_]:
    """Which output records (Ethernet, record ``i`` at ``out[begin[i]:stop[i]]``) the DNS pass's
    BPF filter might take: all but those it cannot, an untagged IPv4 or IPv6 frame whose whole
    transport header start is captured and that is either no TCP/UDP/SCTP datagram (IPv4) or one
    with neither port 53. Tagged frames, MPLS, IPv6 extension headers, short frames: kept, for the
    filter to decide as before, so the DNS pass finds exactly what it found in the whole stream.
    """
    last = len(out) - 1
    frame = begin + 16
    cap = stop - frame

    def byte(at: Ints) -> Ints:
        return out[np.minimum(at, last)].astype(np.int64)

    def u16(at: Ints) -> Ints:
        return byte(at) << 8 | byte(at + 1)

    ethertype = np.where(cap >= 14, u16(frame + 12), -1)
    ip = frame + 14
    first = byte(ip)
    # IPv4: the header length from its first byte, as the filter computes the transport offset
    ihl = (first & 0x0F) * 4
    v4 = (ethertype == 0x0800) & (cap >= 34) & (first >> 4 == 4) & (ihl >= 20)
    l4_v4 = ip + ihl
    proto = byte(ip + 9)
    ported_v4 = np.isin(proto, _PORTED)
    # IPv6: only a transport header right after the fixed header has ports for the filter
    v6 = (ethertype == 0x86DD) & (cap >= 58)
    l4_v6 = ip + 40
    ported_v6 = np.isin(byte(ip + 6), _PORTED)
    l4 = np.where(v4, l4_v4, l4_v6)
    captured = l4 + 4 <= stop
    no_dns = (u16(l4) != _DNS_PORT) & (u16(l4 + 2) != _DNS_PORT)
    skip_v4 = v4 & (~ported_v4 | (captured & no_dns))
    skip_v6 = v6 & ported_v6 & captured & no_dns
    keep: npt.NDArray[np.bool_] = ~(skip_v4 | skip_v6)
    return keep


def _picked(view: memoryview, keep: npt.NDArray[np.bool_], begin: Ints, stop: Ints) -> bytes:
    """The records of ``view`` that ``keep`` marks, in order."""
    rows = np.flatnonzero(keep)
    return b"".join(map(view.__getitem__, map(slice, begin[rows].tolist(), stop[rows].tolist())))


def _layout(data: npt.NDArray[np.uint8], linktype: int, frame: Ints, cap: Ints) -> Layout | None:
    """Per record: where the kept tail starts and ends, the prefix to put before it (its first 16
    bytes left for the record header), and whether the record changes; None when a record needs the walk."""
    n = len(frame)
    if linktype in PASSED:  # read by the meter as they are: nothing changes
        return frame, frame + cap, np.zeros((n, 16), np.uint8), np.zeros(n, np.bool_)
    if linktype == 1:  # Ethernet: only frames with an outer tag change
        if not np.all(cap >= 14):
            return None
        ethertype = _u16(data, frame + 12)
        tagged = np.isin(ethertype, _TAG_TYPES)
        prefix = np.zeros((n, 28), np.uint8)
        tail = frame.copy()
        rows = np.flatnonzero(tagged)
        if len(rows):
            skip = np.array([_TAGS[t] for t in ethertype[rows].tolist()], np.int64)
            if not np.all(cap[rows] >= 14 + skip):
                return None
            if np.any(np.isin(_u16(data, frame[rows] + 12 + skip), _TAG_TYPES)):
                return None  # nested outer tags: the walk strips them one by one
            tail[rows] = frame[rows] + 12 + skip
            prefix[rows, 16:28] = data[frame[rows, None] + np.arange(12)]
        return tail, frame + cap, prefix, tagged
    if linktype == 276:  # Linux cooked v2: zero MACs, the EtherType it carries first
        if not np.all(cap >= 20):
            return None
        prefix = np.zeros((n, 30), np.uint8)
        prefix[:, 28] = data[frame]
        prefix[:, 29] = data[frame + 1]
        return frame + 20, frame + cap, prefix, np.ones(n, np.bool_)
    if linktype == 192:  # PPI around an Ethernet frame: the frame as it is, unless tagged
        if not np.all(cap >= 8):
            return None
        length = _u16(data, frame + 2, "little")
        inner = data[frame[:, None] + np.arange(4, 8)].view("<u4")[:, 0]
        if not (np.all(inner == 1) and np.all(length >= 8) and np.all(cap - length >= 14)):
            return None
        if np.any(np.isin(_u16(data, frame + length + 12), _TAG_TYPES)):
            return None
        return frame + length, frame + cap, np.zeros((n, 16), np.uint8), np.ones(n, np.bool_)
    if linktype == 239:
        return _nflog(data, frame, cap)
    return None


def _nflog(data: npt.NDArray[np.uint8], frame: Ints, cap: Ints) -> Layout | None:
    """NFLOG: the packet attribute (type 9) found by walking the attributes of every record at once."""
    n = len(frame)
    if not np.all(cap >= 4):
        return None
    offset = np.full(n, 4, np.int64)
    payload = np.full(n, -1, np.int64)
    length = np.zeros(n, np.int64)
    todo = np.arange(n)
    for _ in range(_NFLOG_STEPS):
        if not len(todo):
            break
        if not np.all(offset[todo] + 4 <= cap[todo]):
            return None
        at = frame[todo] + offset[todo]
        size, kind = _u16(data, at, "little"), _u16(data, at + 2, "little")
        if not np.all(size >= 4):
            return None
        hit = (kind & 0x7FFF) == 9
        payload[todo[hit]] = offset[todo[hit]] + 4
        length[todo[hit]] = size[hit] - 4
        offset[todo] += (size + 3) & ~3
        todo = todo[~hit]
    # every packet found, with room before it for the 30-byte prefix (record and Ethernet headers)
    if len(todo) or not np.all(payload >= 14):
        return None
    start = frame + payload
    stop = np.minimum(start + length, frame + cap)
    if not np.all(stop > start):
        return None
    family = data[frame]
    ethertype = np.where(family == 2, _IPV4, np.where(family == 10, _IPV6, 0))
    version = data[start] >> 4
    by_version = np.where(version == 4, _IPV4, np.where(version == 6, _IPV6, 0))
    ethertype = np.where(ethertype == 0, by_version, ethertype)
    if not np.all(ethertype != 0):
        return None
    prefix = np.zeros((n, 30), np.uint8)
    prefix[:, 28] = ethertype >> 8
    prefix[:, 29] = ethertype & 0xFF
    return start, stop, prefix, np.ones(n, np.bool_)
