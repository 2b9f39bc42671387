"""What every page of the dashboard needs, on ``request.app.state.derisk``.

A module of its own so that the application (:mod:`derisk.web.app`) and the views that read it
(:mod:`derisk.web.session_views`, :mod:`derisk.web.pages`) depend on it, not on each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from derisk.web.audit import AuditLog
from derisk.web.auth import Sessions, UserStore
from derisk.web.limits import LoginGate
from derisk.web.readonly import WorkspaceReader


@dataclass
class Config:
    workspace: Path
    reader: WorkspaceReader
    users: UserStore
    sessions: Sessions
    audit: AuditLog
    #: Cookies carry the Secure flag: the server speaks TLS, sits behind a TLS proxy, or listens
    #: off loopback (where only TLS is acceptable).
    secure_cookies: bool
    #: Strict-Transport-Security is sent: TLS is certain (--tls-cert or --behind-tls).
    hsts: bool = False
    site_file: Path | None = None
    cases_dir: Path | None = None
    gate: LoginGate = field(default_factory=LoginGate)
