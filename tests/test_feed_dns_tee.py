"""The DNS pass's pipe gets only the records its BPF filter may take (derisk.ingest.feed_block.dns_candidates).

Every frame that libpcap's own filter takes (both filters the DNS pass uses on Ethernet) must be kept,
and plain traffic that it cannot take is left out; checked against libpcap itself, frame by frame.
"""

from __future__ import annotations

import ctypes
import struct
from pathlib import Path

import pytest

from derisk.ingest import feed_block
from derisk.ingest.dnsanswers import _BpfProgram, _PacketHeader
from derisk.ingest.nfstream_engine import libpcap
from derisk.ingest.pcap import DNS_FILTER_MPLS, DNS_FILTER_VLAN

MAC = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02"


def _ipv4(proto: int, payload: bytes, *, options: bytes = b"", fragment: int = 0) -> bytes:
    ihl = 5 + len(options) // 4
    total = ihl * 4 + len(payload)
    head = struct.pack(">BBHHHBBH4s4s", 0x40 | ihl, 0, total, 1, fragment, 64, proto, 0,
                       bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))  # fmt: skip
    return head + options + payload


def _ipv6(next_header: int, payload: bytes) -> bytes:
    return (
        struct.pack(">IHBB16s16s", 0x60000000, len(payload), next_header, 64, b"\x20" * 16, b"\x21" * 16)
        + payload
    )


def _l4(sport: int, dport: int, body: bytes = b"\x00" * 20) -> bytes:
    return struct.pack(">HH", sport, dport) + body


def _eth(ethertype: int, payload: bytes) -> bytes:
    return MAC + struct.pack(">H", ethertype) + payload


def _frames() -> list[tuple[str, bytes]]:
    udp53, udp_other = _l4(40000, 53), _l4(40000, 123)
    return [
        ("udp to 53", _eth(0x0800, _ipv4(17, udp53))),
        ("udp from 53", _eth(0x0800, _ipv4(17, _l4(53, 40000)))),
        ("tcp 53", _eth(0x0800, _ipv4(6, _l4(41000, 53)))),
        ("sctp 53", _eth(0x0800, _ipv4(132, _l4(41000, 53)))),
        ("tcp 443", _eth(0x0800, _ipv4(6, _l4(41000, 443)))),
        ("udp 123", _eth(0x0800, _ipv4(17, udp_other))),
        ("icmp", _eth(0x0800, _ipv4(1, b"\x08\x00" + b"\x00" * 30))),
        ("icmp whose bytes read 53", _eth(0x0800, _ipv4(1, _l4(53, 53)))),
        ("options, udp 53", _eth(0x0800, _ipv4(17, udp53, options=b"\x01\x01\x01\x00"))),
        ("options, udp 80", _eth(0x0800, _ipv4(17, _l4(40000, 80), options=b"\x01\x01\x01\x00"))),
        ("fragment, port bytes 53", _eth(0x0800, _ipv4(17, udp53, fragment=0x0010))),
        ("fragment, other bytes", _eth(0x0800, _ipv4(17, udp_other, fragment=0x0010))),
        ("ports cut off", _eth(0x0800, _ipv4(17, udp53))[: 14 + 20 + 2]),
        ("ip header cut off", _eth(0x0800, _ipv4(17, udp53))[:30]),
        ("ipv6 udp 53", _eth(0x86DD, _ipv6(17, udp53))),
        ("ipv6 tcp 443", _eth(0x86DD, _ipv6(6, _l4(41000, 443)))),
        ("ipv6 hop-by-hop, udp 53", _eth(0x86DD, _ipv6(0, bytes([17, 0, 1, 4, 0, 0, 0, 0]) + udp53))),
        ("ipv6 cut off", _eth(0x86DD, _ipv6(17, udp53))[:50]),
        ("vlan udp 53", _eth(0x8100, b"\x00\x0a\x08\x00" + _ipv4(17, udp53))),
        ("vlan tcp 443", _eth(0x8100, b"\x00\x0a\x08\x00" + _ipv4(6, _l4(41000, 443)))),
        ("qinq udp 53", _eth(0x8100, b"\x00\x0a\x81\x00\x00\x0b\x08\x00" + _ipv4(17, udp53))),
        ("mpls udp 53", _eth(0x8847, b"\x00\x01\x01\x40" + _ipv4(17, udp53))),
        ("arp", _eth(0x0806, b"\x00\x01\x08\x00\x06\x04\x00\x01" + b"\x00" * 20)),
    ]


def _records(frames: list[bytes]) -> bytes:
    return b"".join(
        struct.pack("<IIII", 1_700_000_000 + i, 0, len(f), len(f)) + f for i, f in enumerate(frames)
    )


def _bpf_takes(library: str, bpf: str, frames: list[bytes]) -> list[bool]:
    lib = ctypes.CDLL(library)
    lib.pcap_open_dead.restype = ctypes.c_void_p
    lib.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.pcap_compile.argtypes = [ctypes.c_void_p, ctypes.POINTER(_BpfProgram), ctypes.c_char_p, ctypes.c_int,
                                 ctypes.c_uint32]  # fmt: skip
    lib.pcap_offline_filter.argtypes = [
        ctypes.POINTER(_BpfProgram),
        ctypes.POINTER(_PacketHeader),
        ctypes.c_char_p,
    ]
    lib.pcap_close.argtypes = [ctypes.c_void_p]
    lib.pcap_freecode.argtypes = [ctypes.POINTER(_BpfProgram)]
    handle = lib.pcap_open_dead(1, 262144)
    program = _BpfProgram()
    assert lib.pcap_compile(handle, ctypes.byref(program), bpf.encode(), 1, 0xFFFFFFFF) == 0
    try:
        taken = []
        for frame in frames:
            header = _PacketHeader()
            header.caplen = header.len = len(frame)
            taken.append(lib.pcap_offline_filter(ctypes.byref(program), ctypes.byref(header), frame) != 0)
        return taken
    finally:
        lib.pcap_freecode(ctypes.byref(program))
        lib.pcap_close(handle)


