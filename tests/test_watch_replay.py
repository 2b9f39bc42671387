"""``derisk watch`` killed with SIGKILL at random moments and restarted ends like one batch analyze.

Issue 15's test of done: while a writer appends three hours of Zeek logs piece by piece (lines cut
anywhere, hourly rotation, every other hour gzipped away as an archiver does), the watcher is
started and killed with ``kill -9`` twenty times at seeded random moments, then run until idle. The
workspace then holds the same flows (count and bytes per controlling jurisdiction, each flow once)
and the same alerts as ``derisk analyze`` of the finished logs. SIGTERM commits and exits 0.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from derisk.store.workspace import Workspace
from test_watch_support import ZeekWriter, hourly_logs, run_watch, summary, watch_command

KILLS = 20
FAST = ("--batch-seconds", "0.05", "--batch-size", "1k", "-q")
#: The writer's ssl records come a round (a kill) after the conn records they name: held that long.
HOLD = ("--companion-wait", "60")


def _analyze(logs: Path, workspace: Path) -> None:
    done = subprocess.run(
        [*watch_command(workspace)[:3], "analyze", str(logs), "--workspace", str(workspace), "-q"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.mark.timeout(600)
def test_twenty_kill9_replays_end_like_one_analyze(tmp_path: Path, data_env: Path) -> None:
    logs = tmp_path / "zeek"
    writer = ZeekWriter(logs, hourly_logs(tmp_path / "staging", data_env))
    workspace = tmp_path / "watched"
    rng = random.Random(15)
    committed = []
    status = tmp_path / "status.json"
    for round_ in range(KILLS):
        writer.advance(rng.uniform(0.05, 0.2))
        status.unlink(missing_ok=True)
        proc = subprocess.Popen(
            watch_command(workspace, "--zeek-dir", str(logs), *FAST, *HOLD, "--status-file", str(status)),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        if round_ % 4 == 0:  # while it starts (opening, restoring), whatever the machine's speed
            time.sleep(rng.uniform(0.2, 2.0))
        else:  # once it works through batches: a random moment after its first one
            deadline = time.monotonic() + 120
            while not status.exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 1.5))
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, err  # it was still running: killed, not finished
        if Workspace.exists(workspace):
            with Workspace.open(workspace, create=False, read_only=True) as ws:
                committed.append(ws.flow_count())
    writer.finish()
    final = run_watch(workspace, "--zeek-dir", str(logs), *FAST, "--exit-when-idle", "1")
    assert final.returncode == 0, final.stderr
    # the kills landed at different stages: before any commit, and between commits
    assert len(set(committed)) > 3, committed
    expected = tmp_path / "analyzed"
    _analyze(logs, expected)
    watched, analyzed = summary(workspace), summary(expected)
    assert watched["ids"][0] == watched["ids"][1]  # no flow stored twice
    assert watched["jurisdictions"] == analyzed["jurisdictions"]
    # every flow, its bytes and its controller (columns 7 and 8, server name and domain, apart)
    assert [f[:7] + f[9:] for f in watched["flows"]] == [f[:7] + f[9:] for f in analyzed["flows"]]
    assert [a[:6] for a in watched["alerts"]] == [a[:6] for a in analyzed["alerts"]]
    assert analyzed["alerts"], "the scenario should raise alerts"
    # server names and domains too: conn records written before their companions are held for them
    assert watched["flows"] == analyzed["flows"]
    assert watched["alerts"] == analyzed["alerts"]


def test_sigterm_commits_and_exits_zero(tmp_path: Path, data_env: Path) -> None:
    logs = tmp_path / "zeek"
    writer = ZeekWriter(logs, hourly_logs(tmp_path / "staging", data_env))
    writer.finish()
    workspace = tmp_path / "ws"
    status = tmp_path / "status.json"
    proc = subprocess.Popen(
        watch_command(workspace, "--zeek-dir", str(logs), "--batch-seconds", "0.2", "--batch-size", "8k",
                      "--status-file", str(status), "-q"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not status.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped by signal" in err
    with Workspace.open(workspace, create=False, read_only=True) as ws:
        stored = ws.flow_count()
        positions = ws.query("SELECT count(*) FROM watch_positions")[0][0]
    assert stored > 0 and positions > 0
    # the next start goes on from the committed positions and ends with every flow once
    final = run_watch(
        workspace, "--zeek-dir", str(logs), "--batch-seconds", "0.05", "--exit-when-idle", "1", "-q"
    )
    assert final.returncode == 0, final.stderr
    expected = tmp_path / "analyzed"
    _analyze(logs, expected)
    assert summary(workspace) == summary(expected)
