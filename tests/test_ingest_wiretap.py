"""Captures in other tools' formats (ERF, NetMon, snoop, nettl, Sniffer, ...) give the flows of their pcap twin.

Twins are made two ways: real ERF captures of libtrace's test suite against the raw-IP twin Wireshark's
dissectors cut out of them, and the generator's Ethernet capture written by Wireshark's own ``editcap -F FORMAT`` in
every format it can write that derisk reads; ERF records with extension headers, IPv4 and PoS types are
packed here by Endace's record layout (ERF 16-byte header, big-endian lengths).
"""

from __future__ import annotations

import gzip
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import dpkt  # type: ignore[import-untyped]
import pyarrow as pa
import pytest

from derisk.errors import InputError
from derisk.flows import INGEST_SCHEMA
from derisk.gen.packets import write_capture
from derisk.ingest import linktypes, resolve_inputs, sniff, wiretap
from derisk.ingest.pcap import read_pcap
from golden import conversations
from test_ingest_pcap import assert_matches_ledger
from test_linktypes import _raw_twin

FIXTURES = Path(__file__).parent / "fixtures" / "pcap" / "wiretap"

pytestmark = pytest.mark.skipif(
    not wiretap.available(), reason="captype and editcap (Debian package wireshark-common, with tshark)"
)

#: editcap's output formats derisk reads, with wiretap's name for what captype says of them.
#: Their timestamps have the format's resolution (NetMon 1 and the Sniffer formats keep less than a
#: microsecond's worth in some records); flows are compared to the millisecond the ledger keeps.
WRITTEN = {
    "snoop": "snoop",
    "netmon1": "netmon1",
    "netmon2": "netmon2",
    "ngsniffer": "ngsniffer",
    "ngwsniffer_1_1": "ngwsniffer_1_1",
    "ngwsniffer_2_0": "ngwsniffer_2_0",
    "5views": "5views",
    "visual": "visual",
    "nettl": "nettl",
    "commview-ncf": "commview-ncf",
}


def _editcap(fmt: str, source: Path, dest: Path) -> None:
    """``source`` written by Wireshark's editcap in the format ``fmt``."""
    subprocess.run(["editcap", "-F", fmt, str(source), str(dest)], check=True, capture_output=True)


def _table(path: Path, notes: dict[str, object] | None = None) -> pa.Table:
    return pa.Table.from_batches(list(read_pcap(path, notes=notes)), schema=INGEST_SCHEMA)


def _flows(table: pa.Table, *, times: bool = True) -> list[tuple[object, ...]]:
    columns: tuple[str, ...] = ("src_ip", "src_port", "dst_ip", "dst_port", "protocol")
    if times:
        columns += ("first_seen", "last_seen")
    counts = ("bytes_out", "bytes_in", "packets_out", "packets_in", "server_name", "dns_query")
    return sorted(tuple(row[c] or 0 for c in columns + counts) for row in table.to_pylist())


@pytest.fixture(scope="module")
def ethernet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object, pa.Table]:
    path = tmp_path_factory.mktemp("eth") / "ethernet.pcap"
    ledger = write_capture(conversations(), path)
    return path, ledger, _table(path)


@pytest.mark.parametrize("fmt", sorted(WRITTEN))
def test_editcap_formats_give_the_flows_of_the_pcap(
    tmp_path: Path, ethernet: tuple[Path, object, pa.Table], fmt: str
) -> None:
    source, ledger, expected = ethernet
    path = tmp_path / f"capture.{fmt}"
    _editcap(fmt, source, path)
    assert sniff(path) == WRITTEN[fmt]
    notes: dict[str, object] = {}
    table = _table(path, notes)
    assert_matches_ledger(table, ledger, names=True, time_slack_ms=1)  # type: ignore[arg-type]
    assert _flows(table, times=False) == _flows(expected, times=False)
    assert (
        notes["cut_at_byte"] is None and notes["file_format"] == WRITTEN[fmt] and notes["compression"] is None
    )


def test_lanalyzer_gives_the_flows_of_the_pcap(
    tmp_path: Path, ethernet: tuple[Path, object, pa.Table]
) -> None:
    """Novell LANalyzer files keep the capture's start as a local date and time: wiretap's reading of
    one it wrote is off by whole hours here, so only the flows and their counts are compared."""
    source, _, expected = ethernet
    path = tmp_path / "capture.tr1"
    _editcap("lanalyzer", source, path)
    assert sniff(path) == "lanalyzer"
    assert _flows(_table(path), times=False) == _flows(expected, times=False)


