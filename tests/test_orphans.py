"""No process left behind (issue 18): however ``derisk analyze`` dies during metering, its meters die too.

Each trial runs ``derisk analyze`` (the command line's ``main``) in a process forked by a
multiprocessing fork server that has already imported derisk and NFStream, so that twenty trials per
signal fit in the time of a few cold starts (and no trial inherits the test process's threads). The trial is killed at a random moment while NFStream's meter runs; every descendant
recorded just before the kill must be gone (or a zombie, which holds no memory) within 2 s, and the
workspace must hold exactly what it held before.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from derisk import scratch as derisk_scratch
from derisk.gen.packets import write_capture
from golden import conversations

TRIALS = 20
#: Forks each trial from a clean process with derisk and NFStream imported.
FORKS = multiprocessing.get_context("forkserver")
FORKS.set_forkserver_preload(["derisk.cli", "derisk.ingest.pcap", "nfstream", "psutil"])
#: Kill trials at once (each mostly waits for its moment).
PARALLEL = 3


def _replicate(source: Path, target: Path, copies: int) -> int:
    """``copies`` of ``source``'s records one after the other, each copy 5 s later: a long capture, fast."""
    data = source.read_bytes()
    header, records = data[:24], data[24:]
    chunks, offset, spans = [], 0, []
    while offset < len(records):
        captured = struct.unpack_from("<I", records, offset + 8)[0]
        spans.append((offset, offset + 16 + captured))
        offset += 16 + captured
    with target.open("wb") as out:
        out.write(header)
        for n in range(copies):
            for start, stop in spans:
                seconds = struct.unpack_from("<I", records, start)[0] + 5 * n
                chunks.append(struct.pack("<I", seconds) + records[start + 4 : stop])
            if len(chunks) > 20_000:
                out.write(b"".join(chunks))
                chunks = []
        out.write(b"".join(chunks))
    return copies * len(spans)


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("orphans")
    small = root / "small.pcap"
    write_capture(conversations(ipv6=False), small)
    big = root / "big.pcap"
    _replicate(small, big, 1500)  # about 200,000 packets: a few seconds of metering
    return big


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, ipdata_dir: Path) -> Path:
    """A workspace holding one small analysis: what every killed trial must leave as it was."""
    root = tmp_path_factory.mktemp("ws")
    small = root / "first.pcap"
    write_capture(conversations(ipv6=False)[:4], small)
    env = {**os.environ, "DERISK_DATA_DIR": str(ipdata_dir)}
    command = [sys.executable, "-m", "derisk.cli", "analyze", str(small), "-w", str(root / "ws"), "-q"]
    subprocess.run(command, env=env, check=True, capture_output=True)
    return root / "ws"


_SUMMARY = """
import json, sys
from pathlib import Path
from derisk.store.workspace import Workspace
out = {}
for ws in sys.argv[1:]:
    with Workspace.open(Path(ws), create=False, read_only=True) as w:
        out[Path(ws).name] = [w.flow_count(), sorted(map(str, w.query("SELECT * FROM inputs"))),
                              len(w.query("SELECT * FROM runs"))]
print(json.dumps(out))
"""


def _contents(workspaces: list[Path]) -> dict[str, object]:
    """What each workspace holds (flows, inputs, runs), read by a separate process with DuckDB, so that
    this process forks trials without DuckDB's threads in it."""
    done = subprocess.run(
        [sys.executable, "-c", _SUMMARY, *map(str, workspaces)], capture_output=True, text=True, check=True
    )
    summary: dict[str, object] = json.loads(done.stdout)
    return summary


