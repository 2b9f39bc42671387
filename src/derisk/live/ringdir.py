"""A folder of ring captures (``tcpdump -G/-W/-C``) as a source of ``derisk watch``: each closed file
is read once, as ``derisk analyze`` reads it (see :mod:`derisk.live.sources` for the protocol)."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from derisk.errors import DeriskError
from derisk.live.sources import Chunk, Context, Source
from derisk.store import checkpoints
from derisk.store.checkpoints import Position

log = logging.getLogger(__name__)


@dataclass
class _Seen:
    stamp: tuple[int, int, int, int]
    digest: str


@dataclass
class PcapDirSource(Source):
    """A folder that ``tcpdump -G/-W/-C`` writes ring files into: each closed file is read once.

    A file counts as closed once a newer file exists in the folder, or it has not changed for
    ``settle_s`` seconds. Each is one input, identified by its content's SHA-256 as ``derisk
    analyze`` identifies it, so a file is never stored twice, whoever read it first.
    """

    folder: Path
    settle_s: float = 60.0
    name: str = ""
    done: dict[str, _Seen] = field(default_factory=dict)
    failed: int = 0
    files: int = 0
    _staged: list[Position] = field(default_factory=list)
    _digests: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.name = f"pcap:{self.folder}"

    def restore(self, con: duckdb.DuckDBPyConnection) -> None:
        self._digests = set(checkpoints.load_positions(con, self.name))

    def _closed(self) -> list[tuple[Path, os.stat_result]]:
        try:
            entries = [
                (p, p.stat()) for p in self.folder.iterdir() if p.is_file() and not p.name.startswith(".")
            ]
        except OSError as exc:
            log.warning("%s: cannot list the folder (%s)", self.folder, exc.strerror)
            return []
        entries.sort(key=lambda e: (e[1].st_mtime_ns, e[0].name))
        newest = entries[-1][1].st_mtime_ns if entries else 0
        now = time.time_ns()
        self.files = len(entries)
        return [
            (p, st)
            for p, st in entries
            if st.st_mtime_ns < newest or now - st.st_mtime_ns >= self.settle_s * 1e9
        ]

    def collect(self, ctx: Context) -> list[Chunk]:
        from derisk.ingest import read_input, resolve_inputs

        chunks: list[Chunk] = []
        used = 0
        for path, st in self._closed():
            stamp = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            seen = self.done.get(str(path))
            if seen is not None and seen.stamp == stamp:
                continue
            if used >= ctx.budget:
                break
            try:
                spec = resolve_inputs([path])[0]
                digest = spec.digest
            except (DeriskError, OSError) as exc:
                self.failed += 1
                log.warning("%s: skipped: %s", path, exc)
                self.done[str(path)] = _Seen(stamp, "")
                continue
            self.done[str(path)] = _Seen(stamp, digest)
            if (
                digest in self._digests
                or ctx.con.execute("SELECT 1 FROM inputs WHERE input_id = ?", [spec.input_id]).fetchall()
            ):
                continue
            try:
                flows = list(read_input(spec))
            except (DeriskError, OSError, ValueError, pa.ArrowException) as exc:
                self.failed += 1
                log.warning("%s: skipped, it cannot be read: %s", path, exc)
                flows = []
            used += st.st_size
            chunks.append(Chunk(spec.input_id, spec.format, str(path), digest, st.st_size, 0, flows))
            rows = sum(b.num_rows for b in flows)
            self._staged.append(Position(self.name, digest, str(path), st.st_dev, st.st_ino, 0, "", False,
                                         st.st_size, st.st_size, rows, spec.input_id, True))  # fmt: skip
        checkpoints.save_positions(ctx.con, self._staged)
        return chunks

    def commit(self) -> None:
        self._digests.update(p.key for p in self._staged)
        self._staged = []

    def abort(self) -> None:
        for pos in self._staged:
            self.done.pop(pos.path, None)
        self._staged = []

    def status(self) -> dict[str, Any]:
        return {"files": self.files, "read": len(self._digests), "failed": self.failed}

    def close(self) -> None:
        return None
