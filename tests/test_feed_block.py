"""The feed's column-wise path (derisk.ingest.feed_block) writes exactly what the record-by-record walk
writes: the same bytes into the meter's pipe and the same report, for every link type it converts and
for the cases it declines (wild timestamps, short frames, nested tags, unusual NFLOG attributes)."""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Callable
from pathlib import Path

import dpkt  # type: ignore[import-untyped]
import pytest

from derisk.gen.packets import write_capture
from derisk.ingest import feed, feed_block
from derisk.ingest.feed import Feed, FeedReport
from derisk.ingest.probe import probe
from golden import conversations
from test_linktypes import TWINS, Reframe

#: The walk's buffer is 1 MiB; small buffers put many buffer ends inside records.
SMALL_CHUNK = 3000


@pytest.fixture(scope="module")
def ethernet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("eth") / "ethernet.pcap"
    write_capture(conversations(), path)
    return path


def _frames(source: Path) -> list[tuple[float, bytes]]:
    with source.open("rb") as fh:
        return list(dpkt.pcap.Reader(fh))


def _write(path: Path, linktype: int, frames: list[tuple[float, bytes]]) -> Path:
    with path.open("wb") as out:
        writer = dpkt.pcap.Writer(out, linktype=linktype)
        for ts, frame in frames:
            writer.writepkt(frame, ts=ts)
    return path


def _reframed(source: Path, path: Path, linktype: int, reframe: Reframe) -> Path:
    out = []
    for ts, buf in _frames(source):
        eth = dpkt.ethernet.Ethernet(buf)
        out.append((ts, reframe(buf, bytes(eth.data), eth.type)))
    return _write(path, linktype, out)


def _drink(fifo: Path, out: list[bytes]) -> None:
    with fifo.open("rb") as fh:
        while piece := fh.read(1 << 16):
            out.append(piece)


def _fed(path: Path, *, block: bool, ethernet: bool) -> tuple[bytes, FeedReport]:
    """What the feed writes into the meter's pipe for ``path``, with or without the column-wise path."""
    found = probe(path)
    running = Feed(path, found, ethernet=ethernet)
    running.block = block
    fifo = path.parent / f"pipe-{block}"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=_drink, args=(fifo, got))
    reader.start()
    running.start(fifo)
    report = running.join()
    reader.join(timeout=60)
    running.stop()
    fifo.unlink(missing_ok=True)
    return b"".join(got), report


