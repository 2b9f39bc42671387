"""The generator is deterministic and its ledger agrees with the file it wrote (read back with dpkt)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dpkt  # type: ignore[import-untyped]
import pytest

from derisk.gen.model import Conversation, DnsLookup, Exchange, HttpRequest, TlsHello
from derisk.gen.packets import to_us, write_capture

T0 = datetime(2026, 3, 2, 8, 0, 0, 123456, tzinfo=UTC)


def sample() -> list[Conversation]:
    return [
        Conversation(
            "tcp", "10.0.0.5", "47.254.129.10", T0, 50001, 443,
            (Exchange("c2s", 3000), Exchange("s2c", 9000)), tls=TlsHello("oss-eu-central-1.aliyuncs.com"),
        ),
        Conversation(
            "tcp", "fd00::5", "2603:1026::1", T0 + timedelta(seconds=1), 50002, 80,
            (Exchange("s2c", 100),), http=HttpRequest("example.com", "curl/8.5.0"),
        ),
        Conversation(
            "udp", "10.0.0.5", "10.0.0.53", T0 + timedelta(seconds=0.5), 40000, 53,
            dns=DnsLookup("cainiao.com", "A", ("47.254.129.10", "47.254.129.11")),
        ),
        Conversation(
            "icmp", "10.0.0.5", "8.8.8.8", T0 + timedelta(seconds=2),
            exchanges=(Exchange("c2s", 56), Exchange("s2c", 56)),
        ),
    ]  # fmt: skip


def frames(path: Path) -> list[tuple[float, bytes]]:
    with path.open("rb") as fh:
        reader = dpkt.pcapng.Reader(fh) if path.suffix == ".pcapng" else dpkt.pcap.Reader(fh)
        return [(ts, buf) for ts, buf in reader]


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_same_input_gives_byte_identical_file(tmp_path: Path, fmt: str) -> None:
    a, b = tmp_path / f"a.{fmt}", tmp_path / f"b.{fmt}"
    ledger_a = write_capture(sample(), a, fmt=fmt)  # type: ignore[arg-type]
    ledger_b = write_capture(sample(), b, fmt=fmt)  # type: ignore[arg-type]
    assert a.read_bytes() == b.read_bytes()
    assert ledger_a == ledger_b


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_ledger_agrees_with_the_file(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"s.{fmt}"
    ledger = write_capture(sample(), path, fmt=fmt)  # type: ignore[arg-type]
    read = frames(path)
    assert len(read) == ledger.packets
    times = [ts for ts, _ in read]
    assert times == sorted(times)
    assert round(times[0] * 1_000_000) == to_us(T0)
    ip_bytes = 0
    for _, buf in read:
        ip = dpkt.ethernet.Ethernet(buf).data
        ip_bytes += ip.len if isinstance(ip, dpkt.ip.IP) else 40 + ip.plen
    assert ip_bytes == sum(e.bytes_c2s + e.bytes_s2c for e in ledger)
    assert min(e.first_us for e in ledger) == to_us(T0)


def test_snaplen_cuts_stored_bytes_but_keeps_wire_lengths(tmp_path: Path) -> None:
    full, cut = tmp_path / "full.pcap", tmp_path / "cut.pcap"
    ledger_full = write_capture(sample(), full)
    ledger_cut = write_capture(sample(), cut, snaplen=96)
    assert [(e.bytes_c2s, e.bytes_s2c) for e in ledger_full] == [
        (e.bytes_c2s, e.bytes_s2c) for e in ledger_cut
    ]
    assert ledger_cut.captured_bytes < ledger_full.captured_bytes
    with cut.open("rb") as fh:
        reader = dpkt.pcap.Reader(fh)
        assert reader.snaplen == 96
        records = list(reader)
    assert all(len(buf) <= 96 for _, buf in records)
    assert len(records) == ledger_full.packets


def test_tcp_has_handshake_and_fin(tmp_path: Path) -> None:
    path = tmp_path / "tcp.pcap"
    write_capture(sample()[:1], path)
    flags = [dpkt.ethernet.Ethernet(buf).data.data.flags for _, buf in frames(path)]
    syn, ack, fin = dpkt.tcp.TH_SYN, dpkt.tcp.TH_ACK, dpkt.tcp.TH_FIN
    assert flags[:3] == [syn, syn | ack, ack]
    assert [f & fin for f in flags[-3:]] == [fin, fin, 0]


def test_dns_response_carries_the_answers(tmp_path: Path) -> None:
    path = tmp_path / "dns.pcap"
    write_capture(sample()[2:3], path)
    query, response = (dpkt.dns.DNS(dpkt.ethernet.Ethernet(buf).data.data.data) for _, buf in frames(path))
    assert query.qr == dpkt.dns.DNS_Q and query.qd[0].name == "cainiao.com"
    assert [bytes(a.rdata) for a in response.an] == [bytes([47, 254, 129, 10]), bytes([47, 254, 129, 11])]


def test_naive_start_time_is_refused(tmp_path: Path) -> None:
    naive = Conversation("udp", "10.0.0.1", "10.0.0.2", datetime(2026, 1, 1), 1, 2, (Exchange("c2s", 1),))
    with pytest.raises(ValueError, match="timezone-aware"):
        write_capture([naive], tmp_path / "x.pcap")
