"""The service around ``derisk watch``: the example systemd unit is valid and hardened, every option
of the command is documented, the JSON log lines are JSON, ``--check`` of a good configuration."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from derisk.cli.live import watch_cmd
from derisk.store.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "examples" / "derisk-watch.service"
DOC = ROOT / "docs" / "watch.md"


def _settings() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", " ")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_unit_is_hardened_with_the_capture_capability_only() -> None:
    unit = _settings()
    assert unit["DynamicUser"] == ["yes"]
    assert unit["AmbientCapabilities"] == ["CAP_NET_RAW"]
    assert unit["CapabilityBoundingSet"] == ["CAP_NET_RAW"]
    assert unit["ProtectSystem"] == ["strict"]
    assert unit["NoNewPrivileges"] == ["yes"]
    assert unit["KillSignal"] == ["SIGTERM"]
    assert "User" not in unit  # no fixed (root) user


def test_unit_verifies_with_systemd(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    derisk = Path(sys.executable).with_name("derisk")
    unit = tmp_path / "derisk-watch.service"
    unit.write_text(UNIT.read_text().replace("/opt/derisk/.venv/bin/derisk", str(derisk)))
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    problems = [
        line for line in done.stderr.splitlines() if str(unit.name) in line and "not executable" not in line
    ]
    assert not problems, done.stderr


def test_every_option_is_documented() -> None:
    text = DOC.read_text()
    options = [name for param in watch_cmd.params for name in param.opts if name.startswith("--")]
    missing = [name for name in options if name not in text and name != "--help"]
    assert not missing, missing
    assert re.search(r"setcap cap_net_raw", text)


def test_json_logs_and_a_good_check(tmp_path: Path, data_env: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "derisk", "watch", "--workspace", str(tmp_path / "ws"), "--zeek-dir", str(tmp_path),
         "--exit-when-idle", "0.5", "--batch-seconds", "0.1", "--log-format", "json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    logged = [line for line in done.stderr.splitlines() if line.startswith("{")]
    assert logged
    for line in logged:
        record = json.loads(line)
        assert set(record) == {"ts", "level", "logger", "message"}


def test_alerts_are_delivered_to_an_ecs_file(tmp_path: Path, data_env: Path) -> None:
    from test_watch_support import ZeekWriter, hourly_logs

    logs = tmp_path / "zeek"
    ZeekWriter(logs, hourly_logs(tmp_path / "staging", data_env)).finish()
    ecs = tmp_path / "alerts.ndjson"
    done = subprocess.run(
        [sys.executable, "-m", "derisk", "watch", "--workspace", str(tmp_path / "ws"), "--zeek-dir", str(logs),
         "--exit-when-idle", "1", "--batch-seconds", "0.1", "--batch-size", "8k", "--ecs-file", str(ecs), "-q"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    docs = [json.loads(line) for line in ecs.read_text().splitlines()]
    delivered = {doc["event"]["id"] for doc in docs}
    with Workspace.open(tmp_path / "ws", create=False, read_only=True) as ws:
        current = {row[0] for row in ws.query("SELECT alert_id FROM alerts")}
    assert current, "the scenario should raise alerts"
    assert current <= delivered  # every current alert went out as it was raised
    assert all(doc["event"]["kind"] == "alert" and doc["event"]["module"] == "derisk" for doc in docs)
