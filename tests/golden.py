"""Committed golden samples: small captures the generator writes, with its ledger beside each as JSON.

    python -m tests.golden regenerate   # rewrite tests/fixtures/pcap/* (``make golden``)
    python -m tests.golden check        # exit 1 if a committed sample differs from a fresh one

The samples pin the generator's output: a scapy or dpkt upgrade that changes a byte shows up in
``tests/test_ingest_pcap.py::test_committed_samples_are_current``. The JSON is the generator's
ledger, never derisk's output, so the committed expectation stays independent of the code under test.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from derisk.gen.model import Conversation, DnsLookup, Exchange, HttpRequest, Ledger, TlsHello
from derisk.gen.packets import CaptureFormat, write_capture

SAMPLES_DIR = Path(__file__).parent / "fixtures" / "pcap"
T0 = datetime(2026, 3, 2, 8, 0, 0, tzinfo=UTC)
HOSTILE_UA = "Mozilla/5.0 \"quoted\" 'single' \x07bell\x1b[31mred</td><script>x</script>"
HOSTILE_SNI = "<script>alert(1)</script>.evil.example"
LONG_NAME = ".".join(["a" * 60, "b" * 60, "c" * 60, "d" * 50, "example"])  # 246 characters, valid DNS


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def conversations(*, ipv6: bool = True) -> list[Conversation]:
    """Every kind of flow the generator writes; the resolver answers names used by later flows."""
    c = [
        Conversation("udp", "10.20.1.20", "10.20.0.53", _at(0), 40001, 53,
                     dns=DnsLookup("oss-eu-central-1.aliyuncs.com", "A", ("47.254.129.10",)), label="dns-a"),
        Conversation("udp", "10.20.1.20", "10.20.0.53", _at(0.5), 40002, 53,
                     dns=DnsLookup(LONG_NAME, "A", ("47.254.129.11",)), label="dns-long"),
        Conversation("udp", "10.20.1.20", "10.20.0.53", _at(0.7), 40003, 53,
                     dns=DnsLookup("nothing-here.example", "A", ()), label="dns-nxdomain"),
        Conversation("tcp", "10.20.1.21", "47.254.129.10", _at(1), 50001, 443,
                     (Exchange("c2s", 4000), Exchange("s2c", 30000), Exchange("c2s", 700, gap=2.0)),
                     tls=TlsHello("oss-eu-central-1.aliyuncs.com"), label="tls"),
        Conversation("tcp", "10.20.1.21", "47.254.129.10", _at(2), 50002, 8883,
                     (Exchange("c2s", 900), Exchange("s2c", 120)), label="plain-tcp-answered"),
        Conversation("tcp", "10.20.1.22", "47.254.129.11", _at(2.5), 50003, 9000,
                     (Exchange("c2s", 300), Exchange("s2c", 300)), label="plain-tcp-long-name"),
        Conversation("tcp", "10.20.1.23", "93.184.216.34", _at(3), 50004, 80, (Exchange("c2s", 2000),),
                     http=HttpRequest("cargo.example.net", HOSTILE_UA, response_body=5000), label="http"),
        Conversation("tcp", "10.20.1.24", "198.51.100.7", _at(3.2), 50005, 443,
                     (Exchange("c2s", 100), Exchange("s2c", 100)), tls=TlsHello(HOSTILE_SNI), label="tls-hostile"),
        Conversation("udp", "10.20.1.25", "203.0.113.9", _at(4), 50006, 5000,
                     (Exchange("c2s", 1200), Exchange("s2c", 80), Exchange("c2s", 1200)), label="udp"),
        Conversation("icmp", "10.20.1.26", "8.8.8.8", _at(5),
                     exchanges=(Exchange("c2s", 56), Exchange("s2c", 56), Exchange("c2s", 56, gap=1.0),
                                Exchange("s2c", 56)), label="ping"),
    ]  # fmt: skip
    if ipv6:
        c += [
            Conversation("udp", "fd00:20::20", "fd00:20::53", _at(6), 40010, 53,
                         dns=DnsLookup("login.microsoftonline.com", "AAAA", ("2603:1026:3000::10",)),
                         label="dns-aaaa"),
            Conversation("tcp", "fd00:20::21", "2603:1026:3000::10", _at(7), 50010, 8443,
                         (Exchange("c2s", 2500), Exchange("s2c", 6000)), label="v6-answered"),
            Conversation("tcp", "fd00:20::21", "2a00:1450:4001::200e", _at(8), 50011, 443,
                         (Exchange("c2s", 1500), Exchange("s2c", 15000)), tls=TlsHello("www.google.com"),
                         label="v6-tls"),
            Conversation("udp", "fd00:20::22", "2606:4700::1111", _at(9), 50012, 4433,
                         (Exchange("c2s", 500), Exchange("s2c", 700)), label="v6-udp"),
            Conversation("icmp", "fd00:20::23", "2001:4860:4860::8888", _at(10),
                         exchanges=(Exchange("c2s", 56), Exchange("s2c", 56)), label="v6-ping"),
        ]  # fmt: skip
    return c


#: file name -> (IPv6 included, format, snap length)
SAMPLES: dict[str, tuple[bool, CaptureFormat, int | None]] = {
    "golden.pcap": (True, "pcap", None),
    "golden.pcapng": (True, "pcapng", None),
    "golden-snap96.pcap": (False, "pcap", 96),
}


def ledger_json(ledger: Ledger) -> dict[str, Any]:
    return {
        "packets": ledger.packets,
        "captured_bytes": ledger.captured_bytes,
        "entries": [dataclasses.asdict(entry) for entry in ledger],
    }


def write_sample(name: str, folder: Path) -> dict[str, Any]:
    ipv6, fmt, snaplen = SAMPLES[name]
    ledger = write_capture(conversations(ipv6=ipv6), folder / name, fmt=fmt, snaplen=snaplen)
    return ledger_json(ledger)


def regenerate(folder: Path = SAMPLES_DIR) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in SAMPLES:
        doc = write_sample(name, folder)
        (folder / f"{name}.ledger.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


def differences(folder: Path = SAMPLES_DIR) -> list[str]:
    """Names of committed samples (or ledgers) that differ from what the generator writes now."""
    found = []
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        for name in SAMPLES:
            doc = write_sample(name, fresh)
            committed = folder / name
            if not committed.exists() or committed.read_bytes() != (fresh / name).read_bytes():
                found.append(name)
            ledger = folder / f"{name}.ledger.json"
            if not ledger.exists() or json.loads(ledger.read_text(encoding="utf-8")) != json.loads(
                json.dumps(doc)
            ):
                found.append(ledger.name)
    return found


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "check"
    if command == "regenerate":
        regenerate()
        print(f"wrote {len(SAMPLES)} samples and their ledgers to {SAMPLES_DIR}")
        return 0
    if command == "check":
        stale = differences()
        for name in stale:
            print(f"stale: {name} (run `make golden` and review the diff)")
        return 1 if stale else 0
    print("usage: python -m tests.golden [regenerate|check]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
