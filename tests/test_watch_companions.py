"""Companion records (ssl, http, dns) that a stopped watch read before the conn records they name are
still joined after a restart: they are kept in data time, so a restart's horizon cannot prune them.

The regression: records read while no flow had been seen were stamped with the wall clock; the next
start took that stamp as its horizon and pruned every record stamped in data time, so flows that came
after the restart lost their server names (the 20 kill -9 replays failed now and then on it)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from derisk.store.workspace import Workspace
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
    got, want = summary(watched), _analyzed(logs, tmp_path)
    assert [f[7] for f in want["flows"] if f[7]], "the flows carry server names"
    assert got["flows"] == want["flows"]


def _cut(data: bytes, share: float) -> bytes:
    """The complete lines of the first ``share`` of a log's bytes."""
    part = data[: int(len(data) * share)]
    return part[: part.rfind(b"\n") + 1]


def _late_ssl_logs(tmp_path: Path, data_env: Path) -> tuple[Path, list[dict[str, bytes]]]:
    """The current hour's conn.log half written, its ssl.log only a quarter: conn records on disk
    before the ssl records that name their server, as Zeek's separately buffered writers can do."""
    hours = hourly_logs(tmp_path / "staging", data_env, hours=1)
    logs = tmp_path / "zeek"
    logs.mkdir()
    for kind in ("http", "dns"):
        (logs / f"{kind}.log").write_bytes(hours[0][kind])
    (logs / "ssl.log").write_bytes(_cut(hours[0]["ssl"], 0.25))
    (logs / "conn.log").write_bytes(_cut(hours[0]["conn"], 0.5))
    return logs, hours


def _analyzed(logs: Path, tmp_path: Path) -> dict[str, Any]:
    expected = tmp_path / "analyzed"
    done = subprocess.run(
        [*watch_command(expected)[:3], "analyze", str(logs), "--workspace", str(expected), "-q"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return summary(expected)


def _status(path: Path) -> dict[str, int]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    return next(iter(doc["sources"].values()))


def test_conn_records_wait_for_their_late_ssl_records(tmp_path: Path, data_env: Path) -> None:
    logs, hours = _late_ssl_logs(tmp_path, data_env)
    watched, status = tmp_path / "watched", tmp_path / "status.json"
    cmd = watch_command(watched, "--zeek-dir", str(logs), "--batch-seconds", "0.05",
                        "--companion-wait", "120", "--status-file", str(status), "-q")  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        held = 0
        while time.monotonic() < deadline and not held and proc.poll() is None:
            time.sleep(0.2)
            if status.exists():
                held = _status(status)["held_for_companions"]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert held > 0, "conn records newer than the ssl.log read so far are held"
    with Workspace.open(watched, create=False, read_only=True) as ws:
        first = ws.query("SELECT count(*), count(server_name) FROM flows WHERE dst_port = 443")[0]
    assert first[0] == first[1], "no flow of the beacon was stored without its server name"
    for kind in ("ssl", "conn"):  # the late ssl records arrive, and the rest of conn.log
        with (logs / f"{kind}.log").open("ab") as fh:
            fh.write(hours[0][kind][(logs / f"{kind}.log").stat().st_size :])
    # a new start goes on from the held record; a run that ends idle releases what it still holds
    done = run_watch(watched, "--zeek-dir", str(logs), "--status-file", str(status), *FAST)
    assert done.returncode == 0, done.stderr
    assert _status(status)["held_for_companions"] == 0
    got, want = summary(watched), _analyzed(logs, tmp_path)
    assert [f[7] for f in want["flows"] if f[7]], "the flows carry server names"
    assert got["flows"] == want["flows"]
    assert got["ids"][0] == got["ids"][1]  # no flow stored twice


def test_conn_records_go_without_companions_that_never_come(tmp_path: Path, data_env: Path) -> None:
    logs, hours = _late_ssl_logs(tmp_path, data_env)
    watched, status = tmp_path / "watched", tmp_path / "status.json"
    done = run_watch(watched, "--zeek-dir", str(logs), "--companion-wait", "0.5",
                     "--status-file", str(status), *FAST)  # fmt: skip
    assert done.returncode == 0, done.stderr
    counts = _status(status)
    assert counts["held_for_companions"] == 0
    assert counts["released_after_wait"] > 0
    with Workspace.open(watched, create=False, read_only=True) as ws:
        stored = ws.flow_count()
    # every conn record written is stored, those whose ssl record never came without its name
    written = _cut(hours[0]["conn"], 0.5).split(b"\n")
    assert stored == sum(1 for line in written if line and not line.startswith(b"#"))