def test_real_erf_gives_the_flows_wireshark_finds(tmp_path: Path) -> None:
    """libtrace's 100-packet ERF trace: snapped Ethernet records with 2 bytes of padding."""
    erf, twin = FIXTURES / "libtrace-100_packets.erf", tmp_path / "twin.pcap"
    assert sniff(erf) == "erf"
    assert _raw_twin(erf, twin, ethernet=True) == 100
    got = _flows(_table(erf))
    assert len(got) == 44
    assert got == _flows(_table(twin))


def test_gzipped_erf_is_read_through_wiretap(tmp_path: Path) -> None:
    path = FIXTURES / "libtrace-5_packets.erf.gz"
    assert sniff(path) == "erf"
    plain = tmp_path / "5_packets.erf"
    plain.write_bytes(gzip.decompress(path.read_bytes()))
    got = _flows(_table(path))
    assert len(got) == 5 and got == _flows(_table(plain))


def _erf_record(ts: float, kind: int, payload: bytes, extensions: int = 0) -> bytes:
    """One ERF record: timestamp (64-bit fixed point, little-endian), type (top bit: extension headers
    follow), flags, record length, loss counter, wire length (big-endian), then the payload."""
    seconds = int(ts)
    stamp = (seconds << 32) | round((ts - seconds) * (1 << 32))
    headers = b"".join(
        struct.pack(">Q", (0x80 << 56 if i + 1 < extensions else 0) | (15 << 56) | i)
        for i in range(extensions)
    )
    body = headers + payload
    record = struct.pack("<Q", stamp) + struct.pack(
        ">BBHHH", kind | (0x80 if extensions else 0), 4, 16 + len(body), 0, len(payload)
    )
    return record + body


def _erf_twin(source: Path, path: Path, style: str) -> None:
    """The generator's capture as ERF records of one style: Ethernet with two extension headers,
    IPv4/IPv6 records, or Packet over SONET with PPP in HDLC framing."""
    out = bytearray()
    with source.open("rb") as fh:
        for ts, buf in dpkt.pcap.Reader(fh):
            eth = dpkt.ethernet.Ethernet(buf)
            ip = bytes(eth.data)
            if style == "ethernet":
                out += _erf_record(ts, 2, b"\x00\x00" + buf, extensions=2)
            elif style == "ip":
                out += _erf_record(ts, 22 if eth.type == 0x0800 else 23, ip)
            else:
                protocol = 0x0021 if eth.type == 0x0800 else 0x0057
                out += _erf_record(ts, 1, b"\xff\x03" + struct.pack(">H", protocol) + ip)
    path.write_bytes(bytes(out))


@pytest.mark.parametrize("style", ["ethernet", "ip", "pos"])
def test_erf_record_types_give_the_flows_of_the_pcap(
    tmp_path: Path, ethernet: tuple[Path, object, pa.Table], style: str
) -> None:
    source, ledger, expected = ethernet
    path = tmp_path / f"{style}.erf"
    _erf_twin(source, path, style)
    assert sniff(path) == "erf"
    table = _table(path)
    # ERF keeps a binary fraction of a second that wiretap truncates to nanoseconds: 1 ms of slack
    assert_matches_ledger(table, ledger, names=True, time_slack_ms=1)  # type: ignore[arg-type]
    assert _flows(table, times=False) == _flows(expected, times=False)


def test_erf_records_without_ip_are_left_out() -> None:
    meta = _erf_record(1.0, 27, b"\xff\x00" * 8)
    pad = _erf_record(1.0, 48, b"\x00" * 16)
    atm = _erf_record(1.0, 3, b"\x00" * 52)
    assert linktypes.converter(197) is not None
    for record in (meta, pad, atm, meta[:12]):
        assert linktypes.converter(197)(record) is None  # type: ignore[misc]
    # an extension header chain that runs past the record
    assert linktypes.converter(197)(_erf_record(1.0, 2, b"", extensions=1)[:20]) is None  # type: ignore[misc]


def test_cut_capture_keeps_the_flows_before_the_cut(
    tmp_path: Path, ethernet: tuple[Path, object, pa.Table]
) -> None:
    source = ethernet[0]
    whole = tmp_path / "whole.snoop"
    _editcap("snoop", source, whole)
    cut = tmp_path / "cut.snoop"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3 + 5])
    notes: dict[str, object] = {}
    table = _table(cut, notes)
    kept = subprocess.run(["tshark", "-r", str(cut)], capture_output=True, check=False).stdout.count(b"\n")
    assert (
        0 < sum(table.column("packets_out").to_pylist()) + sum(table.column("packets_in").to_pylist()) <= kept
    )
    assert notes["cut_at_byte"] is not None and notes["file_format"] == "snoop"
    assert any("snoop file ends inside a record" in warning for warning in notes["warnings"])  # type: ignore[attr-defined]
    with pytest.raises(InputError, match=r"capture cut off at byte .*refused with --strict"):
        list(read_pcap(cut, strict=True))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "derisk.cli", *args], capture_output=True, text=True, check=False
    )


