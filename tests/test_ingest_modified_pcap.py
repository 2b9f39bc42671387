"""Modified pcap (Kuznetsov's patched libpcap, magic a1b2cd34) gives the flows of its classic twin (issue 12).

Twins are the shipped captures' own packets rewritten by :func:`modified` into the modified format,
with 24- and 28-byte record headers in both byte orders, and (where Wireshark's editcap is installed)
the same captures written by editcap as "Modified tcpdump" and "SuSE 6.3 tcpdump" pcap.
"""

from __future__ import annotations

import gzip
import io
import random
import shutil
import struct
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest

from derisk.errors import InputError
from derisk.flows import INGEST_SCHEMA
from derisk.ingest import resolve_inputs
from derisk.ingest.modified_pcap import Standard
from derisk.ingest.pcap import read_pcap
from derisk.ingest.probe import probe

FIXTURES = Path(__file__).parent / "fixtures" / "pcap"
SOURCES = [FIXTURES / "golden.pcap", FIXTURES / "linktypes" / "live-lo-ethernet.pcap"]
KEYS = ("first_seen", "src_ip", "src_port", "dst_ip", "dst_port", "protocol")
LAYOUTS = [(24, "<"), (24, ">"), (28, "<"), (28, ">")]


def _table(path: Path, notes: dict[str, object] | None = None, *, strict: bool = False) -> pa.Table:
    batches = list(read_pcap(path, notes=notes, strict=strict))
    return pa.Table.from_batches(batches, schema=INGEST_SCHEMA).sort_by([(k, "ascending") for k in KEYS])


def _records(data: bytes, size: int = 16, endian: str = "<") -> list[tuple[int, int]]:
    """(start, end) of each record of a pcap with ``size``-byte record headers."""
    spans, offset = [], 24
    while offset < len(data):
        end = offset + size + struct.unpack_from(endian + "I", data, offset + 8)[0]
        spans.append((offset, end))
        offset = end
    return spans


def modified(classic: bytes, size: int, endian: str, *, seed: int = 1) -> bytes:
    """A classic little-endian microsecond pcap rewritten as a modified pcap with ``size``-byte record
    headers in byte order ``endian``; the extra fields hold what the patched libpcap wrote (an
    interface index, the frame's EtherType, packet type 0 or 4) and padding that is not zero."""
    rng = random.Random(seed)
    major, minor, zone, sigfigs, snaplen, linktype = struct.unpack_from("<HHiIII", classic, 4)
    out = [struct.pack(endian + "IHHiIII", 0xA1B2CD34, major, minor, zone, sigfigs, snaplen, linktype)]
    for start, end in _records(classic):
        fields = struct.unpack_from("<IIII", classic, start)
        frame = classic[start + 16 : end]
        extra = struct.pack(
            endian + "IHBB", rng.randint(1, 3), int.from_bytes(frame[12:14]), rng.choice((0, 4)), 0xA5
        )
        if size == 28:
            extra += bytes(rng.randrange(256) for _ in range(4))  # CPU numbers and padding
        out.append(struct.pack(endian + "IIII", *fields) + extra + frame)
    return b"".join(out)


@pytest.fixture(scope="module")
def classic() -> dict[str, tuple[bytes, pa.Table]]:
    return {source.name: (source.read_bytes(), _table(source)) for source in SOURCES}


@pytest.mark.parametrize(("size", "endian"), LAYOUTS)
@pytest.mark.parametrize("source", [s.name for s in SOURCES])
def test_a_modified_twin_gives_the_flows_of_the_classic_capture(
    tmp_path: Path, classic: dict[str, tuple[bytes, pa.Table]], source: str, size: int, endian: str
) -> None:
    data, expected = classic[source]
    path = tmp_path / "twin.pcap"
    path.write_bytes(modified(data, size, endian))
    notes: dict[str, object] = {}
    assert len(expected) > 0
    assert _table(path, notes).equals(expected)
    assert notes["packets"] == len(_records(data)) and notes["cut_at_byte"] is None
    assert probe(path).modified == size
    assert resolve_inputs([path])[0].format == "pcap"


@pytest.mark.parametrize(("size", "endian"), LAYOUTS)
def test_the_stream_rewrites_to_the_classic_bytes(
    classic: dict[str, tuple[bytes, pa.Table]], size: int, endian: str
) -> None:
    """Read in pieces of every size, records across pieces: the classic capture, byte for byte."""
    data = classic["golden.pcap"][0]

    class Pieces(io.BytesIO):
        def __init__(self, raw: bytes) -> None:
            super().__init__(raw)
            self.rng = random.Random(size)

        def read1(self, size: int | None = -1, /) -> bytes:
            return super().read1(self.rng.randint(1, 3000))

    stream = Standard(Pieces(modified(data, size, endian)), size, Path("twin.pcap"))
    assert stream.read(24) + stream.read() == data


@pytest.mark.skipif(shutil.which("editcap") is None, reason="Wireshark's editcap")
@pytest.mark.parametrize(("kind", "size"), [("modpcap", 24), ("suse6_3pcap", 28)])
def test_files_written_by_editcap(
    tmp_path: Path, classic: dict[str, tuple[bytes, pa.Table]], kind: str, size: int
) -> None:
    path = tmp_path / f"{kind}.pcap"
    subprocess.run(["editcap", "-F", kind, str(SOURCES[0]), str(path)], check=True, capture_output=True)
    assert path.read_bytes()[:4] == b"\x34\xcd\xb2\xa1"
    assert probe(path).modified == size
    assert _table(path).equals(classic["golden.pcap"][1])


