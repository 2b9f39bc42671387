"""The feed's tee (derisk.ingest.feed_writer): two pipes written in large pieces, whatever their readers do.

A reader that frees its pipe a page at a time (as libpcap reading a stream does) used to wake the
writer once per page: one write, one wake-up and one turn of the GIL per 4 KiB, 35,000 of them for a
230 MB capture. Every write but the last to a pipe is now at least a large piece, so the number of
writes is bounded by the size of the data, however the readers are scheduled.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from derisk.ingest import feed_writer
from derisk.ingest.feed_writer import Outputs, Writer

DATA = 8 << 20


def _slow_reader(fifo: Path, out: list[bytes], page: int, pause: float) -> None:
    fd = os.open(fifo, os.O_RDONLY)
    try:
        while piece := os.read(fd, page):
            out.append(piece)
            if pause:
                time.sleep(pause)
    finally:
        os.close(fd)


def test_a_reader_freeing_page_by_page_gets_large_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fifos = [tmp_path / "meter", tmp_path / "scan"]
    for fifo in fifos:
        os.mkfifo(fifo)
    got: list[list[bytes]] = [[], []]
    readers = [
        threading.Thread(target=_slow_reader, args=(fifos[0], got[0], 4096, 0.0002)),
        threading.Thread(target=_slow_reader, args=(fifos[1], got[1], 1 << 16, 0.0)),
    ]
    for reader in readers:
        reader.start()
    outputs = Outputs(threading.Event())
    for index, fifo in enumerate(fifos):
        assert outputs.open(fifo, index)
    writes: list[int] = []
    real_write = os.write

    def write(fd: int, data: bytes | memoryview) -> int:
        done = real_write(fd, data)
        writes.append(done)
        return done

    monkeypatch.setattr(os, "write", write)
    payload = bytes(range(256)) * (DATA // 256)
    dns = payload[: 1 << 20]
    writer = Writer(outputs)
    assert writer.tee
    for at in range(0, DATA, 1 << 20):
        writer.add(payload[at : at + (1 << 20)], dns if at == 0 else b"")
    writer.flush()
    monkeypatch.undo()
    outputs.close()
    for reader in readers:
        reader.join(timeout=60)
    outputs.close_drains()
    assert b"".join(got[0]) == payload and b"".join(got[1]) == dns
    # every write but the last to each pipe is a large piece: at most DATA / piece + 1 per pipe
    bound = 2 * (DATA // feed_writer._LARGE_PIECE + 1)
    assert len(writes) <= bound, f"{len(writes)} writes for {DATA} bytes"
