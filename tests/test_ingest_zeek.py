"""Zeek ingest: golden tests against the generator's ledger, Zeek's format rules, bad input, hostile text."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from derisk.errors import InputError
from derisk.flows import BATCH_ROWS, INGEST_SCHEMA
from derisk.gen.zeek import (
    Conn,
    Dns,
    Http,
    Session,
    Ssl,
    ZeekLogs,
    build_logs,
    write_logs,
)
from derisk.gen.zeek_bench import write_bench_conn_log
from derisk.ingest.zeek import log_files, read_zeek
from derisk.safetext import MAX_FIELD_CHARS, TRUNCATION_MARK

T0 = 1_700_000_000.0

SESSIONS = [
    Session(
        "10.0.0.5",
        "47.91.1.10",
        T0 + 1.25,
        1_000,
        20_000,
        12,
        18,
        name="oss-eu-central-1.aliyuncs.com",
        name_via="sni",
        ja4="t13d1516h2_8daaf6152771_b186095e22b6",
    ),
    Session(
        "10.0.0.5",
        "93.184.216.34",
        T0 + 2.5,
        500,
        1_500,
        4,
        3,
        port=80,
        name="www.example.com",
        name_via="http-host",
        user_agent="curl/8.5.0",
    ),
    Session(
        "10.0.0.6",
        "52.95.1.1",
        T0 + 3.0,
        70_000,
        900,
        60,
        20,
        name="s3.eu-west-1.amazonaws.com",
        name_via="dns-answer",
    ),
    Session("10.0.0.7", "198.51.100.1", T0 + 4.0, 10, 20, 1, 1),
    Session(
        "fd00::7", "2001:db8::1", T0 + 5.0, 3_000, 4_000, 5, 6, name="v6.example.net", name_via="dns-answer"
    ),
    Session(
        "fd00::8", "2a00:1450:4001::200e", T0 + 6.0, 123, 456, 2, 2, name="www.google.com", name_via="sni"
    ),
]


def read_all(path: Path, **kwargs: object) -> pa.Table:
    return pa.Table.from_batches(list(read_zeek(path, **kwargs)), schema=INGEST_SCHEMA)  # type: ignore[arg-type]


def by_uid(table: pa.Table) -> dict[str, dict[str, object]]:
    return {row["source_ref"]: row for row in table.to_pylist()}


# --- golden tests against the ledger ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "compress", "iso_ts", "stamp"),
    [
        ("tsv", False, False, None),
        ("tsv", True, False, "00:00:00-01:00:00"),
        ("json", False, False, None),
        ("json", True, True, "2023-11-14-22-00-00"),
    ],
)
def test_directory_matches_ledger(
    tmp_path: Path, fmt: str, compress: bool, iso_ts: bool, stamp: str | None
) -> None:
    logs, ledger = build_logs(SESSIONS, seed=7)
    written = write_logs(tmp_path, logs, fmt=fmt, compress=compress, iso_ts=iso_ts, stamp=stamp)  # type: ignore[arg-type]
    assert set(written) == {"conn", "dns", "ssl", "http"}
    table = read_all(tmp_path)
    assert table.schema == INGEST_SCHEMA
    rows = by_uid(table)
    assert set(rows) == set(ledger.flows)
    for uid, expected in ledger.flows.items():
        row = rows[uid]
        assert (row["src_ip"], row["dst_ip"]) == (expected.src_ip, expected.dst_ip)
        assert (row["bytes_out"], row["bytes_in"]) == (expected.bytes_out, expected.bytes_in), uid
        assert (row["packets_out"], row["packets_in"]) == (expected.packets_out, expected.packets_in)
        assert row["server_name"] == expected.server_name
        assert row["server_name_source"] == expected.server_name_source
        assert row["dns_query"] == expected.dns_query
        assert row["user_agent"] == expected.user_agent
        assert row["ja4"] == expected.ja4
        assert row["application"] == expected.application
    assert sum(table["bytes_out"].to_pylist()) == ledger.bytes_out
    assert sum(table["bytes_in"].to_pylist()) == ledger.bytes_in


def test_times_protocols_and_ports(tmp_path: Path) -> None:
    logs, _ = build_logs(SESSIONS, seed=1)
    write_logs(tmp_path, logs)
    rows = by_uid(read_all(tmp_path))
    conns = {c.uid: c for c in logs.conn}
    for uid, row in rows.items():
        conn = conns[uid]
        first = row["first_seen"]
        assert first.tzinfo is not None
        assert round(first.timestamp() * 1e6) == round(conn.ts * 1e6)
        assert conn.duration is not None
        assert round((row["last_seen"] - first).total_seconds() * 1e6) == round(conn.duration * 1e6)
        assert (row["src_port"], row["dst_port"]) == (conn.orig_p, conn.resp_p)
        assert row["protocol"] == {"tcp": 6, "udp": 17}[conn.proto]


def test_single_conn_log_without_companions(tmp_path: Path) -> None:
    logs, ledger = build_logs(SESSIONS, seed=2)
    paths = write_logs(tmp_path, logs, compress=True)
    table = read_all(paths["conn"])
    assert table.num_rows == len(ledger.flows)
    assert table["server_name"].null_count == table.num_rows
    assert table["bytes_out"].to_pylist() == [c.orig_ip_bytes for c in logs.conn]


def test_progress_adds_up_to_file_size(tmp_path: Path) -> None:
    logs, _ = build_logs(SESSIONS)
    paths = write_logs(tmp_path, logs, compress=True)
    seen: list[int] = []
    read_all(tmp_path, progress=seen.append)
    assert seen and all(n > 0 for n in seen)
    assert sum(seen) == sum(p.stat().st_size for p in paths.values())
    assert sorted(log_files(tmp_path)) == sorted(paths.values())


def test_large_log_streams_in_batches_and_matches_bench_ledger(tmp_path: Path) -> None:
    path = tmp_path / "conn.log"
    bench = write_bench_conn_log(path, 120_000, seed=5)
    batches = list(read_zeek(path))
    assert len(batches) > 1
    assert all(b.num_rows <= BATCH_ROWS for b in batches)
    assert sum(b.num_rows for b in batches) == bench.rows
    assert sum(pa.compute.sum(b["bytes_out"]).as_py() for b in batches) == bench.orig_ip_bytes
    assert sum(pa.compute.sum(b["bytes_in"]).as_py() for b in batches) == bench.resp_ip_bytes


# --- Zeek's format rules, on literal logs ------------------------------------------------------------

HEADER = (
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n"
    "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\t"
    "orig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\n"
    "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tcount\tcount\n"
)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_unset_and_empty_become_null_never_zero(tmp_path: Path) -> None:
    body = (
        "1700000000.000000\tCa\t10.0.0.1\t1\t192.0.2.1\t443\ttcp\t-\t-\t-\t-\t-\t-\n"
        "1700000001.500000\tCb\t10.0.0.1\t2\t192.0.2.1\t443\ttcp\t(empty)\t0.000000\t0\t0\t0\t0\n"
        "#close\t2023-11-14-22-13-21\n"
    )
    rows = by_uid(read_all(write(tmp_path / "conn.log", HEADER + body)))
    a, b = rows["Ca"], rows["Cb"]
    for column in ("bytes_out", "bytes_in", "packets_out", "packets_in", "application", "last_seen"):
        assert a[column] is None, column
    assert b["application"] is None
    assert (b["bytes_out"], b["bytes_in"], b["packets_out"]) == (0, 0, 0)
    assert b["last_seen"] == b["first_seen"]


def test_declared_separators_and_escapes(tmp_path: Path) -> None:
    conn = (
        "#separator \\x7c\n#set_separator|;\n#empty_field|EMPTY\n#unset_field|NONE\n#path|conn\n"
        "#fields|ts|uid|id.orig_h|id.orig_p|id.resp_h|id.resp_p|proto|service|duration|orig_pkts|orig_ip_bytes"
        "|resp_pkts|resp_ip_bytes\n"
        "#types|time|string|addr|port|addr|port|enum|string|interval|count|count|count|count\n"
        "1700000000.000000|Cx|10.0.0.1|5|192.0.2.7|443|tcp|s\\x7csl|1.0|NONE|10|EMPTY|20\n"
    )
    ssl = (
        "#separator \\x7c\n#set_separator|;\n#empty_field|EMPTY\n#unset_field|NONE\n#path|ssl\n"
        "#fields|ts|uid|server_name\n#types|time|string|string\n"
        "1700000000.100000|Cx|evil\\x7c\\x09name.example\n"
    )
    dns = (
        "#separator \\x7c\n#set_separator|;\n#empty_field|EMPTY\n#unset_field|NONE\n#path|dns\n"
        "#fields|ts|uid|id.orig_h|query|qtype_name|answers\n#types|time|string|addr|string|string|vector[string]\n"
        "1699999999.000000|Cd|10.0.0.9|other.example|A|alias.example;192.0.2.8;192.0.2.9\n"
    )
    conn += "1700000000.500000|Cy|10.0.0.9|6|192.0.2.9|443|tcp|NONE|NONE|1|10|1|20\n"
    write(tmp_path / "conn.log", conn)
    write(tmp_path / "ssl.log", ssl)
    write(tmp_path / "dns.log", dns)
    rows = by_uid(read_all(tmp_path))
    assert rows["Cx"]["application"] == "s|sl"
    assert rows["Cx"]["packets_out"] is None
    assert rows["Cx"]["packets_in"] is None
    assert rows["Cx"]["server_name"] == "evil|\tname.example"
    assert rows["Cy"]["server_name"] == "other.example"
    assert rows["Cy"]["server_name_source"] == "dns-answer"


def test_ipv6_and_icmp(tmp_path: Path) -> None:
    logs = ZeekLogs(
        conn=[
            Conn("C6", T0, "fe80::1", 135, "ff02::1", 136, "icmp", None, None, 1, 72, 0, 0),
            Conn("C4", T0, "10.0.0.1", 8, "192.0.2.1", 0, "icmp", None, 0.5, 1, 84, 1, 84),
            Conn(
                "Cu",
                T0,
                "2001:db8::5",
                5353,
                "2001:db8::53",
                53,
                "unknown_transport",
                None,
                None,
                1,
                60,
                0,
                0,
            ),
        ]
    )
    write_logs(tmp_path, logs)
    rows = by_uid(read_all(tmp_path))
    assert rows["C6"]["protocol"] == 58
    assert rows["C6"]["src_ip"] == "fe80::1"
    assert (rows["C6"]["src_port"], rows["C6"]["dst_port"]) == (None, None)  # ICMP type/code are not ports
    assert rows["C4"]["protocol"] == 1
    assert rows["Cu"]["protocol"] is None


def test_dns_answer_rules(tmp_path: Path) -> None:
    cdn = "203.0.113.80"
    logs = ZeekLogs(
        conn=[
            Conn("Cflow1", T0 + 10, "10.0.0.1", 1000, cdn, 443, "tcp", None, 1.0, 1, 100, 1, 100),
            Conn("Cflow2", T0 + 30, "10.0.0.2", 1001, cdn, 443, "tcp", None, 1.0, 1, 100, 1, 100),
            Conn("Cflow3", T0 + 30, "10.0.0.3", 1002, cdn, 443, "tcp", None, 1.0, 1, 100, 1, 100),
            Conn("Cearly", T0 - 50, "10.0.0.1", 1003, cdn, 443, "tcp", None, 1.0, 1, 100, 1, 100),
            Conn("Csni", T0 + 40, "10.0.0.1", 1004, cdn, 443, "tcp", "ssl", 1.0, 1, 100, 1, 100),
            Conn("Cdns", T0, "10.0.0.1", 5000, "10.0.0.53", 53, "udp", "dns", 0.01, 1, 60, 1, 120),
        ],
        dns=[
            Dns("Cdns", T0, "10.0.0.1", 5000, "10.0.0.53", "A.Example.", answers=("cdn.example.net", cdn)),
            Dns("Cd2", T0 + 20, "10.0.0.2", 5001, "10.0.0.53", "b.example", answers=(cdn,)),
            Dns("Cd3", T0 + 50, "10.0.0.3", 5002, "10.0.0.53", "later.example", answers=(cdn,)),
            Dns(
                "Cd4", T0 + 1, "10.0.0.1", 5003, "10.0.0.53", "txt.example", qtype_name="TXT", answers=(cdn,)
            ),
        ],
        ssl=[Ssl("Csni", T0 + 40.1, "10.0.0.1", 1004, cdn, 443, "Secure.Example.ORG.")],
    )
    write_logs(tmp_path, logs)
    rows = by_uid(read_all(tmp_path))
    # 10.0.0.1 asked for a.example itself: its own answer wins over anyone else's.
    assert rows["Cflow1"]["server_name"] == "a.example"
    assert rows["Cflow2"]["server_name"] == "b.example"
    # 10.0.0.3 only asked after its flow: the most recent earlier answer to anyone applies.
    assert rows["Cflow3"]["server_name"] == "b.example"
    assert {rows[u]["server_name_source"] for u in ("Cflow1", "Cflow2", "Cflow3")} == {"dns-answer"}
    assert rows["Cearly"]["server_name"] is None
    assert rows["Csni"]["server_name"] == "secure.example.org"
    assert rows["Csni"]["server_name_source"] == "sni"
    assert rows["Cdns"]["dns_query"] == "a.example"
    assert rows["Cdns"]["server_name"] is None


def test_http_host_port_removed_and_first_request_counts(tmp_path: Path) -> None:
    logs = ZeekLogs(
        conn=[Conn("Ch", T0, "10.0.0.1", 1000, "192.0.2.1", 8080, "tcp", "http", 1.0, 3, 300, 3, 900)],
        http=[
            Http("Ch", T0 + 0.1, "10.0.0.1", 1000, "192.0.2.1", 8080, "API.Example.com:8080", "agent/1"),
            Http("Ch", T0 + 0.2, "10.0.0.1", 1000, "192.0.2.1", 8080, "other.example", "agent/2"),
        ],
    )
    write_logs(tmp_path, logs, fmt="json")
    row = read_all(tmp_path).to_pylist()[0]
    assert (row["server_name"], row["server_name_source"], row["user_agent"]) == (
        "api.example.com",
        "http-host",
        "agent/1",
    )


def test_concatenated_logs_and_blank_lines(tmp_path: Path) -> None:
    line = "1700000000.000000\tC{0}\t10.0.0.1\t1\t192.0.2.1\t443\ttcp\tssl\t1.0\t1\t{0}\t1\t2\n"
    text = HEADER + line.format(1) + "\n#close\tx\n" + HEADER + line.format(2) + "#close\tx\n"
    table = read_all(write(tmp_path / "conn.log", text))
    assert table["bytes_out"].to_pylist() == [1, 2]


def test_json_iso_and_epoch_timestamps_agree(tmp_path: Path) -> None:
    logs, _ = build_logs(SESSIONS, seed=3)
    write_logs(tmp_path / "epoch", logs, fmt="json")
    write_logs(tmp_path / "iso", logs, fmt="json", iso_ts=True)
    epoch, iso = read_all(tmp_path / "epoch"), read_all(tmp_path / "iso")
    assert epoch["first_seen"].to_pylist() == iso["first_seen"].to_pylist()
    assert epoch.equals(iso)


# --- hostile text ----------------------------------------------------------------------------------

HOSTILE = [
    "<script>alert(1)</script>.example.com",
    "bell\x07\x1b[31mred\x00nul.example",
    "x" * 2_000_000,
    "\u202eevil\u2066.example",
]


@pytest.mark.parametrize("fmt", ["tsv", "json"])
def test_hostile_strings_are_kept_bounded(tmp_path: Path, fmt: str) -> None:
    sessions = [
        Session("10.0.0.1", f"192.0.2.{i + 1}", T0 + i, 10, 20, name=text, name_via=via, user_agent=text)
        for i, text in enumerate(HOSTILE)
        for via in ("http-host",)
    ] + [
        Session("10.0.0.2", f"198.51.100.{i + 1}", T0 + 100 + i, 10, 20, name=text, name_via="dns-answer")
        for i, text in enumerate(HOSTILE)
    ]
    logs, ledger = build_logs(sessions, seed=9)
    write_logs(tmp_path, logs, fmt=fmt)  # type: ignore[arg-type]
    rows = by_uid(read_all(tmp_path))
    for uid, expected in ledger.flows.items():
        row = rows[uid]
        for column in ("server_name", "user_agent", "dns_query"):
            value = row[column]
            wanted = getattr(expected, column)
            if wanted is None:
                continue
            assert isinstance(value, str)
            assert len(value) <= MAX_FIELD_CHARS
            if len(wanted) > MAX_FIELD_CHARS:
                assert value.endswith(TRUNCATION_MARK)
                assert wanted.lower().startswith(value[: -len(TRUNCATION_MARK)].lower())
            else:
                assert value.lower() == wanted.lower(), column


# --- bad input -------------------------------------------------------------------------------------


def _gz(text: str) -> bytes:
    return gzip.compress(text.encode(), mtime=0)


def _good_gz() -> bytes:
    body = "".join(
        f"1700000000.{i:06d}\tC{i}\t10.0.0.1\t1\t192.0.2.1\t443\ttcp\tssl\t1.0\t1\t10\t1\t20\n"
        for i in range(20_000)
    )
    return _gz(HEADER + body)


def _corrupt_gz() -> bytes:
    data = bytearray(_good_gz())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\x00" * 64
    return bytes(data)


GOOD_LINE = "1700000000.000000\tC1\t10.0.0.1\t1\t192.0.2.1\t443\ttcp\tssl\t1.0\t1\t10\t1\t20\n"

BAD_FILES: list[tuple[str, str, bytes, str]] = [
    ("empty", "conn.log", b"", "empty file"),
    ("blank", "conn.log", b"\n\n  \n", "empty log"),
    ("not zeek", "conn.log", b"hello world\n", "not a Zeek log"),
    (
        "no fields header",
        "conn.log",
        b"#separator \\x09\n#path\tconn\n" + GOOD_LINE.encode(),
        "no #fields header",
    ),
    (
        "fields lack columns",
        "conn.log",
        b"#separator \\x09\n#path\tdns\n#fields\tts\tuid\tquery\n#types\ttime\tstring\tstring\n",
        "lacks the columns id.orig_h, id.orig_p, id.resp_h, id.resp_p, proto, orig_pkts, orig_ip_bytes, "
        "resp_pkts, resp_ip_bytes (this is a dns log)",
    ),
    (
        "types count",
        "conn.log",
        HEADER.replace("\tcount\tcount\tcount\tcount\n", "\tcount\n").encode(),
        "#types declares 10 columns but #fields names 13",
    ),
    (
        "types disagree",
        "conn.log",
        HEADER.replace("#types\ttime", "#types\tstring").encode(),
        "#types disagrees with Zeek's: ts is 'string', expected 'time'",
    ),
    (
        "ragged",
        "conn.log",
        (HEADER + GOOD_LINE * 3 + "1700000001.0\tC2\t10.0.0.1\n").encode(),
        "line 11 has 3 fields, expected 13",
    ),
    (
        "bad ts",
        "conn.log",
        (HEADER + GOOD_LINE + GOOD_LINE.replace("1700000000.000000", "yesterday")).encode(),
        "line 9: ts is not a timestamp: 'yesterday'",
    ),
    (
        "negative ts",
        "conn.log",
        (HEADER + GOOD_LINE.replace("1700000000.000000", "-5.0")).encode(),
        "line 8: ts is not a plausible timestamp",
    ),
    (
        "nan duration",
        "conn.log",
        (HEADER + GOOD_LINE.replace("\t1.0\t", "\tnan\t")).encode(),
        "line 8: duration is not a finite number: 'nan'",
    ),
    (
        "bad count",
        "conn.log",
        (HEADER + GOOD_LINE.replace("\t10\t", "\tten\t")).encode(),
        "line 8: orig_ip_bytes is not an integer: 'ten'",
    ),
    (
        "unset address",
        "conn.log",
        (HEADER + GOOD_LINE.replace("10.0.0.1", "-")).encode(),
        "line 8: id.orig_h is unset",
    ),
    (
        "json not json",
        "conn.log",
        b'{"ts":1700000000.0,"uid":"C1","id.orig_h":"10.0.0.1","id.orig_p":1,"id.resp_h":"192.0.2.1",'
        b'"id.resp_p":443,"proto":"tcp","orig_pkts":1,"orig_ip_bytes":10,"resp_pkts":1,"resp_ip_bytes":20}\n'
        b"<html>oops</html>\n",
        "line 2 is not JSON",
    ),
    ("json first line", "conn.log", b"{not json\n", "line 1 is not JSON"),
    (
        "json lacks fields",
        "conn.log",
        b'{"ts": 1700000000.0, "uid": "C1"}\n',
        "line 1 lacks the fields id.orig_h",
    ),
    (
        "json bad ts",
        "conn.log",
        b'{"ts":1700000000.0,"uid":"C1","id.orig_h":"10.0.0.1","id.orig_p":1,"id.resp_h":"192.0.2.1",'
        b'"id.resp_p":443,"proto":"tcp","orig_pkts":1,"orig_ip_bytes":10,"resp_pkts":1,"resp_ip_bytes":20}\n'
        b'{"ts":"soon","uid":"C2","id.orig_h":"10.0.0.1","id.orig_p":1,"id.resp_h":"192.0.2.1",'
        b'"id.resp_p":443,"proto":"tcp","orig_pkts":1,"orig_ip_bytes":10,"resp_pkts":1,"resp_ip_bytes":20}\n',
        "line 2: ts is not a timestamp: 'soon'",
    ),
    (
        "not utf-8",
        "conn.log",
        (HEADER + GOOD_LINE).encode().replace(b"\tssl\t", b"\ts\xffl\t"),
        "line 8 is not UTF-8",
    ),
    (
        "header not utf-8",
        "conn.log",
        HEADER.replace("#path\tconn", "#path\tc\udcffnn").encode("utf-8", "surrogateescape")
        + GOOD_LINE.encode(),
        "line 5: the header is not UTF-8 text",
    ),
    ("gzip truncated", "conn.log.gz", _good_gz()[:3000], "gzip data is truncated"),
    ("gzip corrupt", "conn.log.gz", _corrupt_gz(), "gzip data is"),
]


@pytest.mark.parametrize(("name", "filename", "content", "message"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_input_table(tmp_path: Path, name: str, filename: str, content: bytes, message: str) -> None:
    """Refused with ``strict``; without it a TSV log is read around fewer bad lines than good ones
    (``tests/test_ingest_zeek_damaged.py``)."""
    path = tmp_path / filename
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        read_all(path, strict=True)
    text = caught.value.one_line()
    assert text.startswith(str(path) + ": "), text
    assert message in text, text
    assert "\n" not in text


def test_bad_companion_is_reported_before_any_batch(tmp_path: Path) -> None:
    logs, _ = build_logs(SESSIONS)
    write_logs(tmp_path, logs)
    (tmp_path / "ssl.log").write_text(
        "#separator \\x09\n#path\tssl\n#fields\tts\tuid\tserver_name\n#types\ttime\tstring\tstring\n"
        "1700000000.0\tC1\ta.example\ngarbage\n"
    )
    with pytest.raises(InputError, match=r"ssl\.log: line 6 has 1 fields, expected 3"):
        read_zeek(tmp_path, strict=True)


def _reading_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(("zeekfirst", "zeekread"))]


@pytest.mark.parametrize("consumed", [0, 1, 2])
def test_batches_closed_early_stop_their_reads(tmp_path: Path, consumed: int) -> None:
    """The first conn batch is read while the companions are (on a thread, from ``read_zeek``):
    closing the batches, before the first is asked for or after some, stops that read too."""
    logs, _ = build_logs(SESSIONS)
    write_logs(tmp_path, logs)
    write_bench_conn_log(tmp_path / "conn.log", 3 * BATCH_ROWS, seed=3)
    batches = read_zeek(tmp_path)
    got = [next(batches) for _ in range(consumed)]
    batches.close()  # type: ignore[attr-defined]
    assert len(got) == consumed and all(b.num_rows for b in got)
    assert _reading_threads() == []
    assert sum(b.num_rows for b in read_zeek(tmp_path)) == 3 * BATCH_ROWS
    assert _reading_threads() == []


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "no such file or directory"),
        ("empty dir", "no Zeek conn log"),
        ("only dns", "no Zeek conn log"),
        ("dangling link", "no such file or directory"),
    ],
)
def test_bad_paths(tmp_path: Path, setup: str, message: str) -> None:
    target = tmp_path / "input"
    if setup == "empty dir":
        target.mkdir()
    elif setup == "dangling link":
        target.symlink_to(tmp_path / "gone.log")
    elif setup == "only dns":
        target.mkdir()
        logs, _ = build_logs(SESSIONS)
        paths = write_logs(target, logs)
        paths["conn"].unlink()
    with pytest.raises(InputError, match=message):
        read_zeek(target)


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "conn.log"
    path.write_text(HEADER + GOOD_LINE)
    path.chmod(0)
    try:
        with path.open("rb"):
            pytest.skip("running with privileges that ignore file modes")
    except PermissionError:
        pass
    with pytest.raises(InputError, match="permission denied"):
        read_zeek(path)


def test_stopping_early_releases_the_reader(tmp_path: Path) -> None:
    path = tmp_path / "conn.log"
    write_bench_conn_log(path, 150_000, seed=2)
    batches: Iterator[pa.RecordBatch] = read_zeek(path)
    first = next(batches)
    assert first.num_rows > 0
    batches.close()  # type: ignore[attr-defined]


def test_header_only_logs_give_no_rows(tmp_path: Path) -> None:
    write(tmp_path / "conn.log", HEADER + "#close\t2023-11-14-22-13-21\n")
    write(
        tmp_path / "ssl.log",
        "#separator \\x09\n#fields\tts\tuid\tserver_name\n#types\ttime\tstring\tstring\n",
    )
    assert read_all(tmp_path).num_rows == 0


def test_rotated_conn_logs_are_read_in_order(tmp_path: Path) -> None:
    first, second = SESSIONS[:3], SESSIONS[3:]
    logs_a, ledger_a = build_logs(first, seed=1)
    logs_b, ledger_b = build_logs(second, seed=2)
    write_logs(tmp_path, logs_a, compress=True, stamp="00:00:00-01:00:00")
    write_logs(tmp_path, logs_b, fmt="json", stamp="01:00:00-02:00:00")
    table = read_all(tmp_path)
    assert table["source_ref"].to_pylist() == [c.uid for c in logs_a.conn + logs_b.conn]
    rows = by_uid(table)
    for uid, expected in {**ledger_a.flows, **ledger_b.flows}.items():
        assert rows[uid]["bytes_out"] == expected.bytes_out
        assert rows[uid]["server_name"] == expected.server_name


@pytest.mark.parametrize("compress", [False, True])
def test_segments_end_at_line_ends_and_cover_the_file(tmp_path: Path, compress: bool) -> None:
    from derisk.ingest.zeek_io import segments

    lines = [f"{i}\t" + "x" * (i * 37 % 300) for i in range(2_000)] + [
        "long\t" + "y" * 5_000,
        "no newline at end",
    ]
    content = ("\n".join(lines)).encode()
    path = tmp_path / "log"
    path.write_bytes(gzip.compress(content) if compress else content)
    pieces = list(segments(path, str(path), 1_024))
    assert b"".join(p.to_pybytes() for p, _ in pieces) == content
    assert all(p.to_pybytes().endswith(b"\n") for p, _ in pieces[:-1])
    offsets = [offset for _, offset in pieces]
    assert offsets == sorted(offsets)
    assert offsets[-1] == path.stat().st_size


@pytest.mark.parametrize("hashed", [False, True], ids=["duckdb-join", "sorted-hashes"])
@pytest.mark.parametrize("lengths", [(17,), (3, 17, 18, 70)], ids=["zeek-like", "mixed"])
def test_uid_join_agrees_with_arrow_index_in(lengths: tuple[int, ...], hashed: bool) -> None:
    """The join by uid (derisk.store.zeekjoin: DuckDB's join, or the search of sorted hashes when the
    batch carries DuckDB's hash(uid)) finds what Arrow's index_in finds, in batch order."""
    import random

    from derisk.store.zeekjoin import UidJoin

    rng = random.Random(5)
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    known = list({"C" + "".join(rng.choices(alphabet, k=rng.choice(lengths))) for _ in range(70_000)})
    others = ["C" + "".join(rng.choices(alphabet, k=17)) for _ in range(2_000)]
    probe_values: list[str | None] = [*rng.sample(known, 3_000), *others, known[0], known[0]]
    rng.shuffle(probe_values)
    if len(lengths) > 1:
        probe_values += [None, ""]
    probe = pa.array(["pad", *probe_values]).slice(1)  # a sliced array, as batches are
    uids = pa.array(known)
    names = pa.array([f"s{i}.example" for i in range(len(known))])
    join = UidJoin([pa.table({"uid": uids, "seq": pa.array(range(len(known))), "sni": names})])
    hashes = None
    if hashed:
        from derisk.store.zeekread import private_connection

        con = private_connection()
        con.register("probe", pa.table({"uid": probe}))
        hashes = con.sql("SELECT hash(uid) AS h FROM probe").to_arrow_table().column("h").combine_chunks()
        con.close()
    try:
        found = join.join(probe, hashes)
    finally:
        join.close()
    expected = names.take(pa.compute.index_in(probe, value_set=uids))
    assert found["server_name"].to_pylist() == expected.to_pylist()
    assert found["server_name_source"].to_pylist() == [
        None if e is None else "sni" for e in expected.to_pylist()
    ]


@pytest.mark.parametrize("hashed", [False, True], ids=["duckdb-join", "bucketed-hashes"])
def test_uid_join_keeps_each_columns_first_value_in_logged_order(hashed: bool) -> None:
    """The reduction by uid (NumPy over DuckDB's hashes) gives, per uid and per column, the first
    value set in ``seq`` order, whatever the parts' order, as a plain Python reading does."""
    import random

    from derisk.store.zeekjoin import COLUMNS, UidJoin
    from derisk.store.zeekread import private_connection

    rng = random.Random(11)
    uids = [f"C{i:05d}x" for i in range(400)]
    seqs = rng.sample(range(10_000), 3_000)  # not in order: the parts are not in logged order
    parts, rows = [], []
    for columns, chunk in ((("sni", "ja4"), seqs[:1_200]), (("host", "user_agent"), seqs[1_200:2_400]),
                           (("dns_query",), seqs[2_400:])):  # fmt: skip
        part: dict[str, list[object]] = {"uid": [], "seq": [], **{c: [] for c in columns}}
        for seq in chunk:
            uid = rng.choice([*uids, None]) if rng.random() < 0.02 else rng.choice(uids)
            part["uid"].append(uid)
            part["seq"].append(seq)
            row = {"uid": uid, "seq": seq}
            for column in columns:
                value = None if rng.random() < 0.4 else f"{column}-{seq}"
                part[column].append(value)
                row[column] = value
            rows.append(row)
        parts.append(pa.table(part))
    expected: dict[str, dict[str, object]] = {}
    for row in sorted(rows, key=lambda r: int(str(r["seq"]))):
        if row["uid"] is None:
            continue
        first = expected.setdefault(str(row["uid"]), {})
        for column in ("sni", "ja4", "host", "user_agent", "dns_query"):
            if row.get(column) is not None:
                first.setdefault(column, row[column])
    probe = pa.array([*uids, "Cmissing", *uids[:50]])
    hashes = None
    if hashed:
        con = private_connection()
        con.register("probe", pa.table({"uid": probe}))
        hashes = con.sql("SELECT hash(uid) AS h FROM probe").to_arrow_table().column("h").combine_chunks()
        con.close()
    join = UidJoin(parts)
    try:
        found = join.join(probe, hashes)
    finally:
        join.close()
    assert tuple(found) == COLUMNS
    for i, uid in enumerate(probe.to_pylist()):
        first = expected.get(uid, {})
        name = first.get("sni", first.get("host"))
        source = "sni" if "sni" in first else "http-host" if "host" in first else None
        got = {column: found[column][i].as_py() for column in COLUMNS}
        assert got == {
            "server_name": name,
            "server_name_source": source,
            "ja4": first.get("ja4"),
            "user_agent": first.get("user_agent"),
            "dns_query": first.get("dns_query"),
        }, uid


def test_quic_server_name_counts_as_sni(tmp_path: Path) -> None:
    write(
        tmp_path / "conn.log",
        HEADER
        + "1700000000.000000\tCq\t10.0.0.1\t50000\t142.250.1.1\t443\tudp\tquic,ssl\t2.0\t30\t9000\t40\t40000\n",
    )
    write(
        tmp_path / "quic.log",
        "#separator \\x09\n#path\tquic\n#fields\tts\tuid\tversion\tserver_name\n#types\ttime\tstring\tstring\tstring\n"
        "1700000000.010000\tCq\t1\tWWW.YouTube.com\n",
    )
    row = read_all(tmp_path).to_pylist()[0]
    assert (row["server_name"], row["server_name_source"], row["application"]) == (
        "www.youtube.com",
        "sni",
        "quic,ssl",
    )


def test_unknown_transport_gets_zeeks_ip_proto() -> None:
    """Zeek 6+ writes ``ip_proto``: a connection it calls ``unknown_transport`` (here SCTP, Zeek's own
    baseline) gets its IP protocol number instead of none, and no ports."""
    folder = Path(__file__).parent / "fixtures" / "zeek" / "unknown_ip_protocol"
    rows = by_uid(read_all(folder))
    row = rows["CHhAvVGS1DHFjwGM9"]
    assert row["protocol"] == 132
    assert (row["src_port"], row["dst_port"]) == (None, None)
    assert (row["bytes_out"], row["bytes_in"], row["packets_out"], row["packets_in"]) == (
        33256,
        33524,
        37,
        37,
    )
