"""Frames of a classic Ethernet pcap read and written whole, for tests that edit captures."""

from __future__ import annotations

from pathlib import Path

import dpkt

#: One frame: its time (epoch seconds) and its bytes.
Frame = tuple[float, bytes]


def read_frames(path: Path) -> list[Frame]:
    with path.open("rb") as fh:
        return [(ts, bytes(buf)) for ts, buf in dpkt.pcap.Reader(fh)]


def write_frames(path: Path, frames: list[Frame]) -> None:
    with path.open("wb") as fh:
        writer = dpkt.pcap.Writer(fh, snaplen=65535, linktype=dpkt.pcap.DLT_EN10MB)
        for ts, frame in frames:
            writer.writepkt(frame, ts=ts)