@pytest.mark.parametrize("bpf", [DNS_FILTER_VLAN, DNS_FILTER_MPLS])
def test_every_frame_the_filter_takes_is_kept(bpf: str) -> None:
    library = libpcap()
    if library is None:
        pytest.skip("NFStream's engine does not export libpcap here")
    named = _frames()
    frames = [f for _, f in named]
    records = _records(frames)
    buf = b"\x00" * 24 + records
    made = feed_block.convert(buf, 24, len(buf), 1, limit=1 << 20, clock=None, window=None, dns=True)
    assert made is not None and made.dns is not None
    assert bytes(made.data) == records  # the meter's stream is untouched
    kept: set[bytes] = set()
    data, at = bytes(made.dns), 0
    while at < len(data):
        (caplen,) = struct.unpack_from("<I", data, at + 8)
        kept.add(data[at + 16 : at + 16 + caplen])
        at += 16 + caplen
    takes = _bpf_takes(library, bpf, frames)
    missed = [name for (name, frame), took in zip(named, takes, strict=True) if took and frame not in kept]
    assert missed == []
    # and the pipe is spared what cannot be DNS
    left_out = {name for name, frame in named if frame not in kept}
    assert {
        "tcp 443",
        "udp 123",
        "icmp",
        "options, udp 80",
        "ipv6 tcp 443",
        "icmp whose bytes read 53",
    } <= left_out


def test_converted_records_are_picked_from_the_output(tmp_path: Path) -> None:
    """NFLOG records become Ethernet; the DNS pipe gets the converted DNS record, not the NFLOG one."""
    udp53 = _ipv4(17, _l4(40000, 53))
    other = _ipv4(6, _l4(41000, 443))

    def nflog(packet: bytes) -> bytes:
        attribute = struct.pack("<HH", 4 + len(packet), 9) + packet
        hardware = struct.pack("<HH", 12, 1) + b"\x00" * 8  # an attribute before the packet's, as in NFLOG
        return b"\x02\x00\x00\x00" + hardware + attribute + b"\x00" * (-len(attribute) % 4)

    buf = b"\x00" * 24 + _records([nflog(udp53), nflog(other)])
    made = feed_block.convert(buf, 24, len(buf), 239, limit=1 << 20, clock=None, window=None, dns=True)
    assert made is not None and made.dns is not None
    assert bytes(made.dns)[16:] == b"\x00" * 12 + b"\x08\x00" + udp53


def _drink(fifo: Path, out: list[bytes]) -> None:
    with fifo.open("rb") as fh:
        while piece := fh.read(1 << 16):
            out.append(piece)


def _stream_records(stream: bytes) -> list[bytes]:
    out, at = [], 24
    while at < len(stream):
        (caplen,) = struct.unpack_from("<I", stream, at + 8)
        out.append(stream[at : at + 16 + caplen])
        at += 16 + caplen
    return out


def _port_53(record: bytes) -> bool:
    frame = record[16:]
    if frame[12:14] != b"\x08\x00":
        return False
    l4 = 14 + (frame[14] & 0x0F) * 4
    return frame[23] in (6, 17) and 53 in struct.unpack_from(">HH", frame, l4)


def test_a_tee_gives_the_dns_pass_its_records_only(tmp_path: Path) -> None:
    """A compressed capture is decompressed once for both pipes: the meter gets every record, the
    DNS pass the same header and, in order, the records its filter may take, every DNS packet among them."""
    import bz2
    import os
    import threading

    from derisk.gen.packets import write_capture
    from derisk.ingest.feed import Feed
    from derisk.ingest.probe import probe
    from golden import conversations

    plain = tmp_path / "capture.pcap"
    write_capture(conversations(), plain)
    path = tmp_path / "capture.pcap.bz2"
    path.write_bytes(bz2.compress(plain.read_bytes()))
    feed = Feed(path, probe(path), ethernet=True)
    feed.dns_only = True
    meter, scan = tmp_path / "meter", tmp_path / "scan"
    os.mkfifo(meter)
    os.mkfifo(scan)
    got: dict[str, list[bytes]] = {"meter": [], "scan": []}
    feed.start(meter, scan)
    readers = [
        threading.Thread(target=_drink, args=(p, got[n])) for n, p in (("meter", meter), ("scan", scan))
    ]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(timeout=60)
    report = feed.join()
    feed.stop()
    assert report.error is None and report.cut_at is None
    whole, dns = b"".join(got["meter"]), b"".join(got["scan"])
    assert whole[24:] == plain.read_bytes()[24:]
    assert dns[:24] == whole[:24]
    every, kept = _stream_records(whole), _stream_records(dns)
    assert kept == [r for r in every if r in set(kept)]
    wanted = [r for r in every if _port_53(r)]
    assert wanted and all(r in kept for r in wanted)
    assert len(kept) < len(every)