@pytest.mark.skipif(shutil.which("editcap") is None, reason="Wireshark's editcap")
@pytest.mark.parametrize(("kind", "size"), [("nokiapcap", 20), ("rh6_1pcap", 24)])
def test_classic_magic_variants_written_by_editcap(
    tmp_path: Path, classic: dict[str, tuple[bytes, pa.Table]], kind: str, size: int
) -> None:
    """Nokia IPSO's and Red Hat 6.1's captures keep the classic magic; libpcap refuses them as corrupt."""
    for source in SOURCES:
        path = tmp_path / f"{kind}-{source.name}"
        subprocess.run(["editcap", "-F", kind, str(source), str(path)], check=True, capture_output=True)
        assert path.read_bytes()[:4] == b"\xd4\xc3\xb2\xa1"  # nothing in the file header tells them apart
        assert probe(path).modified == size
        assert _table(path).equals(classic[source.name][1])
        assert probe(source).modified == 0  # a classic capture is never guessed at


def test_a_compressed_twin(tmp_path: Path, classic: dict[str, tuple[bytes, pa.Table]]) -> None:
    data, expected = classic["golden.pcap"]
    path = tmp_path / "twin.pcap.gz"
    path.write_bytes(gzip.compress(modified(data, 28, ">")))
    notes: dict[str, object] = {}
    assert _table(path, notes).equals(expected)
    assert notes["compression"] == "gzip"
    assert resolve_inputs([path])[0].format == "pcap"
    packed = path.read_bytes()
    path.write_bytes(packed[: len(packed) * 3 // 4])  # the gzip stream ends early
    cut: dict[str, object] = {}
    assert 0 < len(_table(path, cut)) <= len(expected)
    twin = modified(data, 28, ">")
    assert cut["cut_at_byte"] in {
        start for start, _ in _records(twin, 28, ">")
    }  # a record's start in the file
    with pytest.raises(InputError, match="refused with --strict"):
        _table(path, strict=True)


@pytest.mark.parametrize(("size", "endian"), LAYOUTS)
@pytest.mark.parametrize("into", [30, 10])  # into the frame, into the record header
def test_a_cut_twin_keeps_the_flows_before_the_cut(
    tmp_path: Path, classic: dict[str, tuple[bytes, pa.Table]], size: int, endian: str, into: int
) -> None:
    """The byte offset in the warning is the file's own (each record header is longer than a classic one)."""
    data = modified(classic["golden.pcap"][0], size, endian)
    start, _ = _records(data, size, endian)[100]
    cut, whole = tmp_path / "cut.pcap", tmp_path / "whole.pcap"
    cut.write_bytes(data[: start + into])
    whole.write_bytes(data[:start])
    notes: dict[str, object] = {}
    assert _table(cut, notes).equals(_table(whole))
    assert notes["cut_at_byte"] == start
    assert notes["warnings"] == [
        f"capture cut off at byte {start:,} (record 101 cut off); the 100 packets before the cut were read"
    ]
    with pytest.raises(InputError, match="refused with --strict"):
        _table(cut, strict=True)


def test_a_header_only_twin_holds_no_flows(
    tmp_path: Path, classic: dict[str, tuple[bytes, pa.Table]]
) -> None:
    """As a classic pcap with no record: no flow, no error."""
    path = tmp_path / "empty.pcap"
    path.write_bytes(modified(classic["golden.pcap"][0], 24, "<")[:24])
    notes: dict[str, object] = {}
    assert len(_table(path, notes)) == 0
    assert notes["packets"] == 0


def test_records_that_fit_neither_layout_are_refused(
    tmp_path: Path, classic: dict[str, tuple[bytes, pa.Table]]
) -> None:
    """A classic capture under the modified magic: its 16-byte records read as 24 or 28 bytes make no sense."""
    data = classic["golden.pcap"][0]
    path = tmp_path / "relabelled.pcap"
    path.write_bytes(b"\x34\xcd\xb2\xa1" + data[4:])
    with pytest.raises(InputError, match=r"corrupt modified pcap .*neither record layout") as caught:
        _table(path)
    assert "\n" not in str(caught.value)


def test_a_record_of_impossible_length_is_refused_with_its_offset(
    tmp_path: Path, classic: dict[str, tuple[bytes, pa.Table]]
) -> None:
    data = bytearray(modified(classic["golden.pcap"][0], 28, "<"))
    start, _ = _records(bytes(data), 28)[50]
    struct.pack_into("<I", data, start + 8, 5 << 20)
    path = tmp_path / "corrupt.pcap"
    path.write_bytes(data)
    with pytest.raises(InputError, match=f"record 51 at byte {start} claims {5 << 20} bytes"):
        _table(path)


def test_command_line_exit_codes_and_workspace(
    tmp_path: Path,
    classic: dict[str, tuple[bytes, pa.Table]],
    data_env: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """exit 0 for a modified pcap; 3, one line and the workspace unchanged for one that reads under neither layout."""
    from derisk.cli import main
    from derisk.store.workspace import Workspace

    data = classic["golden.pcap"][0]
    twin = tmp_path / "twin.pcap"
    twin.write_bytes(modified(data, 28, "<"))
    ws = tmp_path / "ws"
    assert main(["analyze", str(twin), "-w", str(ws), "-q"]) == 0
    with Workspace.open(ws, create=False, read_only=True) as w:
        before = w.flow_count()
    assert before > 0
    capsys.readouterr()
    bad = tmp_path / "relabelled.pcap"
    bad.write_bytes(b"\x34\xcd\xb2\xa1" + data[4:])
    assert main(["analyze", str(bad), "-w", str(ws), "-q"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0] and "Traceback" not in err[0], err
    with Workspace.open(ws, create=False, read_only=True) as w:
        assert w.flow_count() == before
