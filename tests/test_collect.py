"""derisk collect: NetFlow v5, v9 and IPFIX on UDP (127.0.0.1 only), end to end.

Real exports come from nfdump's nfreplay, which sends the records of an nfcapd file as NetFlow v9 or
v5 datagrams: the fixture ``netflow/nfpcapd`` is nfpcapd's reading of ``pcap/golden.pcap``, so the
collector must give the capture's destinations and IP bytes. IPFIX, sampling and templates arriving
late or never are exercised with datagrams built per RFC 3954/7011 (tests/netflow_packets.py).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from derisk.errors import InputError, UsageError
from derisk.flows import INGEST_SCHEMA
from derisk.ingest.collector import Collector, Endpoint, parse_endpoint
from derisk.ingest.netflow_decode import Decoder, to_table
from derisk.ingest.pcap import read_pcap
from netflow_packets import Rec, ipfix, v5, v9
from test_ingest_netflow import by_destination

FIXTURES = Path(__file__).parent / "fixtures"
NFPCAPD = FIXTURES / "netflow" / "nfpcapd" / "nfcapd.202603020800"
GOLDEN_PCAP = FIXTURES / "pcap" / "golden.pcap"
T0 = 1_772_438_400  # 2026-03-02 08:00 UTC

needs_nfreplay = pytest.mark.skipif(shutil.which("nfreplay") is None, reason="needs nfdump's nfreplay")


def _collect(send: object, **options: object) -> tuple[pa.Table, Collector]:
    """Run a collector on an ephemeral loopback port while ``send(port)`` runs in a thread."""
    with Collector(Endpoint("127.0.0.1", 0), idle_seconds=1.0, batch_seconds=30, **options) as collector:  # type: ignore[arg-type]
        sender = threading.Thread(target=send, args=(collector.port,))  # type: ignore[arg-type]
        sender.start()
        flows = [b for batch in collector.batches() for b in batch.flows]
        sender.join()
    return pa.Table.from_batches(flows, schema=INGEST_SCHEMA), collector


def _nfreplay(version: int) -> object:
    def send(port: int) -> None:
        subprocess.run(
            ["nfreplay", "-r", str(NFPCAPD), "-H", "127.0.0.1", "-p", str(port), "-v", str(version)],
            check=True,
            capture_output=True,
        )

    return send


def _udp(*datagrams: bytes) -> object:
    def send(port: int) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for data in datagrams:
                s.sendto(data, ("127.0.0.1", port))
                time.sleep(0.002)

    return send


@needs_nfreplay
def test_netflow_v9_from_nfreplay_gives_the_captures_bytes_per_destination() -> None:
    flows, collector = _collect(_nfreplay(9))
    pcap = by_destination(pa.Table.from_batches(list(read_pcap(GOLDEN_PCAP)), schema=INGEST_SCHEMA))
    got = by_destination(flows)
    assert got.keys() == pcap.keys()
    for key, total in got.items():
        assert total[:4] == pcap[key][:4], key
    assert collector.stats.by_version == {9: 32}
    assert collector.stats.malformed == 0
    # nfreplay sends IANA's absolute millisecond times in v9: first and last packet to the ms
    by_port = {r["src_port"]: r for r in flows.to_pylist()}
    assert by_port[50001]["first_seen"].timestamp() == T0 + 1.0
    assert by_port[50001]["last_seen"].timestamp() == pytest.approx(T0 + 3.053)


@needs_nfreplay
def test_netflow_v5_from_nfreplay_carries_the_ipv4_flows() -> None:
    flows, collector = _collect(_nfreplay(5))
    got = by_destination(flows)
    assert all(":" not in str(key[0]) for key in got)
    assert sum(t[0] + t[1] for t in got.values()) == 81_148 - sum(
        t[0] + t[1]
        for k, t in by_destination(
            pa.Table.from_batches(list(read_pcap(GOLDEN_PCAP)), schema=INGEST_SCHEMA)
        ).items()
        if ":" in str(k[0])
    )
    assert collector.stats.by_version == {5: 22}


def _recs(n: int = 2) -> list[Rec]:
    out = []
    for i in range(n):
        out.append(Rec("10.0.0.1", "8.8.8.8", 40000 + i, 443, 6, 3, 1000 + i, 5_000, 6_000))
        out.append(Rec("8.8.8.8", "10.0.0.1", 443, 40000 + i, 6, 4, 3000 + i, 5_010, 6_010))
    return out


def test_switched_times_across_the_uptime_wrap() -> None:
    """49.7 days after boot the 32-bit uptime wraps: a flow switched before the wrap is in the past."""
    rec = Rec("10.0.0.1", "8.8.8.8", 40000, 443, 6, 1, 100, 0xFFFF_FC18, 0xFFFF_FFFF)  # 1 s, 1 ms before
    decoder = Decoder()
    (got,) = to_table(decoder.decode(v5([rec], unix_secs=T0, uptime_ms=1_000), "127.0.0.1")).to_pylist()
    assert (got["first_us"], got["last_us"]) == (T0 * 1_000_000 - 2_000_000, T0 * 1_000_000 - 1_001_000)


def test_v9_data_before_its_template_waits_for_it() -> None:
    late = v9(_recs(), unix_secs=T0, uptime_ms=10_000, template=False, seq=1)
    template = v9([], unix_secs=T0, uptime_ms=10_000, seq=2)
    flows, collector = _collect(_udp(late, template))
    assert flows.num_rows == 2
    assert sorted(flows.column("bytes_out").to_pylist()) == [1000, 1001]
    assert collector.stats.lost_without_template == 0


def test_v9_data_whose_template_never_comes_is_counted_as_lost() -> None:
    orphan = v9(_recs(), unix_secs=T0, uptime_ms=10_000, template=False, template_id=300)
    ok = v9(_recs(1), unix_secs=T0, uptime_ms=10_000)
    flows, collector = _collect(_udp(orphan, ok))
    assert flows.num_rows == 1
    assert collector.stats.lost_without_template == 1


def test_templates_are_kept_per_exporter_source_id() -> None:
    """Source 1's template does not decode source 2's data (same template id, another exporter)."""
    first = v9(_recs(1), unix_secs=T0, uptime_ms=10_000, source_id=1)
    other = v9(_recs(1), unix_secs=T0, uptime_ms=10_000, source_id=2, template=False)
    flows, collector = _collect(_udp(first, other))
    assert flows.num_rows == 1
    assert collector.stats.lost_without_template == 1


def test_ipfix_with_sampling_scales_packets_and_bytes() -> None:
    recs = [
        Rec("10.0.0.2", "1.1.1.1", 50000, 443, 6, 3, 1000, T0 * 1000, T0 * 1000 + 500),
        Rec("1.1.1.1", "10.0.0.2", 443, 50000, 6, 2, 4000, T0 * 1000 + 20, T0 * 1000 + 510),
    ]
    flows, collector = _collect(_udp(ipfix([], export_secs=T0, sampling=64), ipfix(recs, export_secs=T0)))
    row = flows.to_pylist()[0]
    assert (row["bytes_out"], row["bytes_in"], row["packets_out"], row["packets_in"]) == (
        64_000,
        256_000,
        192,
        128,
    )
    assert row["first_seen"].timestamp() == T0 and row["last_seen"].timestamp() == T0 + 0.51
    assert collector.stats.sampling == {"127.0.0.1 v10 id 1": 64}


def test_v5_and_v9_sampling_from_header_and_options() -> None:
    v5_dgram = v5(_recs(1), unix_secs=T0, uptime_ms=10_000, sampling=(1 << 14) | 100)
    v9_dgram = v9(_recs(1), unix_secs=T0, uptime_ms=10_000, sampling=10, source_id=5)
    flows, collector = _collect(_udp(v5_dgram, v9_dgram))
    assert sorted(flows.column("bytes_out").to_pylist()) == [10_000, 100_000]
    assert collector.stats.sampling == {"127.0.0.1 v5 id 0": 100, "127.0.0.1 v9 id 5": 10}


def _template_with_field(ftype: int, flen: int) -> bytes:
    import struct

    body = struct.pack("!HH", 256, 1) + struct.pack("!HH", ftype, flen)
    return struct.pack("!HHIIII", 9, 1, 0, T0, 0, 1) + struct.pack("!HH", 0, 4 + len(body)) + body


GARBAGE = {
    "empty": b"",
    "short": b"\x00\x09",
    "random": bytes(range(256)) * 4,
    "version 7": b"\x00\x07" + bytes(100),
    "v5 count lies": v5(_recs(1), unix_secs=T0, uptime_ms=1)[:60],
    "v9 flowset of length 0": b"\x00\x09\x00\x01" + bytes(16) + b"\x01\x00\x00\x00",
    "v9 zero-length field": _template_with_field(1, 0),
    "v9 short address field": _template_with_field(8, 3),
    "v9 truncated": v9(_recs(), unix_secs=T0, uptime_ms=10_000)[:-7],
    "ipfix set of length 0": b"\x00\x0a\x00\x18" + bytes(12) + b"\x01\x00\x00\x00" + bytes(4),
    "ipfix length lies": ipfix(_recs(), export_secs=T0)[:-4],
    "ipfix enterprise field": b"\x00\x0a\x00\x1c"
    + bytes(12)
    + b"\x00\x02\x00\x0c\x01\x00\x00\x01\x80\x01\x00\x04\x00\x00\x00\x09",
    "ipfix address field of 3 bytes": ipfix([], export_secs=T0)[:26]
    + b"\x00\x03"
    + ipfix([], export_secs=T0)[28:],
    "largest UDP datagram": b"\x00\x0a\xff\xe3" + os.urandom(65_503),
}


@pytest.mark.parametrize("name", list(GARBAGE))
def test_garbage_datagrams_are_counted_not_raised(name: str) -> None:
    decoder = Decoder()
    assert decoder.decode(GARBAGE[name], "127.0.0.1") == []
    stats = decoder.stats
    assert stats.malformed + stats.unknown_version + stats.waiting_for_template == 1, stats
    assert stats.examples or stats.waiting_for_template


def test_an_exporter_flooding_templates_is_bounded() -> None:
    decoder = Decoder()
    for template_id in range(256, 256 + 1_100):
        decoder.decode(v9([], unix_secs=T0, uptime_ms=1, template_id=template_id), "127.0.0.1")
    assert decoder.stats.malformed >= 1
    assert "templates from one exporter" in " ".join(decoder.stats.examples)


def test_garbage_between_good_datagrams_loses_only_itself() -> None:
    good = v9(_recs(), unix_secs=T0, uptime_ms=10_000)
    flows, collector = _collect(_udp(*GARBAGE.values(), good))
    assert flows.num_rows == 2
    assert collector.stats.malformed + collector.stats.unknown_version == len(GARBAGE)


@settings(max_examples=300, deadline=1000)
@given(st.binary(max_size=600), st.integers(min_value=0, max_value=599), st.sampled_from([5, 9, 10]))
def test_mutated_datagrams_never_raise_or_hang(noise: bytes, at: int, version: int) -> None:
    base = {
        5: v5(_recs(), unix_secs=T0, uptime_ms=10_000),
        9: v9(_recs(), unix_secs=T0, uptime_ms=10_000, sampling=4),
        10: ipfix(_recs(), export_secs=T0, sampling=4),
    }[version]
    at = min(at, len(base))
    decoder = Decoder()
    chunks = decoder.decode(base[:at] + noise + base[at + len(noise) :], "127.0.0.1")
    chunks += decoder.decode(noise, "127.0.0.1")
    assert decoder.stats.datagrams == 2
    assert to_table(chunks).num_rows == decoder.stats.records  # what was decoded becomes rows, never raises


def test_endpoints() -> None:
    assert parse_endpoint("127.0.0.1:2055") == Endpoint("127.0.0.1", 2055)
    assert parse_endpoint("[::1]:4739") == Endpoint("::1", 4739)
    assert str(Endpoint("::1", 4739)) == "udp://[::1]:4739"
    for bad in ("2055", "host:", ":2055", "h:99999", "h:x"):
        with pytest.raises(UsageError):
            parse_endpoint(bad)


def test_a_busy_port_is_an_input_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        with pytest.raises(InputError, match="cannot listen"):
            Collector(Endpoint("127.0.0.1", s.getsockname()[1]))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_cli(
    tmp_path: Path, data_env: Path, *datagrams: bytes, extra: tuple[str, ...] = ()
) -> tuple[int, str, str]:
    port = _free_port()
    ws = tmp_path / "ws"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "derisk",
            "collect",
            "--netflow",
            f"127.0.0.1:{port}",
            "-w",
            str(ws),
            "--exit-when-idle",
            "1.5",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "DERISK_DATA_DIR": str(data_env), "COLUMNS": "200"},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "listening" in line, line
    _udp(*datagrams)(port)  # type: ignore[operator]
    out, err = proc.communicate(timeout=120)
    return proc.returncode, line + out, err


def test_cli_collects_into_the_workspace(tmp_path: Path, data_env: Path) -> None:
    from derisk.store.workspace import Workspace

    site = tmp_path / "site.yaml"
    site.write_text("internal_networks: [10.0.0.0/8]\n")
    code, out, err = _run_cli(
        tmp_path,
        data_env,
        v9(_recs(3), unix_secs=T0, uptime_ms=10_000, sampling=2),
        GARBAGE["random"],
        extra=("--site", str(site)),
    )
    assert code == 0, err
    assert "3 flows stored in 1 batches" in out
    assert "1 datagrams of another version ignored" in err and "samples 1 packet in 2" in err
    assert "Traceback" not in err
    with Workspace.open(tmp_path / "ws", create=False, read_only=True) as w:
        assert w.query("SELECT direction, count(*), sum(bytes_out) FROM flows GROUP BY ALL") == [
            ("outbound", 3, 6006)
        ]
        assert w.query("SELECT format, path FROM inputs")[0][0] == "netflow"
        assert w.query("SELECT count(*) FROM attribution")[0][0] >= 1


def test_cli_with_only_garbage_exits_3_and_creates_nothing(tmp_path: Path, data_env: Path) -> None:
    code, _, err = _run_cli(tmp_path, data_env, GARBAGE["random"], GARBAGE["version 7"])
    assert code == 3, err
    lines = [line for line in err.splitlines() if line.startswith("derisk: error")]
    assert len(lines) == 1 and "no usable NetFlow/IPFIX record in 2 datagrams" in lines[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "ws").exists()


def test_cli_bad_endpoint_is_a_usage_error(
    tmp_path: Path, data_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from derisk.cli import main

    assert main(["collect", "--netflow", "nowhere", "-w", str(tmp_path / "ws")]) == 2
    assert "HOST:PORT" in capsys.readouterr().err


def test_ctrl_c_keeps_the_stored_batches_and_exits_130(tmp_path: Path, data_env: Path) -> None:
    import signal

    from derisk.store.workspace import Workspace

    port = _free_port()
    ws = tmp_path / "ws"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "derisk",
            "collect",
            "--netflow",
            f"127.0.0.1:{port}",
            "-w",
            str(ws),
            "--batch-seconds",
            "0.3",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "DERISK_DATA_DIR": str(data_env)},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as a foreground job
    )
    assert proc.stdout is not None
    assert "listening" in proc.stdout.readline()
    _udp(v9(_recs(2), unix_secs=T0, uptime_ms=10_000))(port)  # type: ignore[operator]
    assert "stored batch 1" in proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "batches stored before stay" in err
    with Workspace.open(ws, create=False, read_only=True) as w:
        assert w.flow_count() == 2