def _same(path: Path, *, ethernet: bool = True) -> tuple[bytes, FeedReport]:
    fast, fast_report = _fed(path, block=True, ethernet=ethernet)
    walked, walked_report = _fed(path, block=False, ethernet=ethernet)
    assert fast == walked
    assert fast_report == walked_report
    return fast, fast_report


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many buffers the column-wise path took and declined (so a test knows which path it ran)."""
    seen = {"taken": 0, "declined": 0}
    real = feed_block.convert

    def convert(*args: object, **kwargs: object) -> feed_block.Block | None:
        made = real(*args, **kwargs)  # type: ignore[arg-type]
        seen["taken" if made is not None else "declined"] += 1
        return made

    monkeypatch.setattr(feed_block, "convert", convert)
    monkeypatch.setattr(feed, "_CHUNK", SMALL_CHUNK)
    return seen


@pytest.mark.parametrize(
    "kind", ["linux-cooked-v2", "nflog", "ppi", "vn-tag", "e-tag", "802.1q", "qinq-802.1ad", "mpls"]
)
def test_converted_link_types_give_the_walks_bytes(
    tmp_path: Path, ethernet: Path, counted: dict[str, int], kind: str
) -> None:
    linktype, reframe = TWINS[kind]
    path = _reframed(ethernet, tmp_path / f"{kind}.pcap", linktype, reframe)
    data, report = _same(path)
    assert counted["taken"] > 2 and counted["declined"] == 0
    assert report.records == report.written == len(_frames(ethernet))
    if kind not in ("802.1q", "mpls"):  # frames NFStream reads as they are stay untouched
        assert report.converted == report.records
    # the output is Ethernet with the network layer of the input's frames
    frames = _frames(ethernet)
    with (tmp_path / "out.pcap").open("wb") as fh:
        fh.write(data)
    assert [ip for _, ip in _ip_layers(tmp_path / "out.pcap")] == [ip for _, ip in _ip_layers(ethernet)]
    assert len(frames) == report.written


def _ip_layers(path: Path) -> list[tuple[float, bytes]]:
    out = []
    for ts, buf in _frames(path):
        eth = dpkt.ethernet.Ethernet(buf)
        out.append((ts, bytes(eth.data) if not isinstance(eth.data, bytes) else eth.data))
    return out


def test_ethernet_passes_without_a_copy_per_record(ethernet: Path, counted: dict[str, int]) -> None:
    data, report = _same(ethernet, ethernet=False)
    assert data[24:] == ethernet.read_bytes()[24:]
    assert counted["taken"] > 2 and report.converted == 0


@pytest.mark.parametrize(
    "kind", ["linux-cooked-v1", "raw-ip-101", "raw-ip-12", "null", "cisco-hdlc", "ppp-hdlc"]
)
def test_link_types_the_meter_reads_pass_whole_buffers_unchanged(
    tmp_path: Path, ethernet: Path, counted: dict[str, int], kind: str
) -> None:
    """A link type NFStream reads as it is goes through the column-wise path untouched (the walk took
    it record by record, the CPU of a cooked v1 capture beyond its Ethernet twin); written as
    Ethernet (``ethernet=True``, the DNS pass's rescan), it is left to the walk, which converts it."""
    linktype, reframe = TWINS[kind]
    path = _reframed(ethernet, tmp_path / f"{kind}.pcap", linktype, reframe)
    data, report = _same(path, ethernet=False)
    assert counted["taken"] > 2 and counted["declined"] == 0
    assert data[24:] == path.read_bytes()[24:] and report.converted == 0
    assert report.records == report.written == len(_frames(ethernet))
    counted["taken"] = 0
    converted, report = _same(path, ethernet=True)
    assert counted["taken"] == 0 and report.converted == report.records
    with (tmp_path / "out.pcap").open("wb") as fh:
        fh.write(converted)
    assert [ip for _, ip in _ip_layers(tmp_path / "out.pcap")] == [ip for _, ip in _ip_layers(ethernet)]


def _mixed(
    frames: list[tuple[float, bytes]], odd: Callable[[int, bytes], bytes]
) -> list[tuple[float, bytes]]:
    return [(ts, odd(i, frame)) for i, (ts, frame) in enumerate(frames)]


@pytest.mark.parametrize(
    "case",
    ["short frames", "nested outer tags", "tags on some frames", "future", "far ahead", "far behind"],
)
def test_unusual_ethernet_buffers_give_the_walks_bytes(
    tmp_path: Path, ethernet: Path, counted: dict[str, int], case: str
) -> None:
    frames = _frames(ethernet)
    if case == "short frames":
        frames = _mixed(frames, lambda i, f: f[:10] if i % 37 == 5 else f)
    elif case == "nested outer tags":
        frames = _mixed(
            frames,
            lambda i, f: f[:12] + b"\x88\xa8\x00\x14\x89\x26\x80\x01\x00\x02" + f[12:] if i % 29 == 3 else f,
        )
    elif case == "tags on some frames":
        frames = _mixed(frames, lambda i, f: f[:12] + b"\x91\x00\x00\x14" + f[12:] if i % 3 == 1 else f)
    else:
        shift = {"future": 20 * 365 * 86400, "far ahead": 7 * 86400, "far behind": -30 * 86400}[case]
        frames = [(ts + shift if i == 40 else ts, f) for i, (ts, f) in enumerate(frames)]
    path = _write(tmp_path / "odd.pcap", 1, frames)
    _, report = _same(path, ethernet=False)
    assert counted["taken"] > 0
    if case in ("short frames", "nested outer tags", "future", "far ahead", "far behind"):
        assert counted["declined"] > 0  # the walk took those buffers
    if case in ("future", "far ahead", "far behind"):
        assert report.wild == 1


def _nflog_frame(ip: bytes, family: int, *, tlvs: bytes = b"", packet_type: int = 9) -> bytes:
    payload = struct.pack("<HH", 4 + len(ip), packet_type) + ip
    return struct.pack(">BBH", family, 0, 0) + tlvs + payload + b"\0" * (-len(payload) % 4)


_HW = struct.pack("<HH", 8, 1) + struct.pack(">HBB", 0x0800, 0, 0)


@pytest.mark.parametrize(
    "case", ["family from the IP version", "short prefix", "no packet attribute", "many attributes"]
)
def test_unusual_nflog_gives_the_walks_bytes(
    tmp_path: Path, ethernet: Path, counted: dict[str, int], case: str
) -> None:
    out = []
    for i, (ts, buf) in enumerate(_frames(ethernet)):
        ip = bytes(dpkt.ethernet.Ethernet(buf).data)
        if case == "family from the IP version":
            frame = _nflog_frame(ip, 0, tlvs=_HW + _HW)
        elif case == "short prefix":  # the packet right after the NFLOG header: no room in place
            frame = _nflog_frame(ip, 2) if i % 11 == 0 else _nflog_frame(ip, 2, tlvs=_HW)
        elif case == "no packet attribute":
            frame = _nflog_frame(ip, 2, tlvs=_HW, packet_type=8 if i % 13 == 0 else 9)
        else:
            frame = _nflog_frame(ip, 2, tlvs=_HW * (12 if i % 7 == 0 else 2))
        out.append((ts, frame))
    path = _write(tmp_path / "nflog.pcap", 239, out)
    _, report = _same(path)
    assert counted["taken"] > 0
    if case != "family from the IP version":
        assert counted["declined"] > 0
    if case == "no packet attribute":
        assert report.unusable > 0


def test_short_cooked_v2_frames_give_the_walks_bytes(
    tmp_path: Path, ethernet: Path, counted: dict[str, int]
) -> None:
    linktype, reframe = TWINS["linux-cooked-v2"]
    path = _reframed(ethernet, tmp_path / "sll2.pcap", linktype, reframe)
    frames = _mixed(_frames(path), lambda i, f: f[:15] if i % 17 == 2 else f)
    _, report = _same(_write(tmp_path / "short.pcap", linktype, frames))
    assert report.unusable > 0 and counted["declined"] > 0


def test_a_cut_capture_gives_the_walks_bytes_and_offset(
    tmp_path: Path, ethernet: Path, counted: dict[str, int]
) -> None:
    linktype, reframe = TWINS["linux-cooked-v2"]
    whole = _reframed(ethernet, tmp_path / "sll2.pcap", linktype, reframe).read_bytes()
    path = tmp_path / "cut.pcap"
    path.write_bytes(whole[: len(whole) * 2 // 3])
    _, report = _same(path)
    assert report.cut_at is not None and counted["taken"] > 0
