"""The dashboard's read-only workspace access: query time limit, shared handle released when idle,
cache invalidated by a write."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa
import pytest

from derisk.errors import StoreError
from derisk.store.readonly import SharedReader, fingerprint, open_readonly
from derisk.store.workspace import Workspace
from derisk.web.readonly import WorkspaceReader

SLOW = "SELECT count(*) AS n FROM range(100000000000) a WHERE a.range % 7 = 3"


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    with Workspace.open(path) as w, w.transaction() as con:
        con.execute("INSERT INTO meta VALUES ('note', 'x')")
    return path


def test_a_query_over_the_time_limit_is_interrupted(ws: Path) -> None:
    start = time.monotonic()
    with pytest.raises(StoreError, match=r"took longer than 0.2 s"), open_readonly(ws, 0.2) as view:
        view.rows(SLOW)
    assert time.monotonic() - start < 10


def test_the_shared_handle_times_out_per_request_too(ws: Path) -> None:
    reader = SharedReader(ws, idle=0.3)
    with pytest.raises(StoreError, match="took longer"), reader.view(0.2) as view:
        view.rows(SLOW)
    with reader.view(5) as view:  # the next request works on the same handle
        assert view.rows("SELECT 1 AS one") == [{"one": 1}]
    reader.close()


def test_the_shared_handle_lets_the_writer_in_when_idle(ws: Path) -> None:
    reader = SharedReader(ws, idle=0.3)
    with reader.view() as view:
        assert view.has_table("flows")
    time.sleep(0.8)
    with Workspace.open(ws) as w, w.transaction() as con:  # would raise "locked" if still held
        con.execute("INSERT INTO meta VALUES ('after', 'y')")
    with reader.view() as view:
        assert view.rows("SELECT value FROM meta WHERE key = 'after'") == [{"value": "y"}]
    reader.close()


def test_cached_values_follow_the_workspace(ws: Path) -> None:
    reader = WorkspaceReader(ws, idle=0)
    calls: list[int] = []

    def compute(view: object) -> int:
        calls.append(1)
        return len(calls)

    assert reader.cached("k", compute) == 1
    assert reader.cached("k", compute) == 1  # unchanged workspace: no recomputation
    before = fingerprint(ws)
    with Workspace.open(ws) as w, w.transaction() as con:
        con.register("t", pa.table({"k": ["later"], "v": ["z"]}))
        con.execute("INSERT INTO meta SELECT * FROM t")
    assert fingerprint(ws) != before
    assert reader.cached("k", compute) == 2


def test_a_missing_workspace_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no workspace here"), open_readonly(tmp_path / "none"):
        pass


def test_many_requests_share_one_idle_timer(ws: Path) -> None:
    import threading

    reader = SharedReader(ws, idle=0.5)
    before = threading.active_count()
    for _ in range(50):
        with reader.view() as view:
            view.rows("SELECT 1 AS one")
    time.sleep(0.2)  # cancelled time-limit timers finish
    assert threading.active_count() <= before + 2  # one idle timer, not fifty
    reader.close()
