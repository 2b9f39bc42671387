"""Captures through the feed (issue 12, items 2-4): compressed, cut short, wild timestamps; and a meter
that crashes or a fuzzed capture is a one-line error, never a hang."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import dpkt  # type: ignore[import-untyped]
import lz4.frame
import psutil
import pyarrow as pa
import pytest
import zstandard

from derisk.errors import InputError
from derisk.flows import INGEST_SCHEMA
from derisk.gen.packets import write_capture
from derisk.ingest import resolve_inputs
from derisk.ingest.feed import Feed
from derisk.ingest.pcap import read_pcap
from derisk.ingest.probe import probe
from golden import conversations

KEYS = ("first_seen", "src_ip", "src_port", "dst_ip", "dst_port", "protocol")


def _table(path: Path, notes: dict[str, object] | None = None, **options: bool) -> pa.Table:
    batches = list(read_pcap(path, notes=notes, **options))
    return pa.Table.from_batches(batches, schema=INGEST_SCHEMA).sort_by([(k, "ascending") for k in KEYS])


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, pa.Table]]:
    root = tmp_path_factory.mktemp("golden")
    out = {}
    for fmt in ("pcap", "pcapng"):
        path = root / f"golden.{fmt}"
        write_capture(conversations(), path, fmt=fmt)  # type: ignore[arg-type]
        out[fmt] = path, _table(path)
    return out


def _records(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each record of a little-endian pcap."""
    spans, offset = [], 24
    while offset < len(data):
        end = offset + 16 + struct.unpack_from("<I", data, offset + 8)[0]
        spans.append((offset, end))
        offset = end
    return spans


# ---- compressed captures ---------------------------------------------------------------------------

COMPRESSORS = {
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
    "lz4": lambda data: lz4.frame.compress(data, block_size=lz4.frame.BLOCKSIZE_MAX64KB),
}


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_compressed_capture_gives_the_same_flows(
    tmp_path: Path, golden: dict[str, tuple[Path, pa.Table]], kind: str, fmt: str
) -> None:
    source, expected = golden[fmt]
    path = tmp_path / f"capture.{fmt}.{kind}"
    path.write_bytes(COMPRESSORS[kind](source.read_bytes()))
    notes: dict[str, object] = {}
    assert _table(path, notes).equals(expected)
    assert notes["compression"] == kind
    assert resolve_inputs([path])[0].format == fmt  # recognised by content, whatever the name


@pytest.mark.skipif(shutil.which("zstd") is None or shutil.which("xz") is None, reason="zstd and xz tools")
def test_files_compressed_by_the_usual_tools(
    tmp_path: Path, golden: dict[str, tuple[Path, pa.Table]]
) -> None:
    """Multi-frame zstd (``zstd -B``), xz and gzip as the command-line tools write them."""
    source, expected = golden["pcap"]
    for command, suffix in (
        (["zstd", "-q", "-B4096", "-c"], "zst"),
        (["xz", "-c"], "xz"),
        (["gzip", "-c"], "gz"),
        *([(["lz4", "-q", "-B4", "-c"], "lz4")] if shutil.which("lz4") else []),
    ):
        path = tmp_path / f"golden.pcap.{suffix}"
        path.write_bytes(subprocess.run([*command, str(source)], capture_output=True, check=True).stdout)
        assert _table(path).equals(expected), suffix


