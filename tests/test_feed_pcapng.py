"""The feed's column-wise path for pcapng (derisk.ingest.feed_pcapng) writes exactly what the walk writes.

pcapng files are written here block by block (section header, interface descriptions with their
timestamp resolution, enhanced packet blocks with options and padding, other blocks between them),
from the packets of the golden conversations, and fed with and without the column-wise path: the
meter's stream and the feed's report must be the same, and the column-wise path must have taken
the common cases (or declined the rare ones, for the walk to take).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import dpkt  # type: ignore[import-untyped]
import pytest

from derisk.gen.packets import write_capture
from derisk.ingest import feed, feed_block, feed_pcapng
from derisk.ingest.feed_block import Block
from golden import conversations
from test_feed_block import SMALL_CHUNK, _frames, _ip_layers, _same
from test_linktypes import TWINS

Reframe = Callable[[bytes, bytes, int], bytes]


def _block(kind: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    length = len(body) + 12
    return struct.pack("<II", kind, length) + body + struct.pack("<I", length)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _shb() -> bytes:
    return _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))


def _idb(linktype: int, tsresol: int | None = None) -> bytes:
    options = b"" if tsresol is None else _option(9, bytes([tsresol])) + _option(0, b"")
    return _block(1, struct.pack("<HHI", linktype, 0, 262144) + options)


def _epb(interface: int, units: int, frame: bytes, comment: bool = False) -> bytes:
    options = _option(1, b"a comment") + _option(0, b"") if comment else b""
    head = struct.pack("<IIIII", interface, units >> 32, units & 0xFFFFFFFF, len(frame), len(frame))
    body = head + frame + b"\0" * (-len(frame) % 4) + options
    return _block(6, body)


def _nrb() -> bytes:  # a name resolution block: one IPv4 record, then the end of records
    record = struct.pack("<HH", 1, 14) + bytes([10, 0, 0, 1]) + b"host.lan\0\0"
    return _block(4, record + struct.pack("<HH", 0, 0))


def _packets(source: Path, reframe: Reframe | None) -> Iterator[tuple[float, bytes]]:
    for ts, buf in _frames(source):
        if reframe is None:
            yield ts, buf
        else:
            eth = dpkt.ethernet.Ethernet(buf)
            yield ts, reframe(buf, bytes(eth.data), eth.type)


def _pcapng(
    path: Path,
    source: Path,
    *,
    linktypes: tuple[int, ...] = (1,),
    reframe: Reframe | None = None,
    tsresol: int | None = None,
    between: Callable[[int], bytes] = lambda i: b"",
    interface_of: Callable[[int], int] = lambda i: 0,
) -> Path:
    scale = 1_000_000 if tsresol is None else 10**tsresol
    parts = [_shb(), *(_idb(lt, tsresol) for lt in linktypes)]
    for i, (ts, frame) in enumerate(_packets(source, reframe)):
        parts.append(between(i))
        parts.append(_epb(interface_of(i), round(ts * scale), frame, comment=i % 3 == 0))
    path.write_bytes(b"".join(parts))
    return path


@pytest.fixture(scope="module")
def ethernet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("eth") / "ethernet.pcap"
    write_capture(conversations(), path)
    return path


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many buffers the column-wise path took and declined."""
    seen = {"taken": 0, "declined": 0}
    real = feed_pcapng.convert

    def convert(*args: object, **kwargs: object) -> Block | None:
        made = real(*args, **kwargs)  # type: ignore[arg-type]
        seen["taken" if made is not None else "declined"] += 1
        return made

    monkeypatch.setattr(feed_pcapng, "convert", convert)
    monkeypatch.setattr(feed, "_CHUNK", SMALL_CHUNK)
    return seen


def _ip_of_stream(tmp_path: Path, data: bytes) -> list[tuple[float, bytes]]:
    out = tmp_path / "out.pcap"
    out.write_bytes(data)
    return _ip_layers(out)


@pytest.mark.parametrize("tsresol", [None, 9, 3])
def test_ethernet_pcapng_gives_the_walks_bytes(
    tmp_path: Path, ethernet: Path, counted: dict[str, int], tsresol: int | None
) -> None:
    path = _pcapng(tmp_path / "eth.pcapng", ethernet, tsresol=tsresol)
    data, report = _same(path, ethernet=False)
    assert counted["taken"] > 2
    assert report.records == report.written == len(_frames(ethernet)) and report.converted == 0
    assert [ip for _, ip in _ip_of_stream(tmp_path, data)] == [ip for _, ip in _ip_layers(ethernet)]
    if tsresol != 3:  # milliseconds lose the microseconds; finer units keep them
        times = zip(_ip_of_stream(tmp_path, data), _ip_layers(ethernet), strict=True)
        assert all(abs(got - want) < 1.5e-6 for (got, _), (want, _) in times)  # float seconds, µs apart


