"""Zeek conn logs through DuckDB (derisk.store.zeekread), the one reader of every variant: where its
CSV reader could differ from Zeek's format rules.

Each test reads a literal or generated log with :func:`read_zeek` and checks the values Zeek's format
rules give, and whether DuckDB's fast options read it or it read on with its tolerant options (the
log line ``tolerant options``). The variants of one log (TSV plain and gzip, JSON lines written here
by Python's own csv and json modules) must agree row for row.
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
import threading
from pathlib import Path

import pyarrow as pa
import pytest

from derisk.errors import InputError
from derisk.flows import INGEST_SCHEMA
from derisk.gen.zeek import Conn, Ssl, ZeekLogs, write_logs
from derisk.gen.zeek_bench import write_bench_conn_log
from derisk.ingest.zeek import read_zeek
from derisk.safetext import MAX_FIELD_CHARS, TRUNCATION_MARK

HEADER = (
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n"
    "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\t"
    "orig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\n"
    "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tcount\tcount\n"
)
HEADER_LINES = HEADER.count("\n")
FALLBACK = "tolerant options"


def line(i: int, service: str = "ssl", uid: str | None = None) -> str:
    return f"1700000000.{i % 1_000_000:06d}\t{uid or f'C{i}'}\t10.0.0.1\t{i % 60000 + 1}\t192.0.2.1\t443\ttcp\t{service}\t1.5\t2\t100\t3\t{i}\n"


def read(path: Path, *, strict: bool = False) -> pa.Table:
    return pa.Table.from_batches(list(read_zeek(path, strict=strict)), schema=INGEST_SCHEMA)


def fell_back(caplog: pytest.LogCaptureFixture) -> bool:
    return any(FALLBACK in record.getMessage() for record in caplog.records)


@pytest.fixture(autouse=True)
def _capture_info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="derisk.ingest.zeek")


def test_escapes_and_markers_in_text(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    services = {
        "Cdash": ("\\x2d", "-"),  # an escaped '-' is a dash, not the unset marker
        "Cempty": ("\\x28empty)", "(empty)"),
        "Cunset": ("-", None),
        "Cnone": ("(empty)", None),
        "Cpipe": ("s\\x7csl\\x09x", "s|sl\tx"),
        "Cutf8": ("caf\\xc3\\xa9", "café"),
        "Cbad": ("a\\xffb", "a\ufffdb"),
        "Cslash": ("back\\\\slash", "back\\\\slash"),
        "Cquote": ('"quoted, not "" CSV"', '"quoted, not "" CSV"'),
    }
    body = "".join(line(i, service, uid) for i, (uid, (service, _)) in enumerate(services.items()))
    path = tmp_path / "conn.log"
    path.write_text(HEADER + body + "#close\t2023-11-14-22-13-21\n", encoding="utf-8")
    rows = {row["source_ref"]: row for row in read(path).to_pylist()}
    assert not fell_back(caplog)
    assert {uid: rows[uid]["application"] for uid in services} == {
        uid: expected for uid, (_, expected) in services.items()
    }


def test_nulls_in_numbers_and_times(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    body = (
        "1700000000.000000\tCa\t10.0.0.1\t1\t192.0.2.1\t443\ttcp\t-\t-\t-\t(empty)\t-\t-\n"
        "1700000001.000000\tCb\t10.0.0.1\t8\t192.0.2.1\t0\ticmp\t-\t0.25\t1\t84\t1\t84\n"
    )
    path = tmp_path / "conn.log"
    path.write_text(HEADER + body, encoding="utf-8")
    a, b = read(path).to_pylist()
    assert not fell_back(caplog)
    assert [a[c] for c in ("last_seen", "packets_out", "bytes_out", "packets_in", "bytes_in")] == [None] * 5
    assert (b["protocol"], b["src_port"], b["dst_port"]) == (1, None, None)
    assert (b["last_seen"] - b["first_seen"]).total_seconds() == 0.25


def test_gzip_plain_and_multi_member(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """gzip logs (DuckDB decompresses, a thread checks the CRCs) give what the same records give
    uncompressed, across concatenated gzip members."""
    first = HEADER + "".join(line(i) for i in range(3000))
    second = HEADER + "".join(line(i) for i in range(3000, 5000))
    plain = tmp_path / "plain" / "conn.log"
    plain.parent.mkdir()
    plain.write_text(first + second, encoding="utf-8")
    packed = tmp_path / "gz" / "conn.log.gz"
    packed.parent.mkdir()
    packed.write_bytes(gzip.compress(first.encode(), mtime=0) + gzip.compress(second.encode(), mtime=0))
    expected = read(plain)
    assert expected.num_rows == 5000
    assert read(packed).equals(expected)
    assert not fell_back(caplog)


def test_gzip_with_a_wrong_checksum_is_refused(tmp_path: Path) -> None:
    data = bytearray(gzip.compress((HEADER + "".join(line(i) for i in range(2000))).encode(), mtime=0))
    data[-8] ^= 0x01  # the CRC-32 in the trailer: the content itself still parses
    path = tmp_path / "conn.log.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="gzip data is corrupt"):
        read(path)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("1700000000.000000\tCz\t10.0.0.1\t1\t192.0.2.1\n", "has 5 fields, expected 13"),
        (line(0).rstrip("\n") + "\textra\n", "has 14 fields, expected 13"),
        (line(0).replace("\t100\t", "\tten\t"), "orig_ip_bytes is not an integer: 'ten'"),
        (
            line(0).replace("1700000000.", "170000000000."),
            "ts is not a plausible timestamp: '170000000000.000000'",
        ),
        (line(0).replace("\tC0\t", "\t-\t"), "uid is unset"),
        (line(0).replace("\t1.5\t", "\tinf\t"), "duration is not a finite number: 'inf'"),
    ],
    ids=["short", "long", "bad count", "implausible ts", "unset uid", "infinite duration"],
)
def test_bad_line_named_after_many_good_ones(tmp_path: Path, bad: str, message: str) -> None:
    """The bad line lies beyond the first batches, which DuckDB hands out before it meets it."""
    good = 150_000
    path = tmp_path / "conn.log"
    path.write_text(HEADER + "".join(line(i) for i in range(good)) + bad + line(good), encoding="utf-8")
    with pytest.raises(InputError) as caught:
        read(path, strict=True)
    number = HEADER_LINES + good + 1
    separator = " " if message.startswith("has") else ": "
    assert str(caught.value) == f"{path}: line {number}{separator}{message}"
    if "finite" in message:  # breaks the conversion itself: refused either way
        with pytest.raises(InputError, match="is not a finite number"):
            read(path)
        return
    uids = read(path).column("source_ref").to_pylist()  # read on past it, from where DuckDB stopped
    assert uids == [f"C{i}" for i in range(good + 1)]


def test_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "conn.log"
    path.write_bytes((HEADER + line(0)).encode() + line(1, "s\xffl").encode("latin-1") + line(2).encode())
    with pytest.raises(InputError, match=f"line {HEADER_LINES + 2} is not UTF-8 text"):
        read(path, strict=True)


def test_very_long_text_is_bounded(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "conn.log"
    path.write_text(HEADER + line(0, "x" * 1_000_000) + line(1), encoding="utf-8")
    service = read(path).column("application").to_pylist()
    assert not fell_back(caplog)
    assert len(service[0]) == MAX_FIELD_CHARS and service[0].endswith(TRUNCATION_MARK)
    assert service[1] == "ssl"


def test_line_beyond_duckdb_limit_is_read_with_tolerant_options(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "conn.log"
    path.write_text(HEADER + line(0) + line(1, "y" * 3_000_000) + line(2), encoding="utf-8")
    table = read(path)
    assert fell_back(caplog)
    assert table.column("source_ref").to_pylist() == ["C0", "C1", "C2"]
    assert table.column("application")[1].as_py().endswith(TRUNCATION_MARK)


def test_hash_inside_a_line_falls_back_without_losing_or_repeating_rows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """DuckDB's fast options cut a line at a '#' (their comment character); its tolerant options then
    read on from where the fast ones stopped, so every row comes once."""
    rows = 200_000
    body = "".join(line(i, "a#b" if i == rows - 5 else "ssl") for i in range(rows))
    path = tmp_path / "hash" / "conn.log"
    path.parent.mkdir()
    path.write_text(HEADER + body, encoding="utf-8")
    table = read(path)
    assert fell_back(caplog)
    assert table.num_rows == rows
    assert table.column("source_ref").to_pylist() == [f"C{i}" for i in range(rows)]
    assert table.column("application")[rows - 5].as_py() == "a#b"
    twin = tmp_path / "twin" / "conn.log"
    twin.parent.mkdir()
    twin.write_text(HEADER + body.replace("a#b", "a_b"), encoding="utf-8")
    expected = read(twin)
    service = expected.column_names.index("application")
    fixed = pa.array(
        ["a#b" if i == rows - 5 else v for i, v in enumerate(expected.column(service).to_pylist())]
    )
    assert table.equals(expected.set_column(service, expected.schema.field(service), fixed))


def test_text_in_the_last_field_is_read_with_tolerant_options(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A '#' in the last field would not change the column count: such logs skip the fast options."""
    header = HEADER.replace("\tservice\tduration", "\tduration").replace("\tstring\tinterval", "\tinterval")
    header = header.replace("resp_ip_bytes\n", "resp_ip_bytes\tservice\n").replace(
        "count\n", "count\tstring\n"
    )
    path = tmp_path / "conn.log"
    path.write_text(
        header + "1700000000.000000\tCh\t10.0.0.1\t1\t192.0.2.1\t443\ttcp\t1.0\t1\t10\t1\t20\tss#l\n",
        encoding="utf-8",
    )
    assert read(path).column("application").to_pylist() == ["ss#l"]
    assert not fell_back(caplog)  # chosen before reading, not after a failure


