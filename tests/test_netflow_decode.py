"""The collector's vectorised decoder against its first, record-by-record one (the ``netflow`` package).

Traffic is generated per RFC 3954 (v9) and RFC 7011 (IPFIX) with random templates: IPv4 and IPv6
addresses, counters of 1 to 8 bytes, switched (relative) and absolute times, fields derisk does not
read (odd record lengths), padding, several templates and data flowsets per datagram, sampling
options, data before its template, several exporters; and v5. Both decoders must give the same
records (every column) and the same counts.
"""

from __future__ import annotations

import ipaddress
import random
import struct

import pyarrow as pa
import pytest

import netflow_reference as reference
from derisk.ingest.netflow_decode import Decoder, to_table
from netflow_packets import Rec, v5

T0 = 1_772_438_400

# (type, lengths allowed): fields a router sends that derisk does not read (odd lengths included)
_OTHER_V9 = [(10, (2, 4)), (14, (2, 4)), (5, (1,)), (6, (1,)), (16, (2, 4)), (17, (2, 4)), (61, (1,))]
_OTHER_IPFIX = [(10, (4,)), (14, (4,)), (5, (1,)), (6, (1,)), (136, (1,)), (61, (1,)), (16, (4,))]


def _addr(rng: random.Random, six: bool) -> bytes:
    if six:
        return ipaddress.IPv6Address(rng.getrandbits(128) & ~(0xFFFF << 16)).packed  # some zeros inside
    return struct.pack("!I", rng.getrandbits(32))


def _template(rng: random.Random, ipfix: bool) -> list[tuple[int, int]]:
    six = rng.random() < 0.3
    fields = [(27, 16), (28, 16)] if six else [(8, 4), (12, 4)]
    fields += [(4, 1)] if rng.random() < 0.95 else []
    fields += [(7, 2), (11, 2)] if rng.random() < 0.9 else []
    if ipfix:
        fields += [(rng.choice([2, 86]), rng.choice([4, 8])), (rng.choice([1, 85]), rng.choice([4, 8]))]
        if rng.random() < 0.8:
            fields += [(152, 8), (153, 8)] if rng.random() < 0.7 else [(150, 4), (151, 4)]
    else:
        fields += [(2, rng.choice([4, 8])), (1, rng.choice([4, 8]))]
        pick = rng.random()
        if pick < 0.7:
            fields += [(22, 4), (21, 4)]
        elif pick < 0.85:
            fields += [(152, 8), (153, 8)]
        elif pick < 0.95:
            fields += [(150, 4), (151, 4)]
    for ftype, lengths in rng.sample(_OTHER_IPFIX if ipfix else _OTHER_V9, rng.randrange(4)):
        fields.append((ftype, rng.choice(lengths)))
    rng.shuffle(fields)
    return fields


def _value(rng: random.Random, ftype: int, flen: int) -> bytes:
    if ftype in (8, 12, 27, 28):
        return _addr(rng, flen == 16)
    if ftype == 4:
        return bytes([rng.choice([6, 17, 1, 58, 47])])
    if ftype in (152, 153):
        return (T0 * 1000 + rng.randrange(-600_000, 1000)).to_bytes(8, "big")
    if ftype in (150, 151):
        return (T0 + rng.randrange(-600, 1)).to_bytes(4, "big")
    if ftype in (22, 21):
        return rng.choice([rng.randrange(0, 20_000_000), rng.randrange(0xFFFF0000, 1 << 32)]).to_bytes(
            4, "big"
        )
    return rng.getrandbits(8 * min(flen, 4)).to_bytes(flen, "big")


def _record(rng: random.Random, fields: list[tuple[int, int]]) -> bytes:
    return b"".join(_value(rng, t, n) for t, n in fields)


def _pad(body: bytes) -> bytes:
    return body + bytes(-len(body) % 4)


