"""Connection attempts without payload are not exposure: nothing reached a controller (issue 12, item 5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from derisk.cli import main

HEADER = (
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n"
    "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes"
    "\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes"
    "\tresp_pkts\tresp_ip_bytes\ttunnel_parents\n"
    "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool"
    "\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\n"
)


def _row(ts: float, uid: str, dst: str, state: str, orig: int, resp: int, ip_out: int, ip_in: int) -> str:
    fields = [f"{ts:.6f}", uid, "10.0.0.5", "50000", dst, "443", "tcp", "ssl", "1.0", str(orig), str(resp),
              state, "T", "F", "0", "ShADad", "3", str(ip_out), "3", str(ip_in), "(empty)"]  # fmt: skip
    return "\t".join(fields) + "\n"


@pytest.fixture
def log(tmp_path: Path) -> Path:
    rows = [
        _row(1_700_000_000, "C1", "8.8.8.8", "SF", 500, 4000, 620, 4120),  # a real exchange
        _row(1_700_000_010, "C2", "1.1.1.1", "S0", 0, 0, 60, 0),  # never answered
        _row(1_700_000_020, "C3", "1.1.1.1", "REJ", 0, 0, 60, 40),  # refused
        _row(1_700_000_030, "C4", "9.9.9.9", "REJ", 0, 0, 60, 40),  # refused, no other traffic
    ]
    path = tmp_path / "conn.log"
    path.write_text(HEADER + "".join(rows), encoding="utf-8")
    return path


def test_attempts_are_counted_apart_from_exposure(
    log: Path, tmp_path: Path, data_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["analyze", str(log), "-w", str(tmp_path / "ws"), "--json", "-", "-q"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["attempts"] == {"flows": 3, "destinations": 2, "bytes_out": 180, "bytes_in": 80}
    assert [d["ip"] for d in doc["destinations"]] == ["8.8.8.8"]
    assert sum(e["bytes_out"] for e in doc["exposure"]) == 620
    assert doc["totals"]["flows"] == 4  # every flow still counts in the totals
