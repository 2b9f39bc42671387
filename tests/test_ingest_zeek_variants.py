"""Zeek variants: conn_state and connection attempts, scope separators, archive layouts, JSON times."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from derisk.flows import INGEST_SCHEMA
from derisk.gen.zeek import CONN_FIELDS, tsv_header
from derisk.ingest.zeek import read_zeek

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
