"""Zeek logs of Corelight's json-streaming-logs package (github.com/corelight/json-streaming-logs).

The package writes ``json_streaming_<path>.log`` (rotated to ``json_streaming_<path>.1.log``, ...),
JSON with the extension fields ``_path``, ``_system_name`` and ``_write_ts``, beside Zeek's own logs
unless ``JSONStreaming::disable_default_logs`` is set. A folder of them was refused ("no Zeek conn
log"). The records here are Zeek's own baseline (``tests/fixtures/zeek/scope_sep/conn.log``) written
as the package writes them.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from derisk.flows import INGEST_SCHEMA
from derisk.ingest import resolve_inputs
from derisk.ingest.zeek import read_zeek

TSV = Path(__file__).parent / "fixtures" / "zeek" / "scope_sep" / "conn.log"
NUMBERS = {"ts", "duration", "orig_bytes", "resp_bytes", "missed_bytes", "orig_pkts", "orig_ip_bytes"}
NUMBERS |= {"resp_pkts", "resp_ip_bytes", "ip_proto", "id.orig_p", "id.resp_p"}


def _streaming_lines() -> list[str]:
    lines = TSV.read_text().splitlines()
    fields = [f.replace("id_", "id.", 1) for f in lines[6].split("\t")[1:]]
    out = []
    for line in lines:
        if line.startswith("#"):
            continue
        record: dict[str, object] = {}
        for name, value in zip(fields, line.split("\t"), strict=True):
            if value == "-":
                continue
            record[name] = float(value) if name in NUMBERS else value == "T" if value in "TF" else value
        written = datetime.fromtimestamp(float(str(record["ts"])) + 5, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        out.append(json.dumps({"_path": "conn", "_system_name": "sensor", "_write_ts": written, **record}))
    return out


def _read(path: Path) -> pa.Table:
    return pa.Table.from_batches(list(read_zeek(path)), schema=INGEST_SCHEMA)


def _flows(table: pa.Table) -> list[tuple[object, ...]]:
    columns = (
        "source_ref",
        "src_ip",
        "src_port",
        "dst_ip",
        "dst_port",
        "bytes_out",
        "bytes_in",
        "first_seen",
    )
    return sorted(zip(*(table[c].to_pylist() for c in columns), strict=True))


def test_a_folder_of_json_streaming_logs_reads_like_zeeks_own(tmp_path: Path) -> None:
    lines = _streaming_lines()
    folder = tmp_path / "spool"
    folder.mkdir()
    (folder / "json_streaming_conn.1.log").write_text("\n".join(lines[:20]) + "\n")  # rotated
    (folder / "json_streaming_conn.log").write_text("\n".join(lines[20:]) + "\n")
    (spec,) = resolve_inputs([folder])
    assert spec.format == "zeek"
    streamed = _flows(_read(folder))
    assert len(streamed) == 34
    assert streamed == _flows(_read(TSV))


def test_beside_zeeks_own_logs_the_records_are_read_once(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    shutil.copy(TSV, folder / "conn.log")
    (folder / "json_streaming_conn.log").write_text("\n".join(_streaming_lines()) + "\n")
    assert _flows(_read(folder)) == _flows(_read(TSV))
