"""bzip2 captures through lbzip2 (derisk.ingest.decompress.ToolReader) read as through Python's bz2
module: the same flows, the same cut offset and warning, a one-line error for a corrupt stream."""

from __future__ import annotations

import bz2
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

pytestmark = pytest.mark.skipif(shutil.which("lbzip2") is None, reason="lbzip2 (Debian: lbzip2)")

KEYS = ("first_seen", "src_ip", "src_port", "dst_ip", "dst_port", "protocol")


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bz2")
    out = {}
    for fmt in ("pcap", "pcapng"):
        plain = root / f"golden.{fmt}"
        write_capture(conversations(), plain, fmt=fmt)
        out[fmt] = root / f"golden.{fmt}.bz2"
        out[fmt].write_bytes(bz2.compress(plain.read_bytes()))
    # Several bzip2 blocks (100 kB each at level 1), so that a cut or a damaged byte falls after
    # whole blocks (a bzip2 block gives nothing until it is whole): the records again and again.
    data = (root / "golden.pcap").read_bytes()
    out["long"] = root / "long.pcap.bz2"
    out["long"].write_bytes(bz2.compress(data[:24] + data[24:] * 8, 1))
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
    with decompress.open_capture(captures["pcap"], "bzip2", stream=True) as fh:
        assert isinstance(fh, decompress.ToolReader)
        assert fh.read(4) == b"\xd4\xc3\xb2\xa1"
    with decompress.open_capture(captures["pcap"], "bzip2") as fh:  # a look at the head: no process
        assert not isinstance(fh, decompress.ToolReader)


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_lbzip2_gives_the_flows_of_pythons_bz2(
    captures: dict[str, Path], fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_tool, notes = _read(captures[fmt], tool=True, monkeypatch=monkeypatch)
    by_python, _ = _read(captures[fmt], tool=False, monkeypatch=monkeypatch)
    assert len(by_tool) > 10 and by_tool.equals(by_python)
    assert notes["compression"] == "bzip2" and notes["cut_at_byte"] is None


def test_a_cut_bzip2_stream_is_cut_at_the_same_byte(
    tmp_path: Path, captures: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = captures["long"].read_bytes()
    path = tmp_path / "cut.pcap.bz2"
    path.write_bytes(data[: len(data) * 3 // 4])
    by_tool, notes = _read(path, tool=True, monkeypatch=monkeypatch)
    by_python, python_notes = _read(path, tool=False, monkeypatch=monkeypatch)
    assert notes["cut_at_byte"] is not None and notes["cut_at_byte"] == python_notes["cut_at_byte"]
    assert "the bzip2 stream ends early" in str(notes["warnings"])
    assert len(by_tool) > 0 and by_tool.equals(by_python)
    with pytest.raises(InputError, match="refused with --strict"):
        list(read_pcap(path, strict=True))


def test_a_corrupt_bzip2_stream_is_a_one_line_error(tmp_path: Path, captures: dict[str, Path]) -> None:
    data = bytearray(captures["long"].read_bytes())
    data[len(data) * 3 // 4] ^= 0xFF
    path = tmp_path / "crc.pcap.bz2"
    path.write_bytes(bytes(data))
    with pytest.raises(InputError) as caught:
        list(read_pcap(path))
    message = str(caught.value)
    assert (
        message.startswith(f"{path}: cannot be read: lbzip2: compressed data error") and "\n" not in message
    )
    assert str(path.absolute()) not in message.removeprefix(str(path))
