"""``derisk collect --from-capture``: NetFlow/IPFIX exports recorded in a capture, read as the collector would.

The capture holds softflowd's real IPFIX export of ``pcap/golden.pcap`` (the messages of
``netflow/ipfix/softflowd-golden.ipfix``) as UDP datagrams from a router to a collector, written with
dpkt, one of them split into IP fragments as a path with a small MTU splits a large export. Its flows
must be those of the IPFIX file itself, and the capture's connections.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path

import dpkt  # type: ignore[import-untyped]
import pyarrow as pa
import pytest

from derisk.flows import INGEST_SCHEMA
from derisk.ingest.export_capture import CaptureExports
from derisk.ingest.ipfix_file import read_ipfix_file

FIXTURES = Path(__file__).parent / "fixtures"
IPFIX_FILE = FIXTURES / "netflow" / "ipfix" / "softflowd-golden.ipfix"

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark (Debian package tshark)")


def _messages(data: bytes) -> list[bytes]:
    out, at = [], 0
    while at < len(data):
        length = struct.unpack_from("!H", data, at + 2)[0]
        out.append(data[at : at + length])
        at += length
    return out


def _export_capture(path: Path, port: int, *, fragment: bool) -> int:
    """The messages of the IPFIX file as UDP datagrams from 192.0.2.1 to 192.0.2.9:``port``."""
    with path.open("wb") as fh:
        writer = dpkt.pcap.Writer(fh, linktype=1)
        ident = 1
        for i, message in enumerate(_messages(IPFIX_FILE.read_bytes())):
            udp = dpkt.udp.UDP(sport=40000, dport=port, data=message)
            udp.ulen = len(bytes(udp))
            payload = bytes(udp)
            pieces = (
                [payload[j : j + 48] for j in range(0, len(payload), 48)]
                if fragment and i == 0
                else [payload]
            )
            for k, piece in enumerate(pieces):
                ip = dpkt.ip.IP(
                    src=bytes([192, 0, 2, 1]), dst=bytes([192, 0, 2, 9]), p=17, id=ident, ttl=64, data=piece
                )
                ip.mf, ip.offset = (
                    int(k + 1 < len(pieces)),
                    k * 48 // 8,
                )  # dpkt keeps the field in 8-byte units
                ip.len = 20 + len(piece)
                eth = dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\x04" * 6, type=0x0800, data=ip)
                writer.writepkt(bytes(eth), ts=1_772_438_400 + i)
            ident += 1
    return ident - 1


def _table(batches: list[pa.RecordBatch]) -> list[tuple[object, ...]]:
    table = pa.Table.from_batches(batches, schema=INGEST_SCHEMA)
    columns = (
        "src_ip",
        "src_port",
        "dst_ip",
        "dst_port",
        "protocol",
        "bytes_out",
        "bytes_in",
        "packets_out",
        "packets_in",
    )
    return sorted(tuple(r[c] for c in columns) for r in table.to_pylist())


@pytest.mark.parametrize("fragment", [False, True], ids=["whole", "fragmented"])
def test_exports_in_a_capture_give_the_exported_flows(tmp_path: Path, fragment: bool) -> None:
    capture = tmp_path / "exports.pcap"
    _export_capture(capture, 4739, fragment=fragment)
    exports = CaptureExports(capture)
    got = [b for batch in exports.batches() for b in batch.flows]
    assert exports.stats.malformed == 0 and exports.stats.records > 0
    assert _table(got) == _table(list(read_ipfix_file(IPFIX_FILE)))
    assert exports.stats.datagrams == len(_messages(IPFIX_FILE.read_bytes()))


def test_an_exporter_on_another_port_is_named(tmp_path: Path, data_env: Path) -> None:
    capture = tmp_path / "exports.pcap"
    _export_capture(capture, 2999, fragment=False)
    ws = tmp_path / "ws"
    run = [sys.executable, "-m", "derisk.cli", "collect", "--from-capture", str(capture), "-w", str(ws)]
    missed = subprocess.run(run, capture_output=True, text=True, check=False)
    assert missed.returncode == 3 and "--export-port" in missed.stderr and "Traceback" not in missed.stderr
    assert not ws.exists()
    done = subprocess.run([*run, "--export-port", "2999"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "flows stored in 1 batches" in done.stdout + done.stderr
    again = subprocess.run([*run, "--export-port", "2999"], capture_output=True, text=True, check=False)
    assert (
        again.returncode == 0 and "0 flows stored in 0 batches" in again.stdout + again.stderr
    )  # stored already


def test_bad_arguments_are_usage_errors(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "derisk.cli", "collect", "-w", str(tmp_path / "ws")]
    for extra in (
        [],
        ["--netflow", "127.0.0.1:2055", "--from-capture", "x.pcap"],
        ["--netflow", "127.0.0.1:0", "--export-port", "2055"],
    ):
        done = subprocess.run([*base, *extra], capture_output=True, text=True, check=False)
        assert done.returncode == 2 and done.stderr.count("\n") <= 2 and "Traceback" not in done.stderr, (
            done.stderr
        )
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"\xd4\xc3\xb2\xa1" + b"\xff" * 40)
    done = subprocess.run([*base, "--from-capture", str(junk)], capture_output=True, text=True, check=False)
    assert done.returncode == 3 and "Traceback" not in done.stderr and str(junk) in done.stderr, done.stderr


def test_analyze_warns_that_a_capture_holds_exports(tmp_path: Path) -> None:
    """``derisk analyze`` meters such a capture as what it is, and says where the exported flows are read."""
    from derisk.ingest.pcap import read_pcap

    capture = tmp_path / "exports.pcap"
    _export_capture(capture, 4739, fragment=False)
    notes: dict[str, object] = {}
    flows = pa.Table.from_batches(list(read_pcap(capture, notes=notes)), schema=INGEST_SCHEMA)
    assert flows.num_rows == 1 and flows.column("application").to_pylist()[0].split(".")[0] in (
        "IPFIX",
        "NetFlow",
    )
    assert notes["export_flows"] == 1
    assert any("derisk collect --from-capture exports.pcap" in w for w in notes["warnings"])  # type: ignore[attr-defined]
    plain = tmp_path / "plain.pcap"
    plain.write_bytes((FIXTURES / "pcap" / "golden.pcap").read_bytes())
    notes = {}
    list(read_pcap(plain, notes=notes))
    assert "export_flows" not in notes
