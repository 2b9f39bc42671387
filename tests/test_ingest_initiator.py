"""Flows whose opening the capture missed are read from the side that opened them.

A capture that starts after a connection opened sees the server's SYN-ACK or data first; NFStream
then names the server as the flow's source. Captures written by the packet generator (real pcap,
read by the real NFStream) have their first client packets cut, and must give the flows of their
uncut twins; a connection that does open from outside, and two server ports, stay as metered.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dpkt
import pyarrow as pa
import pytest

from capture_frames import Frame, read_frames, write_frames
from derisk.errors import DataError
from derisk.flows import INGEST_SCHEMA
from derisk.gen.model import Conversation, Exchange, HttpRequest, TlsHello
from derisk.gen.packets import write_capture
from derisk.ingest.initiator import by_opener, parse_server_ports
from derisk.ingest.pcap import read_pcap

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CLIENT, SERVER, OUTSIDER = "10.1.0.7", "47.88.1.20", "198.51.100.9"


def _talks() -> list[Conversation]:
    at = START
    return [
        Conversation("tcp", CLIENT, SERVER, at, 51000, 443, tls=TlsHello("plug.vendor.cn")),
        Conversation(
            "tcp", CLIENT, SERVER, at + timedelta(seconds=1), 51001, 80, http=HttpRequest("a.vendor.cn")
        ),
        Conversation(
            "udp",
            CLIENT,
            SERVER,
            at + timedelta(seconds=2),
            51002,
            443,
            exchanges=(Exchange("c2s", 1200), Exchange("s2c", 3000), Exchange("c2s", 80)),
        ),
        Conversation(  # opened from outside, to the site's SSH: inbound, whatever is cut
            "tcp",
            OUTSIDER,
            CLIENT,
            at + timedelta(seconds=3),
            50123,
            22,
            exchanges=(Exchange("c2s", 300), Exchange("s2c", 900)),
        ),
        Conversation(  # NTP: a server port on both sides
            "udp",
            CLIENT,
            SERVER,
            at + timedelta(seconds=4),
            123,
            123,
            exchanges=(Exchange("c2s", 48), Exchange("s2c", 48)),
        ),
    ]


def _ports(frame: bytes) -> tuple[int, int, bool]:
    """(source port, destination port, a TCP segment with SYN and no ACK)."""
    ip = dpkt.ethernet.Ethernet(frame).data
    seg = ip.data
    syn_only = (
        isinstance(seg, dpkt.tcp.TCP)
        and bool(seg.flags & dpkt.tcp.TH_SYN)
        and not seg.flags & dpkt.tcp.TH_ACK
    )
    return seg.sport, seg.dport, syn_only


def _cut_openings(frames: list[Frame], client_ports: set[int]) -> list[Frame]:
    """Drop, per client port, the client's packets before the server first answered."""
    answered: set[int] = set()
    out = []
    for ts, frame in frames:
        sport, dport, _ = _ports(frame)
        if dport in client_ports and sport not in client_ports:
            answered.add(dport)
        if sport in client_ports and sport not in answered:
            continue
        out.append((ts, frame))
    return out


def _read(path: Path) -> list[dict[str, Any]]:
    rows = pa.Table.from_batches(list(read_pcap(path)), schema=INGEST_SCHEMA).to_pylist()
    keep = ("src_ip", "src_port", "dst_ip", "dst_port", "protocol", "server_name")
    return sorted(({k: r[k] for k in keep} for r in rows), key=lambda r: (r["src_port"], r["dst_port"]))


@pytest.fixture
def whole(tmp_path: Path) -> Path:
    capture = tmp_path / "whole.pcap"
    write_capture(_talks(), capture)
    return capture


def test_connections_caught_after_their_opening_read_as_their_uncut_twins(
    tmp_path: Path, whole: Path
) -> None:
    frames = read_frames(whole)
    cut = tmp_path / "cut.pcap"
    write_frames(cut, _cut_openings(frames, {51000, 51001, 51002}))
    assert len(read_frames(cut)) < len(frames)
    first = {(_ports(f)[0], _ports(f)[1]) for _, f in read_frames(cut)[:1]}
    assert first == {(443, 51000)}  # the cut capture does begin with the server's packet
    expected = _read(whole)
    got = _read(cut)
    named = [(r["src_ip"], r["src_port"], r["dst_port"], r["server_name"]) for r in got]
    assert (CLIENT, 51000, 443, "plug.vendor.cn") in named  # the SNI came after the cut
    assert [{k: v for k, v in r.items() if k != "server_name"} for r in got] == [
        {k: v for k, v in r.items() if k != "server_name"} for r in expected
    ]


def test_a_connection_opened_from_outside_and_two_server_ports_stay_as_metered(whole: Path) -> None:
    rows = _read(whole)
    ssh = [r for r in rows if r["dst_port"] == 22 or r["src_port"] == 22]
    assert [(r["src_ip"], r["src_port"], r["dst_ip"], r["dst_port"]) for r in ssh] == [
        (OUTSIDER, 50123, CLIENT, 22)
    ]
    ntp = [r for r in rows if r["src_port"] == 123]
    assert [(r["src_ip"], r["dst_ip"]) for r in ntp] == [(CLIENT, SERVER)]


def test_turning_round_swaps_every_directed_column() -> None:
    batch = pa.RecordBatch.from_pylist(
        [
            {
                "src_ip": SERVER,
                "src_port": 443,
                "dst_ip": CLIENT,
                "dst_port": 51000,
                "bytes_out": 9,
                "bytes_in": 2,
                "packets_out": 3,
                "packets_in": 1,
            },
            {
                "src_ip": CLIENT,
                "src_port": 51000,
                "dst_ip": SERVER,
                "dst_port": 8883,
                "bytes_out": 5,
                "bytes_in": 7,
                "packets_out": 1,
                "packets_in": 2,
            },
            {
                "src_ip": SERVER,
                "src_port": 443,
                "dst_ip": CLIENT,
                "dst_port": 1023,
                "bytes_out": 1,
                "bytes_in": 1,
                "packets_out": 1,
                "packets_in": 1,
            },
            {
                "src_ip": "10.0.0.1",
                "src_port": None,
                "dst_ip": "10.0.0.2",
                "dst_port": None,
                "bytes_out": 1,
                "bytes_in": 2,
                "packets_out": 1,
                "packets_in": 2,
            },
        ]
    )
    rows = by_opener(batch).to_pylist()
    assert rows[0] == {
        "src_ip": CLIENT,
        "src_port": 51000,
        "dst_ip": SERVER,
        "dst_port": 443,
        "bytes_out": 2,
        "bytes_in": 9,
        "packets_out": 1,
        "packets_in": 3,
    }
    assert rows[1:] == batch.to_pylist()[1:]  # already client first; a privileged receiver; no ports


@pytest.mark.parametrize(
    "doc",
    [
        None,
        {"schema": "derisk.server-ports/1", "source": "x", "system_ports": "a-b", "user_ports": {}},
        {
            "schema": "derisk.server-ports/1",
            "source": "x",
            "system_ports": "1-1023",
            "user_ports": {80: "http"},
        },
        {"schema": "derisk.server-ports/1", "source": " ", "system_ports": "1-1023", "user_ports": {}},
    ],
)
def test_a_bad_server_port_table_is_refused(doc: Any) -> None:
    with pytest.raises(DataError):
        parse_server_ports(doc, "server-ports.yaml")