@pytest.mark.parametrize(
    "kind", ["linux-cooked-v2", "nflog", "ppi", "vn-tag", "linux-cooked-v1", "raw-ip-101"]
)
def test_other_link_types_in_pcapng_give_the_walks_bytes(
    tmp_path: Path, ethernet: Path, counted: dict[str, int], kind: str
) -> None:
    linktype, reframe = TWINS[kind]
    path = _pcapng(tmp_path / f"{kind}.pcapng", ethernet, linktypes=(linktype,), reframe=reframe)
    data, report = _same(path, ethernet=False)
    assert counted["taken"] > 2
    assert report.records == report.written == len(_frames(ethernet))
    if linktype in feed_block.CONVERTED or kind == "vn-tag":
        assert report.converted == report.records
        assert [ip for _, ip in _ip_of_stream(tmp_path, data)] == [ip for _, ip in _ip_layers(ethernet)]
    else:  # read by the meter as they are
        assert report.converted == 0 and struct.unpack_from("<I", data, 20)[0] == linktype


def test_two_interfaces_of_one_link_type_are_taken_two_of_two_are_left_to_the_walk(
    tmp_path: Path, ethernet: Path, counted: dict[str, int]
) -> None:
    same = _pcapng(tmp_path / "same.pcapng", ethernet, linktypes=(1, 1), interface_of=lambda i: i % 2)
    _same(same, ethernet=False)
    assert counted["taken"] > 2
    counted["taken"] = counted["declined"] = 0
    _, sll2 = TWINS["linux-cooked-v2"]
    frames = list(_packets(ethernet, None))
    parts = [_shb(), _idb(1), _idb(276)]
    for i, (ts, frame) in enumerate(frames):
        eth = dpkt.ethernet.Ethernet(frame)
        interface = i % 2
        body = frame if interface == 0 else sll2(frame, bytes(eth.data), eth.type)
        parts.append(_epb(interface, round(ts * 1_000_000), body))
    (tmp_path / "two.pcapng").write_bytes(b"".join(parts))
    data, report = _same(tmp_path / "two.pcapng", ethernet=False)
    assert counted["taken"] == 0 and counted["declined"] > 2
    assert report.written == len(frames)
    assert [ip for _, ip in _ip_of_stream(tmp_path, data)] == [ip for _, ip in _ip_layers(ethernet)]


def test_blocks_between_packets_end_a_run_and_the_walk_takes_them(
    tmp_path: Path, ethernet: Path, counted: dict[str, int]
) -> None:
    path = _pcapng(tmp_path / "nrb.pcapng", ethernet, between=lambda i: _nrb() if i % 50 == 25 else b"")
    _, report = _same(path, ethernet=False)
    assert counted["taken"] > 2 and report.written == len(_frames(ethernet))


def test_a_cut_pcapng_gives_the_walks_bytes_and_offset(
    tmp_path: Path, ethernet: Path, counted: dict[str, int]
) -> None:
    whole = _pcapng(tmp_path / "whole.pcapng", ethernet).read_bytes()
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(whole[: len(whole) - 37])
    _, report = _same(cut, ethernet=False)
    assert counted["taken"] > 2
    assert report.cut_at is not None and report.cut_at < len(whole) - 37
    assert report.written == len(_frames(ethernet)) - 1


def test_a_wild_timestamp_in_pcapng_is_left_to_the_walk(
    tmp_path: Path, ethernet: Path, counted: dict[str, int]
) -> None:
    frames = list(_packets(ethernet, None))
    parts = [_shb(), _idb(1)]
    for i, (ts, frame) in enumerate(frames):
        when = ts + (86400 * 365 * 20 if i == len(frames) // 2 else 0)
        parts.append(_epb(0, round(when * 1_000_000), frame))
    path = tmp_path / "wild.pcapng"
    path.write_bytes(b"".join(parts))
    _, report = _same(path, ethernet=False)
    assert report.wild == 1 and report.written == len(frames) - 1
    assert counted["taken"] > 2 and counted["declined"] >= 1


def test_a_packet_overrunning_its_block_is_left_to_the_walk(
    tmp_path: Path, ethernet: Path, counted: dict[str, int]
) -> None:
    frames = list(_packets(ethernet, None))
    parts = [_shb(), _idb(1)]
    for i, (ts, frame) in enumerate(frames):
        block = bytearray(_epb(0, round(ts * 1_000_000), frame))
        if i == 7:  # claims more captured bytes than the block holds
            struct.pack_into("<I", block, 20, len(frame) + 400)
        parts.append(bytes(block))
    path = tmp_path / "overrun.pcapng"
    path.write_bytes(b"".join(parts))
    _, report = _same(path, ethernet=False)
    assert report.unusable == 1 and report.written == len(frames) - 1
