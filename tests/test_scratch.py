"""Scratch under the temporary directory: named for its process, removed by it, swept after a kill."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from derisk import scratch


@pytest.fixture
def temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def _dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(done.stdout)


def test_scratch_is_named_for_its_process_and_removed_by_it(temporary: Path) -> None:
    folder = Path(scratch.make_dir("feed"))
    handle, name = scratch.make_file("log4j2", ".properties")
    os.close(handle)
    tag = f"{os.getpid()}.{scratch.namespace()}-"
    assert folder.parent == temporary and folder.name.startswith(f"derisk-feed-{tag}")
    assert Path(name).name.startswith(f"derisk-log4j2-{tag}") and name.endswith(".properties")
    assert folder.stat().st_mode & 0o777 == 0o700
    (folder / "meter").write_bytes(b"x")
    scratch.remove(folder)  # remove_own() is tested in processes of their own: here it would also
    scratch.remove(name)  # remove what other tests of this process made (a spill folder, say)
    assert list(temporary.iterdir()) == []
    with scratch.directory("dataset") as inside:
        assert inside.is_dir()
    assert not inside.exists()
    with pytest.raises(ValueError, match="letters and digits"):
        scratch.make_dir("../escape")


def test_a_killed_process_scratch_is_swept_by_the_next(temporary: Path) -> None:
    space = scratch.namespace()
    dead = _dead_pid()
    left_dir = temporary / f"derisk-feed-{dead}.{space}-abc"
    left_dir.mkdir()
    (left_dir / "meter").write_bytes(b"fifo stand-in")
    left_file = temporary / f"derisk-zeek-{dead}.{space}-def.log"
    left_file.write_bytes(b"lines")
    running = temporary / f"derisk-spill-1.{space}-ghi"  # pid 1 runs
    running.mkdir()
    elsewhere = temporary / f"derisk-spill-{dead}.{space + 1}-jkl"  # another PID namespace: unknown
    elsewhere.mkdir()
    old_style = temporary / "derisk-feed-x1y2z3"  # no process named: not ours to judge
    old_style.mkdir()
    other = temporary / "someone-else"
    other.mkdir()
    link_target = temporary / "kept"
    link_target.mkdir()
    (link_target / "precious").write_bytes(b"keep")
    link = temporary / f"derisk-eve-{dead}.{space}-mno"
    link.symlink_to(link_target)
    removed = scratch.sweep_stale(temporary)
    assert sorted(p.name for p in removed) == sorted([left_dir.name, left_file.name, link.name])
    assert sorted(p.name for p in temporary.iterdir()) == sorted(
        [running.name, elsewhere.name, old_style.name, other.name, link_target.name]
    )
    assert (link_target / "precious").read_bytes() == b"keep"  # a link is removed, never followed


def test_making_scratch_sweeps_once(temporary: Path) -> None:
    left = temporary / f"derisk-spill-{_dead_pid()}.{scratch.namespace()}-abc"
    left.mkdir()
    made = scratch.make_dir("window")
    assert not left.exists()
    scratch.remove(made)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_does_not_remove_its_parents_scratch(temporary: Path) -> None:
    folder = Path(scratch.make_dir("feed"))
    pid = os.fork()
    if pid == 0:  # the child: what a meter forked by NFStream would do at its exit
        scratch.remove_own()
        os._exit(0 if folder.exists() else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert folder.exists()
    scratch.remove(folder)


def test_ctrl_c_leaves_no_scratch(tmp_path: Path) -> None:
    """The console script's own fast exit after Ctrl-C: the scratch made before it is gone."""
    code = (
        "import os, signal, tempfile; tempfile.tempdir = os.environ['T']\n"
        "from derisk import scratch\n"
        "from derisk.cli import _fail\n"
        "scratch.make_dir('feed'); scratch.make_dir('spill')\n"
        "os._exit(_fail('interrupted; nothing was changed', 130))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "T": str(tmp_path)}, capture_output=True, text=True
    )
    assert done.returncode == 130 and done.stderr == "derisk: error: interrupted; nothing was changed\n"
    assert list(tmp_path.iterdir()) == []
