"""sFlow v5 exports: sampled packets into estimated flows (``derisk collect``, ``--from-capture``).

Real sFlow captures from tcpdump's test suite: an Arista switch's expanded flow sample (1 in 1,000,
over IPv4) and an agent exporting over IPv6 (13 flow samples among counter samples). The totals must
be what Wireshark's own sFlow dissector reads in them (each sampled packet counts its sampling rate
of packets of its IP length); a datagram whose lengths lie (tcpdump's segfault regression) is counted
as malformed, never raised.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from derisk.flows import INGEST_SCHEMA
from derisk.ingest.export_capture import CaptureExports, datagrams
from derisk.ingest.netflow_decode import Decoder

SFLOW = Path(__file__).parent / "fixtures" / "netflow" / "sflow"

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark (Debian package tshark)")


def _wireshark_totals(capture: Path) -> tuple[int, int, int]:
    """(flow samples, packets, IP bytes) as Wireshark's sFlow dissector reads the capture."""
    out = subprocess.run(
        ["tshark", "-r", str(capture), "-Y", "sflow", "-T", "fields", "-e", "ipv6.src", "-e", "ip.len",
         "-e", "sflow.flow_sample.sampling_rate"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    samples = packets = octets = 0
    for line in out.splitlines():
        six, lengths, rates = [*line.split("\t"), "", ""][:3]
        inner = [int(v) for v in lengths.split(",") if v]
        if not six:
            inner = inner[1:]  # over IPv4, the first IP header is the export's own
        for rate, length in zip([int(v) for v in rates.split(",") if v], inner, strict=True):
            samples += 1
            packets += rate
            octets += rate * length
    return samples, packets, octets


def _collected(capture: Path) -> tuple[pa.Table, CaptureExports]:
    exports = CaptureExports(capture)
    flows = [b for batch in exports.batches() for b in batch.flows]
    return pa.Table.from_batches(flows, schema=INGEST_SCHEMA), exports


@pytest.mark.parametrize("name", ["tcpdump-sflow_expanded.pcap", "tcpdump-sflow-print-v6.pcap"])
def test_sflow_samples_give_wiresharks_totals(name: str) -> None:
    capture = SFLOW / name
    table, exports = _collected(capture)
    samples, packets, octets = _wireshark_totals(capture)
    assert samples > 0 and exports.stats.sflow_samples == samples and exports.stats.malformed == 0
    got = table.to_pylist()
    assert sum(r["packets_out"] + r["packets_in"] for r in got) == packets
    assert sum(r["bytes_out"] + r["bytes_in"] for r in got) == octets


def test_the_arista_sample_is_one_estimated_connection() -> None:
    table, _ = _collected(SFLOW / "tcpdump-sflow_expanded.pcap")
    (row,) = table.to_pylist()
    # the sampled packet went from the server (port 22) to the client: the flow is the client's
    assert (row["src_ip"], row["src_port"], row["dst_ip"], row["dst_port"], row["protocol"]) == (
        "53.53.53.53", 52237, "52.52.52.52", 22, 6,
    )  # fmt: skip
    assert (row["bytes_in"], row["packets_in"]) == (104 * 1000, 1000)
    when = next(iter(datagrams(SFLOW / "tcpdump-sflow_expanded.pcap")))[2]
    assert int(row["first_seen"].timestamp() * 1_000_000) == when  # the capture's time of the datagram


def test_a_datagram_whose_lengths_lie_is_counted_not_raised() -> None:
    data = [d for d, _, _ in datagrams(SFLOW / "tcpdump-sflow_print-segv.pcap")]
    decoder = Decoder()
    for datagram in data:
        assert decoder.decode(datagram, "192.0.2.1", 0) == []
    assert decoder.stats.malformed == len(data) == 1 and decoder.samples == []
    for cut in range(0, len(data[0]), 7):  # every prefix: malformed or fewer samples, never an exception
        Decoder().decode(data[0][:cut], "192.0.2.1", 0)


def test_cli_collects_sflow_from_a_capture(tmp_path: Path, data_env: Path) -> None:
    ws = tmp_path / "ws"
    capture = SFLOW / "tcpdump-sflow-print-v6.pcap"
    done = subprocess.run(
        [sys.executable, "-m", "derisk.cli", "collect", "--from-capture", str(capture), "-w", str(ws)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "sFlow samples" in done.stdout + done.stderr


def test_the_udp_collector_takes_sflow(data_env: Path) -> None:
    import socket
    import threading

    from derisk.ingest.collector import Collector, Endpoint

    data = [d for d, _, _ in datagrams(SFLOW / "tcpdump-sflow-print-v6.pcap")]
    with Collector(Endpoint("127.0.0.1", 0), idle_seconds=1.0, batch_seconds=30) as collector:

        def send() -> None:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                for datagram in data:
                    s.sendto(datagram, ("127.0.0.1", collector.port))

        sender = threading.Thread(target=send)
        sender.start()
        flows = [b for batch in collector.batches() for b in batch.flows]
        sender.join()
    table = pa.Table.from_batches(flows, schema=INGEST_SCHEMA)
    _, packets, octets = _wireshark_totals(SFLOW / "tcpdump-sflow-print-v6.pcap")
    assert (
        sum(table.column("packets_out").to_pylist()) + sum(table.column("packets_in").to_pylist()) == packets
    )
    assert sum(table.column("bytes_out").to_pylist()) + sum(table.column("bytes_in").to_pylist()) == octets
