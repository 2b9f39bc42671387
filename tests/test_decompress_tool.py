"""Compressed captures through an external tool (derisk.ingest.decompress.ToolReader: ISA-L's igzip
for gzip, lbzip2 for bzip2, xz for xz) read as through Python's own module: the same flows, the same cut offset
and warning, a one-line error for a corrupt stream. Each tool's tests are skipped where it is not
installed (scripts/system-deps installs them)."""

from __future__ import annotations

import bz2
import gzip
import lzma
import shutil
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from derisk.errors import InputError
from derisk.flows import INGEST_SCHEMA
from derisk.gen.packets import write_capture
from derisk.ingest import decompress
from derisk.ingest.pcap import read_pcap
from golden import conversations

KEYS = ("first_seen", "src_ip", "src_port", "dst_ip", "dst_port", "protocol")

#: compression, its tool, suffix, compress (bzip2 at level 1: 100 kB blocks, so a cut or a damaged
#: byte falls after whole blocks; a bzip2 block gives nothing until it is whole; xz with a 64 KiB
#: window, shorter than the capture repeated in "long", so each copy costs its own bytes in the stream)
METHODS: dict[str, tuple[str, str, Callable[[bytes], bytes]]] = {
    "gzip": ("igzip", "gz", gzip.compress),
    "bzip2": ("lbzip2", "bz2", lambda data: bz2.compress(data, 1)),
    "xz": (
        "xz",
        "xz",
        lambda data: lzma.compress(data, filters=[{"id": lzma.FILTER_LZMA2, "dict_size": 1 << 16}]),
    ),
}


@pytest.fixture(scope="module", params=sorted(METHODS))
def method(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if shutil.which(METHODS[name][0]) is None:
        pytest.skip(f"{METHODS[name][0]} (Debian: see scripts/system-deps)")
    return name


@pytest.fixture(scope="module")
def captures(method: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    _, suffix, compress = METHODS[method]
    root = tmp_path_factory.mktemp(suffix)
    out = {}
    for fmt in ("pcap", "pcapng"):
        plain = root / f"golden.{fmt}"
        write_capture(conversations(), plain, fmt=fmt)
        out[fmt] = root / f"golden.{fmt}.{suffix}"
        out[fmt].write_bytes(compress(plain.read_bytes()))
    data = (root / "golden.pcap").read_bytes()  # the records again and again: several bzip2 blocks
    out["long"] = root / f"long.pcap.{suffix}"
    out["long"].write_bytes(compress(data[:24] + data[24:] * 8))
    return out


def _read(path: Path, *, tool: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[pa.Table, dict[str, object]]:
    with monkeypatch.context() as patch:
        if not tool:
            patch.setattr(decompress, "TOOLS", {})
        notes: dict[str, object] = {}
        batches = list(read_pcap(path, notes=notes))
    table = pa.Table.from_batches(batches, schema=INGEST_SCHEMA).sort_by([(k, "ascending") for k in KEYS])
    return table, notes


def test_the_tool_reads_whole_streams_only(method: str, captures: dict[str, Path]) -> None:
    with decompress.open_capture(captures["pcap"], method, stream=True) as fh:
        assert isinstance(fh, decompress.ToolReader)
        assert fh.read(4) == b"\xd4\xc3\xb2\xa1"
    with decompress.open_capture(captures["pcap"], method) as fh:  # a look at the head: no process
        assert not isinstance(fh, decompress.ToolReader)


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_the_tool_gives_the_flows_of_pythons_module(
    method: str, captures: dict[str, Path], fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_tool, notes = _read(captures[fmt], tool=True, monkeypatch=monkeypatch)
    by_python, _ = _read(captures[fmt], tool=False, monkeypatch=monkeypatch)
    assert len(by_tool) > 10 and by_tool.equals(by_python)
    assert notes["compression"] == method and notes["cut_at_byte"] is None


def test_a_cut_stream_is_cut_at_the_same_byte(
    method: str, tmp_path: Path, captures: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = captures["long"].read_bytes()
    path = tmp_path / f"cut.pcap.{METHODS[method][1]}"
    path.write_bytes(data[: len(data) * 3 // 4])
    by_tool, notes = _read(path, tool=True, monkeypatch=monkeypatch)
    by_python, python_notes = _read(path, tool=False, monkeypatch=monkeypatch)
    assert notes["cut_at_byte"] is not None and notes["cut_at_byte"] == python_notes["cut_at_byte"]
    assert f"the {method} stream ends early" in str(notes["warnings"])
    assert len(by_tool) > 0 and by_tool.equals(by_python)
    with pytest.raises(InputError, match="refused with --strict"):
        list(read_pcap(path, strict=True))


def test_a_corrupt_stream_is_a_one_line_error(method: str, tmp_path: Path, captures: dict[str, Path]) -> None:
    data = bytearray(captures["long"].read_bytes())
    # gzip: the CRC in the trailer; bzip2 and xz: a byte inside a later block
    data[-6 if method == "gzip" else len(data) * 3 // 4] ^= 0xFF
    path = tmp_path / f"crc.pcap.{METHODS[method][1]}"
    path.write_bytes(bytes(data))
    with pytest.raises(InputError) as caught:
        list(read_pcap(path))
    message = str(caught.value)
    assert message.startswith(f"{path}: cannot be read: {METHODS[method][0]}") and "\n" not in message
    assert str(path.absolute()) not in message.removeprefix(str(path))