def _datagram(rng: random.Random, ipfix: bool, templates: dict[int, list[tuple[int, int]]], n: int) -> bytes:
    sets = b""
    announce = [tid for tid in templates if rng.random() < 0.3]
    if announce:
        body = b"".join(
            struct.pack("!HH", tid, len(templates[tid]))
            + b"".join(struct.pack("!HH", *f) for f in templates[tid])
            for tid in announce
        )
        sets += struct.pack("!HH", 2 if ipfix else 0, 4 + len(body)) + body
    if rng.random() < 0.1:  # sampling options: template and record
        rate = rng.choice([2, 10, 100])
        if ipfix:
            body = struct.pack("!HHH", 400, 3, 1) + struct.pack("!HHHHHH", 149, 4, 305, 4, 306, 4)
            data = struct.pack("!III", 1, 1, rate - 1)
        else:
            body = _pad(struct.pack("!HHH", 400, 4, 4) + struct.pack("!HHHH", 1, 4, 34, 4))
            data = _pad(struct.pack("!II", 0, rate))
        sets += struct.pack("!HH", 3 if ipfix else 1, 4 + len(body)) + body
        sets += struct.pack("!HH", 400, 4 + len(data)) + data
    for _ in range(rng.randrange(1, 4)):
        tid = rng.choice(list(templates))
        records = b"".join(_record(rng, templates[tid]) for _ in range(rng.randrange(1, n)))
        body = _pad(records) if (not ipfix or rng.random() < 0.5) else records
        sets += struct.pack("!HH", tid, 4 + len(body)) + body
    if ipfix:
        return struct.pack("!HHIII", 10, 16 + len(sets), T0, 0, 7) + sets
    return struct.pack("!HHIIII", 9, 1, 10_000_000, T0, 0, 7) + sets


def _traffic(seed: int, ipfix: bool, datagrams: int = 60) -> list[tuple[bytes, str]]:
    rng = random.Random(seed)
    out = []
    for exporter in ("192.0.2.1", "192.0.2.2"):
        templates = {256 + i: _template(rng, ipfix) for i in range(rng.randrange(1, 4))}
        for _ in range(datagrams):
            out.append((_datagram(rng, ipfix, templates, 25), exporter))
    rng.shuffle(out)  # data before its template: queued, decoded later or lost
    return out


def _sorted(table: pa.Table) -> list[dict[str, object]]:
    return sorted(table.to_pylist(), key=repr)


def _compare(traffic: list[tuple[bytes, str]]) -> int:
    old, new = reference.Decoder(), Decoder()
    want = [r for data, address in traffic for r in old.decode(data, address)]
    got = [c for data, address in traffic for c in new.decode(data, address)]
    old.finish()
    new.finish()
    assert _sorted(to_table(got)) == _sorted(reference.table(want))
    for name in ("datagrams", "records", "by_version", "malformed", "unknown_version", "options_records"):
        assert getattr(new.stats, name) == getattr(old.stats, name), name
    assert new.stats.lost_without_template == old.stats.lost_without_template
    assert new.stats.sampling == old.stats.sampling
    return len(want)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("ipfix", [False, True], ids=["v9", "ipfix"])
def test_vectorised_decoder_matches_the_reference(seed: int, ipfix: bool) -> None:
    assert _compare(_traffic(seed, ipfix)) > 100


def test_v5_matches_the_reference() -> None:
    rng = random.Random(5)
    traffic = []
    for n in range(40):
        recs = [
            Rec(
                str(ipaddress.IPv4Address(rng.getrandbits(32))),
                str(ipaddress.IPv4Address(rng.getrandbits(32))),
                rng.randrange(65536),
                rng.randrange(65536),
                rng.choice([1, 6, 17, 58]),
                rng.randrange(1 << 32),
                rng.randrange(1 << 32),
                rng.randrange(1 << 32),
                rng.randrange(1 << 32),
            )
            for _ in range(rng.randrange(0, 31))
        ]
        traffic.append(
            (
                v5(
                    recs,
                    unix_secs=T0,
                    uptime_ms=rng.randrange(1 << 32),
                    sampling=rng.choice([0, 0x4064]),
                    seq=n,
                ),
                "192.0.2.9",
            )
        )
    assert _compare(traffic) > 300


def test_mixed_ipv4_and_ipv6_in_one_batch() -> None:
    traffic = _traffic(99, False) + _traffic(100, True)
    assert _compare(traffic) > 200
