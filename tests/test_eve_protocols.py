"""The IP protocol of EVE flows whose ``proto`` Suricata names by keyword, not only TCP/UDP/ICMP.

suricata-verify (github.com/OISF/suricata-verify, commit 10a45e4b) expects flow events with
``proto: IP-in-IP`` (tests/bug-4571-*), ``proto: "IGMP"`` and ``proto: IPv6``: Suricata 7 writes
the IANA keyword of its protocol table. They gave a null protocol; a number was read as such.
The line is a real flow event of ``tests/fixtures/eve/firefox.eve.json`` with its ``proto`` set so.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from derisk.ingest.eve import read_eve_lines

EVE = Path(__file__).parent / "fixtures" / "eve" / "firefox.eve.json"


def _flow_with(proto: str) -> pa.Table:
    line = next(x for x in EVE.read_text().splitlines() if '"event_type":"flow"' in x)
    event = json.loads(line)
    event["proto"] = proto
    return pa.Table.from_batches(list(read_eve_lines((json.dumps(event) + "\n").encode())))


@pytest.mark.parametrize(
    ("proto", "number"),
    [
        ("IGMP", 2),
        ("IP-in-IP", 4),
        ("IPv6", 41),
        ("OSPFIGP", 89),
        ("VRRP", 112),
        ("PIM", 103),
        ("AH", 51),
        ("253", 253),
        ("TCP", 6),
    ],
)
def test_protocol_keywords(proto: str, number: int) -> None:
    table = _flow_with(proto)
    assert table["protocol"].to_pylist() == [number]
    transport = number in (6, 17)
    assert (table["dst_port"].to_pylist() == [443]) is transport


def test_an_unknown_keyword_stays_unknown() -> None:
    assert _flow_with("no-such-protocol")["protocol"].to_pylist() == [None]