def test_compressed_capture_cut_short_keeps_what_came_before(
    tmp_path: Path, golden: dict[str, tuple[Path, pa.Table]]
) -> None:
    source, expected = golden["pcap"]
    data = gzip.compress(source.read_bytes())
    path = tmp_path / "cut.pcap.gz"
    path.write_bytes(data[: len(data) * 3 // 4])
    notes: dict[str, object] = {}
    table = _table(path, notes)
    assert 0 < len(table) <= len(expected)
    assert notes["cut_at_byte"] is not None
    with pytest.raises(InputError, match="refused with --strict"):
        _table(path, strict=True)


def _drink(fifo: Path, out: list[bytes], limit: int | None = None) -> None:
    """Read a pipe to its end (or ``limit`` bytes, then close it), as the meter or the DNS pass would."""
    with fifo.open("rb") as fh:
        while limit is None or sum(map(len, out)) < limit:
            piece = fh.read(1 << 16)
            if not piece:
                break
            out.append(piece)


@pytest.mark.parametrize("second_stops", [False, True])
def test_one_feed_writes_one_stream_to_both_readers(
    tmp_path: Path, golden: dict[str, tuple[Path, pa.Table]], second_stops: bool
) -> None:
    """A compressed capture is decompressed once: the meter's pipe and the DNS pass's get the same bytes;
    a DNS pass that stops early is released and the meter still gets everything."""
    source, _ = golden["pcap"]
    path = tmp_path / "capture.pcap.bz2"
    path.write_bytes(bz2.compress(source.read_bytes()))
    found = probe(path)
    feed = Feed(path, found, ethernet=True)
    meter, scan = tmp_path / "meter", tmp_path / "scan"
    os.mkfifo(meter)
    os.mkfifo(scan)
    got: dict[str, list[bytes]] = {"meter": [], "scan": []}
    feed.start(meter, scan)
    readers = [
        threading.Thread(target=_drink, args=(meter, got["meter"])),
        threading.Thread(target=_drink, args=(scan, got["scan"], 4096 if second_stops else None)),
    ]
    for reader in readers:
        reader.start()
    readers[1].join(timeout=30)
    feed.release()
    readers[0].join(timeout=30)
    report = feed.join()
    feed.stop()
    assert report.error is None and report.cut_at is None
    whole = b"".join(got["meter"])
    assert whole[24:] == source.read_bytes()[24:]  # the same records, copied as they are
    if second_stops:
        assert 4096 <= len(b"".join(got["scan"])) < len(whole)
    else:
        assert b"".join(got["scan"]) == whole


def test_a_feed_whose_readers_stop_reading_stops_when_told(
    tmp_path: Path, golden: dict[str, tuple[Path, pa.Table]]
) -> None:
    """The meter stopped early (the caller closed the iterator): both pipes full, nobody reading;
    stop() drains them and the feed's thread ends instead of blocking for ever."""
    source, _ = golden["pcap"]
    path = tmp_path / "capture.pcap.gz"
    data = source.read_bytes()
    path.write_bytes(gzip.compress(data[:24] + data[24:] * 40))  # more than both pipes hold
    feed = Feed(path, probe(path), ethernet=True)
    meter, scan = tmp_path / "meter", tmp_path / "scan"
    os.mkfifo(meter)
    os.mkfifo(scan)
    feed.start(meter, scan)
    readers = [os.open(meter, os.O_RDONLY), os.open(scan, os.O_RDONLY)]
    try:
        for fd in readers:
            assert os.read(fd, 1024)
        time.sleep(0.5)  # the feed fills both pipes and waits
        started = time.monotonic()
        feed.stop()
        assert time.monotonic() - started < 10
        assert not any(t.name == "derisk-feed" and t.is_alive() for t in threading.enumerate())
    finally:
        for fd in readers:
            os.close(fd)


def test_compressed_non_capture_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt.xz"
    path.write_bytes(lzma.compress(b"hello, not a capture\n" * 10))
    with pytest.raises(InputError, match="not a capture"):
        resolve_inputs([path])
    with pytest.raises(InputError, match="xz-compressed file is not a pcap or pcapng capture"):
        list(read_pcap(path))


# ---- cut captures ----------------------------------------------------------------------------------


def test_cut_pcap_keeps_the_flows_before_the_cut(
    tmp_path: Path, golden: dict[str, tuple[Path, pa.Table]]
) -> None:
    """A capture whose last record is cut gives the flows of the same capture without that record."""
    data = golden["pcap"][0].read_bytes()
    spans = _records(data)
    start, _ = spans[100]
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: start + 30])  # record 101 loses its end, as when tcpdump is killed
    whole = tmp_path / "whole.pcap"
    whole.write_bytes(data[:start])  # the same records, ending cleanly
    notes: dict[str, object] = {}
    assert _table(cut, notes).equals(_table(whole))
    assert notes["cut_at_byte"] == start
    assert notes["warnings"] == [
        f"capture cut off at byte {start:,} (record 101 cut off); the 100 packets before the cut were read"
    ]


def test_cut_pcapng_keeps_the_flows_before_the_cut(
    tmp_path: Path, golden: dict[str, tuple[Path, pa.Table]]
) -> None:
    source = golden["pcapng"][0]
    data = source.read_bytes()
    path = tmp_path / "cut.pcapng"
    path.write_bytes(data[:-30])
    notes: dict[str, object] = {}
    table = _table(path, notes)
    assert len(table) == len(golden["pcapng"][1])  # the last packet ends a flow that has earlier ones
    assert isinstance(notes["cut_at_byte"], int) and notes["cut_at_byte"] < len(data)
    with pytest.raises(InputError, match="refused with --strict"):
        _table(path, strict=True)


