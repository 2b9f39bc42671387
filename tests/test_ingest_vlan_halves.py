"""Connections whose two directions are tagged on different VLANs: NFStream meters each direction as a
one-way flow (it keys flows by VLAN id); derisk joins the two halves back into the flow the same
capture without tags gives. Captures are written by the generator and re-tagged with dpkt, frame by
frame, as a SPAN port that tags one direction delivers them; the untagged twin is the tagged file
with its tags taken out again."""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from capture_frames import Frame, read_frames, write_frames
from derisk.flows import INGEST_SCHEMA
from derisk.gen.model import Conversation, DnsLookup, Exchange, HttpRequest, TlsHello
from derisk.gen.packets import write_capture
from derisk.ingest.pcap import read_pcap
from derisk.ingest.vlan_halves import HalfJoiner

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CLIENT, SERVER, RESOLVER = "10.1.0.7", "47.88.1.20", "10.1.0.53"


def _sender(frame: bytes) -> str:
    offset = 16 if frame[12:14] == b"\x81\x00" else 12
    return ".".join(str(b) for b in frame[offset + 14 : offset + 18])


def _tag(frame: bytes, vlan: int) -> bytes:
    return frame[:12] + struct.pack(">HH", 0x8100, vlan) + frame[12:]


def _strip(frames: list[Frame]) -> list[Frame]:
    return [(ts, f[:12] + f[16:] if f[12:14] == b"\x81\x00" else f) for ts, f in frames]


def _retag(frames: list[Frame], vlan_of: Callable[[str], int]) -> list[Frame]:
    """Tag each frame with the VLAN ``vlan_of`` gives its sender (0: untagged)."""
    out = []
    for ts, frame in frames:
        vlan = vlan_of(_sender(frame))
        out.append((ts, _tag(frame, vlan) if vlan else frame))
    return out


def _talks() -> list[Conversation]:
    """A lookup, TLS with SNI, plain HTTP, a TCP exchange without a name and a UDP exchange, all to one
    server; the lock hub's shape."""
    at = START
    return [
        Conversation("udp", CLIENT, RESOLVER, at, 40000, 53, dns=DnsLookup("plug.vendor.cn", "A", (SERVER,))),
        Conversation(
            "tcp", CLIENT, SERVER, at + timedelta(seconds=1), 41000, 443, tls=TlsHello("plug.vendor.cn")
        ),
        Conversation(
            "tcp", CLIENT, SERVER, at + timedelta(seconds=2), 41001, 80, http=HttpRequest("plug.vendor.cn")
        ),
        Conversation(
            "tcp",
            CLIENT,
            SERVER,
            at + timedelta(seconds=3),
            41002,
            8883,
            exchanges=(Exchange("c2s", 300), Exchange("s2c", 4000), Exchange("c2s", 120)),
        ),
        Conversation(
            "udp",
            CLIENT,
            SERVER,
            at + timedelta(seconds=4),
            41003,
            9999,
            exchanges=(Exchange("c2s", 64), Exchange("s2c", 900), Exchange("c2s", 64)),
        ),
    ]


