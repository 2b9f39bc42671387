"""The follower of ``derisk watch`` on real files: complete lines only, rotation, gzip archive,
truncation and replacement under the reader, a rotated file that disappears, positions that only
move on commit."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import pytest

from derisk.live.follow import Candidate, Follower
from derisk.live.sources import zeek_candidates

_OPEN: list[Follower] = []


@pytest.fixture(autouse=True)
def _close_followers() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def _follower(folder: Path, grace_s: float = 30.0) -> Follower:
    def listed() -> list[Candidate]:
        return [Candidate(p, "conn") for p in sorted(p for p in folder.iterdir() if p.is_file())]

    follower = Follower("test", "zeek", listed, grace_s=grace_s)
    _OPEN.append(follower)
    return follower


def _read(follower: Follower, budget: int = 1 << 20) -> bytes:
    data = b"".join(piece.data for piece in follower.poll(budget))
    follower.commit()
    return data


def _lines(start: int, stop: int) -> bytes:
    return b"".join(
        b'{"ts": %d, "uid": "C%05d", "line": "record number %d"}\n' % (n, n, n) for n in range(start, stop)
    )


def test_complete_lines_only_and_the_rest_later(tmp_path: Path) -> None:
    log = tmp_path / "conn.log"
    data = _lines(0, 10)
    log.write_bytes(data[:95])  # one line and a half
    follower = _follower(tmp_path)
    first = _read(follower)
    assert first == data[: data.index(b"\n") + 1]
    with log.open("ab") as fh:
        fh.write(data[95:])
    assert first + _read(follower) == data
    assert _read(follower) == b""


def test_positions_move_only_on_commit(tmp_path: Path) -> None:
    (tmp_path / "conn.log").write_bytes(_lines(0, 5))
    follower = _follower(tmp_path)
    got = b"".join(p.data for p in follower.poll(1 << 20))
    follower.abort()  # the batch's transaction failed: read again
    again = b"".join(p.data for p in follower.poll(1 << 20))
    assert got == again == _lines(0, 5)


def test_budget_splits_a_backlog(tmp_path: Path) -> None:
    (tmp_path / "conn.log").write_bytes(_lines(0, 200))
    follower = _follower(tmp_path)
    parts = []
    while chunk := _read(follower, budget=1000):
        assert len(chunk) <= 1000 + 100
        parts.append(chunk)
    assert len(parts) > 5 and b"".join(parts) == _lines(0, 200)


def test_rotation_by_rename_and_gzip_archive_are_read_on(tmp_path: Path) -> None:
    log = tmp_path / "conn.log"
    log.write_bytes(_lines(0, 30))
    follower = _follower(tmp_path)
    assert _read(follower) == _lines(0, 30)
    with log.open("ab") as fh:  # written after the last read, then rotated away
        fh.write(_lines(30, 40))
    rotated = tmp_path / "conn.2026-12-06-00-00-00.log"
    log.rename(rotated)
    log.write_bytes(_lines(100, 110))
    assert _read(follower) == _lines(30, 40) + _lines(100, 110)
    # the archiver gzips the rotated log and removes it: recognised, nothing read twice
    with gzip.open(rotated.with_name(rotated.name + ".gz"), "wb") as gz:
        gz.write(rotated.read_bytes())
    rotated.unlink()
    assert _read(follower) == b""
    assert follower.counters.truncated == 0


def test_rotated_straight_into_gzip_reads_the_unread_end(tmp_path: Path) -> None:
    log = tmp_path / "conn.log"
    log.write_bytes(_lines(0, 30))
    follower = _follower(tmp_path)
    _read(follower)
    with gzip.open(tmp_path / "conn.00:00:00-01:00:00.log.gz", "wb") as gz:
        gz.write(_lines(0, 45))  # the log had grown before it was archived
    log.unlink()
    assert _read(follower) == _lines(30, 45)


def test_truncated_under_the_reader_is_reported_and_read_from_zero(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = tmp_path / "conn.log"
    log.write_bytes(_lines(0, 30))
    follower = _follower(tmp_path)
    _read(follower)
    with log.open("r+b") as fh:
        fh.truncate(0)
    log.write_bytes(_lines(500, 503))
    assert _read(follower) == _lines(500, 503)
    assert follower.counters.truncated == 1
    assert "truncated or replaced" in caplog.text


def test_replaced_in_place_with_other_content(tmp_path: Path) -> None:
    log = tmp_path / "conn.log"
    log.write_bytes(_lines(0, 30))
    follower = _follower(tmp_path)
    _read(follower)
    log.write_bytes(_lines(700, 760))  # same inode, new content longer than the position
    assert _read(follower) == _lines(700, 760)
    assert follower.counters.truncated == 1


def test_a_rotated_file_that_disappears_unread_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = tmp_path / "conn.log"
    log.write_bytes(_lines(0, 200))
    follower = _follower(tmp_path, grace_s=0.0)
    _read(follower, budget=1000)
    log.unlink()
    _read(follower)
    assert follower.counters.disappeared == 1
    assert follower.counters.bytes_lost > 0
    assert "disappeared before it was read to its end" in caplog.text
    assert follower.positions == {}


def test_zeek_folder_order(tmp_path: Path) -> None:
    day = tmp_path / "2026-12-05"
    day.mkdir()
    for name in ("conn.23:00:00-00:00:00.log.gz", "ssl.23:00:00-00:00:00.log.gz"):
        (day / name).write_bytes(b"")
    for name in (
        "conn.log",
        "ssl.log",
        "conn.2026-12-06-00-00-00.log",
        "dns.2026-12-06-00-00-00.log",
        "x.log",
    ):
        (tmp_path / name).write_bytes(b"")
    order = [str(c.path.relative_to(tmp_path)) for c in zeek_candidates(tmp_path)]
    assert order == [
        "2026-12-05/ssl.23:00:00-00:00:00.log.gz",
        "2026-12-05/conn.23:00:00-00:00:00.log.gz",
        "dns.2026-12-06-00-00-00.log",
        "conn.2026-12-06-00-00-00.log",
        "ssl.log",
        "conn.log",
    ]


def test_json_streaming_logs_oldest_first_and_only_without_zeeks_own(tmp_path: Path) -> None:
    """Corelight's json-streaming-logs package numbers its rotated logs from the newest (.1) to the
    oldest (.4); written beside Zeek's own logs (its default) they hold the same records, so only Zeek's
    own are followed."""
    for name in (
        "json_streaming_conn.log",
        "json_streaming_conn.1.log",
        "json_streaming_conn.10.log",
        "json_streaming_conn.2.log",
        "json_streaming_ssl.1.log",
    ):
        (tmp_path / name).write_bytes(b"")
    order = [c.path.name for c in zeek_candidates(tmp_path)]
    assert order == [
        "json_streaming_conn.10.log",
        "json_streaming_conn.2.log",
        "json_streaming_ssl.1.log",
        "json_streaming_conn.1.log",
        "json_streaming_conn.log",
    ]
    (tmp_path / "conn.log").write_bytes(b"")
    assert [(c.path.name, c.kind) for c in zeek_candidates(tmp_path)] == [
        ("json_streaming_ssl.1.log", "ssl"),
        ("conn.log", "conn"),
    ]
