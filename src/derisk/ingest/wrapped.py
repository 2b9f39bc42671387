"""Link layers that carry IP further in than one fixed header: IEEE 802.11 and Apple's PKTAP.

* **IEEE 802.11** (link type 105), bare or under a **radiotap** header (127) or a PPI header whose
  inner link type is 802.11 (:func:`derisk.ingest.linktypes`'s PPI reader calls :func:`ieee80211`): a
  data frame that is not protected carries an LLC/SNAP header and then the EtherType and the network
  layer, as Ethernet does. Management and control frames, null data frames, protected (encrypted)
  frames and aggregated MSDUs carry no IP that derisk can read: they come back as None and are counted
  as frames without an IP packet. A monitor-mode capture of an encrypted network therefore holds no
  flows, and says so.
* **PKTAP** (258, and 149 where macOS's ``tcpdump -k`` wrote it as USER2): Apple's per-packet header
  (its own length first, the inner link type at byte 8, host byte order) in front of the frame.

Each function returns the EtherType and the network layer; :mod:`derisk.ingest.linktypes` builds the
Ethernet frame. Values are read from the frame with bounds checked: a short or odd frame is None.
"""

from __future__ import annotations

import struct
from typing import Final

#: LLC/SNAP headers that carry an EtherType: RFC 1042 and 802.1H bridge-tunnel encapsulation.
_SNAP: Final = (b"\xaa\xaa\x03\x00\x00\x00", b"\xaa\xaa\x03\x00\x00\xf8")
#: Radiotap fields before Flags: TSFT (bit 0), 8 bytes aligned to 8.
_TSFT: Final = 1
_FLAGS: Final = 1 << 1
_EXT: Final = 1 << 31
#: Radiotap Flags: the frame ends with its 4-byte FCS.
_FCS_AT_END: Final = 0x10
#: PKTAP's own header is at least this long (``struct pktap_header`` of macOS).
_PKTAP_MIN: Final = 108


def ieee80211(frame: bytes, fcs: bool = False) -> tuple[int, bytes] | None:
    """(EtherType, network layer) of an unprotected 802.11 data frame; ``fcs``: the frame ends with one."""
    if len(frame) < 24:
        return None
    control, flags = frame[0], frame[1]
    kind, subtype = (control >> 2) & 0x3, control >> 4
    if control & 0x3 or kind != 2 or subtype & 0x4 or flags & 0x40:  # version, data, has data, protected
        return None
    header = 30 if flags & 0x3 == 0x3 else 24  # four addresses when going from one DS to another
    if subtype & 0x8:  # QoS data: QoS control, and an HT control field when the Order bit is set
        if len(frame) < header + 2 or frame[header] & 0x80:  # an A-MSDU: several frames in one
            return None
        header += 2 + (4 if flags & 0x80 else 0)
    end = len(frame) - (4 if fcs else 0)
    llc = frame[header : header + 8]
    if len(llc) < 8 or llc[:6] not in _SNAP or header + 8 > end:
        return None
    return struct.unpack_from(">H", llc, 6)[0], frame[header + 8 : end]


def radiotap(frame: bytes) -> tuple[int, bytes] | None:
    """(EtherType, network layer) of an 802.11 frame under a radiotap header."""
    if len(frame) < 8 or frame[0] != 0:
        return None
    length = struct.unpack_from("<H", frame, 2)[0]
    if length < 8 or length > len(frame):
        return None
    present, offset = struct.unpack_from("<I", frame, 4)[0], 8
    words = present
    while words & _EXT and offset + 4 <= length:  # further presence words
        words = struct.unpack_from("<I", frame, offset)[0]
        offset += 4
    fcs = False
    if present & _FLAGS:
        if present & _TSFT:
            offset = (offset + 7) & ~7
            offset += 8
        fcs = offset < length and bool(frame[offset] & _FCS_AT_END)
    return ieee80211(frame[length:], fcs)


def pktap(frame: bytes) -> tuple[int, bytes] | None:
    """(inner link type, inner frame) of a PKTAP record, or None when the header does not hold up."""
    if len(frame) < 12:
        return None
    for order in ("<", ">"):
        length, _, inner = struct.unpack_from(order + "III", frame, 0)
        if _PKTAP_MIN <= length <= len(frame) and inner < 0x10000:
            return inner, frame[length:]
    return None
