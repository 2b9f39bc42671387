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


def _as_foreground() -> None:
    """In the child, before it starts: Ctrl-C acts as in a terminal's foreground job, also when
    these tests run in a background job (a shell makes background jobs ignore SIGINT, and children
    inherit that; derisk leaves an ignored Ctrl-C ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


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
        [*cmd, str(big)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_as_foreground,
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


_SWALLOWING_RUN = """
import os, signal, sys, time
from pathlib import Path
from derisk import interrupts
from derisk.pipeline import run
from derisk.site import default_site

interrupts.install()
if sys.argv[4] == "swallowed":
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # Python runs the handler here
    except KeyboardInterrupt:
        pass  # a layer that catches the Ctrl-C and drops it
try:
    run(Path(sys.argv[1]), [Path(sys.argv[2])], default_site(), data_root=Path(sys.argv[3]))
except KeyboardInterrupt:
    sys.exit(130)
"""


@pytest.mark.parametrize("ctrl_c", ["swallowed", "none"])
def test_a_swallowed_ctrl_c_still_stops_the_run_before_its_commit(
    tmp_path: Path, ipdata_dir: Path, ctrl_c: str
) -> None:
    """A Ctrl-C that some layer catches and drops (simulated here) still rolls the analysis back,
    because it is remembered; without one, the same run stores its flows."""
    log = tmp_path / "conn.log"
    write_bench_conn_log(log, 2_000, seed=5)
    ws = tmp_path / "ws"
    done = subprocess.run(
        [sys.executable, "-c", _SWALLOWING_RUN, str(ws), str(log), str(ipdata_dir), ctrl_c],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=_as_foreground,
    )
    if ctrl_c == "swallowed":
        assert done.returncode == 130, done.stderr
        assert not ws.exists()  # the run created it, and removed it again when it failed
    else:
        assert done.returncode == 0, done.stderr
        with Workspace.open(ws, create=False, read_only=True) as w:
            assert w.flow_count() == 2_000


def _long_capture(path: Path) -> None:
    """The generator's capture repeated (each copy 5 s later) until metering takes a few seconds."""
    from derisk.gen.packets import write_capture
    from golden import conversations

    small = path.with_suffix(".small")
    write_capture(conversations(ipv6=False), small)
    data = small.read_bytes()
    header, body = data[:24], data[24:]
    spans, offset = [], 0
    while offset < len(body):
        end = offset + 16 + int.from_bytes(body[offset + 8 : offset + 12], "little")
        spans.append((offset, end))
        offset = end
    with path.open("wb") as out:
        out.write(header)
        for n in range(1500):
            out.write(
                b"".join(
                    (int.from_bytes(body[s : s + 4], "little") + 5 * n).to_bytes(4, "little")
                    + body[s + 4 : e]
                    for s, e in spans
                )
            )


@pytest.mark.slow
@pytest.mark.parametrize("how", ["ctrl-c in a terminal", "sigterm"])
def test_interrupted_capture_leaves_no_process_behind(tmp_path: Path, ipdata_dir: Path, how: str) -> None:
    """Ctrl-C as a terminal sends it (SIGINT to the whole process group: derisk and its meters) and
    SIGTERM as a service manager sends it (to derisk alone): the run stops, no traceback from any
    process, no meter left, nothing stored."""
    import psutil

    capture = tmp_path / "long.pcap"
    _long_capture(capture)
    ws = tmp_path / "ws"
    env = {**os.environ, "DERISK_DATA_DIR": str(ipdata_dir)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "derisk.cli", "analyze", "-w", str(ws), "-q", str(capture)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_as_foreground,
        start_new_session=True,  # its own process group, as a terminal's foreground job has
    )
    parent = psutil.Process(proc.pid)
    deadline = time.monotonic() + 60
    while not parent.children(recursive=True) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)
    meters = parent.children(recursive=True)
    if not meters or proc.poll() is not None:
        pytest.fail("the analysis finished before it could be interrupted; make the capture longer")
    if how == "sigterm":
        proc.send_signal(signal.SIGTERM)
    else:
        os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == (-signal.SIGTERM if how == "sigterm" else 130), err
    assert "Traceback" not in err
    gone_by = time.monotonic() + 2
    while time.monotonic() < gone_by:
        alive = [m for m in meters if m.is_running() and m.status() != psutil.STATUS_ZOMBIE]
        if not alive:
            break
        time.sleep(0.02)
    assert alive == [], "meters left behind"
    if ws.exists():  # a new workspace is created while the capture is read, and removed on failure
        with Workspace.open(ws, create=False, read_only=True) as w:
            assert w.flow_count() == 0