def _read(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    notes: dict[str, Any] = {}
    batches = list(read_pcap(path, notes=notes))
    for batch in batches:
        assert batch.schema == INGEST_SCHEMA
    rows = pa.Table.from_batches(batches, schema=INGEST_SCHEMA).to_pylist()
    return sorted(rows, key=lambda r: (r["first_seen"], r["src_ip"], r["src_port"] or 0)), notes


@pytest.fixture
def plain(tmp_path: Path) -> list[Frame]:
    capture = tmp_path / "written.pcap"
    write_capture(_talks(), capture)
    return read_frames(capture)


@pytest.mark.parametrize(
    ("label", "vlan_of"),
    [
        ("replies on VLAN 100", lambda ip: 100 if ip == SERVER else 0),
        ("requests on VLAN 100", lambda ip: 0 if ip == SERVER else 100),
        ("requests on 10, replies on 20", lambda ip: 20 if ip == SERVER else 10),
    ],
)
def test_halves_split_by_vlan_give_the_flows_of_the_untagged_twin(
    tmp_path: Path, plain: list[Frame], label: str, vlan_of: Callable[[str], int]
) -> None:
    tagged = tmp_path / "tagged.pcap"
    write_frames(tagged, _retag(plain, vlan_of))
    twin = tmp_path / "twin.pcap"
    write_frames(twin, _strip(read_frames(tagged)))
    got, notes = _read(tagged)
    want, twin_notes = _read(twin)
    assert twin_notes["vlan_halves_joined"] == 0
    assert len(want) == 5
    assert got == want, label  # count, both directions' bytes and packets, opener, names, application
    assert notes["vlan_halves_joined"] == (8 if vlan_of(RESOLVER) == vlan_of(CLIENT) else 10)
    https = next(r for r in got if r["dst_port"] == 443)
    assert (https["src_ip"], https["server_name"], https["server_name_source"]) == (
        CLIENT,
        "plug.vendor.cn",
        "sni",
    )
    assert https["bytes_in"] > 0 and https["packets_in"] > 0


def test_one_tagged_capture_without_the_join_is_split(tmp_path: Path, plain: list[Frame]) -> None:
    """The case the join exists for: the meter alone gives one-way halves, the server's half opened by the server."""
    from derisk.ingest.nfstream_engine import NFSTREAM_OPTIONS, streamer

    tagged = tmp_path / "tagged.pcap"
    write_frames(tagged, _retag(plain, lambda ip: 100 if ip == SERVER else 0))
    raw = list(streamer(tagged, **NFSTREAM_OPTIONS))
    assert len(raw) == 9  # the lookup whole, four connections in two halves each
    assert sum(1 for f in raw if f.src_ip == SERVER and f.dst2src_packets == 0) == 4
    got, _ = _read(tagged)
    assert len(got) == 5 and not [r for r in got if r["src_ip"] == SERVER]


def test_two_way_flows_on_two_vlans_are_not_joined(tmp_path: Path, plain: list[Frame]) -> None:
    """The same connection seen whole on two VLANs (two SPAN sessions): two two-way flows, both kept."""
    again = [(ts + 0.0001, _tag(frame, 200)) for ts, frame in plain]
    both = sorted(plain + again, key=lambda f: f[0])
    capture = tmp_path / "twice.pcap"
    write_frames(capture, both)
    got, notes = _read(capture)
    assert notes["vlan_halves_joined"] == 0
    assert len(got) == 10 and all(r["packets_in"] > 0 for r in got)


def test_a_half_with_two_candidates_is_left_alone(tmp_path: Path, plain: list[Frame]) -> None:
    """Replies seen twice, on VLAN 100 and VLAN 200: each request half has two reply halves to choose
    from; nothing is joined for those connections (the lookup is whole anyway)."""
    requests = [(ts, f) for ts, f in plain if _sender(f) != SERVER]
    replies = [(ts, f) for ts, f in plain if _sender(f) == SERVER]
    doubled = (
        requests
        + [(ts, _tag(f, 100)) for ts, f in replies]
        + [(ts + 0.0001, _tag(f, 200)) for ts, f in replies]
    )
    capture = tmp_path / "doubled.pcap"
    write_frames(capture, sorted(doubled, key=lambda f: f[0]))
    got, notes = _read(capture)
    assert notes["vlan_halves_joined"] == 0
    assert len(got) == 1 + 4 * 3
    # the 8 reply halves (4 connections, 2 tags): only the server sent in them; those from a server
    # port to the client's are read from the client's side (caught after their opening)
    halves = [
        r
        for r in got
        if (r["src_ip"], r["packets_in"]) == (SERVER, 0) or (r["dst_ip"], r["packets_out"]) == (SERVER, 0)
    ]
    assert len(halves) == 8
    assert sum(1 for r in halves if r["src_ip"] == SERVER) == 2  # UDP 9999 → 41003: no server port


# The joiner on its own, across batches.

_US = 1_000_000


def _flow(
    first_s: int, last_s: int, src: str, sport: int, dst: str, dport: int, out: int, back: int = 0
) -> dict[str, Any]:
    return {
        "first_seen": datetime.fromtimestamp(first_s, UTC),
        "last_seen": datetime.fromtimestamp(last_s, UTC),
        "src_ip": src,
        "src_port": sport,
        "dst_ip": dst,
        "dst_port": dport,
        "protocol": 6,
        "bytes_out": out,
        "bytes_in": back,
        "packets_out": 1 + out // 1000,
        "packets_in": 1 + back // 1000 if back else 0,
    }


def _batch(rows: list[dict[str, Any]]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist(rows, schema=INGEST_SCHEMA)


T = 1_772_442_000


def test_a_pair_straddling_batches_is_joined_and_a_lone_half_released_by_time() -> None:
    joiner = HalfJoiner(120)
    request = _flow(T, T + 5, CLIENT, 41000, SERVER, 443, 700)
    lone = _flow(T, T + 1, CLIENT, 41500, SERVER, 443, 60)
    out = joiner.push(_batch([request, lone]), [0, 0])
    assert out.num_rows == 0 and joiner.held == 2
    reply = _flow(T + 1, T + 6, SERVER, 443, CLIENT, 41000, 9000)
    whole = _flow(T + 2, T + 9, CLIENT, 41001, SERVER, 443, 100, 200)
    out = joiner.push(_batch([reply, whole]), [100, 0])
    assert out.to_pylist() == [_full(whole)] and joiner.held == 3  # nothing decided before two idle timeouts
    later = _flow(T + 300, T + 301, CLIENT, 42000, SERVER, 443, 100, 100)
    out = joiner.push(_batch([later]), [0]).to_pylist()
    assert joiner.held == 0 and joiner.joined == 2
    joined = next(r for r in out if r["src_port"] == 41000)
    assert (joined["bytes_out"], joined["bytes_in"], joined["packets_in"]) == (700, 9000, 10)
    assert (joined["first_seen"], joined["last_seen"]) == (request["first_seen"], reply["last_seen"])
    assert next(r for r in out if r["src_port"] == 41500) == _full(lone)
    assert joiner.finish().num_rows == 0


def _full(row: dict[str, Any]) -> dict[str, Any]:
    return {name: row.get(name) for name in INGEST_SCHEMA.names}


def test_halves_far_apart_in_time_or_on_one_vlan_are_not_joined() -> None:
    joiner = HalfJoiner(120)
    request = _flow(T, T + 5, CLIENT, 41000, SERVER, 443, 700)
    late_reply = _flow(T + 200, T + 201, SERVER, 443, CLIENT, 41000, 9000)
    same_vlan = _flow(T + 1, T + 2, SERVER, 443, CLIENT, 41000, 50)
    out = joiner.push(_batch([request, late_reply]), [0, 100])
    out = pa.concat_tables([out, joiner.finish()])
    assert out.num_rows == 2 and joiner.joined == 0
    joiner = HalfJoiner(120)
    out = pa.concat_tables([joiner.push(_batch([request, same_vlan]), [7, 7]), joiner.finish()])
    assert out.num_rows == 2 and joiner.joined == 0


def test_the_reply_starts_first_then_it_opens() -> None:
    """A capture that saw the reply half's first packet first (it began mid-connection): the opener is
    whichever half came first, as NFStream's src is."""
    joiner = HalfJoiner(120)
    a = _flow(T + 2, T + 5, CLIENT, 41000, SERVER, 443, 700)
    b = _flow(T + 1, T + 6, SERVER, 443, CLIENT, 41000, 9000)
    (row,) = pa.concat_tables([joiner.push(_batch([a, b]), [0, 100]), joiner.finish()]).to_pylist()
    assert (row["src_ip"], row["bytes_out"], row["bytes_in"]) == (SERVER, 9000, 700)


_FLOWS = (
    "SELECT direction, src_ip, src_port, dst_ip, dst_port, protocol, bytes_out, bytes_in, packets_out, packets_in,"
    " server_name FROM flows ORDER BY first_seen, src_port"
)


def test_the_lock_hub_with_replies_on_vlan_100_analyzes_as_its_untagged_twin(
    tmp_path: Path, data_env: Path
) -> None:
    """Issue 11's held-out case end to end: the stored flows (count, direction, bytes both ways) and the
    destination the report shows are those of the same capture without tags."""
    from derisk.cli import main
    from derisk.enrich.ipdata import load_ipdata
    from derisk.store.workspace import Workspace
    from schema_check import assert_file_valid

    alibaba = load_ipdata(data_env).sample_addresses(45102, None, 1)[0]
    talks = [
        Conversation(
            "udp", CLIENT, RESOLVER, START, 40000, 53, dns=DnsLookup("plug.lock-vendor.cn", "A", (alibaba,))
        )
    ]
    talks += [
        Conversation("tcp", CLIENT, alibaba, START + timedelta(seconds=1 + n), 41000 + n, 443)
        for n in range(4)
    ]
    written = tmp_path / "written.pcap"
    write_capture(talks, written)
    tagged = tmp_path / "tagged.pcap"
    write_frames(tagged, _retag(read_frames(written), lambda ip: 100 if ip == alibaba else 0))
    twin = tmp_path / "twin.pcap"
    write_frames(twin, _strip(read_frames(tagged)))
    site = tmp_path / "site.yaml"
    site.write_text("site: test\ninternal_networks: [10.1.0.0/24]\n", encoding="utf-8")
    seen = []
    for capture in (tagged, twin):
        ws, out = tmp_path / f"ws-{capture.stem}", tmp_path / f"{capture.stem}.json"
        args = ["analyze", str(capture), "-w", str(ws), "--site", str(site), "--json", str(out), "-q"]
        assert main(args) == 0
        with Workspace.open(ws, create=False, read_only=True) as w:
            flows = w.query(_FLOWS)
        doc = assert_file_valid(out, "analysis")  # the new note fits derisk.analysis/1
        (dest,) = [d for d in doc["destinations"] if d["ip"] == alibaba]
        (notes,) = doc["run"]["input_notes"].values()
        seen.append(
            (
                flows,
                {k: dest[k] for k in sorted(dest) if "bytes" in k or k in ("flows", "server_names")},
                notes,
            )
        )
    (flows, dest, notes), (twin_flows, twin_dest, twin_notes) = seen
    assert len(flows) == 5 and flows == twin_flows
    assert {f[0] for f in flows} == {"internal", "outbound"}
    assert dest == twin_dest and dest
    assert (notes["vlan_halves_joined"], twin_notes["vlan_halves_joined"]) == (8, 0)


def test_held_halves_are_bounded_in_number_too() -> None:
    """A flood of one-way flows within one idle timeout: no more than the cap is held, and a pair
    among them is still joined when both halves are among the oldest decided."""
    joiner = HalfJoiner(120, cap=100)
    request = _flow(T, T + 1, CLIENT, 41000, SERVER, 443, 700)
    reply = _flow(T, T + 1, SERVER, 443, CLIENT, 41000, 9000)
    out = [joiner.push(_batch([request, reply]), [0, 100])]
    flood = [
        _flow(T + 2 + n // 10, T + 2 + n // 10, f"10.1.1.{n % 250}", 50000 + n, SERVER, 53, 80)
        for n in range(300)
    ]
    for start in range(0, 300, 50):
        out.append(joiner.push(_batch(flood[start : start + 50]), [0] * 50))
        assert joiner.held <= 100 + 50
    rows = pa.concat_tables([*out, joiner.finish()]).to_pylist()
    assert len(rows) == 301 and joiner.joined == 2
