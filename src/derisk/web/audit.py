"""The dashboard's audit log: who viewed and exported what, one JSON object per line.

Stored in ``WORKSPACE/web/audit.jsonl`` (mode 0600), beside the database rather than in it, because
the dashboard never writes the database (the CLI is its only writer). Lines are appended under a
lock; a line holds the time (UTC), user, role, action (``view``, ``export``, ``login``,
``login-failed``, ``login-refused``, ``logout``, ``denied``, ``screen-upload``,
``audit-suppressed``), the path and the client address.

Bounded on two sides, so that no client can fill the disk through it:

* each client address may cause at most ``AuditBudget.limit`` lines per minute; beyond that one
  ``audit-suppressed`` line says so, and the number of lines not written is recorded when the
  client's next minute begins (``detail``: ``"N events not written"``);
* the file is rotated at ``max_bytes`` (``audit.jsonl.1`` … ``audit.jsonl.{keep}``, oldest dropped).

Reading the newest lines (the ``/audit`` page) reads the file backwards from its end, in blocks, so
its cost does not grow with the size of the log.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any, Final

from derisk.web.auth import web_dir
from derisk.web.limits import AuditBudget

AUDIT_FILE: Final = "audit.jsonl"
MAX_BYTES: Final = 10 * 1024 * 1024
KEEP: Final = 5
_BLOCK: Final = 64 * 1024
log = logging.getLogger(__name__)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AuditLog:
    def __init__(
        self,
        workspace: Path,
        *,
        budget: AuditBudget | None = None,
        max_bytes: int = MAX_BYTES,
        keep: int = KEEP,
    ) -> None:
        self.path = web_dir(workspace) / AUDIT_FILE
        self.budget = budget or AuditBudget()
        self.max_bytes = max_bytes
        self.keep = keep
        self._lock = threading.Lock()

    def record(
        self,
        action: str,
        *,
        user: str | None,
        role: str | None,
        path: str,
        client: str | None,
        detail: str | None = None,
    ) -> None:
        admission = self.budget.admit(client)
        lines = []
        if admission.summarise:
            lines.append(
                self._line(
                    "audit-suppressed", None, None, "", client, f"{admission.summarise} events not written"
                )
            )
        if admission.write:
            lines.append(self._line(action, user, role, path, client, detail))
        elif admission.first_suppressed:
            lines.append(
                self._line(
                    "audit-suppressed", None, None, path, client,
                    f"more than {self.budget.limit} events in {self.budget.window:.0f} s; further ones are counted",
                )
            )  # fmt: skip
        if lines:
            self._append("".join(lines))

    @staticmethod
    def _line(
        action: str, user: str | None, role: str | None, path: str, client: str | None, detail: str | None
    ) -> str:
        entry = {
            "time": _now(),
            "user": user,
            "role": role,
            "action": action,
            "path": path[:2000],
            "client": client,
        }
        if detail:
            entry["detail"] = detail[:500]
        return json.dumps(entry, ensure_ascii=False) + "\n"

    def _append(self, text: str) -> None:
        with self._lock:
            try:
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                self._rotate_if_full()
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                with os.fdopen(fd, "a", encoding="utf-8") as fh:
                    fh.write(text)
            except OSError as exc:
                # Never lose a page for an audit failure silently: log it loudly.
                log.error("audit log not writable (%s): %s", self.path, exc.strerror)

    def _rotate_if_full(self) -> None:
        try:
            if self.path.stat().st_size < self.max_bytes:
                return
        except FileNotFoundError:
            return
        for n in range(self.keep - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{n + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))

    def tail(self, limit: int = 200) -> list[dict[str, Any]]:
        """The last ``limit`` entries, newest first, read backwards from the end of the file."""
        try:
            fh = self.path.open("rb")
        except FileNotFoundError:
            return []
        with fh:
            end = fh.seek(0, os.SEEK_END)
            chunks: list[bytes] = []
            newlines = 0
            pos = end
            while pos > 0 and newlines <= limit:
                step = min(_BLOCK, pos)
                pos -= step
                fh.seek(pos)
                chunk = fh.read(step)
                chunks.append(chunk)
                newlines += chunk.count(b"\n")
        data = b"".join(reversed(chunks))
        lines = data.splitlines()
        if pos > 0:
            lines = lines[1:]  # the first line may be cut
        out = []
        for line in reversed(lines[-limit:] if limit else []):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out
