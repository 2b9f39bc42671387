"""Golden tests of pcap ingest: what read_pcap reports must equal the generator's own ledger exactly."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from derisk.errors import InputError
from derisk.flows import INGEST_SCHEMA
from derisk.gen.model import Conversation, DnsLookup, Exchange, HttpRequest, Ledger, LedgerEntry, TlsHello
from derisk.gen.packets import write_capture
from derisk.ingest.pcap import inspect_capture, read_pcap

T0 = datetime(2026, 3, 2, 8, 0, 0, tzinfo=UTC)
HOSTILE_UA = "Mozilla/5.0 \"quoted\" 'single' \x07bell\x1b[31mred</td><script>x</script>"
HOSTILE_SNI = "<script>alert(1)</script>.evil.example"
LONG_NAME = ".".join(["a" * 60, "b" * 60, "c" * 60, "d" * 50, "example"])  # 246 characters, valid DNS


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def conversations(*, ipv6: bool = True) -> list[Conversation]:
    """Every kind of flow the generator writes; the resolver answers names used by later flows."""
    c: list[Conversation] = [
        Conversation(
            "udp",
            "10.20.1.20",
            "10.20.0.53",
            at(0),
            40001,
            53,
            dns=DnsLookup("oss-eu-central-1.aliyuncs.com", "A", ("47.254.129.10",)),
            label="dns-a",
        ),
        Conversation(
            "udp",
            "10.20.1.20",
            "10.20.0.53",
            at(0.5),
            40002,
            53,
            dns=DnsLookup(LONG_NAME, "A", ("47.254.129.11",)),
            label="dns-long",
        ),
        Conversation(
            "udp",
            "10.20.1.20",
            "10.20.0.53",
            at(0.7),
            40003,
            53,
            dns=DnsLookup("nothing-here.example", "A", ()),
            label="dns-nxdomain",
        ),
        Conversation(
            "tcp",
            "10.20.1.21",
            "47.254.129.10",
            at(1),
            50001,
            443,
            (Exchange("c2s", 4000), Exchange("s2c", 30000), Exchange("c2s", 700, gap=2.0)),
            tls=TlsHello("oss-eu-central-1.aliyuncs.com"),
            label="tls",
        ),
        Conversation(
            "tcp",
            "10.20.1.21",
            "47.254.129.10",
            at(2),
            50002,
            8883,
            (Exchange("c2s", 900), Exchange("s2c", 120)),
            label="plain-tcp-answered",
        ),
        Conversation(
            "tcp",
            "10.20.1.22",
            "47.254.129.11",
            at(2.5),
            50003,
            9000,
            (Exchange("c2s", 300), Exchange("s2c", 300)),
            label="plain-tcp-long-name",
        ),
        Conversation(
            "tcp",
            "10.20.1.23",
            "93.184.216.34",
            at(3),
            50004,
            80,
            (Exchange("c2s", 2000),),
            http=HttpRequest("cargo.example.net", HOSTILE_UA, response_body=5000),
            label="http",
        ),
        Conversation(
            "tcp",
            "10.20.1.24",
            "198.51.100.7",
            at(3.2),
            50005,
            443,
            (Exchange("c2s", 100), Exchange("s2c", 100)),
            tls=TlsHello(HOSTILE_SNI),
            label="tls-hostile",
        ),
        Conversation(
            "udp",
            "10.20.1.25",
            "203.0.113.9",
            at(4),
            50006,
            5000,
            (Exchange("c2s", 1200), Exchange("s2c", 80), Exchange("c2s", 1200)),
            label="udp",
        ),
        Conversation(
            "icmp",
            "10.20.1.26",
            "8.8.8.8",
            at(5),
            exchanges=(
                Exchange("c2s", 56),
                Exchange("s2c", 56),
                Exchange("c2s", 56, gap=1.0),
                Exchange("s2c", 56),
            ),
            label="ping",
        ),
    ]
    if ipv6:
        c += [
            Conversation(
                "udp",
                "fd00:20::20",
                "fd00:20::53",
                at(6),
                40010,
                53,
                dns=DnsLookup("login.microsoftonline.com", "AAAA", ("2603:1026:3000::10",)),
                label="dns-aaaa",
            ),
            Conversation(
                "tcp",
                "fd00:20::21",
                "2603:1026:3000::10",
                at(7),
                50010,
                8443,
                (Exchange("c2s", 2500), Exchange("s2c", 6000)),
                label="v6-answered",
            ),
            Conversation(
                "tcp",
                "fd00:20::21",
                "2a00:1450:4001::200e",
                at(8),
                50011,
                443,
                (Exchange("c2s", 1500), Exchange("s2c", 15000)),
                tls=TlsHello("www.google.com"),
                label="v6-tls",
            ),
            Conversation(
                "udp",
                "fd00:20::22",
                "2606:4700::1111",
                at(9),
                50012,
                4433,
                (Exchange("c2s", 500), Exchange("s2c", 700)),
                label="v6-udp",
            ),
            Conversation(
                "icmp",
                "fd00:20::23",
                "2001:4860:4860::8888",
                at(10),
                exchanges=(Exchange("c2s", 56), Exchange("s2c", 56)),
                label="v6-ping",
            ),
        ]
    return c


def read_table(path: Path) -> pa.Table:
    batches = list(read_pcap(path))
    for batch in batches:
        assert batch.schema == INGEST_SCHEMA
    return pa.Table.from_batches(batches, schema=INGEST_SCHEMA)


def rows_by_key(table: pa.Table) -> dict[tuple[str, int, str, int, int], dict[str, object]]:
    out: dict[tuple[str, int, str, int, int], dict[str, object]] = {}
    for row in table.to_pylist():
        key = (row["src_ip"], row["src_port"] or 0, row["dst_ip"], row["dst_port"] or 0, row["protocol"])
        assert key not in out, f"two flows for {key}"
        out[key] = row
    return out


def expected_name(entry: LedgerEntry, ledger: Ledger) -> tuple[str | None, str | None]:
    """From the ledger alone: the flow's own name, else the last DNS answer for its server address."""
    if entry.server_name is not None:
        return entry.server_name, entry.server_name_source
    if entry.dns_query is not None:
        return None, None
    answers = ledger.dns_answers().get(entry.server_ip, [])
    before = [name for when, name in answers if when // 1000 <= entry.first_us // 1000]
    if before:
        return before[-1], "dns-answer"
    return (answers[0][1], "dns-answer") if answers else (None, None)


def assert_matches_ledger(table: pa.Table, ledger: Ledger, *, names: bool) -> None:
    rows = rows_by_key(table)
    assert sorted(rows) == sorted(ledger.by_key()), "flows differ from the conversations written"
    for entry in ledger:
        row = rows[entry.key()]
        counts = (row["bytes_out"], row["bytes_in"], row["packets_out"], row["packets_in"])
        assert counts == (entry.bytes_c2s, entry.bytes_s2c, entry.packets_c2s, entry.packets_s2c), entry.label
        first, last = row["first_seen"], row["last_seen"]
        assert isinstance(first, datetime) and isinstance(last, datetime)
        assert first.tzinfo is not None
        assert first == datetime.fromtimestamp(entry.first_us // 1000 / 1000, UTC), entry.label
        assert last == datetime.fromtimestamp(entry.last_us // 1000 / 1000, UTC), entry.label
        if entry.protocol in (6, 17):
            assert (row["src_port"], row["dst_port"]) == (entry.client_port, entry.server_port)
        else:
            assert (row["src_port"], row["dst_port"]) == (None, None)
        if names:
            name = (row["server_name"], row["server_name_source"])
            assert name == expected_name(entry, ledger), entry.label
            assert row["dns_query"] == entry.dns_query, entry.label
            assert row["user_agent"] == entry.user_agent, entry.label


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_full_capture_matches_ledger(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"golden.{fmt}"
    ledger = write_capture(conversations(), path, fmt=fmt)  # type: ignore[arg-type]
    table = read_table(path)
    assert_matches_ledger(table, ledger, names=True)
    assert inspect_capture(path).packets == ledger.packets


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_snaplen_96_still_counts_wire_bytes(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"cut.{fmt}"
    ledger = write_capture(conversations(ipv6=False), path, fmt=fmt, snaplen=96)  # type: ignore[arg-type]
    assert ledger.captured_bytes < sum(e.bytes_c2s + e.bytes_s2c for e in ledger)  # really cut
    assert_matches_ledger(read_table(path), ledger, names=False)


@pytest.mark.xfail(strict=True, reason="NFStream 6.6 drops IPv6 packets stored shorter than their datagram")
def test_snaplen_96_ipv6_known_limit(tmp_path: Path) -> None:
    path = tmp_path / "cut6.pcap"
    ledger = write_capture(conversations()[-5:], path, snaplen=96)
    assert_matches_ledger(read_table(path), ledger, names=False)


def test_labels_sni_ja4_and_hostile_strings_kept_intact(tmp_path: Path) -> None:
    path = tmp_path / "labels.pcap"
    write_capture(conversations(ipv6=False), path)
    rows = {row["src_port"]: row for row in read_table(path).to_pylist()}
    tls = rows[50001]
    assert tls["application"].startswith("TLS")
    assert tls["ja4"] and tls["ja4"].startswith("t13")
    assert rows[50004]["application"] == "HTTP"
    assert rows[50004]["user_agent"] == HOSTILE_UA  # quotes, markup and control characters untouched
    assert rows[50005]["server_name"] == HOSTILE_SNI
    assert rows[50003]["server_name"] == LONG_NAME
    assert rows[40001]["application"].split(".")[0] == "DNS"
    assert rows[40001]["server_name"] is None  # a DNS flow's name is its query, not its server
    assert rows[40003]["dns_query"] == "nothing-here.example"


def test_header_only_capture_yields_nothing(tmp_path: Path) -> None:
    path = tmp_path / "empty.pcap"
    ledger = write_capture([], path)
    assert ledger.packets == 0 and path.stat().st_size == 24
    assert list(read_pcap(path)) == []


def test_progress_counts_every_packet(tmp_path: Path) -> None:
    path = tmp_path / "progress.pcapng"
    ledger = write_capture(conversations(), path, fmt="pcapng")
    seen: list[int] = []
    for _ in read_pcap(path, progress=seen.append):
        pass
    assert sum(seen) == ledger.packets


# ---- bad input: one InputError naming the file, never a traceback from NFStream ---------------------


def _golden_bytes(tmp_path: Path, fmt: str) -> bytes:
    path = tmp_path / f"src.{fmt}"
    write_capture(conversations(ipv6=False), path, fmt=fmt)  # type: ignore[arg-type]
    return path.read_bytes()


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    pcap, pcapng = _golden_bytes(tmp_path, "pcap"), _golden_bytes(tmp_path, "pcapng")
    cases = {
        "truncated pcap (last record)": (pcap[:-30], "truncated pcap"),
        "truncated pcap (inside header)": (pcap[:30], "truncated pcap"),
        "truncated pcap (file header)": (pcap[:10], "truncated pcap"),
        "truncated pcapng": (pcapng[:-30], "truncated pcapng"),
        "not a capture": (b"# Zeek conn.log\n#fields\tts\tuid\n", "not a pcap or pcapng capture"),
        "empty": (b"", "empty file"),
        "gzip": (b"\x1f\x8b\x08\x00" + b"\x00" * 20, "gzip-compressed"),
        "corrupt pcapng block length": (pcapng[:32] + b"\x07\x00\x00\x00" + pcapng[36:], "corrupt pcapng"),
        "pcapng that libpcap rejects": (pcapng[:28] + b"\xff\xff\xff\x7f" + pcapng[32:], "could not be read"),
    }
    out: dict[str, tuple[Path, str]] = {}
    for i, (name, (data, message)) in enumerate(cases.items()):
        path = tmp_path / f"bad-{i}.pcap"
        path.write_bytes(data)
        out[name] = (path, message)
    directory = tmp_path / "a-directory.pcap"
    directory.mkdir()
    out["directory"] = (directory, "is a directory")
    out["missing"] = (tmp_path / "missing.pcap", "no such file")
    return out


def test_bad_inputs_raise_one_line_input_errors(tmp_path: Path) -> None:
    for name, (path, message) in _bad_inputs(tmp_path).items():
        with pytest.raises(InputError) as caught:
            list(read_pcap(path))
        line = str(caught.value)
        assert "\n" not in line, name
        assert line.startswith(f"{path}: "), name
        assert message in line, f"{name}: {line}"
        assert caught.value.exit_code == 3


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.pcap"
    write_capture(conversations(ipv6=False), path)
    path.chmod(0)
    with pytest.raises(InputError, match="permission denied"):
        list(read_pcap(path))