def test_bad_foreign_captures_are_one_line_errors(
    tmp_path: Path, ethernet: tuple[Path, object, pa.Table]
) -> None:
    source = ethernet[0]
    netmon = tmp_path / "capture.netmon2"
    _editcap("netmon2", source, netmon)
    cut = tmp_path / "cut.cap"
    cut.write_bytes(netmon.read_bytes()[:3000])  # NetMon's frame table is at the end: nothing readable
    junk = tmp_path / "junk.snoop"
    junk.write_bytes(b"snoop\0\0\0\0\0\0\x02\0\0\0\x04" + b"\xff" * 7)
    for path in (cut, junk):
        with pytest.raises(
            InputError, match="Wireshark's captype says: The file appears to have been cut short"
        ):
            resolve_inputs([path])


def test_refused_foreign_capture_leaves_the_workspace(tmp_path: Path, ipdata_dir: Path) -> None:
    ws = tmp_path / "ws"
    done = _cli("analyze", str(FIXTURES / "libtrace-100_packets.erf"), "-w", str(ws), "-q")
    assert done.returncode == 0, done.stderr
    before = {p.name: p.read_bytes() for p in ws.iterdir() if p.is_file()}
    junk = tmp_path / "junk.snoop"
    junk.write_bytes(b"snoop\0\0\0\0\0\0\x02\0\0\0\x04" + b"\xff" * 7)
    done = _cli("analyze", str(junk), "-w", str(ws), "-q")
    assert done.returncode == 3 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert str(junk) in done.stderr
    assert {p.name: p.read_bytes() for p in ws.iterdir() if p.is_file()} == before


@pytest.mark.skipif(shutil.which("captype") is None, reason="captype")
def test_media_captype_names_are_not_captures(tmp_path: Path) -> None:
    """captype names a few bytes of text MP4 by its heuristics; only packet-capture formats are taken."""
    path = tmp_path / "notes.bin"
    path.write_bytes(b"xx\n")
    assert wiretap.identify(path) is None
    with pytest.raises(InputError, match="not a capture"):
        sniff(path)


@pytest.mark.parametrize("kind", ["xz", "bzip2", "zstd", "lz4"])
def test_compressed_foreign_captures_are_decompressed_into_editcap(tmp_path: Path, kind: str) -> None:
    """wiretap reads gzip itself; inside the other compressions derisk decompresses the file into
    editcap's standard input (libtrace ships its ERF traces as .erf.xz and .erf.bz2)."""
    import bz2
    import lzma

    import lz4.frame
    import zstandard

    pack = {
        "xz": lzma.compress,
        "bzip2": bz2.compress,
        "zstd": lambda d: zstandard.ZstdCompressor().compress(d),
        "lz4": lz4.frame.compress,
    }[kind]
    erf = FIXTURES / "libtrace-100_packets.erf"
    path = tmp_path / f"trace.erf.{kind}"
    path.write_bytes(pack(erf.read_bytes()))
    assert sniff(path) == "erf"
    notes: dict[str, object] = {}
    assert _flows(_table(path, notes)) == _flows(_table(erf))
    assert notes["file_format"] == "erf" and notes["cut_at_byte"] is None


def test_cut_xz_around_a_snoop_file_keeps_what_came_before(
    tmp_path: Path, ethernet: tuple[Path, object, pa.Table]
) -> None:
    import lzma

    source = ethernet[0]
    snoop = tmp_path / "capture.snoop"
    _editcap("snoop", source, snoop)
    packed = lzma.compress(snoop.read_bytes(), preset=0)
    path = tmp_path / "cut.snoop.xz"
    path.write_bytes(packed[: len(packed) * 3 // 4])
    notes: dict[str, object] = {}
    table = _table(path, notes)
    assert 0 < table.num_rows <= ethernet[2].num_rows
    assert notes["cut_at_byte"] is not None


def test_captype_runs_once_for_sniffing_and_probing(
    tmp_path: Path, ethernet: tuple[Path, object, pa.Table], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sniffing the input and probing the capture both ask what a file is: one captype process answers
    both (each costs a process start and wiretap's heuristics); a file changed since is asked again."""
    source, _, expected = ethernet
    path = tmp_path / "capture.snoop"
    _editcap("snoop", source, path)
    asked: list[list[str]] = []
    real_run = subprocess.run

    def run(command: list[str], *args: object, **kwargs: object) -> object:
        if Path(command[0]).name == "captype":
            asked.append(command)
        return real_run(command, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(subprocess, "run", run)
    assert sniff(path) == "snoop"
    assert _flows(_table(path), times=False) == _flows(expected, times=False)
    assert len(asked) == 1
    _editcap("netmon2", source, path)
    assert sniff(path) == "netmon2" and len(asked) == 2