def _analyze(argv: list[str], data_dir: str, temporary: str) -> None:
    """The body of a trial: ``derisk analyze`` as a shell would start it (Ctrl-C at its default), with
    a temporary directory of its own, so that what it leaves there is seen."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.environ["DERISK_DATA_DIR"] = data_dir
    os.environ["TMPDIR"] = temporary
    tempfile.tempdir = temporary
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    from derisk.cli import main

    os._exit(main(argv))


def _alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                out.append(process)
        except psutil.NoSuchProcess:
            pass
    return out


def _meters(process: psutil.Process) -> list[psutil.Process]:
    try:
        return process.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _trial(n: int, sig: signal.Signals, capture: Path, template: Path, scratch: Path, data_dir: str) -> str:
    """One kill; returns what went wrong ("" when nothing did)."""
    ws = scratch / f"ws-{sig.name}-{n}"
    shutil.copytree(template, ws)
    temporary = scratch / f"tmp-{sig.name}-{n}"
    temporary.mkdir()
    argv = ["analyze", str(capture), "-w", str(ws), "-q"]
    trial = FORKS.Process(target=_analyze, args=(argv, data_dir, str(temporary)))
    trial.start()
    assert trial.pid is not None
    parent = psutil.Process(trial.pid)
    deadline = time.monotonic() + 30
    while not _meters(parent) and trial.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(random.Random(n * 31 + sig).uniform(0.0, 0.7))  # a random moment of the metering
    descendants = _meters(parent)
    if not descendants or not trial.is_alive():
        trial.join()
        return (
            f"trial {n}: the analysis ended before the kill (exit {trial.exitcode}); make the capture longer"
        )
    os.kill(trial.pid, sig)
    trial.join(timeout=30)
    gone_by = time.monotonic() + 2
    while _alive(descendants) and time.monotonic() < gone_by:
        time.sleep(0.02)
    problems = []
    if left := _alive(descendants):
        problems.append(f"left behind: {[(p.pid, p.name()) for p in left]}")
        for process in left:  # do not leave them on the machine either
            process.kill()
    expected = {signal.SIGKILL: -9, signal.SIGTERM: -15, signal.SIGINT: 130}[sig]
    if trial.exitcode != expected:
        problems.append(f"exit {trial.exitcode}, expected {expected}")
    # Ctrl-C cleans up before its fast exit; what a kill leaves, the next derisk process sweeps
    if sig != signal.SIGINT:
        derisk_scratch.sweep_stale(temporary)
    if left := sorted(p.name for p in temporary.iterdir() if p.name.startswith("derisk-")):
        problems.append(f"scratch left behind: {left}")
    return f"trial {n} ({sig.name}): {'; '.join(problems)}" if problems else ""


def _trials(
    sig: signal.Signals, capture: Path, workspace: Path, tmp_path: Path, ipdata_dir: Path
) -> Iterator[str]:
    with ThreadPoolExecutor(PARALLEL) as pool:
        yield from pool.map(
            lambda n: _trial(n, sig, capture, workspace, tmp_path, str(ipdata_dir)), range(TRIALS)
        )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_killed_analysis_leaves_no_process_and_no_change(
    sig: signal.Signals, capture: Path, workspace: Path, tmp_path: Path, ipdata_dir: Path
) -> None:
    problems = [p for p in _trials(sig, capture, workspace, tmp_path, ipdata_dir) if p]
    assert problems == []
    contents = _contents([workspace, *sorted(tmp_path.glob("ws-*"))])
    before = contents.pop(workspace.name)
    assert len(contents) == TRIALS
    assert {name: held for name, held in contents.items() if held != before} == {}, "a workspace changed"


def test_meters_carry_the_parent_death_signal(tmp_path: Path) -> None:
    """The fork hook itself: a process forked after install() has SIGKILL as its parent-death signal."""
    from derisk import children

    children.install()
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports its parent-death signal and leaves at once
        os.write(writer, struct.pack("<i", children.death_signal()))
        os._exit(0)
    os.close(writer)
    reported = struct.unpack("<i", os.read(reader, 4))[0]
    os.waitpid(pid, 0)
    os.close(reader)
    assert reported == signal.SIGKILL
