"""`derisk watch` follows a folder of Corelight's json-streaming-logs output as `derisk analyze` reads it:
the rotated log and the current one, every connection once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb

from test_zeek_json_streaming import _streaming_lines


def _flows(workspace: Path) -> int:
    with duckdb.connect(str(workspace / "derisk.duckdb"), read_only=True) as con:
        row = con.execute("SELECT count(*) FROM flows").fetchone()
    assert row is not None
    return int(row[0])


def test_watch_reads_a_json_streaming_folder_like_analyze(tmp_path: Path) -> None:
    lines = _streaming_lines()
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "json_streaming_conn.1.log").write_text("\n".join(lines[:20]) + "\n")
    (folder / "json_streaming_conn.log").write_text("\n".join(lines[20:]) + "\n")
    derisk = [sys.executable, "-m", "derisk"]
    watched, analyzed = tmp_path / "watched", tmp_path / "analyzed"
    done = subprocess.run(
        [*derisk, "watch", "--zeek-dir", str(folder), "-w", str(watched), "--exit-when-idle", "1"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = subprocess.run(
        [*derisk, "analyze", str(folder), "-w", str(analyzed)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert _flows(watched) == _flows(analyzed) == len(lines)
