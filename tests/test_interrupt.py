"""Ctrl-C in the middle of an ingest leaves the workspace exactly as it was (exit 130)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from derisk.gen.zeek_bench import write_bench_conn_log
from derisk.store.workspace import Workspace


@pytest.mark.slow
def test_sigint_during_ingest_rolls_back(tmp_path: Path, ipdata_dir: Path) -> None:
    small = tmp_path / "small.log"
    write_bench_conn_log(small, 1_000, seed=3)
    big = tmp_path / "big.log"
    write_bench_conn_log(big, 1_500_000, seed=4)
    ws = tmp_path / "ws"
    env = {**os.environ, "DERISK_DATA_DIR": str(ipdata_dir)}
    cmd = [sys.executable, "-m", "derisk.cli", "analyze", "-w", str(ws), "-q"]
    subprocess.run([*cmd, str(small)], env=env, check=True, capture_output=True)
    with Workspace.open(ws, create=False, read_only=True) as w:
        before = (w.flow_count(), len(w.query("SELECT * FROM inputs")))

    proc = subprocess.Popen(
        [*cmd, str(big)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    # wait until it is past start-up and into the ingest, then interrupt as a user would
    while time.monotonic() < deadline and not (ws / "derisk.duckdb.wal").exists() and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.5)
    if proc.poll() is not None:
        pytest.fail("the ingest finished before it could be interrupted; make the input larger")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted" in err
    with Workspace.open(ws, create=False, read_only=True) as w:
        assert (w.flow_count(), len(w.query("SELECT * FROM inputs"))) == before
