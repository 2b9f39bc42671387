"""Companion records (ssl, http, dns) that a stopped watch read before the conn records they name are
still joined after a restart: they are kept in data time, so a restart's horizon cannot prune them.

The regression: records read while no flow had been seen were stamped with the wall clock; the next
start took that stamp as its horizon and pruned every record stamped in data time, so flows that came
after the restart lost their server names (the 20 kill -9 replays failed now and then on it)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from test_watch_support import hourly_logs, run_watch, summary, watch_command

FAST = ("--batch-seconds", "0.05", "-q", "--exit-when-idle", "1")


def test_companions_read_before_a_restart_name_the_flows_after_it(tmp_path: Path, data_env: Path) -> None:
    hours = hourly_logs(tmp_path / "staging", data_env, hours=2)
    logs = tmp_path / "zeek"
    logs.mkdir()
    for kind in ("ssl", "http", "dns", "conn"):  # hour 0, rotated: read whole, companions first
        (logs / f"{kind}.2026-12-06-00-00-00.log").write_bytes(hours[0][kind])
    for kind in ("ssl", "http", "dns"):  # hour 1's companions, ahead of its conn.log
        (logs / f"{kind}.log").write_bytes(hours[1][kind])
    watched = tmp_path / "watched"
    # hour 0's companions are read before any flow, hour 1's after hour 0's flows
    first = run_watch(watched, "--zeek-dir", str(logs), "--batch-size", "4k", *FAST)
    assert first.returncode == 0, first.stderr
    (logs / "conn.log").write_bytes(hours[1]["conn"])  # hour 1's flows, read by a new process
    second = run_watch(watched, "--zeek-dir", str(logs), "--batch-size", "2k", *FAST)
    assert second.returncode == 0, second.stderr
    expected = tmp_path / "analyzed"
    done = subprocess.run(
        [*watch_command(expected)[:3], "analyze", str(logs), "--workspace", str(expected), "-q"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    got, want = summary(watched), summary(expected)
    assert [f[7] for f in want["flows"] if f[7]], "the flows carry server names"
    assert got["flows"] == want["flows"]