def test_cut_warning_names_file_and_offset(
    tmp_path: Path, golden: dict[str, tuple[Path, pa.Table]], caplog: pytest.LogCaptureFixture
) -> None:
    data = golden["pcap"][0].read_bytes()
    path = tmp_path / "cut.pcap"
    path.write_bytes(data[:-7])
    _table(path)
    start = _records(data)[-1][0]
    assert f"{path}: capture cut off at byte {start:,}" in caplog.text


# ---- timestamps ------------------------------------------------------------------------------------


def _with_record(data: bytes, index: int, seconds: int) -> bytes:
    """``data`` with a copy of record ``index`` inserted after it, dated ``seconds``."""
    start, end = _records(data)[index]
    wild = struct.pack("<I", seconds) + data[start + 4 : end]
    return data[:end] + wild + data[end:]


def test_a_packet_in_the_future_redates_nothing(
    tmp_path: Path, golden: dict[str, tuple[Path, pa.Table]]
) -> None:
    source, expected = golden["pcap"]
    path = tmp_path / "wild.pcap"
    path.write_bytes(_with_record(source.read_bytes(), 20, int(datetime(2031, 6, 1, tzinfo=UTC).timestamp())))
    notes: dict[str, object] = {}
    assert _table(path, notes).equals(expected)
    assert notes["wild_timestamps"] == 1
    assert "1 packets left out for their timestamps (1 in the future" in str(notes["warnings"])


def test_a_packet_far_ahead_then_back_redates_nothing(
    tmp_path: Path, golden: dict[str, tuple[Path, pa.Table]]
) -> None:
    """A packet a week ahead of the others (not in the future), followed by packets at their time."""
    source, expected = golden["pcap"]
    data = source.read_bytes()
    seconds = struct.unpack_from("<I", data, 24)[0] + 7 * 86400
    path = tmp_path / "ahead.pcap"
    path.write_bytes(_with_record(data, 50, seconds))
    notes: dict[str, object] = {}
    assert _table(path, notes).equals(expected)
    assert notes["wild_timestamps"] == 1


def test_a_packet_far_behind_redates_nothing(
    tmp_path: Path, golden: dict[str, tuple[Path, pa.Table]]
) -> None:
    source, expected = golden["pcap"]
    path = tmp_path / "behind.pcap"
    path.write_bytes(_with_record(source.read_bytes(), 60, 86400 * 365))  # 1971
    notes: dict[str, object] = {}
    assert _table(path, notes).equals(expected)
    assert notes["wild_timestamps"] == 1


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_a_wild_first_packet_redates_nothing(
    tmp_path: Path, golden: dict[str, tuple[Path, pa.Table]], fmt: str
) -> None:
    """A file that starts with a packet of another day (two captures joined, as in a public test file):
    the first packet is the wild one, not every packet after it."""
    source, expected = golden[fmt]
    path = tmp_path / f"first.{fmt}"
    later = datetime(2031, 1, 1, tzinfo=UTC).timestamp() - 86400 * 365 * 2  # after the capture, not future
    with source.open("rb") as fh, path.open("wb") as out:
        reader = dpkt.pcap.Reader(fh) if fmt == "pcap" else dpkt.pcapng.Reader(fh)
        writer = dpkt.pcap.Writer(out) if fmt == "pcap" else dpkt.pcapng.Writer(out)
        for n, (ts, buf) in enumerate(reader):
            if n == 0:
                writer.writepkt(buf, ts=later)
            writer.writepkt(buf, ts=ts)
    notes: dict[str, object] = {}
    assert _table(path, notes).equals(expected)
    assert notes["wild_timestamps"] == 1


