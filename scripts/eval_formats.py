#!/usr/bin/env python3
"""Evaluation: real public captures in other link types, compressed, and as NetFlow, against plain twins.

For each real capture (taken from public test suites; see ``CAPTURES`` for origin and commit) derisk's
flows (``read_pcap``) are compared with the flows of twins made by other tools from the same packets:

* **tshark raw IP**: the IP datagrams Wireshark's dissectors find in each frame (``tshark -T json -x``),
  written as a raw-IP pcap (link type 101, which NFStream reads itself);
* **other tools' formats**: the capture rewritten by Wireshark's ``editcap -F`` as snoop, NetMon,
  nettl, Sniffer, 5View, CommView and Visual Networks files, against the capture itself (real ERF
  captures of libtrace are in the first group);
* **compressed**: the capture compressed by the command-line tools (``gzip``, ``zstd``, ``xz``,
  ``bzip2``), against the capture itself;
* **NetFlow**: the capture turned into nfdump files by ``nfpcapd`` (nfdump) and by ``softflowd``
  exporting NetFlow v9 to ``nfcapd``; derisk's ``read_nfcapd`` against ``read_pcap`` of the capture
  (different meters: connections and packet totals are compared, not each count).

A flow is (client, client port, server, server port, protocol, first packet, bytes and packets each
way). Writes ``docs/evaluation-formats.md`` (``--no-write``: print only). Needs tshark,
nfdump, softflowd, zstd, xz, bzip2 (``scripts/system-deps``). Run from the repository root:

    .venv/bin/python scripts/eval_formats.py --captures DIR [--no-write]

``DIR`` holds the captures under the names of ``CAPTURES`` (``--fetch-from MIRRORS`` copies them out of
local git mirrors of the three repositories at the commits named).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "evaluation-formats.md"

TCPDUMP = ("the-tcpdump-group/tcpdump", "39b50f76672bca4af7d7eb52604c5b692c6b6b2c", "BSD-3-Clause")
SURICATA = ("OISF/suricata-verify", "10a45e4bad6d29d0f1239d93119ea24e1bbdab19", "MIT")
NDPI = ("ntop/nDPI", "3b1286ab03b0c9223ac208a01868d8c1f6c0ae00", "LGPL-3.0")
_NDPI = "tests/cfgs/default/pcap/"
LIBPCAP = ("the-tcpdump-group/libpcap", "f26ae497fce4cda04355806101dd8d3e851d5672", "BSD-3-Clause")
PACKETNET = ("dotpcap/packetnet", "26f495129d8f33ddabd88fffc71727e38473b794", "MPL-2.0")
NFSTREAM = ("nfstream/nfstream", "3ee463887326f6b7884555934bb0587372b00d6c", "LGPL-3.0")
PCAPPLUSPLUS = ("seladb/PcapPlusPlus", "200853b3a0b5ea2c443d6bee1a67f9c9c67b8f1b", "Unlicense")
LIBTRACE = ("LibtraceTeam/libtrace", "29f1f67adec6d0a31ec3b0e45fb5ebcc029769d8", "GPL-3.0")

#: name here, repository, path there, what the file is.
CAPTURES: list[tuple[str, tuple[str, str, str], str, str]] = [
    ("tcpdump-forces3.pcap", TCPDUMP, "tests/forces3.pcap", "Linux cooked v1"),
    ("ndpi-KakaoTalk_talk.pcap", NDPI, _NDPI + "KakaoTalk_talk.pcap", "Linux cooked v1"),
    ("suricata-output-multi-eve-sll.pcap", SURICATA, "tests/output-multi-eve/input.pcap", "Linux cooked v1"),
    ("ndpi-quic-v2.pcapng", NDPI, _NDPI + "quic-v2.pcapng", "pcapng, Linux cooked v1"),
    ("tcpdump-bgp-orf.pcapng", TCPDUMP, "tests/bgp-orf.pcapng", "pcapng, Linux cooked v1"),
    ("suricata-decode-sll2-01.pcap", SURICATA, "tests/decode-sll2-01/input.pcap", "Linux cooked v2"),
    ("suricata-decode-sll2-02.pcap", SURICATA, "tests/decode-sll2-02/input.pcap", "Linux cooked v2"),
    ("tcpdump-nflog.pcap", TCPDUMP, "tests/nflog.pcap", "NFLOG"),
    ("ndpi-someip_sd_sample.pcap", NDPI, _NDPI + "someip_sd_sample.pcap", "PPI"),
    ("suricata-decode-vntag-01.pcap", SURICATA, "tests/decode-vntag-01/input.pcap", "Ethernet, VN-Tag"),
    ("suricata-decode-etag-01.pcap", SURICATA, "tests/decode-etag-01/input.pcap", "Ethernet, E-Tag (802.1BR)"),
    ("tcpdump-802.1ad_QinQ.pcap", TCPDUMP, "tests/802.1ad_QinQ.pcap", "Ethernet, 802.1ad QinQ"),
    ("suricata-pppoe.pcap", SURICATA, "tests/pppoe/input.pcap", "Ethernet, PPPoE"),
    ("tcpdump-quic_handshake.pcap", TCPDUMP, "tests/quic_handshake.pcap", "BSD loopback (null)"),
    ("ndpi-rdp.pcap", NDPI, _NDPI + "rdp.pcap", "BSD loopback (null)"),
    ("ndpi-dingtalk.pcap", NDPI, _NDPI + "dingtalk.pcap", "raw IP (101)"),
    ("suricata-bug-5758-raw.pcap", SURICATA, "tests/bug-5758/input.pcap", "raw IP (101)"),
    ("tcpdump-LINKTYPE_IPV4.pcap", TCPDUMP, "tests/LINKTYPE_IPV4.pcap", "raw IPv4 (228)"),
    ("tcpdump-LINKTYPE_IPV6.pcap", TCPDUMP, "tests/LINKTYPE_IPV6.pcap", "raw IPv6 (229)"),
    ("ndpi-dlt_ppp.pcap", NDPI, _NDPI + "dlt_ppp.pcap", "PPP"),
    ("suricata-ppp-ipv6.pcap", SURICATA, "tests/defrag/bug-6887-defrag-ppp-ipv6-tcp/frag-ppp-ipv6-tcp.pcap", "PPP"),
    ("tcpdump-mpls-traceroute.pcap", TCPDUMP, "tests/mpls-traceroute.pcap", "PPP, MPLS"),
    ("tcpdump-ppp_ip_udp_dns.pcap", TCPDUMP, "tests/ppp_ip_udp_dns.pcap", "PPP in HDLC framing"),
    ("tcpdump-HDLC.pcap", TCPDUMP, "tests/HDLC.pcap", "Cisco HDLC"),
    ("suricata-decode-chdlc-01.pcap", SURICATA, "tests/decode-chdlc-01/hdlc-http_1tx.pcap", "Cisco HDLC"),
    ("packetnet-80211_unencrypted_data_frame.pcap", PACKETNET, "Test/CaptureFiles/80211_unencrypted_data_frame.pcap", "IEEE 802.11 with radiotap"),
    ("packetnet-80211_qos_data_frame_ipv4_tcp.pcap", PACKETNET, "Test/CaptureFiles/80211_qos_data_frame_ipv4_tcp.pcap", "IEEE 802.11 with radiotap, QoS data"),
    ("libpcap-http_PPI.pcap", LIBPCAP, "tests/filter/http_PPI.pcap", "PPI, IEEE 802.11"),
    ("tcpdump-LINKTYPE_USER2_PKTAP.pcap", TCPDUMP, "tests/LINKTYPE_USER2_PKTAP.pcap", "Apple PKTAP (USER2)"),
    ("nfstream-BGP_Cisco_hdlc_slarp.pcap", NFSTREAM, "tests/pcaps/BGP_Cisco_hdlc_slarp.pcap", "PPP, Cisco HDLC framing"),
    ("pcapplusplus-many_interfaces-1.pcapng", PCAPPLUSPLUS, "Tests/Pcap++Test/PcapExamples/many_interfaces-1.pcapng", "pcapng, 11 interfaces (Ethernet, BSD loopback)"),
    ("ndpi-facebook.pcap", NDPI, _NDPI + "facebook.pcap", "Ethernet"),
    ("ndpi-1kxun.pcap", NDPI, _NDPI + "1kxun.pcap", "Ethernet"),
    ("ndpi-teams.pcap", NDPI, _NDPI + "teams.pcap", "Ethernet"),
    ("libtrace-100_packets.erf", LIBTRACE, "test/traces/100_packets.erf", "Endace ERF (Ethernet records, snapped)"),
    ("libtrace-fragtest.erf.gz", LIBTRACE, "test/traces/fragtest.erf.gz", "Endace ERF, gzip (IP fragments)"),
    ("libtrace-5_packets.erf", LIBTRACE, "test/traces/5_packets.erf", "Endace ERF"),
]  # fmt: skip
#: Captures compressed by each tool (a plain Ethernet one, a cooked v1 and a cooked v2 one).
COMPRESSED = ["ndpi-1kxun.pcap", "ndpi-KakaoTalk_talk.pcap", "suricata-decode-sll2-02.pcap"]
COMPRESSORS = {
    "gzip": ["gzip", "-c"],
    "zstd": ["zstd", "-q", "-c"],
    "xz": ["xz", "-c"],
    "bzip2": ["bzip2", "-c"],
    "lz4": ["lz4", "-q", "-c"],
}
#: Captures rewritten by Wireshark's editcap in other tools' formats (read through wiretap).
CONVERTED = ["ndpi-1kxun.pcap", "ndpi-facebook.pcap", "ndpi-teams.pcap"]
EDITCAP_FORMATS = ["snoop", "netmon2", "nettl", "ngwsniffer_2_0", "5views", "commview-ncf", "visual"]
#: Captures exported as NetFlow.
NETFLOW = ["ndpi-facebook.pcap", "ndpi-1kxun.pcap", "ndpi-teams.pcap", "ndpi-KakaoTalk_talk.pcap"]

Flow = tuple[Any, ...]
_COLUMNS = ("src_ip", "src_port", "dst_ip", "dst_port", "protocol", "first_seen", "bytes_out", "bytes_in",
            "packets_out", "packets_in")  # fmt: skip


@dataclass
class Row:
    file: str
    fmt: str
    twin: str
    ours: str
    theirs: str
    verdict: str
    command: str


def fetch_from(mirrors: Path, into: Path) -> None:
    """Copy the captures out of local git mirrors (``MIRRORS/owner+name/repo``) at the commits named."""
    into.mkdir(parents=True, exist_ok=True)
    for name, (repo, commit, _), path, _ in CAPTURES:
        git = mirrors / repo.replace("/", "+") / "repo"
        data = subprocess.run(
            ["git", "-C", str(git), "show", f"{commit}:{path}"], capture_output=True, check=True
        )
        (into / name).write_bytes(data.stdout)


def flows_of(path: Path) -> list[Flow] | str:
    """derisk's flows of a capture, or the one-line error it gives."""
    import pyarrow as pa

    from derisk.errors import DeriskError
    from derisk.flows import INGEST_SCHEMA
    from derisk.ingest.pcap import read_pcap

    try:
        table = pa.Table.from_batches(list(read_pcap(path)), schema=INGEST_SCHEMA)
    except DeriskError as exc:
        return f"error: {exc}"
    return _rows(table)


