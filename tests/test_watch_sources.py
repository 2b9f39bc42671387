"""``derisk watch`` over its other sources and under bad conditions, as real processes: a capture
ring folder, a Suricata EVE log written in pieces, NetFlow datagrams, ``--check``, a disk that
fills (a file-size limit on the process) and an interface that does not exist."""

from __future__ import annotations

import json
import re
import resource
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from derisk.store.workspace import Workspace
from netflow_packets import Rec, v5
from test_watch_support import ZeekWriter, hourly_logs, run_watch, summary, watch_command

FIXTURES = Path(__file__).parent / "fixtures"
ONCE = ("--batch-seconds", "0.05", "--exit-when-idle", "1", "-q")


def _analyze(inputs: list[Path], workspace: Path) -> None:
    cmd = [*watch_command(workspace)[:3], "analyze", *map(str, inputs), "--workspace", str(workspace), "-q"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr


def test_pcap_ring_reads_each_closed_file_once(tmp_path: Path, data_env: Path) -> None:
    ring = tmp_path / "ring"
    ring.mkdir()
    shutil.copy(FIXTURES / "pcap" / "golden.pcap", ring / "cap-000.pcap")
    shutil.copy(FIXTURES / "pcap" / "golden.pcapng", ring / "cap-001.pcap")
    workspace = tmp_path / "ws"
    first = run_watch(workspace, "--pcap-dir", str(ring), "--pcap-settle", "0", *ONCE)
    assert first.returncode == 0, first.stderr
    again = run_watch(workspace, "--pcap-dir", str(ring), "--pcap-settle", "0", *ONCE)
    assert again.returncode == 0, again.stderr
    expected = tmp_path / "analyzed"
    _analyze([ring / "cap-000.pcap", ring / "cap-001.pcap"], expected)
    watched, analyzed = summary(workspace), summary(expected)
    assert watched["jurisdictions"] == analyzed["jurisdictions"]
    assert watched["ids"] == analyzed["ids"]


def test_pcap_ring_leaves_the_file_being_written(tmp_path: Path, data_env: Path) -> None:
    ring = tmp_path / "ring"
    ring.mkdir()
    shutil.copy(FIXTURES / "pcap" / "golden.pcap", ring / "cap-000.pcap")
    workspace = tmp_path / "ws"
    done = run_watch(workspace, "--pcap-dir", str(ring), "--pcap-settle", "3600", *ONCE)
    assert done.returncode == 0, done.stderr
    if Workspace.exists(workspace):
        with Workspace.open(workspace, create=False, read_only=True) as ws:
            assert ws.flow_count() == 0


def test_eve_log_written_in_pieces(tmp_path: Path, data_env: Path) -> None:
    source = (FIXTURES / "eve" / "firefox.eve.json").read_bytes()
    eve = tmp_path / "suricata" / "eve.json"
    eve.parent.mkdir()
    workspace = tmp_path / "ws"
    for cut in (len(source) // 3, 2 * len(source) // 3 + 7, len(source)):
        eve.write_bytes(source[:cut])  # the same file grows (rewritten whole: same inode)
        done = run_watch(workspace, "--eve", str(eve), *ONCE)
        assert done.returncode == 0, done.stderr
    expected = tmp_path / "analyzed"
    _analyze([FIXTURES / "eve" / "firefox.eve.json"], expected)
    watched, analyzed = summary(workspace), summary(expected)
    assert watched["jurisdictions"] == analyzed["jurisdictions"]
    assert watched["flows"] == analyzed["flows"]  # server names joined across the pieces too


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_netflow_datagrams_are_committed(tmp_path: Path, data_env: Path) -> None:
    port = _free_port()
    workspace = tmp_path / "ws"
    status = tmp_path / "status.json"
    proc = subprocess.Popen(
        watch_command(workspace, "--netflow", f"127.0.0.1:{port}", "--batch-seconds", "0.2",
                      "--exit-when-idle", "4", "--status-file", str(status), "-q"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not status.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    recs = [Rec("10.1.0.5", "8.8.8.8", 40000 + n, 443, 6, 10, 1000 + n, 1_000, 2_000) for n in range(30)]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(v5(recs, unix_secs=1_793_000_000, uptime_ms=10_000), ("127.0.0.1", port))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    with Workspace.open(workspace, create=False, read_only=True) as ws:
        count, octets = ws.query("SELECT count(*), sum(bytes_out) + sum(bytes_in) FROM flows")[0]
    assert count == 30
    assert octets == sum(1000 + n for n in range(30))


def test_check_reports_every_problem_at_once(tmp_path: Path, data_env: Path) -> None:
    done = run_watch(
        tmp_path / "ws", "--check", "--zeek-dir", str(tmp_path / "nowhere"), "--interface", "derisk-none0",
        "--netflow", "not-an-endpoint", "--eve", str(tmp_path),
    )  # fmt: skip
    assert done.returncode == 4, done.stderr
    err = done.stderr
    for needle in ("--zeek-dir", "derisk-none0", "--netflow", "--eve"):
        assert needle in err
    assert "Traceback" not in err
    ok = run_watch(tmp_path / "ws", "--check", "--zeek-dir", str(tmp_path))
    assert ok.returncode == 0, ok.stderr
    assert "configuration OK" in ok.stdout
    assert not Workspace.exists(tmp_path / "ws")  # a check writes nothing


def test_no_source_is_a_usage_problem(tmp_path: Path, data_env: Path) -> None:
    done = run_watch(tmp_path / "ws")
    assert done.returncode == 4
    assert "no source" in done.stderr


def test_full_disk_batches_are_retried_and_nothing_is_lost(tmp_path: Path, data_env: Path) -> None:
    """The process may not grow files past 64 kB at first (writes fail as on a full disk); its batches
    fail, are counted and retried; once the limit is lifted it commits every flow once."""
    logs = tmp_path / "zeek"
    ZeekWriter(logs, hourly_logs(tmp_path / "staging", data_env)).finish()
    workspace = tmp_path / "ws"
    status = tmp_path / "status.json"
    limit = 64 << 10

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    proc = subprocess.Popen(
        watch_command(workspace, "--zeek-dir", str(logs), "--batch-seconds", "0.05", "--exit-when-idle", "2",
                      "--status-file", str(status), "--log-format", "json", "-q"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=small_files,
    )  # fmt: skip
    failed = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            failed = json.loads(status.read_text())["failed_batches"]
        except (OSError, ValueError, KeyError):
            failed = 0
        if failed >= 2:
            break
        time.sleep(0.1)
    assert failed >= 2, proc.stderr.read() if proc.poll() is not None and proc.stderr else "no failed batch"
    resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any("batch not committed, tried again" in line["message"] for line in lines)
    expected = tmp_path / "analyzed"
    _analyze([logs], expected)
    assert summary(workspace) == summary(expected)


def _status(path: Path) -> dict[str, Any]:
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return doc


def _wait(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_an_interface_that_goes_away_is_reported_and_retried(tmp_path: Path, data_env: Path) -> None:
    from derisk.live.capture import can_capture

    reason = can_capture()
    if reason is not None:
        pytest.skip(reason)
    name = "derisk-t0"
    add = ["ip", "link", "add", name, "type", "veth", "peer", "name", name + "p"]
    added = subprocess.run(add, capture_output=True, text=True, check=False)
    if added.returncode != 0:
        pytest.skip(f"cannot create a veth interface here ({added.stderr.strip()})")
    try:
        subprocess.run(["ip", "link", "set", name, "up"], check=True)
        status = tmp_path / "status.json"
        proc = subprocess.Popen(
            watch_command(tmp_path / "ws", "--interface", name, "--batch-seconds", "0.2", "--status-file",
                          str(status), "-q"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        key = f"interface:{name}"

        def source() -> dict[str, Any]:
            found: dict[str, Any] = _status(status).get("sources", {}).get(key, {})
            return found

        assert _wait(lambda: source().get("up") is True, 60), _status(status)
        subprocess.run(["ip", "link", "del", name], check=True)
        assert _wait(lambda: source().get("failures", 0) >= 1 and source().get("up") is False, 30)
        assert proc.poll() is None  # reported and counted, still watching
        subprocess.run(add, check=True)
        subprocess.run(["ip", "link", "set", name, "up"], check=True)
        assert _wait(lambda: source().get("up") is True, 90), _status(status)
        proc.terminate()
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "went away" in err or "no such network interface" in err
    finally:
        subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)


def test_zeek_json_logs_in_a_dated_archive(tmp_path: Path, data_env: Path) -> None:
    """zeekctl's layout: yesterday's gzipped JSON logs in a dated folder, today's in current/."""
    from derisk.gen.zeek import ZeekLogs, build_logs, write_logs
    from test_watch_support import T0, sessions

    logs, _ = build_logs(sessions(data_env, 2), seed=5)
    root = tmp_path / "logs"
    for hour, (folder, stamp, compress) in enumerate(
        [(root / "2026-10-25", "00:00:00-01:00:00", True), (root / "current", None, False)]
    ):
        lo, hi = T0 + hour * 3600 - 1, T0 + (hour + 1) * 3600 - 1
        part = ZeekLogs(
            conn=[c for c in logs.conn if lo <= c.ts < hi], dns=[d for d in logs.dns if lo <= d.ts < hi],
            ssl=[s for s in logs.ssl if lo <= s.ts < hi], http=[h for h in logs.http if lo <= h.ts < hi],
        )  # fmt: skip
        write_logs(folder, part, fmt="json", compress=compress, stamp=stamp)
    workspace = tmp_path / "ws"
    done = run_watch(workspace, "--zeek-dir", str(root), "--batch-size", "4k", *ONCE)
    assert done.returncode == 0, done.stderr
    # analyze reads the archive and a folder of current logs given as its own input
    expected = tmp_path / "analyzed"
    _analyze([root / "2026-10-25", root / "current"], expected)
    watched, analyzed = summary(workspace), summary(expected)
    assert watched["jurisdictions"] == analyzed["jurisdictions"]
    assert watched["flows"] == analyzed["flows"]


def test_retain_ages_out_flows_and_keeps_the_alerts(tmp_path: Path, data_env: Path) -> None:
    from derisk.gen.zeek import Session, build_logs, write_logs
    from test_watch_support import T0

    logs = tmp_path / "zeek"
    ZeekWriter(logs, hourly_logs(tmp_path / "staging", data_env)).finish()
    # ten days before the rest: older than any detection window, so aged out for good
    old = [Session("10.9.0.9", "8.8.8.20", T0 - 10 * 86400 + 60 * k, 500, 500) for k in range(20)]
    write_logs(logs, build_logs(old, seed=9)[0], stamp="2026-10-15-00-00-00")
    kept = tmp_path / "kept"
    full = run_watch(kept, "--zeek-dir", str(logs), "--batch-size", "8k", *ONCE)
    assert full.returncode == 0, full.stderr
    aged = tmp_path / "aged"
    done = run_watch(
        aged, "--zeek-dir", str(logs), "--batch-size", "8k", "--retain", "1d", "--log-format", "json", *ONCE
    )
    assert done.returncode == 0, done.stderr
    with Workspace.open(aged, create=False, read_only=True) as ws:
        left = ws.flow_count()
    # the detection state may keep flows it still needs (derisk.detect.incremental); never more
    assert left <= summary(kept)["ids"][0]
    deleted = [int(m) for m in re.findall(r"retention: ([0-9]+) flows that started before", done.stderr)]
    assert deleted and sum(deleted) == summary(kept)["ids"][0] - left  # it ran, and says what it did
    assert summary(aged)["alerts"] == summary(kept)["alerts"]


def test_from_end_reads_only_what_is_written_after_the_first_start(tmp_path: Path, data_env: Path) -> None:
    hours = hourly_logs(tmp_path / "staging", data_env)
    logs = tmp_path / "zeek"
    writer = ZeekWriter(logs, hours)
    writer.advance(0.5)
    workspace = tmp_path / "ws"
    first = run_watch(workspace, "--zeek-dir", str(logs), "--from-end", *ONCE)
    assert first.returncode == 0, first.stderr
    with Workspace.open(workspace, create=False, read_only=True) as ws:
        assert ws.flow_count() == 0
        already = ws.query('SELECT sum("offset") FROM watch_positions')[0][0]
    assert already > 0  # positioned at the end of what was there
    writer.advance(0.3)
    again = run_watch(workspace, "--zeek-dir", str(logs), "--from-end", *ONCE)
    assert again.returncode == 0, again.stderr
    with Workspace.open(workspace, create=False, read_only=True) as ws:
        got = ws.flow_count()
    conn = hours[0]["conn"]
    half = conn[: int(len(conn) * 0.5)]
    more = conn[: int(len(conn) * 0.8)]
    lines = more[more.rfind(b"\n", 0, len(half)) + 1 : more.rfind(b"\n") + 1] if b"\n" in half else b""
    records = [line for line in lines.split(b"\n") if line and not line.startswith(b"#")]
    assert got == len(records)