def test_a_real_gap_is_kept(tmp_path: Path, golden: dict[str, tuple[Path, pa.Table]]) -> None:
    """Every packet from the middle on two hours later: a gap in the capture, not a wild packet."""
    source, expected = golden["pcap"]
    data = bytearray(source.read_bytes())
    spans = _records(bytes(data))
    for start, _ in spans[len(spans) // 2 :]:
        struct.pack_into("<I", data, start, struct.unpack_from("<I", data, start)[0] + 7200)
    path = tmp_path / "gap.pcap"
    path.write_bytes(bytes(data))
    notes: dict[str, object] = {}
    table = _table(path, notes)
    assert notes["wild_timestamps"] == 0
    assert sum(table["packets_out"].to_pylist()) + sum(table["packets_in"].to_pylist()) == len(spans)
    assert table["last_seen"].to_pylist()[-1] > expected["last_seen"].to_pylist()[-1]


# ---- the meter crashes, fuzzed captures ------------------------------------------------------------


def test_a_meter_that_crashes_is_a_one_line_error(tmp_path: Path) -> None:
    """The meter process dies of SIGSEGV while it reads: an InputError within seconds, not a hang."""
    path = tmp_path / "long.pcap"
    write_capture(conversations(ipv6=False) * 1, path)
    data = path.read_bytes()
    header, body = data[:24], data[24:]
    # the same packets again and again: metering lasts a while even on an idle, fast machine
    path.write_bytes(header + body * 1500)
    me = psutil.Process()

    def crash() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            meters = me.children()
            if meters:
                time.sleep(0.05)  # inside its read loop, long before the end of the file
                for meter in me.children():
                    os.kill(meter.pid, signal.SIGSEGV)
                return
            time.sleep(0.01)

    threading.Thread(target=crash, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(InputError) as caught:
        list(read_pcap(path))
    assert time.monotonic() - started < 20
    message = str(caught.value)
    assert message.startswith(f"{path}: capture could not be read: NFStream's meter process crashed")
    assert "SIGSEGV" in message and "\n" not in message


@pytest.mark.timeout(120)
def test_fuzzed_captures_end_in_flows_or_one_line_errors(
    tmp_path: Path, golden: dict[str, tuple[Path, pa.Table]]
) -> None:
    """Random bytes inside packets (and, in some files, in record headers): the read ends, with flows
    or with an InputError naming the file; no hang, no other exception."""
    data = golden["pcap"][0].read_bytes()
    spans = _records(data)
    rng = random.Random(12)
    outcomes = []
    for n in range(12):
        fuzzed = bytearray(data)
        for start, end in rng.sample(spans, 40):
            for _ in range(8):
                fuzzed[rng.randrange(start + 16, end)] = rng.randrange(256)
        if n % 3 == 2:  # and a record header
            start, _ = rng.choice(spans)
            fuzzed[start + 8 : start + 12] = rng.randbytes(4)
        path = tmp_path / f"fuzz-{n}.pcap"
        path.write_bytes(bytes(fuzzed))
        try:
            outcomes.append(len(_table(path)))
        except InputError as exc:
            assert str(exc).startswith(f"{path}: ") and "\n" not in str(exc)
            outcomes.append(-1)
    assert any(n > 0 for n in outcomes)


def test_a_wild_packet_in_a_pcapng_redates_nothing(
    tmp_path: Path, golden: dict[str, tuple[Path, pa.Table]]
) -> None:
    source, expected = golden["pcapng"]
    path = tmp_path / "wild.pcapng"
    wild = datetime(2031, 6, 1, tzinfo=UTC).timestamp()
    with source.open("rb") as fh, path.open("wb") as out:
        writer = dpkt.pcapng.Writer(out)
        for n, (ts, buf) in enumerate(dpkt.pcapng.Reader(fh)):
            writer.writepkt(buf, ts=ts)
            if n == 30:
                writer.writepkt(buf, ts=wild)
    notes: dict[str, object] = {}
    assert _table(path, notes).equals(expected)
    assert notes["wild_timestamps"] == 1


def test_a_pcapng_date_past_the_pcap_range_is_left_out(
    tmp_path: Path, golden: dict[str, tuple[Path, pa.Table]]
) -> None:
    """pcapng's 64-bit timestamps reach past 2106, where a pcap record's 32-bit seconds end (a wrong
    ``if_tsresol`` gives such dates, as in a PcapPlusPlus example): counted in the future, no crash."""
    source, expected = golden["pcapng"]
    path = tmp_path / "far.pcapng"
    with source.open("rb") as fh, path.open("wb") as out:
        writer = dpkt.pcapng.Writer(out)
        for n, (ts, buf) in enumerate(dpkt.pcapng.Reader(fh)):
            writer.writepkt(buf, ts=ts)
            if n in (10, 40):
                writer.writepkt(buf, ts=float(1 << 40))
    notes: dict[str, object] = {}
    assert _table(path, notes).equals(expected)
    assert notes["wild_timestamps"] == 2
    assert "2 packets left out for their timestamps (2 in the future" in str(notes["warnings"])


# ---- through the command line ----------------------------------------------------------------------


def test_command_line_exit_codes_and_workspace(
    tmp_path: Path,
    golden: dict[str, tuple[Path, pa.Table]],
    data_env: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """exit 0 with a warning for a cut capture, 3 with --strict or an unsupported link type; a refused
    input leaves the workspace as it was."""
    from derisk.cli import main
    from derisk.store.workspace import Workspace

    ws = tmp_path / "ws"
    source = golden["pcap"][0]
    assert main(["analyze", str(source), "-w", str(ws), "-q"]) == 0
    with Workspace.open(ws, create=False, read_only=True) as w:
        before = w.flow_count()
    capsys.readouterr()

    frame_relay = tmp_path / "frame-relay.pcap"
    frame_relay.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 107))
    cut = tmp_path / "cut.pcap.gz"
    cut.write_bytes(gzip.compress(source.read_bytes()[:-9]))
    for argv, code in (
        ([str(frame_relay)], 3),
        (["--strict", str(cut)], 3),
    ):
        assert main(["analyze", *argv, "-w", str(ws), "-q"]) == code
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "Traceback" not in err[0], err
        assert argv[-1] in err[0]
        with Workspace.open(ws, create=False, read_only=True) as w:
            assert w.flow_count() == before
    assert main(["analyze", str(cut), "-w", str(ws), "-q"]) == 0
    assert f"{cut}: capture cut off at byte" in caplog.text  # the command line prints it to stderr
    assert "Traceback" not in capsys.readouterr().err


def test_lz4_capture_cut_short_keeps_the_blocks_before_the_cut(
    tmp_path: Path, golden: dict[str, tuple[Path, pa.Table]]
) -> None:
    """An LZ4 frame of 64 KiB blocks cut in its last block: the whole blocks before it are read."""
    source, expected = golden["pcap"]
    data = lz4.frame.compress(
        source.read_bytes(),
        block_size=lz4.frame.BLOCKSIZE_MAX64KB,
        block_checksum=True,
        content_checksum=True,
    )
    path = tmp_path / "cut.pcap.lz4"
    path.write_bytes(data[: len(data) - 100])
    notes: dict[str, object] = {}
    table = _table(path, notes)
    assert 0 < len(table) <= len(expected)
    assert notes["cut_at_byte"] is not None and notes["compression"] == "lz4"
    corrupt = bytearray(data)
    corrupt[len(data) // 2 : len(data) // 2 + 16] = b"\xff" * 16
    path.write_bytes(bytes(corrupt))
    with pytest.raises(InputError, match=r"(corrupt lz4 stream|cannot be read): LZ4F_decompress failed"):
        _table(path)


def _jumbo(path: Path, fmt: str) -> Path:
    """The golden conversations with every frame padded to a 9,000-byte jumbo frame after its IP datagram."""
    source = path.with_suffix(".source.pcap")
    write_capture(conversations(), source)
    with source.open("rb") as fh:
        frames = list(dpkt.pcap.Reader(fh))
    with path.open("wb") as out:
        writer = (dpkt.pcapng.Writer if fmt == "pcapng" else dpkt.pcap.Writer)(out, snaplen=65535)
        for ts, frame in frames:
            writer.writepkt(frame + b"\0" * (9000 - len(frame)), ts=ts)
    return path


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_records_longer_than_the_feeds_buffer_are_read(
    tmp_path: Path, golden: dict[str, tuple[Path, pa.Table]], monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """A record longer than what is left of the feed's buffer made it wait for itself forever (the feed
    read on only when less than a buffer was left); here the buffer is smaller than a jumbo frame."""
    from derisk.ingest import feed

    monkeypatch.setattr(feed, "_CHUNK", 3000)
    path = _jumbo(tmp_path / f"jumbo.{fmt}", fmt)
    table = _table(path)
    assert table.select(KEYS).equals(golden["pcap"][1].select(KEYS))


def test_a_record_of_a_whole_buffer_is_a_one_line_error_not_a_hang(tmp_path: Path) -> None:
    """A record claiming the largest length the feed takes (1 MiB, more than libpcap's 256 KiB) right after
    the file header: derisk analyze hung on it; now libpcap's refusal is the one-line error."""
    path = tmp_path / "big.pcap"
    head = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 1 << 20, 1)
    big = (
        struct.pack("<IIII", 1_700_000_000, 0, 1 << 20, 1 << 20)
        + b"\0" * 12
        + b"\x08\x00\x45"
        + b"\0" * ((1 << 20) - 15)
    )
    small = struct.pack("<IIII", 1_700_000_001, 0, 60, 60) + b"\0" * 60
    path.write_bytes(head + big + small * 10)
    done = subprocess.run(
        [sys.executable, "-m", "derisk", "analyze", str(path), "--workspace", str(tmp_path / "ws")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 3
    assert (
        done.stderr.strip().count("\n") == 0 and str(path) in done.stderr and "Traceback" not in done.stderr
    )