def _rows(table: Any) -> list[Flow]:
    """The flows of a table in a stable order (ports are null for protocols without them)."""
    rows = [tuple(row[c] for c in _COLUMNS) for row in table.to_pylist()]
    return sorted(rows, key=lambda row: tuple((v is not None, v if v is not None else 0) for v in row))


def raw_twin(src: Path, dst: Path, *, ethernet: bool = False) -> int:
    """The outermost IP datagram Wireshark's dissectors find in each frame, as a raw-IP pcap with
    nanosecond times (written with integers: a float would move some packets by a nanosecond).

    ``ethernet``: each datagram behind a plain Ethernet header instead, its record keeping the
    packet's length on the wire (for snapped captures: NFStream's raw-IP path drops a datagram
    stored shorter than its header says, its Ethernet path keeps it)."""
    out = subprocess.run(
        ["tshark", "-r", str(src), "-T", "json", "-x", "-o", "ip.defragment:FALSE"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    records = [struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1 if ethernet else 101)]
    for packet in json.loads(out):
        layers = packet["_source"]["layers"]
        ip = layers.get("ip_raw") or layers.get("ipv6_raw")
        if ip is None:
            continue
        first = ip if isinstance(ip[0], str) else ip[0]
        frame_raw = layers["frame_raw"]
        frame = bytes.fromhex(frame_raw[0] if isinstance(frame_raw[0], str) else frame_raw[0][0])
        datagram = frame[int(first[1]) :]
        seconds, _, fraction = layers["frame"]["frame.time_epoch"].partition(".")
        nanos = int(fraction.ljust(9, "0")[:9])
        wire = len(datagram)
        if ethernet:
            wire = int(layers["frame"]["frame.len"]) - int(first[1]) + 14
            datagram = _ETHERNET[datagram[0] >> 4 == 6] + datagram
        records.append(struct.pack("<IIII", int(seconds), nanos, len(datagram), wire) + datagram)
    dst.write_bytes(b"".join(records))
    return len(records) - 1


#: Plain Ethernet headers for IPv4 and IPv6 twins.
_ETHERNET: Final = {
    False: b"\x02\0\0\0\0\x01\x02\0\0\0\0\x02\x08\x00",
    True: b"\x02\0\0\0\0\x01\x02\0\0\0\0\x02\x86\xdd",
}


def _compare(ours: list[Flow] | str, theirs: list[Flow] | str) -> tuple[str, str, str]:
    if isinstance(theirs, str):
        return _said(ours), theirs, "no twin"
    if isinstance(ours, str):
        return ours, _said(theirs), "REFUSED"
    if ours == theirs:
        return _said(ours), _said(theirs), "same flows" if ours else "same (no flows)"
    mine, other = Counter(ours), Counter(theirs)
    missing, extra = sum((other - mine).values()), sum((mine - other).values())
    return _said(ours), _said(theirs), f"DIFFER ({missing} of the twin's missing, {extra} not in the twin)"


def _said(flows: list[Flow] | str) -> str:
    return flows if isinstance(flows, str) else f"{len(flows)} flows"


def link_rows(captures: Path, work: Path) -> list[Row]:
    rows = []
    for name, _, _, fmt in CAPTURES:
        path = captures / name
        ours = flows_of(path)
        twin = work / f"{name}.raw.pcap"
        snapped = fmt.startswith("Endace ERF")  # anonymised traces snapped after the IP header
        try:
            packets = raw_twin(path, twin, ethernet=snapped)
            theirs: list[Flow] | str = flows_of(twin) if packets else "tshark found no IP datagram"
        except subprocess.CalledProcessError as exc:
            theirs = f"tshark failed ({exc.returncode})"
        if theirs == "tshark found no IP datagram" and ours == []:
            theirs = []  # nothing to meter, and derisk says so (its warning) rather than failing
        kind, out = (
            ("tshark IP in Ethernet", "Ethernet, wire lengths")
            if snapped
            else ("tshark raw IP", "linktype 101")
        )
        rows.append(Row(name, fmt, kind, *_compare(ours, theirs),
                        f"tshark -r {name} -T json -x -o ip.defragment:FALSE (IP layer → {out})"))  # fmt: skip
    return rows


def compressed_rows(captures: Path, work: Path) -> list[Row]:
    rows = []
    for name in COMPRESSED:
        path = captures / name
        plain = flows_of(path)
        for kind, command in COMPRESSORS.items():
            packed = work / f"{name}.{kind}"
            packed.write_bytes(subprocess.run([*command, str(path)], capture_output=True, check=True).stdout)
            rows.append(Row(f"{name} ({kind})", f"{kind}-compressed", "the capture itself",
                            *_compare(flows_of(packed), plain), f"{' '.join(command)} {name}"))  # fmt: skip
    return rows


def converted_rows(captures: Path, work: Path) -> list[Row]:
    """Each capture of :data:`CONVERTED` written by editcap in each of :data:`EDITCAP_FORMATS`."""
    rows = []
    for name in CONVERTED:
        path = captures / name
        plain = flows_of(path)
        for fmt in EDITCAP_FORMATS:
            out = work / f"{name}.{fmt}"
            done = subprocess.run(["editcap", "-F", fmt, str(path), str(out)], capture_output=True, text=True)
            if done.returncode != 0:
                said = " ".join(done.stderr.split())[:120]
                rows.append(Row(f"{name} ({fmt})", fmt, "the capture itself", "-", _said(plain),
                                f"editcap cannot write it: {said}", f"editcap -F {fmt} {name}"))  # fmt: skip
                continue
            rows.append(Row(f"{name} ({fmt})", f"{fmt} (editcap)", "the capture itself",
                            *_compare(flows_of(out), plain), f"editcap -F {fmt} {name}"))  # fmt: skip
    return rows


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _nfcapd_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("nfcapd.*") if ".current." not in p.name and p.is_file())


