"""What survives a restart: which alert content each sink has settled, and the dead-letter files.

The delivered log (``STATE/delivered-SINK.ndjson``) gets one line per settled alert — delivered, or
refused for good by the receiver — with the alert id and the SHA-256 of its content; it is read when
the deliverer starts, so an alert with the same content is not sent again after a restart. A line is
written after the receiver took the alert: a crash between the two sends that alert once more
(at-least-once delivery). The log is compacted (rewritten with one line per alert id) when it holds
more than twice as many lines as ids.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from derisk.deliver.base import Item, append_line, describe, dump_line, fsync_dir, open_append

log = logging.getLogger(__name__)

DEAD_LETTER_SCHEMA: Final = "derisk.dead-letter/1"


class DeliveredLog:
    """Alert id -> content digest of what one sink has settled, persisted as NDJSON."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._settled: dict[str, str] = {}
        self._lines = 0
        self._load()
        self._fd: int | None = None
        self._dirty = False

    def _load(self) -> None:
        try:
            text = self.path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning(
                "%s: cannot read the delivered log (%s); alerts may be sent again", self.path, describe(exc)
            )
            return
        for line in text.splitlines():
            try:
                doc = json.loads(line)
                self._settled[str(doc["id"])] = str(doc["sha256"])
            except (ValueError, KeyError, TypeError):
                continue  # a line cut by a crash: that alert is sent again
            self._lines += 1

    def settled(self, alert_id: str, digest: str) -> bool:
        with self._lock:
            return self._settled.get(alert_id) == digest

    def record(self, alert_id: str, digest: str) -> None:
        """Remember that ``alert_id`` with ``digest`` is settled; a failure to persist is logged, not
        raised (the alert may then be sent again after a restart)."""
        with self._lock:
            self._settled[alert_id] = digest
            try:
                if self._lines > 2 * len(self._settled) + 1000:
                    self._compact()
                if self._fd is None:
                    self._fd = open_append(self.path)
                append_line(self._fd, dump_line({"id": alert_id, "sha256": digest}))
                self._dirty = True
                self._lines += 1
            except OSError as exc:
                log.warning("%s: cannot record a delivery (%s)", self.path, describe(exc))

    def _compact(self) -> None:
        body = b"".join(dump_line({"id": k, "sha256": v}) for k, v in sorted(self._settled.items()))
        fd, tmp = tempfile.mkstemp(prefix=".delivered.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(body)
                fh.flush()
                os.fsync(fh.fileno())
            Path(tmp).replace(self.path)
        except OSError:
            Path(tmp).unlink(missing_ok=True)
            raise
        fsync_dir(self.path.parent)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._lines = len(self._settled)

    def sync(self) -> None:
        """fsync what :meth:`record` appended since the last sync (the worker calls it per group)."""
        with self._lock:
            if self._fd is None or not self._dirty:
                return
            try:
                os.fsync(self._fd)
            except OSError as exc:
                log.warning("%s: cannot sync the delivered log (%s)", self.path, describe(exc))
            self._dirty = False

    def close(self) -> None:
        self.sync()
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


class DeadLetters:
    """``DIR/SINK.ndjson``: one line per alert a sink gave up on, with the reason (schema
    ``derisk.dead-letter/1``). Writes are whole lines, fsynced; past ``max_bytes`` a file stops
    growing and further alerts are reported lost."""

    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def write(
        self, sink: str, item: Item, reason: str, attempts: int, payload: dict[str, Any] | None
    ) -> str | None:
        """Append one record; returns None when written, else why it could not be."""
        doc: dict[str, Any] = {
            "schema": DEAD_LETTER_SCHEMA,
            "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "sink": sink,
            "reason": reason,
            "attempts": attempts,
            "sha256": item.digest,
            "alert": item.alert.to_json(),
        }
        if payload is not None:
            doc["payload"] = payload
        data = dump_line(doc)
        path = self.folder / f"{sink}.ndjson"
        with self._lock:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                fd = open_append(path)
                try:
                    if os.fstat(fd).st_size + len(data) > self.max_bytes:
                        return f"dead-letter file {path} is full ({self.max_bytes} bytes)"
                    append_line(fd, data)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                return f"cannot write the dead-letter file {path}: {describe(exc)}"
        return None
