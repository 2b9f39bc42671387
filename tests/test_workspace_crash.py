"""A workspace after a crash: creation killed at any moment, a writer killed with its log unreplayed.

The real DuckDB throughout; processes are killed with SIGKILL, as the kernel's OOM killer or
``kill -9`` would. The one injected fault is DuckDB's own read-only replay refusing a log (it did
once in CI after a ``kill -9`` of ``derisk watch``, and DuckDB's tracker has several such reports):
that refusal cannot be produced on demand, so ``duckdb.connect`` raises it once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from derisk.cli import main
from derisk.errors import StoreError
from derisk.store.workspace import Workspace

CREATE = """
import sys
from pathlib import Path
from derisk.store.workspace import Workspace
Workspace.open(Path(sys.argv[1])).close()
"""
#: Commits 30 transactions of one row each to the ``meta`` table, then dies without a checkpoint.
WRITE_AND_DIE = """
import os, signal, sys
from pathlib import Path
from derisk.store.workspace import Workspace
ws = Workspace.open(Path(sys.argv[1]))
for k in range(30):
    with ws.transaction() as con:
        con.execute("INSERT INTO meta VALUES (?, 'x')", [f"probe-{k}"])
os.kill(os.getpid(), signal.SIGKILL)
"""


def _meta_probes(ws: Workspace) -> int:
    row = ws.con.execute("SELECT count(*) FROM meta WHERE key LIKE 'probe-%'").fetchone()
    assert row is not None
    return int(row[0])


def test_creation_killed_at_random_moments_never_leaves_a_half_database(tmp_path: Path) -> None:
    started = time.monotonic()  # how long one whole creation takes here (start-up included)
    subprocess.run([sys.executable, "-c", CREATE, str(tmp_path / "timed")], check=True)
    whole = time.monotonic() - started
    rng = random.Random(4)
    for round_ in range(12):  # killed anywhere from start-up to just after the creation's end
        folder = tmp_path / f"ws{round_}"
        proc = subprocess.Popen([sys.executable, "-c", CREATE, str(folder)])
        time.sleep(rng.uniform(0.3, 1.1) * whole)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        if Workspace.exists(folder):  # whole: it opens read-only as it is
            with Workspace.open(folder, create=False, read_only=True) as ws:
                assert ws.flow_count() == 0
        with Workspace.open(folder) as ws:  # and the next writer creates or opens it
            assert ws.flow_count() == 0
        assert not list(folder.glob(".derisk.duckdb.creating-*")), "a killed creation's file was left"


def test_a_dead_creations_temporary_file_is_removed_a_live_ones_kept(tmp_path: Path) -> None:
    folder = tmp_path / "ws"
    folder.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = folder / f".derisk.duckdb.creating-{dead.pid}"
    stale.write_bytes(b"DUCK" * 100)  # half written, as a killed creation leaves it
    (folder / f".derisk.duckdb.creating-{dead.pid}.wal").write_bytes(b"\0" * 10)
    live = folder / f".derisk.duckdb.creating-{os.getppid()}"  # a process that runs: left alone
    live.write_bytes(b"")
    with Workspace.open(folder) as ws:
        assert ws.flow_count() == 0
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == [live.name]


def test_a_half_written_database_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "ws"
    Workspace.open(folder).close()
    db = folder / "derisk.duckdb"
    db.write_bytes(db.read_bytes()[:5000])  # what a database killed while created by derisk ≤ 1.x is
    before = db.read_bytes()
    assert main(["report", "-w", str(folder), "--json", str(tmp_path / "r.json")]) == 6
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a usable workspace database" in err and str(db) in err
    assert "Traceback" not in err
    assert db.read_bytes() == before  # refused, not "repaired" into something else


def test_a_killed_writers_log_is_read_by_a_reader(tmp_path: Path) -> None:
    folder = tmp_path / "ws"
    done = subprocess.run([sys.executable, "-c", WRITE_AND_DIE, str(folder)], check=False)
    assert done.returncode == -signal.SIGKILL
    assert (folder / "derisk.duckdb.wal").exists()  # the commits are in the log only
    with Workspace.open(folder, create=False, read_only=True) as ws:
        assert _meta_probes(ws) == 30


def test_when_duckdb_cannot_replay_a_log_read_only_the_reader_replays_it_as_a_writer_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "ws"
    subprocess.run([sys.executable, "-c", WRITE_AND_DIE, str(folder)], check=False)
    wal = folder / "derisk.duckdb.wal"
    assert wal.exists()
    real_connect = duckdb.connect
    refused = []

    def connect(database: str, read_only: bool = False, **kwargs: Any) -> duckdb.DuckDBPyConnection:
        if read_only and Path(database + ".wal").exists():
            refused.append(database)
            raise duckdb.Error(f'Invalid Error: Failure while replaying WAL file "{database}.wal": x')
        return real_connect(database, read_only=read_only, **kwargs)

    monkeypatch.setattr(duckdb, "connect", connect)
    with Workspace.open(folder, create=False, read_only=True) as ws:
        assert _meta_probes(ws) == 30  # every commit of the killed writer
    assert refused and not wal.exists()  # replayed into the database by the one read-write open


def test_a_log_no_open_can_replay_is_refused_naming_duckdbs_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "ws"
    subprocess.run([sys.executable, "-c", WRITE_AND_DIE, str(folder)], check=False)
    real_connect = duckdb.connect

    def connect(database: str, read_only: bool = False, **kwargs: Any) -> duckdb.DuckDBPyConnection:
        if Path(database + ".wal").exists():
            raise duckdb.Error("Invalid Error: Failure while replaying WAL file: broken\nStack Trace: ...")
        return real_connect(database, read_only=read_only, **kwargs)

    monkeypatch.setattr(duckdb, "connect", connect)
    with pytest.raises(StoreError) as caught:
        Workspace.open(folder, create=False, read_only=True)
    assert "Failure while replaying WAL file: broken" in str(caught.value)
    assert "Stack Trace" not in str(caught.value)
    assert (folder / "derisk.duckdb.wal").exists()  # nothing thrown away