def test_path_with_glob_characters(tmp_path: Path) -> None:
    directory = tmp_path / "logs [x]*?"
    directory.mkdir()
    (directory / "conn.log").write_text(HEADER + line(0) + line(1), encoding="utf-8")
    assert read(directory).column("source_ref").to_pylist() == ["C0", "C1"]


def _as_json_lines(tsv: Path, target: Path, *, scope_sep: str = ".") -> None:
    """A TSV log rewritten as Zeek's JSON lines by Python's csv and json modules (unset fields left
    out, numbers as numbers), independently of DuckDB."""
    lines = tsv.read_text(encoding="utf-8").splitlines()
    fields = next(x for x in lines if x.startswith("#fields")).split("\t")[1:]
    types = dict(zip(fields, next(x for x in lines if x.startswith("#types")).split("\t")[1:], strict=True))
    with target.open("w", encoding="utf-8") as out:
        for row in csv.reader(
            (x for x in lines if not x.startswith("#")), delimiter="\t", quoting=csv.QUOTE_NONE
        ):
            record: dict[str, object] = {}
            for name, value in zip(fields, row, strict=True):
                if value in ("-", "(empty)"):
                    continue
                kind = types[name]
                key = name.replace(".", scope_sep)
                record[key] = (
                    float(value)
                    if kind in ("time", "interval")
                    else int(value)
                    if kind in ("count", "port")
                    else value
                )
            out.write(json.dumps(record) + "\n")


