"""Every common link type gives the flows of its Ethernet twin (issue 12, item 1).

Twins are made two ways: the generator's Ethernet capture re-framed in each link type with struct and
dpkt (the ledger then says what every flow must hold), and real captures in those link types (from
tcpdump's and nDPI's test suites, and a ``tcpdump -i any`` capture of this project) against a raw-IP
twin that Wireshark's dissectors cut out of them (``tshark -T json -x``).
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import dpkt  # type: ignore[import-untyped]
import pyarrow as pa
import pytest

from derisk.errors import InputError
from derisk.flows import INGEST_SCHEMA
from derisk.gen.packets import write_capture
from derisk.ingest import linktypes
from derisk.ingest.nfstream_engine import NFSTREAM_OPTIONS
from derisk.ingest.pcap import read_pcap
from golden import conversations
from test_ingest_pcap import assert_matches_ledger

FIXTURES = Path(__file__).parent / "fixtures" / "pcap" / "linktypes"

Reframe = Callable[[bytes, bytes, int], bytes]  # (ethernet frame, IP datagram, EtherType) -> frame


def _sll(eth: bytes, ip: bytes, ethertype: int) -> bytes:
    return struct.pack(">HHH8sH", 0, 1, 6, eth[6:12] + b"\0\0", ethertype) + ip


def _sll2(eth: bytes, ip: bytes, ethertype: int) -> bytes:
    return struct.pack(">HHIHBB8s", ethertype, 0, 2, 1, 0, 6, eth[6:12] + b"\0\0") + ip


def _nflog(eth: bytes, ip: bytes, ethertype: int) -> bytes:
    family = 10 if ethertype == 0x86DD else 2
    header = struct.pack(">BBH", family, 0, 0)
    packet_header = struct.pack("<HH", 8, 1) + struct.pack(">HBB", ethertype, 0, 0)  # NFULA_PACKET_HDR
    prefix = b"derisk\0\0"
    prefix_tlv = struct.pack("<HH", 4 + len(prefix), 10) + prefix  # NFULA_PREFIX, before the payload
    payload = struct.pack("<HH", 4 + len(ip), 9) + ip
    return header + packet_header + prefix_tlv + payload + b"\0" * (-len(payload) % 4)


def _ppi(eth: bytes, ip: bytes, ethertype: int) -> bytes:
    return struct.pack("<BBHI", 0, 0, 8, 1) + eth


def _vntag(eth: bytes, ip: bytes, ethertype: int) -> bytes:
    return eth[:12] + b"\x89\x26\x80\x01\x00\x02" + struct.pack(">H", ethertype) + ip


def _etag(eth: bytes, ip: bytes, ethertype: int) -> bytes:  # 802.1BR: EtherType 0x893f, 6 bytes of E-TCI
    return eth[:12] + b"\x89\x3f\x10\x00\x00\xd3\x00\x00" + struct.pack(">H", ethertype) + ip


def _dot11(ip: bytes, ethertype: int, qos: bool = False) -> bytes:
    """An unprotected 802.11 data frame from the distribution system (QoS data when ``qos``)."""
    control = b"\x88\x02" if qos else b"\x08\x02"
    addresses = b"\x02\x00\x00\x00\x00\x01" + b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x03"
    header = control + b"\x00\x00" + addresses + b"\x10\x00" + (b"\x00\x00" if qos else b"")
    return header + b"\xaa\xaa\x03\x00\x00\x00" + struct.pack(">H", ethertype) + ip


def _radiotap(eth: bytes, ip: bytes, ethertype: int) -> bytes:
    """Radiotap with TSFT and Flags (FCS at the end), then a QoS data frame and its 4-byte FCS."""
    header = struct.pack("<BBHIQB", 0, 0, 17, 0b11, 0, 0x10)
    return header + _dot11(ip, ethertype, qos=True) + b"\xde\xad\xbe\xef"


def _pktap(eth: bytes, ip: bytes, ethertype: int) -> bytes:
    """Apple's PKTAP header (108 bytes, little-endian: length, next type, inner link type, interface)."""
    return struct.pack("<III24s", 108, 1, 1, b"en0").ljust(108, b"\0") + eth


def _family(ethertype: int, order: str) -> bytes:
    return struct.pack(order + "I", 30 if ethertype == 0x86DD else 2)


