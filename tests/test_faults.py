"""Faults: a killed update, two writers at once, a full disk. The previous state or the new one, never a mix.

(Killing ``derisk analyze`` during metering is in ``tests/test_interrupt.py``.)
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from derisk.cli import main
from derisk.enrich.datadir import read_manifest
from derisk.enrich.ipdata import load_ipdata
from derisk.enrich.update import update

FIXTURES = Path(__file__).parent / "fixtures"
IPDATA = FIXTURES / "ip-location-db"
CAPTURE = FIXTURES / "pcap" / "golden.pcap"


def _version_b(tmp_path: Path) -> Path:
    """The fixture again under other package versions, so the two installs can be told apart."""
    other = tmp_path / "ipdata-b"
    shutil.copytree(IPDATA, other)
    for meta in other.glob("*/package.json"):
        doc = json.loads(meta.read_text(encoding="utf-8"))
        doc["version"] = doc["version"] + "-b"
        meta.write_text(json.dumps(doc), encoding="utf-8")
    return other


def _update_cmd(data: Path, source: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "derisk.cli",
        "data",
        "update",
        "--data-dir",
        str(data),
        "--from",
        str(source),
        "--unverified",  # the fixture is unpacked folders, which the data lock cannot vouch for
    ]


def test_a_killed_update_leaves_the_previous_data_or_the_new(tmp_path: Path) -> None:
    data = tmp_path / "data"
    update(data, source=IPDATA)
    source_b = _version_b(tmp_path)
    versions = {read_manifest(data).version}
    t0 = time.monotonic()
    subprocess.run(_update_cmd(tmp_path / "probe", source_b), check=True, capture_output=True)
    duration = time.monotonic() - t0
    versions.add(read_manifest(tmp_path / "probe").version)
    assert len(versions) == 2
    rng = random.Random(14)
    seen = set()
    for _ in range(20):
        source = source_b if rng.random() < 0.5 else IPDATA
        proc = subprocess.Popen(
            _update_cmd(data, source), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(rng.uniform(0.0, duration * 1.1))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        ipdata = load_ipdata(data)  # opens whatever is installed: it must be whole
        assert ipdata.manifest.version in versions
        seen.add(ipdata.manifest.version)
        leftovers = [p.name for p in data.iterdir() if p.name.startswith(".ipdata-") and p.is_dir()]
        assert len(leftovers) <= 3  # current, previous, and at most one half-built folder
    # The next update cleans up what killed ones left.
    update(data, source=IPDATA)
    assert len([p for p in data.iterdir() if p.name.startswith(".ipdata-") and p.is_dir()]) <= 2


def test_an_older_layout_killed_between_its_renames_still_reads(tmp_path: Path) -> None:
    """Data installed by an older derisk as a plain folder, left at .ipdata-old by a kill."""
    data = tmp_path / "data"
    update(data, source=IPDATA)
    real = (data / "ipdata").resolve()
    (data / "ipdata").unlink()
    real.rename(data / ".ipdata-old")
    assert load_ipdata(data).manifest.version == read_manifest(data).version
    update(data, source=IPDATA)  # and an update moves on from it
    assert (data / "ipdata").is_symlink() and not (data / ".ipdata-old").exists()


def test_two_updates_at_once_the_second_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    import fcntl

    fd = os.open(data / ".update.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a running update holds it
        done = subprocess.run(_update_cmd(data, IPDATA), capture_output=True, text=True)
    finally:
        os.close(fd)
    assert done.returncode == 6
    assert "another `derisk data update` is running" in done.stderr
    assert done.stderr.count("\n") == 1


def test_two_analyses_of_one_workspace_the_second_is_refused(tmp_path: Path, ipdata_dir: Path) -> None:
    from derisk.gen.zeek_bench import write_bench_conn_log

    log = tmp_path / "conn.log"
    write_bench_conn_log(log, 300_000)
    ws = tmp_path / "ws"
    env = {**os.environ, "DERISK_DATA_DIR": str(ipdata_dir)}
    first = subprocess.Popen(
        [sys.executable, "-m", "derisk.cli", "analyze", str(log), "-w", str(ws), "-q"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (ws / "derisk.duckdb").exists():
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.05)
    second = subprocess.run(
        [sys.executable, "-m", "derisk.cli", "analyze", str(CAPTURE), "-w", str(ws), "-q"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    first.wait(timeout=300)
    assert first.returncode == 0, first.stderr.read() if first.stderr else ""
    if first.stderr is not None:
        first.stderr.close()
    assert second.returncode == 6
    assert "locked by another derisk process" in second.stderr and second.stderr.count("\n") == 1


@pytest.fixture
def small_disk(tmp_path: Path) -> Path:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_keeps_the_previous_state(
    small_disk: Path, tmp_path: Path, ipdata_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from derisk.gen.zeek_bench import write_bench_conn_log

    ws = small_disk / "ws"
    args = ["--data-dir", str(ipdata_dir), "-w", str(ws), "-q"]
    assert main(["analyze", str(CAPTURE), *args]) == 0
    capsys.readouterr()
    assert main(["inputs", "-w", str(ws), "--json", "-"]) == 0
    before = json.loads(capsys.readouterr().out)["inputs"]
    log = tmp_path / "conn.log"
    write_bench_conn_log(log, 50_000)
    assert main(["analyze", str(log), *args]) == 6
    err = capsys.readouterr().err
    assert "No space left on device" in err and err.count("\n") == 1
    assert main(["inputs", "-w", str(ws), "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["inputs"] == before


def _imported(ws: Path) -> int:
    """Entities imported into the workspace's graph tables (read with DuckDB, read-only)."""
    import duckdb

    con = duckdb.connect(str(ws / "derisk.duckdb"), read_only=True)
    try:
        return int(con.execute("SELECT count(*) FROM kg_entities").fetchone()[0])  # type: ignore[index]
    finally:
        con.close()


def test_a_killed_entity_import_leaves_the_graph_as_it_was_or_whole(tmp_path: Path) -> None:
    """`derisk entity import` killed with SIGKILL at 20 random moments: all of the file or none of it."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    from bench_know import generate

    files = generate(tmp_path, 30_000)
    pristine = tmp_path / "pristine"
    first = FIXTURES / "know" / "gleif-lei2-sample.csv"
    subprocess.run([sys.executable, "-m", "derisk.cli", "entity", "import", str(first), "-w", str(pristine)],
                   check=True, capture_output=True)  # fmt: skip
    before = _imported(pristine)

    def importing(ws: Path) -> list[str]:
        return [sys.executable, "-m", "derisk.cli", "entity", "import", str(files["l1"]), "-w", str(ws)]

    probe = tmp_path / "probe"
    shutil.copytree(pristine, probe)
    t0 = time.monotonic()
    subprocess.run(importing(probe), check=True, capture_output=True)
    duration = time.monotonic() - t0
    after = _imported(probe)
    assert after == before + 30_000
    rng = random.Random(18)
    seen = set()
    ws = tmp_path / "ws"
    shutil.copytree(pristine, ws)
    for _ in range(20):
        proc = subprocess.Popen(importing(ws), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.0, duration * 1.1))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        count = _imported(ws)
        assert count in (before, after)
        seen.add(count)
        if count == after:  # the import had finished: start the next trial from the state before
            shutil.rmtree(ws)
            shutil.copytree(pristine, ws)
    assert before in seen  # some kills landed before the commit
