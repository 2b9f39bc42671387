"""gzip captures through ISA-L's igzip (derisk.ingest.decompress.ToolReader) read as through Python's
gzip module: the same flows, the same cut offset and warning, a one-line error for a corrupt stream."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from derisk.errors import InputError
from derisk.flows import INGEST_SCHEMA
from derisk.gen.packets import write_capture
from derisk.ingest import decompress
from derisk.ingest.pcap import read_pcap
from golden import conversations

pytestmark = pytest.mark.skipif(
    shutil.which("igzip") is None, reason="igzip (Debian: isal; scripts/system-deps)"
)

KEYS = ("first_seen", "src_ip", "src_port", "dst_ip", "dst_port", "protocol")


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gz")
    out = {}
    for fmt in ("pcap", "pcapng"):
        plain = root / f"golden.{fmt}"
        write_capture(conversations(), plain, fmt=fmt)  # type: ignore[arg-type]
        out[fmt] = root / f"golden.{fmt}.gz"
        out[fmt].write_bytes(gzip.compress(plain.read_bytes()))
    return out


def _read(path: Path, *, tool: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[pa.Table, dict[str, object]]:
    with monkeypatch.context() as patch:
        if not tool:
            patch.setattr(decompress, "TOOLS", {})
        notes: dict[str, object] = {}
        batches = list(read_pcap(path, notes=notes))
    table = pa.Table.from_batches(batches, schema=INGEST_SCHEMA).sort_by([(k, "ascending") for k in KEYS])
    return table, notes


def test_the_tool_reads_whole_streams_only(captures: dict[str, Path]) -> None:
    with decompress.open_capture(captures["pcap"], "gzip", stream=True) as fh:
        assert isinstance(fh, decompress.ToolReader)
        assert fh.read(4) == b"\xd4\xc3\xb2\xa1"
    with decompress.open_capture(captures["pcap"], "gzip") as fh:  # a look at the head: no process
        assert not isinstance(fh, decompress.ToolReader)


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_igzip_gives_the_flows_of_pythons_gzip(
    captures: dict[str, Path], fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_tool, notes = _read(captures[fmt], tool=True, monkeypatch=monkeypatch)
    by_python, _ = _read(captures[fmt], tool=False, monkeypatch=monkeypatch)
    assert len(by_tool) > 10 and by_tool.equals(by_python)
    assert notes["compression"] == "gzip" and notes["cut_at_byte"] is None


def test_a_cut_gzip_stream_is_cut_at_the_same_byte(
    tmp_path: Path, captures: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = captures["pcap"].read_bytes()
    path = tmp_path / "cut.pcap.gz"
    path.write_bytes(data[: len(data) * 3 // 4])
    by_tool, notes = _read(path, tool=True, monkeypatch=monkeypatch)
    by_python, python_notes = _read(path, tool=False, monkeypatch=monkeypatch)
    assert notes["cut_at_byte"] is not None and notes["cut_at_byte"] == python_notes["cut_at_byte"]
    assert "the gzip stream ends early" in str(notes["warnings"])
    assert by_tool.equals(by_python)
    with pytest.raises(InputError, match="refused with --strict"):
        list(read_pcap(path, strict=True))


def test_a_corrupt_gzip_stream_is_a_one_line_error(tmp_path: Path, captures: dict[str, Path]) -> None:
    data = bytearray(captures["pcap"].read_bytes())
    data[-6] ^= 0xFF  # the CRC in the trailer
    path = tmp_path / "crc.pcap.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(InputError) as caught:
        list(read_pcap(path))
    message = str(caught.value)
    assert message.startswith(f"{path}: cannot be read: igzip") and "\n" not in message
