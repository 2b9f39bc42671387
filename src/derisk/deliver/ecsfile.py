"""ECS documents as NDJSON in a rotating file, for Filebeat or Elastic Agent to ship.

Each line is the document :func:`derisk.detect.ecs.ecs_lines` makes, so equal to a line of
``derisk alerts --ecs`` when the flows behind the alert are passed. Lines are appended with one
``write`` on a file opened with ``O_APPEND``; a short write (disk full, file size limit) is cut back,
so a shipper never reads half a line. Lines are ``fsync``ed in groups (when the queue is empty, every
256 lines or every second, see :mod:`derisk.deliver.worker`) and an alert counts as delivered only
after the fsync of its line.

Rotation by size and count, the scheme Filebeat's ``filestream`` input follows by inode: before a
line would take ``PATH`` past ``max_bytes``, ``PATH.N-1`` … ``PATH.1`` move up by one (the oldest,
``PATH.N``, is overwritten), ``PATH`` becomes ``PATH.1`` and a new ``PATH`` is started; the folder is
``fsync``ed after the renames. A harvester holding the old file open reads it to its end.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

from derisk.deliver.base import DeliveryFailed, Item, append_line, describe, fsync_dir, open_append
from derisk.deliver.config import EcsFileTarget
from derisk.detect.ecs import ecs_lines


def ecs_line(item: Item) -> bytes:
    """The NDJSON line (newline included) of one alert, as ``derisk alerts --ecs`` writes it."""
    flows = {item.alert.alert_id: item.flows} if item.flows is not None else None
    (line,) = ecs_lines([item.alert], flows=flows)
    return (line + "\n").encode("utf-8", "backslashreplace")


class EcsFileSink:
    name = "ecs-file"

    def __init__(self, target: EcsFileTarget) -> None:
        self.target = target
        self._fd: int | None = None
        self._retired: list[int] = []  # files written since the last flush, no longer written to

    def _open(self) -> int:
        """The open file, reopened when ``PATH`` is no longer it (removed, or moved by someone else's
        rotation): writing on into a file nobody can reach would lose the alert."""
        if self._fd is not None:
            try:
                on_disk = self.target.path.stat()
                held = os.fstat(self._fd)
                same = (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)
            except FileNotFoundError:
                same = False
            if not same:
                self._retire()
        if self._fd is None:
            self._fd = open_append(self.target.path)
        return self._fd

    def _retire(self) -> None:
        """Stop writing to the open file; it stays open until the next flush has synced it."""
        if self._fd is not None:
            self._retired.append(self._fd)
            self._fd = None

    def _rotate(self) -> None:
        path = self.target.path
        self._retire()
        for n in range(self.target.keep - 1, 0, -1):
            older = path.with_name(f"{path.name}.{n}")
            if older.exists():
                older.replace(path.with_name(f"{path.name}.{n + 1}"))
        path.replace(path.with_name(f"{path.name}.1"))
        fsync_dir(path.parent)

    def send(self, item: Item) -> None:
        data = ecs_line(item)
        try:
            fd = self._open()
            size = os.fstat(fd).st_size
            if size > 0 and size + len(data) > self.target.max_bytes:
                self._rotate()
                fd = self._open()
            append_line(fd, data)
        except OSError as exc:
            self._retire()  # reopen next time: the file may have been moved or its folder fixed
            raise DeliveryFailed(f"{self.target.path}: {describe(exc)}") from None

    def dead_letter_payload(self, item: Item) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(ecs_line(item))
        return {"ecs": doc}

    def flush(self) -> None:
        """fsync every file written since the last flush (the current one and any rotated away)."""
        fds = [*self._retired, *([self._fd] if self._fd is not None else [])]
        try:
            for fd in fds:
                os.fsync(fd)
        finally:
            for fd in self._retired:
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._retired = []

    def abort(self) -> None:
        """Local writes are not interrupted; a hung disk leaves the worker blocked until it answers."""

    def close(self) -> None:
        self._retire()
        with contextlib.suppress(OSError):
            self.flush()
