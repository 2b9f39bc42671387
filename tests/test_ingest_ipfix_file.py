"""IPFIX files (RFC 5655): softflowd's IPFIX export of a capture, written message by message to a file.

An IPFIX file is the export's messages one after another; the file here is what softflowd (Debian
package) sends for ``pcap/golden.pcap``, received on a UDP socket and appended message by message, so
its bytes are an exporter's. Its flows must be the connections of the capture (as
``test_ingest_netflow`` judges nfcapd's reading), whether plain or compressed, and a cut file is read
up to the cut.
"""

from __future__ import annotations

import gzip
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pyarrow as pa
import pytest

from derisk.errors import InputError
from derisk.flows import INGEST_SCHEMA
from derisk.ingest import sniff
from derisk.ingest.ipfix_file import read_ipfix_file
from derisk.ingest.pcap import read_pcap
from netflow_packets import Biflow, Rec, ipfix, ipfix_biflow

GOLDEN_PCAP = Path(__file__).parent / "fixtures" / "pcap" / "golden.pcap"
T0 = 1_772_438_400

needs_softflowd = pytest.mark.skipif(shutil.which("softflowd") is None, reason="softflowd (Debian package)")


def _softflowd_ipfix(capture: Path, into: Path) -> int:
    """softflowd's IPFIX export of ``capture``, each message appended to ``into``; the message count."""
    messages: list[bytes] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(3.0)
        port = sock.getsockname()[1]

        def receive() -> None:
            while True:
                try:
                    messages.append(sock.recv(65_535))
                except TimeoutError:
                    return

        thread = threading.Thread(target=receive)
        thread.start()
        subprocess.run(
            ["softflowd", "-r", str(capture), "-n", f"127.0.0.1:{port}", "-v", "10"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        thread.join()
    into.write_bytes(b"".join(messages))
    return len(messages)


def _table(path: Path, **kw: object) -> pa.Table:
    return pa.Table.from_batches(list(read_ipfix_file(path, **kw)), schema=INGEST_SCHEMA)  # type: ignore[arg-type]


def _connections(table: pa.Table) -> dict[tuple[object, ...], tuple[int, int]]:
    """(protocol, both ends) → (packets, bytes) over both directions, summed."""
    out: dict[tuple[object, ...], tuple[int, int]] = {}
    for r in table.to_pylist():
        key = (r["protocol"], *sorted([(r["src_ip"], r["src_port"] or 0), (r["dst_ip"], r["dst_port"] or 0)]))
        packets, octets = out.get(key, (0, 0))
        out[key] = (packets + r["packets_out"] + r["packets_in"], octets + r["bytes_out"] + r["bytes_in"])
    return out


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("softflowd") is None:
        pytest.skip("softflowd (Debian package)")
    path = tmp_path_factory.mktemp("ipfix") / "golden.ipfix"
    assert _softflowd_ipfix(GOLDEN_PCAP, path) > 0
    return path


@needs_softflowd
def test_softflowd_export_file_gives_the_captures_connections(exported: Path) -> None:
    assert sniff(exported) == "ipfix"
    notes: dict[str, object] = {}
    table = _table(exported, notes=notes)
    capture = pa.Table.from_batches(list(read_pcap(GOLDEN_PCAP)), schema=INGEST_SCHEMA)
    assert _connections(table) == _connections(capture)
    assert notes["malformed"] == 0 and notes["cut_at_byte"] is None and notes["records"] > 0  # type: ignore[operator]


@needs_softflowd
@pytest.mark.parametrize("tool", ["gzip", "zstd", "xz", "bzip2"])
def test_compressed_ipfix_file(tmp_path: Path, exported: Path, tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(tool)
    packed = tmp_path / f"golden.ipfix.{tool}"
    packed.write_bytes(subprocess.run([tool, "-c", str(exported)], capture_output=True, check=True).stdout)
    assert sniff(packed) == "ipfix"
    assert _connections(_table(packed)) == _connections(_table(exported))


@needs_softflowd
def test_cut_file_keeps_the_messages_before_the_cut(tmp_path: Path, exported: Path) -> None:
    data = exported.read_bytes()
    cut = tmp_path / "cut.ipfix"
    cut.write_bytes(data[: len(data) - 7])
    notes: dict[str, object] = {}
    table = _table(cut, notes=notes)
    assert notes["cut_at_byte"] is not None and 0 < notes["cut_at_byte"] < len(data)  # type: ignore[operator]
    assert table.num_rows <= _table(exported).num_rows
    with pytest.raises(InputError, match=r"IPFIX file cut off at byte .*refused with --strict"):
        _table(cut, strict=True)
    gz = tmp_path / "cut.ipfix.gz"
    gz.write_bytes(gzip.compress(data)[:-20])
    assert _table(gz).num_rows <= table.num_rows + 1


def test_biflow_file_with_vendor_elements(tmp_path: Path) -> None:
    flows = [
        Biflow(
            Rec("10.0.0.2", "47.254.129.10", 50000, 443, 6, 12, 1_500, T0 * 1000, T0 * 1000 + 900),
            20,
            48_000,
            7,
        )
    ]
    path = tmp_path / "yaf-like.ipfix"
    plain = ipfix(
        [Rec("10.0.0.9", "1.1.1.1", 50001, 443, 6, 3, 900, T0 * 1000, T0 * 1000 + 1)],
        export_secs=T0,
        domain=2,
    )
    path.write_bytes(ipfix_biflow(flows, export_secs=T0) + plain)
    rows = {r["dst_ip"]: (r["bytes_out"], r["bytes_in"]) for r in _table(path).to_pylist()}
    assert rows == {"47.254.129.10": (1_500, 48_000), "1.1.1.1": (900, 0)}


def test_garbage_after_good_messages_is_a_one_line_error(tmp_path: Path) -> None:
    good = ipfix(
        [Rec("10.0.0.9", "1.1.1.1", 50001, 443, 6, 3, 900, T0 * 1000, T0 * 1000 + 1)], export_secs=T0
    )
    path = tmp_path / "bad.ipfix"
    path.write_bytes(good + b"\x00\x07" + bytes(60))
    with pytest.raises(InputError, match=f"not an IPFIX message at byte {len(good):,}"):
        _table(path)


def _snapshot(ws: Path) -> tuple[int, int]:
    from derisk.store.workspace import Workspace

    with Workspace.open(ws, create=False, read_only=True) as w:
        return w.flow_count(), len(w.query("SELECT * FROM inputs"))


def test_cli_analyzes_an_ipfix_file_and_refuses_junk(tmp_path: Path, data_env: Path) -> None:
    good = ipfix(
        [Rec("10.0.0.9", "1.1.1.1", 50001, 443, 6, 3, 900, T0 * 1000, T0 * 1000 + 1)], export_secs=T0
    )
    path = tmp_path / "export.ipfix"
    path.write_bytes(good)
    ws = tmp_path / "ws"
    done = subprocess.run(
        [sys.executable, "-m", "derisk.cli", "analyze", str(path), "-w", str(ws), "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    before = _snapshot(ws)
    bad = tmp_path / "bad.ipfix"
    bad.write_bytes(good + b"\x00\x07" + bytes(60))
    done = subprocess.run(
        [sys.executable, "-m", "derisk.cli", "analyze", str(bad), "-w", str(ws), "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (
        done.returncode == 3
        and done.stderr.count("\n") == 1
        and "not an IPFIX message at byte" in done.stderr
    )
    assert _snapshot(ws) == before  # the run's transaction rolled back: no flow, no input kept
