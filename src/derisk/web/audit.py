"""The dashboard's audit log: who viewed and exported what, one JSON object per line.

Stored in ``WORKSPACE/web/audit.jsonl`` (mode 0600), beside the database rather than in it, because
the dashboard never writes the database (the CLI is its only writer). Lines are appended under a
lock; a line holds the time (UTC), user, role, action (``view``, ``export``, ``login``,
``login-failed``, ``logout``, ``screen-upload``), the path and the client address.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
from collections import deque
from pathlib import Path
from typing import Any, Final

from derisk.web.auth import web_dir

AUDIT_FILE: Final = "audit.jsonl"
log = logging.getLogger(__name__)


class AuditLog:
    def __init__(self, workspace: Path) -> None:
        self.path = web_dir(workspace) / AUDIT_FILE
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
        entry = {
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "user": user,
            "role": role,
            "action": action,
            "path": path[:2000],
            "client": client,
        }
        if detail:
            entry["detail"] = detail[:500]
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock:
            try:
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                with os.fdopen(fd, "a", encoding="utf-8") as fh:
                    fh.write(line)
            except OSError as exc:
                # Never lose a page for an audit failure silently: log it loudly.
                log.error("audit log not writable (%s): %s", self.path, exc.strerror)

    def tail(self, limit: int = 200) -> list[dict[str, Any]]:
        """The last ``limit`` entries, newest first."""
        try:
            with self.path.open(encoding="utf-8") as fh:
                lines = deque(fh, maxlen=limit)
        except FileNotFoundError:
            return []
        out = []
        for line in reversed(lines):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out