TWINS: dict[str, tuple[int, Reframe]] = {
    "linux-cooked-v1": (113, _sll),
    "linux-cooked-v2": (276, _sll2),
    "nflog": (239, _nflog),
    "ppi": (192, _ppi),
    "vn-tag": (1, _vntag),
    "e-tag": (1, _etag),
    "raw-ip-101": (101, lambda eth, ip, et: ip),
    "raw-ip-12": (12, lambda eth, ip, et: ip),
    "raw-ip-14": (14, lambda eth, ip, et: ip),
    "null": (0, lambda eth, ip, et: _family(et, "<") + ip),
    "loopback-108": (108, lambda eth, ip, et: _family(et, ">") + ip),
    "ppp": (9, lambda eth, ip, et: b"\xff\x03" + struct.pack(">H", 0x57 if et == 0x86DD else 0x21) + ip),
    "ppp-hdlc": (
        50,
        lambda eth, ip, et: b"\xff\x03" + struct.pack(">H", 0x57 if et == 0x86DD else 0x21) + ip,
    ),
    "cisco-hdlc": (104, lambda eth, ip, et: b"\x0f\x00" + struct.pack(">H", et) + ip),
    "802.1q": (1, lambda eth, ip, et: eth[:12] + struct.pack(">HHH", 0x8100, 10, et) + ip),
    "qinq-802.1ad": (
        1,
        lambda eth, ip, et: eth[:12] + struct.pack(">HHHHH", 0x88A8, 20, 0x8100, 10, et) + ip,
    ),
    "mpls": (1, lambda eth, ip, et: eth[:12] + struct.pack(">HI", 0x8847, (16 << 12) | (1 << 8) | 64) + ip),
    "ieee802.11": (105, lambda eth, ip, et: _dot11(ip, et)),
    "radiotap": (127, _radiotap),
    "ppi-802.11": (192, lambda eth, ip, et: struct.pack("<BBHI", 0, 0, 8, 105) + _dot11(ip, et, qos=True)),
    "pktap": (258, _pktap),
    "ppp-cisco-hdlc": (9, lambda eth, ip, et: b"\x0f\x00" + struct.pack(">H", et) + ip),
}


def _reframe(source: Path, path: Path, linktype: int, reframe: Reframe) -> None:
    with source.open("rb") as fh, path.open("wb") as out:
        writer = dpkt.pcap.Writer(out, linktype=linktype)
        for ts, buf in dpkt.pcap.Reader(fh):
            eth = dpkt.ethernet.Ethernet(buf)
            writer.writepkt(reframe(buf, bytes(eth.data), eth.type), ts=ts)


def _table(path: Path) -> pa.Table:
    return pa.Table.from_batches(list(read_pcap(path)), schema=INGEST_SCHEMA)


def _sorted(table: pa.Table) -> pa.Table:
    keys = ("first_seen", "src_ip", "src_port", "dst_ip", "dst_port", "protocol")
    return table.sort_by([(key, "ascending") for key in keys])


@pytest.fixture(scope="module")
def ethernet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object, pa.Table]:
    path = tmp_path_factory.mktemp("eth") / "ethernet.pcap"
    ledger = write_capture(conversations(), path)
    return path, ledger, _sorted(_table(path))


@pytest.mark.parametrize("kind", sorted(TWINS))
def test_twin_gives_the_ethernet_flows(
    tmp_path: Path, ethernet: tuple[Path, object, pa.Table], kind: str
) -> None:
    source, ledger, expected = ethernet
    linktype, reframe = TWINS[kind]
    path = tmp_path / f"{kind}.pcap"
    _reframe(source, path, linktype, reframe)
    table = _table(path)
    assert_matches_ledger(table, ledger, names=True)  # type: ignore[arg-type]
    assert _sorted(table).equals(expected)


@pytest.mark.parametrize("kind", sorted(TWINS))
def test_pcapng_twin_gives_the_ethernet_flows(
    tmp_path: Path, ethernet: tuple[Path, object, pa.Table], kind: str
) -> None:
    """The same twins in pcapng, as dumpcap writes: VN-Tag, E-Tag and QinQ frames in a pcapng lost the
    names of their DNS answers (the probe looked for outer tags and MPLS in classic pcaps only)."""
    source, ledger, expected = ethernet
    linktype, reframe = TWINS[kind]
    path = tmp_path / f"{kind}.pcapng"
    with source.open("rb") as fh, path.open("wb") as out:
        writer = dpkt.pcapng.Writer(out, snaplen=262144, linktype=linktype)
        for ts, buf in dpkt.pcap.Reader(fh):
            eth = dpkt.ethernet.Ethernet(buf)
            writer.writepkt(reframe(buf, bytes(eth.data), eth.type), ts=ts)
    table = _table(path)
    assert_matches_ledger(table, ledger, names=True)  # type: ignore[arg-type]
    assert _sorted(table).equals(expected)


def _bare_flows(path: Path) -> int:
    import nfstream

    return sum(1 for _ in nfstream.NFStreamer(source=str(path), **NFSTREAM_OPTIONS))


READ_BUT_CONVERTED = frozenset({"radiotap", "ppp-cisco-hdlc"})


