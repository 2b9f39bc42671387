"""NetFlow/IPFIX from nfdump files: the same capture through derisk's pcap reader and through nfdump's
tools gives the same destinations and IP bytes; pairing of directions; sampling; the bad-input table.

Fixtures (tests/fixtures/README.md): ``netflow/nfpcapd`` is nfdump 1.7.1's nfpcapd run on
``pcap/golden.pcap``; ``netflow/v9`` and ``netflow/v5`` are that file sent as real NetFlow v9 and v5
datagrams by nfreplay to nfcapd on 127.0.0.1; ``netflow/sampled`` holds v5, v9 and IPFIX datagrams
announcing sampling (tests/netflow_packets.py) as nfcapd stored them.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from derisk.cli import main
from derisk.errors import InputError
from derisk.flows import INGEST_SCHEMA
from derisk.ingest import NFCAPD_MAGICS, resolve_inputs, sniff
from derisk.ingest.netflow import _file_records, read_nfcapd
from derisk.ingest.netflow_pairs import RECORD_SCHEMA, Pairer
from derisk.ingest.pcap import read_pcap

FIXTURES = Path(__file__).parent / "fixtures"
NETFLOW = FIXTURES / "netflow"
GOLDEN_PCAP = FIXTURES / "pcap" / "golden.pcap"

pytestmark = pytest.mark.skipif(shutil.which("nfdump") is None, reason="needs nfdump (scripts/system-deps)")


def read_all(path: Path, notes: dict[str, Any] | None = None) -> pa.Table:
    return pa.Table.from_batches(list(read_nfcapd(path, notes=notes)), schema=INGEST_SCHEMA)


def by_destination(table: pa.Table) -> dict[tuple[object, ...], list[int]]:
    """IP bytes and packets per (internal end, external end, ports, protocol), summed over flows."""
    totals: dict[tuple[object, ...], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for row in table.to_pylist():
        key = (row["src_ip"], row["src_port"], row["dst_ip"], row["dst_port"], row["protocol"])
        total = totals[key]
        for i, column in enumerate(("bytes_out", "bytes_in", "packets_out", "packets_in")):
            total[i] += row[column]
        total[4] += 1
    return dict(totals)


def _pcap_flows() -> pa.Table:
    return pa.Table.from_batches(list(read_pcap(GOLDEN_PCAP)), schema=INGEST_SCHEMA)


@pytest.mark.parametrize("variant", ["nfpcapd", "v9"])
def test_same_capture_through_pcap_and_through_netflow_gives_the_same_bytes(variant: str) -> None:
    """Exact: NetFlow counts IP-layer bytes (the IP total length), as derisk's pcap reader does, and
    every connection of this capture ends within the file. Only the number of flows may differ:
    NetFlow keys ICMP by type and code, so two echo exchanges are two flows where NFStream has one."""
    pcap = by_destination(_pcap_flows())
    netflow = by_destination(read_all(NETFLOW / variant))
    assert netflow.keys() == pcap.keys()
    for key, total in netflow.items():
        assert total[:4] == pcap[key][:4], key
        if key[4] not in (1, 58):
            assert total[4] == pcap[key][4], key


def test_timestamps_are_utc_to_the_millisecond() -> None:
    pcap = {(r["src_ip"], r["src_port"], r["dst_ip"]): r for r in _pcap_flows().to_pylist() if r["src_port"]}
    for row in read_all(NETFLOW / "v9").to_pylist():
        if row["src_port"] is None:
            continue
        expected = pcap[(row["src_ip"], row["src_port"], row["dst_ip"])]
        assert row["first_seen"].utcoffset() == timedelta(0)
        for column in ("first_seen", "last_seen"):
            assert abs(row[column] - expected[column]) < timedelta(milliseconds=1), (row, column)


def test_netflow_v5_carries_ipv4_only() -> None:
    v5 = by_destination(read_all(NETFLOW / "v5"))
    pcap = by_destination(_pcap_flows())
    assert v5 == {key: total for key, total in pcap.items() if ":" not in str(key[0]) and key[4] != 1} | {
        key: v5[key] for key in v5 if key[4] == 1
    }
    assert all(":" not in str(key[0]) for key in v5)


def test_the_fixture_is_what_nfpcapd_makes_of_the_capture(tmp_path: Path) -> None:
    """Re-run nfdump's nfpcapd on the capture: the committed fixture is its output, not hand-made."""
    nfpcapd = shutil.which("nfpcapd")
    if nfpcapd is None:
        pytest.skip("nfpcapd not installed")
    subprocess.run([nfpcapd, "-r", str(GOLDEN_PCAP), "-w", str(tmp_path)], check=True, capture_output=True)
    assert by_destination(read_all(tmp_path)) == by_destination(read_all(NETFLOW / "nfpcapd"))


