"""A workspace holds every flow and alert of a site: only its owner may read it (issue 14, finding 4)."""

from __future__ import annotations

import stat
from pathlib import Path

from derisk.store.workspace import Workspace


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_workspace_is_private(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "site" / "ws") as ws:
        ws.con.execute("CREATE TABLE probe (x INTEGER)")
    assert _mode(tmp_path / "site" / "ws") == 0o700
    assert _mode(tmp_path / "site" / "ws" / "derisk.duckdb") == 0o600
    assert _mode(tmp_path / "site") == 0o777 & ~_umask()  # parents keep the user's usual mode


def test_an_older_open_workspace_is_tightened_when_written(tmp_path: Path) -> None:
    ws_dir = tmp_path / "ws"
    with Workspace.open(ws_dir):
        pass
    ws_dir.chmod(0o755)
    (ws_dir / "derisk.duckdb").chmod(0o644)
    with Workspace.open(ws_dir, create=False, read_only=True):
        pass
    assert _mode(ws_dir) == 0o755  # reading changes nothing
    with Workspace.open(ws_dir, create=False):
        pass
    assert _mode(ws_dir) == 0o700
    assert _mode(ws_dir / "derisk.duckdb") == 0o600


def _umask() -> int:
    import os

    current = os.umask(0)
    os.umask(current)
    return current