@pytest.mark.parametrize("kind", sorted(TWINS))
def test_which_link_types_nfstream_reads_itself(
    tmp_path: Path, ethernet: tuple[Path, object, pa.Table], kind: str
) -> None:
    """What linktypes.NATIVE claims, checked against NFStream itself: a link type (or Ethernet tag)
    derisk converts gives no flows to the bare meter; one it passes through gives them all. When an
    NFStream upgrade starts reading one of them, this fails and the conversion can go."""
    source, ledger, _ = ethernet
    linktype, reframe = TWINS[kind]
    path = tmp_path / f"{kind}.pcap"
    _reframe(source, path, linktype, reframe)
    converted = linktype not in linktypes.NATIVE or kind in ("vn-tag", "e-tag", "qinq-802.1ad")
    # NFStream meters these itself, but derisk converts the whole link type for its DNS pass (which
    # decodes Ethernet) and for the frames of the type NFStream does not read (PPP proper).
    converted = converted and kind not in READ_BUT_CONVERTED
    assert _bare_flows(path) == (0 if converted else len(ledger)), kind  # type: ignore[arg-type]


def _raw_twin(src: Path, dst: Path, *, ethernet: bool = False) -> int:
    """The IP datagrams Wireshark's dissectors find in ``src``, as a raw-IP pcap; with ``ethernet``,
    each behind a plain Ethernet header with its length on the wire (a snapped packet stays snapped:
    NFStream's raw-IP path drops a datagram stored shorter than its header, its Ethernet path not)."""
    out = subprocess.run(
        ["tshark", "-r", str(src), "-T", "json", "-x", "-o", "ip.defragment:FALSE"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    records = [struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1 if ethernet else 101)]
    for packet in json.loads(out):
        layers = packet["_source"]["layers"]
        ip = layers.get("ip_raw") or layers.get("ipv6_raw")
        if ip is None:
            continue
        first = ip if isinstance(ip[0], str) else ip[0]  # the outermost IP layer
        frame_raw = layers["frame_raw"]
        frame = bytes.fromhex(frame_raw[0] if isinstance(frame_raw[0], str) else frame_raw[0][0])
        data = frame[int(first[1]) :]
        wire = len(data)
        if ethernet:
            data = _TWIN_MACS + (b"\x86\xdd" if data[0] >> 4 == 6 else b"\x08\x00") + data
            wire = int(layers["frame"]["frame.len"]) - int(first[1]) + 14
        seconds, _, fraction = layers["frame"]["frame.time_epoch"].partition(".")
        nanos = int(fraction.ljust(9, "0")[:9])
        records.append(struct.pack("<IIII", int(seconds), nanos, len(data), wire) + data)
    dst.write_bytes(b"".join(records))
    return len(records) - 1


_TWIN_MACS = b"\x02\0\0\0\0\x01\x02\0\0\0\0\x02"


def _flows(table: pa.Table) -> list[tuple[object, ...]]:
    columns = ("src_ip", "src_port", "dst_ip", "dst_port", "protocol")
    counts = ("bytes_out", "bytes_in", "packets_out", "packets_in")
    return sorted(tuple(row[c] or 0 for c in columns + counts) for row in table.to_pylist())


REAL = {
    "tcpdump-nflog.pcap": (239, 4),
    "tcpdump-chdlc.pcap": (104, 1),
    "ndpi-dlt_ppp.pcap": (9, 1),
    "ndpi-ppi-someip.pcap": (192, 2),
    "live-any-sll2.pcap": (276, 15),
    "suricata-decode-sll2-01.pcap": (276, 1),
    "suricata-decode-vntag-01.pcap": (1, 1),
    "suricata-decode-etag-01.pcap": (1, 1),
}


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark (Debian package tshark) makes the twins")
@pytest.mark.parametrize("name", sorted(REAL))
def test_real_capture_gives_the_flows_wireshark_finds(tmp_path: Path, name: str) -> None:
    path = FIXTURES / name
    linktype, flows = REAL[name]
    assert struct.unpack_from("<I", path.read_bytes(), 20)[0] == linktype
    twin = tmp_path / "twin.pcap"
    assert _raw_twin(path, twin) > 0
    got = _flows(_table(path))
    assert len(got) == flows
    assert got == _flows(_table(twin))


def test_tcpdump_any_gives_the_flows_of_the_same_packets_on_lo() -> None:
    """The same 76 packets captured at once by ``tcpdump -i any`` (Linux cooked v2) and ``tcpdump -i lo``
    (Ethernet) on Debian 12 (tcpdump 4.99.3, libpcap 1.10.3)."""
    any_ = _table(FIXTURES / "live-any-sll2.pcap")
    lo = _table(FIXTURES / "live-lo-ethernet.pcap")
    assert len(any_) == 15
    assert _flows(any_) == _flows(lo)


def test_tunnels_nfstream_decodes_pass_through_unchanged() -> None:
    """VXLAN from tcpdump's tests: derisk meters the inner flows as the bare meter does."""
    path = FIXTURES / "tcpdump-vxlan.pcap"
    table = _table(path)
    assert len(table) == _bare_flows(path) > 0


def test_mixed_link_types_in_one_pcapng(tmp_path: Path, ethernet: tuple[Path, object, pa.Table]) -> None:
    """Two interfaces, Ethernet and Linux cooked v2, in one pcapng: every frame becomes Ethernet."""
    source, _, expected = ethernet
    path = tmp_path / "mixed.pcapng"
    with source.open("rb") as fh, path.open("wb") as out:
        writer = dpkt.pcapng.Writer(out, linktype=1)
        idb = dpkt.pcapng.InterfaceDescriptionBlockLE(linktype=276, snaplen=65535)
        out.write(bytes(idb))
        for n, (ts, buf) in enumerate(dpkt.pcap.Reader(fh)):
            eth = dpkt.ethernet.Ethernet(buf)
            if n % 2:
                frame, interface = _sll2(buf, bytes(eth.data), eth.type), 1
            else:
                frame, interface = buf, 0
            units = round(ts * 1_000_000)
            block = dpkt.pcapng.EnhancedPacketBlockLE(
                iface_id=interface, ts_high=units >> 32, ts_low=units & 0xFFFFFFFF, caplen=len(frame),
                pkt_len=len(frame), pkt_data=frame,
            )  # fmt: skip
            out.write(bytes(block))
        del writer
    assert _sorted(_table(path)).equals(expected)


@pytest.mark.parametrize("late", [False, True])
def test_interfaces_with_different_snapshot_lengths_in_one_pcapng(
    tmp_path: Path, ethernet: tuple[Path, object, pa.Table], late: bool
) -> None:
    """``dumpcap -i A -i B`` writes one interface block per interface, each with its snapshot length;
    libpcap refuses a second one that differs from the first, even with the same link type. ``late``:
    the second interface is described after 64 KiB of packets (a capture that gained an interface)."""
    source, _, expected = ethernet
    path = tmp_path / "snaplens.pcapng"
    with source.open("rb") as fh, path.open("wb") as out:
        writer = dpkt.pcapng.Writer(out, linktype=1, snaplen=65535)
        second = bytes(dpkt.pcapng.InterfaceDescriptionBlockLE(linktype=1, snaplen=262144))
        if not late:
            out.write(second)
        for n, (ts, buf) in enumerate(dpkt.pcap.Reader(fh)):
            if late and n % 2 and second:
                if out.tell() < 70_000:
                    n -= 1  # interface 0 until 64 KiB are written
                else:
                    out.write(second)
                    second = b""
            units = round(ts * 1_000_000)
            block = dpkt.pcapng.EnhancedPacketBlockLE(
                iface_id=(n % 2) if not second else 0, ts_high=units >> 32, ts_low=units & 0xFFFFFFFF,
                caplen=len(buf), pkt_len=len(buf), pkt_data=buf,
            )  # fmt: skip
            out.write(bytes(block))
        del writer
    assert _sorted(_table(path)).equals(expected)


def test_unsupported_link_type_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "frame-relay.pcap"
    with path.open("wb") as out:
        writer = dpkt.pcap.Writer(out, linktype=107)
        writer.writepkt(b"\x18\x41\x03\xcc" + b"\x45" * 40, ts=1_700_000_000)
    with pytest.raises(InputError) as caught:
        list(read_pcap(path))
    assert str(caught.value).startswith(f"{path}: unsupported link type: link type 107")
    assert caught.value.exit_code == 3


def _gtp_u(eth: bytes, ip: bytes, ethertype: int) -> bytes:
    """The IP packet inside GTP-U (UDP 2152) between two tunnel end points, as a mobile core carries it."""
    gtp = struct.pack(">BBHI", 0x30, 0xFF, len(ip), 0x1234) + ip
    udp = struct.pack(">HHHH", 2152, 2152, 8 + len(gtp), 0) + gtp
    outer = dpkt.ip.IP(src=bytes([192, 0, 2, 1]), dst=bytes([192, 0, 2, 2]), p=17, ttl=64, data=udp)
    outer.len = 20 + len(udp)
    return eth[:12] + b"\x08\x00" + bytes(outer)


def test_gtp_tunnel_gives_the_inner_flows(tmp_path: Path, ethernet: tuple[Path, object, pa.Table]) -> None:
    """NFStream decodes GTP-U (decode_tunnels): the flows are those inside the tunnel, with their IP
    bytes. (DNS inside tunnels is not read, so names from DNS answers are not compared.)"""
    source, _, expected = ethernet
    path = tmp_path / "gtp.pcap"
    _reframe(source, path, 1, _gtp_u)
    assert _flows(_table(path)) == _flows(expected)
