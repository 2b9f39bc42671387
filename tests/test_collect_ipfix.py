"""IPFIX with enterprise-specific elements (vendors' own and RFC 5103's reverse counters) is decoded.

Exporters such as YAF, nProbe and most firewalls add vendor elements to their templates, and biflow
exporters send each connection's two directions in one record with RFC 5103's reverse counters.
The collector used to refuse any template with an enterprise bit (the exporter's records were all
lost). The datagrams are built per RFC 7011 and RFC 5103 by tests/netflow_packets.py.
"""

from __future__ import annotations

import struct

import pyarrow as pa

from derisk.flows import INGEST_SCHEMA
from derisk.ingest.netflow_decode import Decoder, to_table
from derisk.ingest.netflow_pairs import Pairer
from netflow_packets import Biflow, Rec, ipfix, ipfix_biflow

T0 = 1_772_438_400  # 2026-03-02 08:00 UTC


def _flows(*datagrams: bytes) -> tuple[list[dict[str, object]], Decoder]:
    decoder = Decoder()
    chunks = [c for d in datagrams for c in decoder.decode(d, "192.0.2.1")]
    pairer = Pairer()
    try:
        batches = list(pairer.pair(to_table(chunks)))
    finally:
        pairer.close()
    return pa.Table.from_batches(batches, schema=INGEST_SCHEMA).to_pylist(), decoder


def test_biflow_records_with_vendor_elements_are_one_flow_each() -> None:
    flows = [
        Biflow(
            Rec("10.0.0.2", "47.254.129.10", 50000, 443, 6, 12, 1_500, T0 * 1000, T0 * 1000 + 900),
            20,
            48_000,
            7,
        ),
        Biflow(
            Rec("10.0.0.3", "8.8.8.8", 40000, 53, 17, 1, 70, T0 * 1000 + 5, T0 * 1000 + 6), 1, 120, 65_535
        ),
    ]
    rows, decoder = _flows(ipfix_biflow(flows, export_secs=T0))
    assert decoder.stats.malformed == 0 and decoder.stats.records == 2
    got = {
        (r["src_ip"], r["dst_ip"]): (r["bytes_out"], r["bytes_in"], r["packets_out"], r["packets_in"])
        for r in rows
    }
    assert got == {
        ("10.0.0.2", "47.254.129.10"): (1_500, 48_000, 12, 20),
        ("10.0.0.3", "8.8.8.8"): (70, 120, 1, 1),
    }
    tls = next(r for r in rows if r["dst_port"] == 443)
    assert tls["first_seen"].timestamp() == T0 and tls["last_seen"].timestamp() == T0 + 0.9  # type: ignore[attr-defined]


def test_enterprise_template_and_plain_template_from_one_exporter() -> None:
    plain = ipfix(
        [Rec("10.0.0.9", "1.1.1.1", 50001, 443, 6, 3, 900, T0 * 1000, T0 * 1000 + 1)], export_secs=T0
    )
    bi = ipfix_biflow(
        [Biflow(Rec("10.0.0.2", "9.9.9.9", 50000, 853, 6, 4, 400, T0 * 1000, T0 * 1000 + 2), 4, 800)],
        export_secs=T0,
    )
    rows, decoder = _flows(bi, plain)
    assert decoder.stats.malformed == 0 and len(rows) == 2
    assert {r["dst_ip"]: r["bytes_in"] for r in rows} == {"9.9.9.9": 800, "1.1.1.1": 0}


def test_enterprise_field_cut_inside_its_number_is_malformed() -> None:
    message = ipfix_biflow([], export_secs=T0)
    template_set = message[16 : 16 + struct.unpack_from("!H", message, 18)[0]]
    cut = template_set[:-2]  # the set ends 2 bytes into the last enterprise number
    cut = struct.pack("!HH", 2, len(cut)) + cut[4:]
    rows, decoder = _flows(struct.pack("!HHIII", 10, 16 + len(cut), T0, 0, 1) + cut)
    assert rows == [] and decoder.stats.malformed == 1
    assert (
        "template longer than its set" in decoder.stats.examples[0] or "shorter" in decoder.stats.examples[0]
    )


def test_variable_length_elements_are_cut_out_of_each_record() -> None:
    """nProbe and YAF templates carry strings and lists of variable length: each record's length
    then differs, with a one-byte length, or 255 and a two-byte length for 255 bytes and more."""
    flows = [
        Biflow(
            Rec("10.0.0.2", "47.254.129.10", 50000, 443, 6, 12, 1_500, T0 * 1000, T0 * 1000 + 900), 20, 48_000
        ),
        Biflow(Rec("10.0.0.3", "8.8.8.8", 40000, 53, 17, 1, 70, T0 * 1000 + 5, T0 * 1000 + 6), 1, 120),
        Biflow(Rec("10.0.0.4", "9.9.9.9", 40001, 853, 6, 5, 700, T0 * 1000 + 7, T0 * 1000 + 8), 4, 900),
    ]
    names = [b"", b"dns" * 3, b"<script>" * 40]  # 0, 9 and 320 bytes
    rows, decoder = _flows(ipfix_biflow(flows, export_secs=T0, names=names))
    assert decoder.stats.malformed == 0 and decoder.stats.records == 3
    assert {r["dst_ip"]: (r["bytes_out"], r["bytes_in"], r["dst_port"]) for r in rows} == {
        "47.254.129.10": (1_500, 48_000, 443),
        "8.8.8.8": (70, 120, 53),
        "9.9.9.9": (700, 900, 853),
    }


def test_variable_length_element_running_past_its_set_is_malformed() -> None:
    flows = [Biflow(Rec("10.0.0.2", "1.1.1.1", 50000, 443, 6, 1, 60, T0 * 1000, T0 * 1000), 1, 60)]
    message = ipfix_biflow(flows, export_secs=T0, names=[b"x" * 40])
    at = message.index(b"x" * 40) - 1
    lying = message[:at] + b"\xfe" + message[at + 1 :]  # says 254 bytes, the set has 40
    rows, decoder = _flows(lying)
    assert rows == [] and decoder.stats.malformed == 1
    assert "runs past its set" in decoder.stats.examples[0]