def _connections(flows: list[Flow]) -> tuple[Counter[tuple[Any, ...]], int, int]:
    """Connections (endpoints and protocol, either direction), and the packets and bytes of both directions."""
    found: Counter[tuple[Any, ...]] = Counter()
    packets = octets = 0
    for src, sport, dst, dport, proto, _, out_bytes, in_bytes, out, back in flows:
        found[(proto, *sorted([(src, sport or 0), (dst, dport or 0)]))] += 1
        packets += (out or 0) + (back or 0)
        octets += (out_bytes or 0) + (in_bytes or 0)
    return found, packets, octets


def _netflow_compare(records: list[Flow] | str, plain: list[Flow] | str) -> tuple[str, str, str]:
    if isinstance(records, str) or isinstance(plain, str):
        return _compare(records, plain)
    mine, mine_packets, mine_bytes = _connections(records)
    other, other_packets, other_bytes = _connections(plain)
    if set(mine) == set(other):
        verdict = "same connections"
    else:
        verdict = (f"DIFFER ({len(set(other) - set(mine))} connections of the capture missing, "
                   f"{len(set(mine) - set(other))} extra)")  # fmt: skip
    verdict += f"; packets {mine_packets:,} vs {other_packets:,}, bytes {mine_bytes:,} vs {other_bytes:,}"
    return f"{len(records)} flows", f"{len(plain)} flows", verdict


