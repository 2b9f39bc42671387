"""Zeek JSON logs with ISO 8601 times without an offset are read as UTC whatever the machine's time
zone: DuckDB's cursors do not inherit their database's ``SET TimeZone``, and the reads go through
cursors of the input's database (:mod:`derisk.store.zeekread`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import json, sys
from pathlib import Path
from derisk.ingest.zeek import read_zeek
from derisk.store import zeekread
from derisk.store.zeekjoin import connect

rows = [b.column("first_seen")[0].as_py().isoformat() for b in read_zeek(Path(sys.argv[1]))]
database = connect()
source = zeekread.LogSource(
    Path(sys.argv[1]) / "dns.log", {"ts": "time", "uid": "string"}, zeekread.JsonLayout("string", {}), False
)
ts = zeekread.read_table(source, database).column("ts")[0].as_py()
database.close()
print(json.dumps({"conn": rows, "dns_us": ts}))
"""


def _conn(ts: str) -> dict[str, object]:
    return {
        "ts": ts, "uid": "C1", "id.orig_h": "10.0.0.1", "id.orig_p": 1234, "id.resp_h": "192.0.2.1",
        "id.resp_p": 443, "proto": "tcp", "duration": 1.0, "orig_bytes": 10, "resp_bytes": 20,
        "orig_pkts": 1, "resp_pkts": 1, "orig_ip_bytes": 60, "resp_ip_bytes": 80, "conn_state": "SF",
    }  # fmt: skip


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_iso_times_without_offset_are_utc(tmp_path: Path, zone: str) -> None:
    (tmp_path / "conn.log").write_text(json.dumps(_conn("2024-01-01T00:00:00")) + "\n")
    dns = {"ts": "2024-01-01T00:00:00", "uid": "D1", "query": "example.com"}
    (tmp_path / "dns.log").write_text(json.dumps(dns) + "\n")
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={**os.environ, "TZ": zone},
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"conn": ["2024-01-01T00:00:00+00:00"], "dns_us": 1_704_067_200_000_000}
