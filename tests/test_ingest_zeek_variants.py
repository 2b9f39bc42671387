"""Zeek variants: conn_state and connection attempts, scope separators, archive layouts, JSON times."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from derisk.errors import InputError
from derisk.flows import INGEST_SCHEMA
from derisk.gen.zeek import CONN_FIELDS, tsv_header
from derisk.ingest import resolve_inputs
from derisk.ingest.zeek import log_files, read_zeek

T0 = 1_700_000_000.0

#: (conn_state, orig_bytes, resp_bytes, proto, expected is_attempt)
STATES = [
    ("SF", 500, 7000, "tcp", False),
    ("S0", 0, 0, "tcp", True),
    ("REJ", 0, 0, "tcp", True),
    ("RSTOS0", 0, None, "tcp", True),
    ("RSTRH", None, None, "tcp", True),
    ("SH", 0, 0, "tcp", True),
    ("SHR", 0, 0, "tcp", True),
    ("OTH", 0, 0, "tcp", True),
    ("OTH", 0, 1200, "tcp", False),  # midstream with payload: traffic
    ("S0", 80, 0, "udp", False),  # a UDP datagram nobody answered still carried data
    ("S1", 0, 0, "tcp", False),  # established: not an attempt even without payload
    ("RSTO", 0, 0, "tcp", False),
    (None, 0, 0, "tcp", None),  # unset state: unknown
]


def _conn_rows() -> list[dict[str, object]]:
    rows = []
    for i, (state, ob, rb, proto, _) in enumerate(STATES):
        rows.append(
            {
                "ts": T0 + i,
                "uid": f"C{i:017d}",
                "id.orig_h": "10.0.0.5",
                "id.orig_p": 40000 + i,
                "id.resp_h": f"198.51.100.{i + 1}",
                "id.resp_p": 443,
                "proto": proto,
                "service": None,
                "duration": 1.5,
                "orig_bytes": ob,
                "resp_bytes": rb,
                "conn_state": state,
                "local_orig": None,
                "local_resp": None,
                "missed_bytes": 0,
                "history": "S",
                "orig_pkts": 1,
                "orig_ip_bytes": 60,
                "resp_pkts": 0 if state == "S0" else 1,
                "resp_ip_bytes": 0 if state == "S0" else 40,
                "tunnel_parents": None,
            }
        )
    return rows


def write_tsv(
    path: Path,
    rows: list[dict[str, object]],
    *,
    scope_sep: str = ".",
    compress: bool = False,
    drop: tuple[str, ...] = (),
) -> None:
    kept = [(name, kind) for name, kind in CONN_FIELDS if name not in drop]
    fields = [(name.replace("id.", f"id{scope_sep}"), kind) for name, kind in kept]
    lines = [tsv_header("conn", fields)]
    for row in rows:
        values = []
        for name, kind in kept:
            value = row[name]
            values.append("-" if value is None else f"{value:.6f}" if kind == "time" else str(value))
        lines.append("\t".join(values) + "\n")
    lines.append("#close\t2023-11-14-22-13-20\n")
    data = "".join(lines).encode()
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)


def write_json(path: Path, rows: list[dict[str, object]], *, scope_sep: str = ".", ts: str = "epoch") -> None:
    out = []
    for row in rows:
        record = {k.replace("id.", f"id{scope_sep}"): v for k, v in row.items() if v is not None}
        if ts == "millis":
            record["ts"] = round(float(row["ts"]) * 1000)  # type: ignore[arg-type]
        elif ts == "iso":
            stamp = datetime.fromtimestamp(float(row["ts"]), UTC)  # type: ignore[arg-type]
            record["ts"] = stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        out.append(json.dumps(record))
    path.write_text("\n".join(out) + "\n")


def read_all(path: Path) -> pa.Table:
    return pa.Table.from_batches(list(read_zeek(path)), schema=INGEST_SCHEMA)


def _by_uid(table: pa.Table, column: str) -> dict[str, object]:
    return dict(zip(table["source_ref"].to_pylist(), table[column].to_pylist(), strict=True))


def _expected() -> tuple[dict[str, str | None], dict[str, bool | None]]:
    states = {f"C{i:017d}": s[0] for i, s in enumerate(STATES)}
    attempts = {f"C{i:017d}": s[4] for i, s in enumerate(STATES)}
    return states, attempts


@pytest.mark.parametrize("variant", ["tsv", "tsv-gzip", "json"])
def test_conn_state_and_attempts(tmp_path: Path, variant: str) -> None:
    path = tmp_path / ("conn.log" if variant != "tsv-gzip" else "conn.log.gz")
    if variant == "json":
        write_json(path, _conn_rows())
    else:
        write_tsv(path, _conn_rows(), compress=variant == "tsv-gzip")
    table = read_all(path)
    states, attempts = _expected()
    assert _by_uid(table, "conn_state") == states
    assert _by_uid(table, "is_attempt") == attempts


def test_attempt_unknown_without_payload_columns(tmp_path: Path) -> None:
    """A TSV log without orig_bytes/resp_bytes cannot tell an attempt from a flow with payload.

    (In JSON an absent key is Zeek's unset value, so JSON has no such case.)
    """
    path = tmp_path / "conn.log"
    write_tsv(path, _conn_rows(), drop=("orig_bytes", "resp_bytes"))
    table = read_all(path)
    attempts = _by_uid(table, "is_attempt")
    for i, (state, *_rest) in enumerate(STATES):
        unknown = state is None or state in ("S0", "REJ", "RSTOS0", "RSTRH", "SH", "SHR", "OTH")
        expected = None if unknown else False
        assert attempts[f"C{i:017d}"] is expected, state


def _flows(table: pa.Table) -> list[tuple[object, ...]]:
    columns = [
        "source_ref",
        "first_seen",
        "src_ip",
        "src_port",
        "dst_ip",
        "dst_port",
        "bytes_out",
        "is_attempt",
    ]
    return sorted(zip(*(table[c].to_pylist() for c in columns), strict=True))


@pytest.mark.parametrize("scope_sep", ["_", ":", "__"])
@pytest.mark.parametrize("variant", ["tsv", "tsv-gzip", "json"])
def test_scope_separator_reads_like_dotted_names(tmp_path: Path, scope_sep: str, variant: str) -> None:
    """``Log::default_scope_sep = "_"`` (Elasticsearch, Splunk) gives the same flows as Zeek's dots."""
    dotted, scoped = tmp_path / "dotted" / "conn.log", tmp_path / "scoped" / "conn.log"
    for path, sep in ((dotted, "."), (scoped, scope_sep)):
        path.parent.mkdir()
        if variant == "json":
            write_json(path, _conn_rows(), scope_sep=sep)
        else:
            write_tsv(path, _conn_rows(), scope_sep=sep, compress=variant == "tsv-gzip")
    expected = read_all(dotted)
    assert expected.num_rows == len(STATES)
    assert _flows(read_all(scoped)) == _flows(expected)
    assert read_all(scoped).equals(expected)


def test_scope_separator_error_names_zeeks_field(tmp_path: Path) -> None:
    path = tmp_path / "conn.log"
    rows = _conn_rows()
    rows[3]["id.orig_p"] = "eighty"
    write_tsv(path, rows, scope_sep="_")
    with pytest.raises(InputError, match=r"line 12: id\.orig_p is not an integer"):
        list(read_zeek(path, strict=True))


@pytest.mark.parametrize("ts", ["millis", "iso"])
def test_json_timestamps_millis_and_iso(tmp_path: Path, ts: str) -> None:
    epoch, other = tmp_path / "epoch.log", tmp_path / "other.log"
    write_json(epoch, _conn_rows())
    write_json(other, _conn_rows(), ts=ts)
    assert read_all(other).equals(read_all(epoch))


def test_json_millis_implausible_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "conn.log"
    rows = _conn_rows()
    write_json(path, rows, ts="millis")
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace('"ts": ', '"ts": -', 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match="line 3: ts is not a timestamp"):
        read_all(path)


def test_archive_layout_of_dated_folders(tmp_path: Path) -> None:
    """zeekctl's archive: ``logs/YYYY-MM-DD/conn.HH:MM:SS-HH:MM:SS.log.gz``, read as one input."""
    rows = _conn_rows()
    flat = tmp_path / "flat.log"
    write_tsv(flat, rows)
    archive = tmp_path / "logs"
    halves = {"2023-11-14": rows[:6], "2023-11-15": rows[6:]}
    for day, part in halves.items():
        (archive / day).mkdir(parents=True)
        write_tsv(archive / day / "conn.22:00:00-23:00:00.log.gz", part[:3], compress=True)
        write_tsv(archive / day / "conn.23:00:00-00:00:00.log.gz", part[3:], compress=True)
    (archive / "current").mkdir()  # still being written: not read
    write_tsv(archive / "current" / "conn.log", rows[:2])
    (archive / "2023-11-15" / "weird.log").write_text("#fields\tts\n")
    files = log_files(archive)
    assert [f.relative_to(archive).as_posix() for f in files] == [
        "2023-11-14/conn.22:00:00-23:00:00.log.gz",
        "2023-11-14/conn.23:00:00-00:00:00.log.gz",
        "2023-11-15/conn.22:00:00-23:00:00.log.gz",
        "2023-11-15/conn.23:00:00-00:00:00.log.gz",
    ]
    assert read_all(archive).equals(read_all(flat))
    specs = resolve_inputs([archive])
    assert [(s.format, len(s.files)) for s in specs] == [("zeek", 4)]


def test_rotated_names_in_one_folder(tmp_path: Path) -> None:
    rows = _conn_rows()
    flat = tmp_path / "flat.log"
    write_tsv(flat, rows)
    folder = tmp_path / "logs"
    folder.mkdir()
    write_tsv(folder / "conn.2023-11-14-22-00-00.log", rows[:5])
    write_tsv(folder / "conn.2023-11-14-23-00-00.log.gz", rows[5:10], compress=True)
    write_tsv(folder / "conn.log", rows[10:])  # the current log comes last
    assert read_all(folder).equals(read_all(flat))


def test_workspace_from_before_conn_state_gains_the_columns(tmp_path: Path, data_env: Path) -> None:
    """A workspace written before ``conn_state``/``is_attempt`` existed is opened, extended, used."""
    import duckdb

    from derisk.cli import main
    from derisk.store.workspace import Workspace

    log = tmp_path / "conn.log"
    write_tsv(log, _conn_rows())
    ws = tmp_path / "ws"
    with Workspace.open(ws, create=True):
        pass
    con = duckdb.connect(str(next(ws.glob("*.duckdb"))))
    con.execute("DROP VIEW IF EXISTS flows_attributed")
    con.execute("ALTER TABLE flows DROP COLUMN is_attempt")
    con.execute("ALTER TABLE flows DROP COLUMN conn_state")
    con.close()
    assert main(["analyze", str(log), "-w", str(ws), "-q"]) == 0
    with Workspace.open(ws, create=False, read_only=True) as w:
        rows = w.query("SELECT conn_state, is_attempt FROM flows WHERE source_ref = 'C00000000000000002'")
    assert [tuple(r) for r in rows] == [("REJ", True)]


ZEEK_FIXTURES = Path(__file__).parent / "fixtures" / "zeek"


def test_real_scope_sep_log_reads_like_its_dotted_twin(tmp_path: Path) -> None:
    """Zeek's own test output with ``Log::default_scope_sep = "_"`` (tests/fixtures/README.md)."""
    scoped = ZEEK_FIXTURES / "scope_sep" / "conn.log"
    text = scoped.read_text()
    assert "\tid_orig_h\t" in text
    dotted = tmp_path / "conn.log"
    dotted.write_text(text.replace("\tid_", "\tid."))
    table = read_all(scoped)
    assert table.num_rows == 34
    assert table.equals(read_all(dotted))


def test_real_attempts_in_zeek_logs() -> None:
    """Real conn.logs: REJ and a bare midstream TCP packet are attempts; unanswered UDP datagrams
    (S0, payload unset for single packets) carried data and are not."""
    pop3 = read_all(ZEEK_FIXTURES / "pop3" / "conn.log").to_pylist()
    assert {(r["conn_state"], r["is_attempt"]) for r in pop3} == {("REJ", True), ("SF", False)}
    rows = read_all(ZEEK_FIXTURES / "scope_sep" / "conn.log").to_pylist()
    attempts = [r for r in rows if r["is_attempt"]]
    assert [(r["conn_state"], r["protocol"], r["bytes_out"]) for r in attempts] == [("OTH", 6, 48)]
    udp_s0 = [r for r in rows if r["conn_state"] == "S0"]
    assert len(udp_s0) == 10 and not any(r["is_attempt"] for r in udp_s0)