def _read_netflow(directory: Path) -> list[Flow] | str:
    import pyarrow as pa

    from derisk.errors import DeriskError
    from derisk.flows import INGEST_SCHEMA
    from derisk.ingest.netflow import read_nfcapd

    try:
        table = pa.Table.from_batches(list(read_nfcapd(directory)), schema=INGEST_SCHEMA)
    except DeriskError as exc:
        return f"error: {exc}"
    return _rows(table)


def netflow_rows(captures: Path, work: Path) -> list[Row]:
    rows = []
    for name in NETFLOW:
        path = captures / name
        plain = flows_of(path)
        out = work / f"nfpcapd-{name}"
        out.mkdir()
        subprocess.run(["nfpcapd", "-r", str(path), "-w", str(out)], capture_output=True, check=False)
        rows.append(Row(f"{name} (nfpcapd)", "nfdump file (nfpcapd)", "read_pcap of the capture",
                        *_netflow_compare(_read_netflow(out) if _nfcapd_files(out) else "nfpcapd wrote no file",
                                          plain),
                        f"nfpcapd -r {name} -w DIR"))  # fmt: skip
        out = work / f"softflowd-{name}"
        out.mkdir()
        port = _free_port()
        collector = subprocess.Popen(["nfcapd", "-b", "127.0.0.1", "-p", str(port), "-w", str(out)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            time.sleep(1)
            subprocess.run(["softflowd", "-r", str(path), "-n", f"127.0.0.1:{port}", "-v", "9"],
                           capture_output=True, check=False, timeout=120)  # fmt: skip
            time.sleep(1)
        finally:
            collector.terminate()
            collector.wait()
        got = _read_netflow(out) if _nfcapd_files(out) else "nfcapd wrote no file"
        rows.append(Row(f"{name} (softflowd)", "NetFlow v9 (softflowd → nfcapd)", "read_pcap of the capture",
                        *_netflow_compare(got, plain),
                        f"nfcapd -p PORT -w DIR & softflowd -r {name} -n 127.0.0.1:PORT -v 9"))  # fmt: skip
        for version in (9, 10):
            rows.append(_collected(name, path, plain, version))
    return rows


def _collected(name: str, path: Path, plain: list[Flow] | str, version: int) -> Row:
    """softflowd exporting the capture as NetFlow v9 or IPFIX to derisk's own collector (``derisk collect``)."""
    import threading

    import pyarrow as pa

    from derisk.flows import INGEST_SCHEMA
    from derisk.ingest.collector import Collector, Endpoint

    batches: list[pa.RecordBatch] = []

    def collect(collector: Collector) -> None:
        for batch in collector.batches():
            batches.extend(batch.flows)

    with Collector(Endpoint("127.0.0.1", 0), idle_seconds=3) as collector:
        thread = threading.Thread(target=collect, args=(collector,))
        thread.start()
        subprocess.run(["softflowd", "-r", str(path), "-n", f"127.0.0.1:{collector.port}", "-v", str(version)],
                       capture_output=True, check=False, timeout=120)  # fmt: skip
        thread.join()
    table = pa.Table.from_batches(batches, schema=INGEST_SCHEMA)
    got = _rows(table)
    label = "NetFlow v9" if version == 9 else "IPFIX"
    return Row(f"{name} (softflowd {label})", f"{label} (softflowd → derisk collect)", "read_pcap of the capture",
               *_netflow_compare(got, plain),
               f"derisk collect --netflow 127.0.0.1:PORT & softflowd -r {name} -n 127.0.0.1:PORT -v {version}")  # fmt: skip


def _first_line(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0].strip() if lines else command[0]


RESULTS = "## Results"


def report(rows: list[Row]) -> str:
    """The ``## Results`` section (with the origin of each capture) that the script rewrites."""
    tools = ", ".join(
        f"{package} {_first_line(['dpkg-query', '-W', '-f=${Version}', package])}"
        for package in ("tshark", "nfdump", "softflowd")
    )
    lines = [
        RESULTS,
        "",
        f"Written by `.venv/bin/python scripts/eval_formats.py --captures DIR` on {datetime.now(UTC):%Y-%m-%d %H:%M} "
        f"UTC (Debian packages {tools}).",
        "",
        "| file | format | twin | derisk | twin | verdict | twin made with |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| `{r.file}` | {r.fmt} | {r.twin} | {r.ours} | {r.theirs} | {r.verdict} | `{r.command}` |"
        )
    counts = Counter("same" if r.verdict.startswith("same") else r.verdict.split(" ")[0] for r in rows)
    lines += ["", "Verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + "."]
    sources = [f"- `{name}`: {repo} `{path}` at `{commit[:12]}` ({licence})"
               for name, (repo, commit, licence), path, _ in CAPTURES]  # fmt: skip
    lines += ["", "Origin of each capture:", "", *sources]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--captures", type=Path, required=True)
    parser.add_argument("--fetch-from", type=Path, help="git mirrors to copy the captures out of first")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if args.fetch_from:
        fetch_from(args.fetch_from, args.captures)
    missing = [t for t in ("tshark", "nfpcapd", "nfcapd", "softflowd", "zstd", "xz", "bzip2", "lz4")
               if shutil.which(t) is None]  # fmt: skip
    if missing:
        raise SystemExit(f"missing tools: {', '.join(missing)} (scripts/system-deps)")
    with tempfile.TemporaryDirectory(prefix="derisk-eval-formats-") as tmp:
        work = Path(tmp)
        rows = link_rows(args.captures, work) + compressed_rows(args.captures, work)
        rows += converted_rows(args.captures, work)
        rows += netflow_rows(args.captures, work)
    text = report(rows)
    print(text)
    if not args.no_write:
        from mdsection import replace_section  # scripts/ is on the path when this script runs

        replace_section(DOC, text, title="# Evaluation: capture formats against their plain twins")
        print(f"written to {DOC.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