@pytest.mark.parametrize("capture", ["firefox.pcap", "http_ipv6.pcap"])
def test_real_captures_through_nfpcapd_give_the_same_bytes(tmp_path: Path, capture: str) -> None:
    """Two real captures of nDPI's test suite (tests/fixtures/README.md), IPv4 and IPv6: nfpcapd's
    NetFlow records of them, paired by derisk, give NFStream's destinations, bytes and packets."""
    nfpcapd = shutil.which("nfpcapd")
    if nfpcapd is None:
        pytest.skip("nfpcapd not installed")
    path = FIXTURES / "eve" / capture
    subprocess.run([nfpcapd, "-r", str(path), "-w", str(tmp_path)], check=True, capture_output=True)
    pcap = by_destination(pa.Table.from_batches(list(read_pcap(path)), schema=INGEST_SCHEMA))
    assert by_destination(read_all(tmp_path)) == pcap


def test_directory_is_one_input_and_compressed_files_read(tmp_path: Path) -> None:
    shutil.copy(NETFLOW / "nfpcapd" / "nfcapd.202603020800", tmp_path / "nfcapd.202603020800")
    shutil.copy(NETFLOW / "nfpcapd-lz4.nfcapd", tmp_path / "nfcapd.202603020805")
    (tmp_path / "nfcapd.current.1234").write_bytes(b"\x0c\xa5\x02\x00 being written")
    (tmp_path / "README").write_text("not a flow file\n")
    specs = resolve_inputs([tmp_path])
    assert [(s.format, [f.name for f in s.files]) for s in specs] == [
        ("nfcapd", ["nfcapd.202603020800", "nfcapd.202603020805"])
    ]
    assert sniff(NETFLOW / "nfpcapd-lz4.nfcapd") == "nfcapd"
    single = by_destination(read_all(NETFLOW / "nfpcapd-lz4.nfcapd"))
    both = by_destination(read_all(tmp_path))
    assert both == {key: [2 * n for n in total] for key, total in single.items()}


def test_sampling_rates_are_recorded_and_warned(caplog: pytest.LogCaptureFixture) -> None:
    """nfcapd multiplied the counts by the rate each exporter announced (v5 header 1 in 100, v9
    options record 1 in 10); derisk records the rates and says the volumes are estimates."""
    notes: dict[str, Any] = {}
    with caplog.at_level(logging.WARNING):
        flows = read_all(NETFLOW / "sampled", notes)
    rates = {(e["version"], e["id"]): e["sampling_rate"] for e in notes["exporters"]}
    assert rates == {(5, 0): 100, (9, 7): 10, (10, 9): 1}
    assert notes["sampling_rate"] == 100
    assert "sampled 1 packet in 100" in caplog.text and "sampled 1 packet in 10;" in caplog.text
    # the v5 exchange: 150 and 300 bytes on the wire, sampled 1 in 100
    assert {(r["bytes_out"], r["bytes_in"]) for r in flows.to_pylist()} >= {(15_000, 30_000), (1_500, 3_000)}