def test_variants_of_one_generated_log_agree(tmp_path: Path) -> None:
    """The same generated log as TSV, gzip TSV, JSON lines and gzip JSON lines with another scope
    separator: four ways through DuckDB, one result."""
    tls = [
        Ssl(f"C{i:017d}", 1_700_000_000.0, "10.1.0.1", 1, "198.51.0.1", 443, f"S{i}.Example.")
        for i in range(0, 900, 3)
    ]
    folders = {name: tmp_path / name for name in ("tsv", "gzip", "json", "json-gzip")}
    for folder in folders.values():
        folder.mkdir()
        write_logs(folder, ZeekLogs(ssl=tls))
    write_bench_conn_log(folders["tsv"] / "conn.log", 120_000, seed=7)
    write_bench_conn_log(folders["gzip"] / "conn.log.gz", 120_000, seed=7, compress=True)
    _as_json_lines(folders["tsv"] / "conn.log", folders["json"] / "conn.log")
    _as_json_lines(folders["tsv"] / "conn.log", tmp_path / "scoped.log", scope_sep="_")
    (folders["json-gzip"] / "conn.log.gz").write_bytes(gzip.compress((tmp_path / "scoped.log").read_bytes()))
    tsv = read(folders["tsv"])
    assert tsv.num_rows == 120_000
    assert tsv.column("server_name").null_count == 120_000 - len(tls)
    for name in ("gzip", "json", "json-gzip"):
        assert read(folders[name]).equals(tsv), name


def test_icmp_over_ipv6_and_other_protocols(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    logs = ZeekLogs(
        conn=[
            Conn(
                "Ci6",
                1_700_000_000.0,
                "fe80::1",
                128,
                "2001:db8::1",
                129,
                proto="icmp",
                orig_pkts=1,
                orig_ip_bytes=64,
            ),
            Conn(
                "Cu",
                1_700_000_001.0,
                "10.0.0.1",
                5353,
                "10.0.0.2",
                5353,
                proto="UDP",
                orig_pkts=1,
                orig_ip_bytes=64,
            ),
            Conn(
                "Cx",
                1_700_000_002.0,
                "10.0.0.1",
                0,
                "10.0.0.2",
                0,
                proto="unknown_transport",
                orig_pkts=1,
                orig_ip_bytes=64,
            ),
        ]
    )
    write_logs(tmp_path, logs)
    rows = {row["source_ref"]: row for row in read(tmp_path).to_pylist()}
    assert not fell_back(caplog)
    assert (rows["Ci6"]["protocol"], rows["Ci6"]["src_port"]) == (58, None)
    assert (rows["Cu"]["protocol"], rows["Cu"]["dst_port"]) == (17, 5353)
    assert (rows["Cx"]["protocol"], rows["Cx"]["src_port"]) == (None, None)


def test_stopping_early_ends_the_read_ahead_thread(tmp_path: Path) -> None:
    path = tmp_path / "conn.log"
    write_bench_conn_log(path, 150_000, seed=3)
    batches = read_zeek(path)
    assert next(batches).num_rows > 0
    batches.close()  # type: ignore[attr-defined]
    assert not [t for t in threading.enumerate() if t.name.startswith("zeekread")]
