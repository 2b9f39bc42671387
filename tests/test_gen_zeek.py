"""The Zeek log generator: deterministic, Zeek's format, and a ledger an independent reader confirms."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import duckdb
import pytest

from derisk.gen.zeek import (
    Session,
    build_logs,
    escape,
    make_uid,
    write_logs,
)
from derisk.gen.zeek_bench import write_bench_conn_log

T0 = 1_700_000_000.0
SESSIONS = [
    Session("10.0.0.1", "192.0.2.10", T0, 1_234, 5_678, 3, 4, name="a.example", name_via="sni"),
    Session("10.0.0.2", "192.0.2.11", T0 + 1, None, 99, None, 1, name="b.example", name_via="dns-answer"),
    Session("10.0.0.3", "192.0.2.12", T0 + 2, 10, 0, 1, 0, port=80, name="c.example", name_via="http-host",
            user_agent="tab\there"),
]  # fmt: skip


def duck_conn(path: Path) -> tuple[int, int | None, int | None]:
    """Count and byte sums of a TSV conn.log as DuckDB reads it (an independent reader)."""
    with gzip.open(path, "rt") if path.suffix == ".gz" else path.open() as fh:
        header = next(line.rstrip("\n").split("\t")[1:] for line in fh if line.startswith("#fields"))
    columns = dict.fromkeys(header, "VARCHAR") | {"orig_ip_bytes": "UBIGINT", "resp_ip_bytes": "UBIGINT"}
    query = (
        "SELECT count(*), sum(orig_ip_bytes)::BIGINT, sum(resp_ip_bytes)::BIGINT FROM read_csv(?, delim='\t', "
        "header=false, comment='#', quote='', escape='', nullstr=['-', '(empty)'], auto_detect=false, "
        f"columns={columns!r})"
    )
    row = duckdb.execute(query, [str(path)]).fetchone()
    assert row is not None
    return int(row[0]), row[1], row[2]


def test_uids_look_like_zeeks_and_are_stable() -> None:
    uids = [make_uid(3, i) for i in range(200)]
    assert all(re.fullmatch(r"C[0-9A-Za-z]{17}", uid) for uid in uids)
    assert len(set(uids)) == len(uids)
    assert uids == [make_uid(3, i) for i in range(200)]
    assert make_uid(4, 0) != make_uid(3, 0)


@pytest.mark.parametrize("fmt", ["tsv", "json"])
@pytest.mark.parametrize("compress", [False, True])
def test_same_input_same_bytes(tmp_path: Path, fmt: str, compress: bool) -> None:
    first = write_logs(tmp_path / "a", build_logs(SESSIONS, seed=1)[0], fmt=fmt, compress=compress)  # type: ignore[arg-type]
    second = write_logs(tmp_path / "b", build_logs(SESSIONS, seed=1)[0], fmt=fmt, compress=compress)  # type: ignore[arg-type]
    assert {k: p.read_bytes() for k, p in first.items()} == {k: p.read_bytes() for k, p in second.items()}


def test_escape_follows_zeek() -> None:
    assert escape("plain.example") == "plain.example"
    assert escape("a\tb") == "a\\x09b"
    assert escape("back\\slash") == "back\\x5cslash"
    assert escape("é") == "\\xc3\\xa9"
    assert escape("-") == "\\x2d"
    assert escape("(empty)") == "\\x28empty)"
    assert escape("a,b", "\t,") == "a\\x2cb"


def test_tsv_conn_log_read_by_duckdb_matches_ledger(tmp_path: Path) -> None:
    logs, ledger = build_logs(SESSIONS, seed=2)
    paths = write_logs(tmp_path, logs, compress=True)
    rows, out, into = duck_conn(paths["conn"])
    assert rows == len(ledger.flows) == len(logs.conn)
    assert out == ledger.bytes_out
    assert into == ledger.bytes_in


def test_ledger_records_intent() -> None:
    logs, ledger = build_logs(SESSIONS, seed=2)
    names = {(e.server_name, e.server_name_source) for e in ledger.flows.values()}
    assert names == {
        ("a.example", "sni"),
        ("b.example", "dns-answer"),
        ("c.example", "http-host"),
        (None, None),
    }
    lookup = [e for e in ledger.flows.values() if e.dns_query]
    assert [(e.dns_query, e.dst_ip, e.application) for e in lookup] == [("b.example", "10.0.0.53", "dns")]
    assert [d.answers for d in logs.dns] == [("192.0.2.11",)]


def test_json_leaves_unset_fields_out(tmp_path: Path) -> None:
    logs, _ = build_logs(SESSIONS, seed=2)
    paths = write_logs(tmp_path, logs, fmt="json", iso_ts=True)
    records = [json.loads(line) for line in paths["conn"].read_text().splitlines()]
    assert all(record["_path"] == "conn" for record in records)
    unset = [r for r in records if "orig_ip_bytes" not in r]
    assert len(unset) == 1
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", r["ts"]) for r in records)


def test_rotated_names(tmp_path: Path) -> None:
    paths = write_logs(tmp_path, build_logs(SESSIONS)[0], compress=True, stamp="00:00:00-01:00:00")
    assert sorted(p.name for p in paths.values()) == [
        f"{kind}.00:00:00-01:00:00.log.gz" for kind in ("conn", "dns", "http", "ssl")
    ]


@pytest.mark.parametrize("compress", [False, True])
def test_bench_log_totals_match_duckdb(tmp_path: Path, compress: bool) -> None:
    path = tmp_path / ("conn.log.gz" if compress else "conn.log")
    bench = write_bench_conn_log(path, 50_000, seed=4, chunk=20_000, compress=compress)
    assert duck_conn(path) == (50_000, bench.orig_ip_bytes, bench.resp_ip_bytes)
    again = tmp_path / ("again.log.gz" if compress else "again.log")
    write_bench_conn_log(again, 50_000, seed=4, chunk=20_000, compress=compress)
    assert again.read_bytes() == path.read_bytes()