def test_the_analysis_states_the_sampling(
    tmp_path: Path, data_env: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A warning line per sampling exporter, and the rates in the analysis document's input notes."""
    import json

    out = tmp_path / "a.json"
    with caplog.at_level(logging.WARNING):
        code = main(
            ["analyze", str(NETFLOW / "sampled"), "-w", str(tmp_path / "ws"), "-q", "--json", str(out)]
        )
    assert code == 0
    assert "sampled 1 packet in 100" in caplog.text and "volumes are estimates" in caplog.text
    notes = json.loads(out.read_text())["run"]["input_notes"]
    (note,) = notes.values()
    assert note["sampling_rate"] == 100
    assert {e["sampling_rate"] for e in note["exporters"]} == {100, 10, 1}


def _records(rows: list[dict[str, Any]]) -> pa.Table:
    base = {"rev_packets": 0, "rev_bytes": 0, "source_ref": "t", "protocol": 6}
    return pa.Table.from_pylist([{**base, **row} for row in rows], schema=RECORD_SCHEMA)


def _rec(src: str, sport: int, dst: str, dport: int, first: int, nbytes: int, **extra: Any) -> dict[str, Any]:
    return {
        "first_us": first,
        "last_us": first + 10,
        "src_ip": src,
        "src_port": sport,
        "dst_ip": dst,
        "dst_port": dport,
        "packets": 1,
        "bytes": nbytes,
        **extra,
    }


def _pair(rows: list[dict[str, Any]]) -> list[tuple[object, ...]]:
    pairer = Pairer()
    try:
        table = pa.Table.from_batches(list(pairer.pair(_records(rows))), schema=INGEST_SCHEMA)
    finally:
        pairer.close()
    return [
        (r["src_ip"], r["src_port"], r["dst_ip"], r["dst_port"], r["bytes_out"], r["bytes_in"])
        for r in table.to_pylist()
    ]


def test_pairing_takes_the_first_sender_as_opener() -> None:
    got = _pair(
        [_rec("9.9.9.9", 443, "10.0.0.1", 50000, 20, 900), _rec("10.0.0.1", 50000, "9.9.9.9", 443, 10, 100)]
    )
    assert got == [("10.0.0.1", 50000, "9.9.9.9", 443, 100, 900)]


def test_a_pair_whose_server_record_came_first_is_the_clients() -> None:
    # a connection older than the exporter's cache entry: the server's record starts first
    got = _pair(
        [_rec("9.9.9.9", 8883, "10.0.0.1", 50000, 10, 900), _rec("10.0.0.1", 50000, "9.9.9.9", 8883, 20, 100)]
    )
    assert got == [("10.0.0.1", 50000, "9.9.9.9", 8883, 100, 900)]
    # two client ports: the first sender stays the opener
    got = _pair(
        [
            _rec("9.9.9.9", 40000, "10.0.0.1", 50000, 10, 900),
            _rec("10.0.0.1", 50000, "9.9.9.9", 40000, 20, 100),
        ]
    )
    assert got == [("9.9.9.9", 40000, "10.0.0.1", 50000, 900, 100)]


def test_a_lone_answer_is_oriented_from_its_client() -> None:
    got = _pair(
        [_rec("9.9.9.9", 443, "10.0.0.1", 50000, 20, 900), _rec("10.0.0.2", 50001, "9.9.9.9", 8443, 30, 70)]
    )
    assert got == [("10.0.0.1", 50000, "9.9.9.9", 443, 0, 900), ("10.0.0.2", 50001, "9.9.9.9", 8443, 70, 0)]


def test_flows_cut_by_the_active_timeout_pair_in_order() -> None:
    rows = [
        _rec("10.0.0.1", 50000, "9.9.9.9", 443, 10, 100),
        _rec("10.0.0.1", 50000, "9.9.9.9", 443, 1_000, 200),
        _rec("9.9.9.9", 443, "10.0.0.1", 50000, 1_005, 2_000),
        _rec("9.9.9.9", 443, "10.0.0.1", 50000, 15, 1_000),
    ]
    assert _pair(rows) == [
        ("10.0.0.1", 50000, "9.9.9.9", 443, 100, 1_000),
        ("10.0.0.1", 50000, "9.9.9.9", 443, 200, 2_000),
    ]


def test_biflow_records_are_not_paired_again() -> None:
    rows = [
        _rec("10.0.0.1", 50000, "9.9.9.9", 443, 10, 100, rev_bytes=900, rev_packets=3),
        _rec("9.9.9.9", 443, "10.0.0.1", 50000, 15, 5),
    ]
    assert _pair(rows) == [
        ("10.0.0.1", 50000, "9.9.9.9", 443, 100, 900),
        ("10.0.0.1", 50000, "9.9.9.9", 443, 0, 5),
    ]


def test_analyze_orients_netflow_to_the_site(tmp_path: Path, data_env: Path) -> None:
    from derisk.store.workspace import Workspace

    ws = tmp_path / "ws"
    site = tmp_path / "site.yaml"
    site.write_text("internal_networks: [10.20.0.0/16, fd00:20::/32]\n")
    out = tmp_path / "a.json"
    assert (
        main(["analyze", str(NETFLOW / "v9"), "--site", str(site), "-w", str(ws), "-q", "--json", str(out)])
        == 0
    )
    with Workspace.open(ws, create=False, read_only=True) as w:
        rows = w.query(
            "SELECT direction, count(*), sum(bytes_out + bytes_in) FROM flows GROUP BY ALL ORDER BY 1"
        )
        fmt = w.query("SELECT format FROM inputs")
    assert fmt == [("nfcapd",)]
    # four DNS exchanges with the internal resolver; eleven conversations out, the ICMP echo as two
    assert {r[0]: r[1] for r in rows} == {"internal": 4, "outbound": 12}
    assert sum(r[2] for r in rows) == 81_148


def _truncated(tmp: Path) -> Path:
    data = (NETFLOW / "nfpcapd" / "nfcapd.202603020800").read_bytes()
    out = tmp / "nfcapd.202603020810"
    out.write_bytes(data[: len(data) // 2])
    return out


def _magic_then_random(tmp: Path) -> Path:
    out = tmp / "nfcapd.202603020815"
    out.write_bytes(b"\x0c\xa5\x02\x00" + os.urandom(4000))
    return out


def _wrong_version(tmp: Path) -> Path:
    data = bytearray((NETFLOW / "nfpcapd" / "nfcapd.202603020800").read_bytes())
    data[2] = 9
    out = tmp / "nfcapd.202603020820"
    out.write_bytes(bytes(data))
    return out


def _random(tmp: Path) -> Path:
    out = tmp / "nfcapd.202603020825"
    out.write_bytes(os.urandom(8000))
    return out


def _empty(tmp: Path) -> Path:
    out = tmp / "nfcapd.202603020830"
    out.write_bytes(b"")
    return out


def _header_only(tmp: Path) -> Path:
    out = tmp / "nfcapd.202603020835"
    out.write_bytes((NETFLOW / "nfpcapd" / "nfcapd.202603020800").read_bytes()[:8])
    return out


BAD = [
    ("truncated", _truncated, "not a readable nfdump file"),
    ("magic then random bytes", _magic_then_random, "not a readable nfdump file"),
    ("header only", _header_only, "not a readable nfdump file"),
    ("wrong layout version", _wrong_version, "not a capture"),
    ("random bytes", _random, "not a capture"),
    ("empty", _empty, "empty"),
]


@pytest.mark.parametrize(("name", "make", "words"), BAD, ids=[b[0] for b in BAD])
def test_bad_nfdump_files_exit_3_and_leave_the_workspace(
    tmp_path: Path, data_env: Path, capsys: pytest.CaptureFixture[str], name: str, make: Any, words: str
) -> None:
    from derisk.store.workspace import Workspace

    ws = tmp_path / "ws"
    assert main(["analyze", str(NETFLOW / "v9"), "-w", str(ws), "-q"]) == 0
    with Workspace.open(ws, create=False, read_only=True) as w:
        before = (w.flow_count(), len(w.query("SELECT * FROM inputs")))
    capsys.readouterr()
    bad = make(tmp_path)
    assert main(["analyze", str(NETFLOW / "nfpcapd"), str(bad), "-w", str(ws), "-q"]) == 3
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1, err
    assert "Traceback" not in err and bad.name in lines[0] and words in lines[0].lower(), err
    with Workspace.open(ws, create=False, read_only=True) as w:
        assert (w.flow_count(), len(w.query("SELECT * FROM inputs"))) == before


def test_a_file_without_flows_gives_none_and_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    empty = tmp_path / "nfcapd.202603020900"
    source = NETFLOW / "nfpcapd" / "nfcapd.202603020800"
    subprocess.run(
        ["nfdump", "-r", str(source), "-w", str(empty), "proto 99"], check=True, capture_output=True
    )
    with caplog.at_level(logging.WARNING):
        assert read_all(empty).num_rows == 0
    assert "no flow records" in caplog.text


def _fake_nfdump(tmp: Path, monkeypatch: pytest.MonkeyPatch, prints: bytes, errors: str = "") -> None:
    """An ``nfdump`` earlier on PATH that checks every file as fine and prints ``prints`` as records:
    what derisk must survive if an nfdump version printed something else (a test of derisk's parsing,
    not a stand-in for a derisk component)."""
    (tmp / "printed").write_bytes(prints)
    script = tmp / "bin" / "nfdump"
    script.parent.mkdir()
    script.write_text(
        "#!/bin/sh\n"
        'case "$1" in -v|-E) exit 0;; esac\n'
        f"cat '{tmp / 'printed'}'\n"
        f"printf '%s' '{errors}' >&2\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{script.parent}:{os.environ['PATH']}")


@pytest.mark.parametrize(
    "prints",
    [
        b"1772438400.000,0.000,17,10.0.0.1,many,8.8.8.8,53,1,75,0,0,0.0.0.0,0\n",
        b"1772438400.000,0.000,17,10.0.0.1\n",
        b"1772438400.000,0.000,17," + b"1" * 10_000_000 + b",5000,8.8.8.8,53,1,75,0,0,0.0.0.0,0\n",
        b"1772438400.000,0.000,17,\x00\xff\xfe,5000,8.8.8.8,53,1,75,0,0,0.0.0.0,0\n",
    ],
    ids=["wrong type", "too few fields", "10 MB field", "NUL and not UTF-8"],
)
def test_records_derisk_cannot_parse_are_an_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prints: bytes
) -> None:
    _fake_nfdump(tmp_path, monkeypatch, prints)
    with pytest.raises(InputError, match="nfdump printed records derisk cannot read"):
        read_all(NETFLOW / "v9")


def test_messages_of_nfdump_on_standard_error_fail_the_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = b"1772438400.000,0.000,17,10.0.0.1,5000,8.8.8.8,53,1,75,0,0,0.0.0.0,0\n"
    _fake_nfdump(tmp_path, monkeypatch, good, "Corrupt data block\n")
    with pytest.raises(InputError, match=r"not a readable nfdump file \(nfdump: Corrupt data block\)"):
        read_all(NETFLOW / "v9")


def test_without_nfdump_the_error_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(InputError, match="apt-get install nfdump"):
        read_all(NETFLOW / "v9")


NFCAPD_FIXTURES = sorted(p for p in NETFLOW.rglob("*") if p.is_file() and p.read_bytes()[:4] in NFCAPD_MAGICS)


@pytest.mark.parametrize("path", NFCAPD_FIXTURES, ids=lambda p: str(p.relative_to(NETFLOW)))
def test_pipe_output_gives_the_records_of_the_fmt_output(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """nfdump's fast ``pipe`` output, where derisk uses it, gives exactly the records and flows of ``fmt:``."""
    from derisk.ingest import netflow
    from derisk.ingest.netflow import _env, _nfdump
    from derisk.ingest.netflow_pipe import pipe_plan

    listed = subprocess.run(["nfdump", "-E", str(path)], capture_output=True, check=True, env=_env())
    plan = pipe_plan(_nfdump(), path, _env(), listed.stdout.decode())
    assert (plan is None) == (listed.stdout.count(b"SysID") > 1)  # one exporter: pipe; more: fmt:

    def records(pipe: bool) -> list[dict[str, object]]:
        batches = list(_file_records(path, pipe=pipe))
        return sorted(pa.Table.from_batches(batches, schema=RECORD_SCHEMA).to_pylist(), key=repr)

    fast = records(pipe=True)
    assert fast and fast == records(pipe=False)
    flows = read_all(path).to_pylist()
    monkeypatch.setattr(netflow, "_PIPE", False)
    assert flows == read_all(path).to_pylist()


def test_a_file_with_reverse_counters_is_read_through_fmt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe finds a record that ``pipe`` cannot print whole: the file goes through ``fmt:``."""
    from derisk.ingest.netflow import _env, _nfdump
    from derisk.ingest.netflow_pipe import pipe_plan

    path = NETFLOW / "v9" / "nfcapd.202612062058"
    text = "SysID: 1, IP:        127.0.0.1, version: 9, ID:  1,\n"
    assert pipe_plan(_nfdump(), path, _env(), text) is not None
    assert (
        pipe_plan(_nfdump(), path, _env(), text.replace("SysID: 1", "SysID: 7")) is None
    )  # records of sysid 1 unlisted
    many = "".join(f"SysID: {i}, IP: 127.0.0.{i}, version: 9, ID: 1,\n" for i in range(1, 3))
    assert pipe_plan(_nfdump(), path, _env(), many) is None


def _fake_pipe_nfdump(tmp: Path, monkeypatch: pytest.MonkeyPatch, prints: bytes) -> None:
    """An nfdump whose probe finds nothing to stop ``pipe``, and that prints ``prints`` as records."""
    (tmp / "printed").write_bytes(prints)
    script = tmp / "bin" / "nfdump"
    script.parent.mkdir()
    script.write_text(
        "#!/bin/sh\n"
        'case "$1" in -v|-E) exit 0;; esac\n'
        'case "$*" in *"-c 1"*) echo "No matching flows"; exit 0;; esac\n'
        f"cat '{tmp / 'printed'}'\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{script.parent}:{os.environ['PATH']}")


def test_pipe_output_is_read_when_the_probe_allows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    line = b"2|1772438400000|1772438400500|17|0|0|0|167772161|40001|0|0|0|134744072|53|0|0|0|0|0|0|1|75\n"
    _fake_pipe_nfdump(tmp_path, monkeypatch, line)
    (row,) = read_all(NETFLOW / "v9").to_pylist()
    assert (row["src_ip"], row["src_port"], row["dst_ip"], row["dst_port"], row["bytes_out"]) == (
        "10.0.0.1",
        40001,
        "8.8.8.8",
        53,
        75,
    )


@pytest.mark.parametrize(
    "prints",
    [
        b"2|1772438400000|1772438400000|17|0|0|0|many|40001|0|0|0|1|53|0|0|0|0|0|0|1|75\n",
        b"2|1772438400000|1772438400000|17|0|0\n",
        b"2|1772438400000|1772438400000|17|0|0|0|\x00\xff|40001|0|0|0|1|53|0|0|0|0|0|0|1|75\n",
    ],
    ids=["wrong type", "too few fields", "NUL and not UTF-8"],
)
def test_pipe_output_derisk_cannot_parse_is_an_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prints: bytes
) -> None:
    _fake_pipe_nfdump(tmp_path, monkeypatch, prints)
    with pytest.raises(InputError, match="nfdump printed records derisk cannot read"):
        read_all(NETFLOW / "v9")
