"""The feed's fast path for pcapng: a run of enhanced packet blocks converted at once, column-wise.

pcapng is what Wireshark and dumpcap write by default (``dumpcap -i any`` too, in Linux cooked v2),
and what ``editcap`` makes of other tools' formats (:mod:`derisk.ingest.wiretap`). The feed's walk
(:meth:`derisk.ingest.feed.Feed._pcapng`) takes such a file block by block in Python, about three
times the CPU of a classic pcap's column-wise path. Here a buffer's run of enhanced packet blocks
(EPB, type 6) is found with one unpack per block, and the rest is :func:`.feed_block.build`: each
frame gets a classic pcap record header in the 16 bytes before it (the EPB's own header), and the
link header is converted as in a classic pcap.

:func:`convert` takes only the common case and declines (returns None) anything else, which the
walk then takes with its one implementation: a block of another type (section and interface
descriptions, name resolution, statistics, simple packet blocks) ends the run; packets of
interfaces of different link types or timestamp resolutions, a big-endian section, a time the
arithmetic of 64-bit integers cannot hold, a packet outside the time window, a block whose
lengths disagree or whose packet overruns it decline the buffer. ``tests/test_feed_pcapng.py``
checks that both give the same bytes.
"""

from __future__ import annotations

import math
import struct
from typing import Final

import numpy as np

from derisk.ingest import feed_block, linktypes
from derisk.ingest.feed_block import Block

#: An interface as the feed keeps it: (link type, µs per timestamp unit as num/den, converter).
Interface = tuple[int, int, int, linktypes.Frame | None]

_BLOCK = struct.Struct("<II").unpack_from
_EPB: Final = 6
#: An EPB's fixed part: type, length, interface, timestamp (2 words), captured, original, trailing length.
_EPB_MIN: Final = 32
_INT64_MAX: Final = (1 << 63) - 1


def _run(buf: bytes, pos: int, end: int, limit: int) -> tuple[list[int], int]:
    """Offsets of the complete enhanced packet blocks from ``pos`` up to the first other block."""
    starts: list[int] = []
    append = starts.append
    while pos + 12 <= end:
        kind, length = _BLOCK(buf, pos)
        if kind != _EPB or length < _EPB_MIN or length % 4 or length > limit or pos + length > end:
            break
        append(pos)
        pos += length
    return starts, pos


def output_linktype(interfaces: list[Interface], ethernet: bool) -> int:
    """The link type of the classic pcap the feed writes for a pcapng: that of its interfaces when
    they share one NFStream reads (and ``ethernet`` is not asked for), else Ethernet."""
    kinds = {i[0] for i in interfaces}
    out = kinds.pop() if len(kinds) == 1 else 1
    return 1 if out not in linktypes.NATIVE or ethernet else out


def fixed(interface: Interface, out: int) -> Interface:
    """``interface`` with the converter that writes its frames into an output of link type ``out``."""
    linktype, num, den, _ = interface
    if linktype == out:
        return linktype, num, den, linktypes.fix_ethernet if out == 1 else None
    return linktype, num, den, linktypes.to_ethernet(linktype) if out == 1 else linktypes.unusable


def _linktype(linktype: int, out: int) -> int | None:
    """The link type :func:`.feed_block.build` converts from, when the walk would write the frames
    of an interface of ``linktype`` into an output of link type ``out`` as it does; else None."""
    if linktype == out and (out == 1 or out in feed_block.PASSED):
        return linktype
    if out == 1 and linktype in feed_block.CONVERTED:
        return linktype
    return None


def convert(
    buf: bytes,
    pos: int,
    end: int,
    interfaces: list[Interface],
    out: int,
    *,
    limit: int,
    clock: int | None,
    window: tuple[int, int] | None,
    last_us: int,
    dns: bool = False,
) -> Block | None:
    """The run of little-endian enhanced packet blocks at ``buf[pos:end]`` as classic pcap records of
    link type ``out``; None when the walk must take them (see the module's docstring).

    ``interfaces`` and ``out`` are the walk's (:meth:`Feed._pcapng`); ``window`` as in
    :func:`.feed_block.convert`; ``last_us``: the last time a classic pcap record can carry.
    """
    starts, stop_at = _run(buf, pos, end, limit)
    n = len(starts)
    if n == 0:
        return None
    data = np.frombuffer(buf, np.uint8, count=stop_at)
    st = np.array(starts, np.int64)
    head = data[st[:, None] + np.arange(28)].view("<u4").astype(np.int64)
    length, index, high, low, cap, wire = (head[:, i] for i in range(1, 7))
    trailing = data[(st + length - 4)[:, None] + np.arange(4)].view("<u4")[:, 0]
    if not np.array_equal(trailing, length) or np.any(28 + cap > length - 4):
        return None
    if np.any(index >= len(interfaces)) or np.any(high >= 1 << 31):
        return None
    used = {interfaces[i][:3] for i in np.unique(index).tolist()}
    if len(used) != 1:
        return None
    (linktype, num, den) = used.pop()
    layout = _linktype(linktype, out)
    if layout is None:
        return None
    units = high << 32 | low
    common = math.gcd(num, den)
    mul, div = num // common, den // common
    if mul > 1 and np.any(units > _INT64_MAX // mul):
        return None
    ts = units * mul // div
    if window is None and np.any(ts > last_us):
        return None
    ok, clock = feed_block.in_window(ts, clock, window)
    if not ok:
        return None
    return feed_block.build(
        buf, data, pos, stop_at, layout, (st + 28, cap, wire, ts), clock=clock, dns=dns, headers_kept=False
    )
