"""Accounts, sessions and CSRF tokens of the dashboard.

* Accounts live in ``WORKSPACE/web/users.json`` (mode 0600), written only by ``derisk users``:
  name, role and an Argon2id hash of the password (argon2-cffi's defaults).
* A session is a cookie signed with itsdangerous (key in ``WORKSPACE/web/secret.key``, mode 0600):
  user name, a CSRF token and a fingerprint of the password hash, so that changing or removing an
  account ends its sessions. Sessions expire after ``SESSION_TTL`` seconds.
* Every form carries a CSRF token: the session's, or before login a signed token also set as a
  cookie (double submit). A login token is good for one attempt: a second use is refused.
* Logging out revokes the session until its cookie would have expired; revocations are kept in
  ``WORKSPACE/web/revoked.json`` (mode 0600, as SHA-256 digests, expired ones pruned), so a server
  restart does not bring a logged-out session back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from derisk.errors import ConfigError, NotFoundError, StoreError, UsageError

ROLES: Final = ("viewer", "analyst", "admin")
WEB_DIR: Final = "web"
USERS_FILE: Final = "users.json"
SECRET_FILE: Final = "secret.key"  # noqa: S105 - a file name, not a secret
SESSION_TTL: Final = 8 * 3600
LOGIN_TOKEN_TTL: Final = 3600
MIN_PASSWORD: Final = 12
MAX_PASSWORD: Final = 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_HASHER: Final = PasswordHasher()
# A hash to verify against when the user does not exist, so that timing does not reveal names.
_DUMMY_HASH: Final = _HASHER.hash("not a password of anyone")


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password_hash: str
    created: str

    def can(self, role: str) -> bool:
        """True when this user's role is ``role`` or a stronger one."""
        return ROLES.index(self.role) >= ROLES.index(role)

    @property
    def generation(self) -> str:
        return hashlib.sha256(self.password_hash.encode()).hexdigest()[:16]


def web_dir(workspace: Path) -> Path:
    return workspace / WEB_DIR


def _private_dir(workspace: Path) -> Path:
    d = web_dir(workspace)
    try:
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the dashboard folder: {exc.strerror}", source=str(d)) from None
    return d


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    tmp.replace(path)


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError(f"user name {name!r} must be 1-64 letters, digits, '.', '_', '@' or '-'")
    return name


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise UsageError(f"a password must have {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


class UserStore:
    """The accounts file of one workspace."""

    def __init__(self, workspace: Path) -> None:
        self.path = web_dir(workspace) / USERS_FILE
        self.workspace = workspace

    def load(self) -> dict[str, User]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ConfigError(f"unreadable accounts file ({exc})", source=str(self.path)) from None
        users = {}
        try:
            for name, rec in raw["users"].items():
                if rec["role"] not in ROLES:
                    raise ConfigError(f"unknown role {rec['role']!r} for {name!r}", source=str(self.path))
                users[name] = User(name, rec["role"], rec["hash"], rec.get("created", ""))
        except (KeyError, TypeError, AttributeError):
            raise ConfigError("accounts file has an unexpected layout", source=str(self.path)) from None
        return users

    def _save(self, users: dict[str, User]) -> None:
        _private_dir(self.workspace)
        doc = {
            "users": {
                u.name: {"role": u.role, "hash": u.password_hash, "created": u.created}
                for u in users.values()
            }
        }
        _write_private(self.path, json.dumps(doc, indent=2, sort_keys=True).encode())

    def add(self, name: str, password: str, role: str, *, replace: bool = False) -> User:
        check_name(name)
        check_password(password)
        if role not in ROLES:
            raise UsageError(f"unknown role {role!r} (expected one of: {', '.join(ROLES)})")
        users = self.load()
        if name in users and not replace:
            raise UsageError(f"user {name!r} exists (use --replace to change the password or role)")
        created = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
        user = User(name, role, _HASHER.hash(password), created)
        users[name] = user
        self._save(users)
        return user

    def remove(self, name: str) -> None:
        users = self.load()
        if name not in users:
            raise NotFoundError(f"no user {name!r}", details=sorted(users)[:10])
        del users[name]
        self._save(users)

    def authenticate(self, name: str, password: str) -> User | None:
        user = self.load().get(name)
        try:
            _HASHER.verify(user.password_hash if user else _DUMMY_HASH, password[:MAX_PASSWORD])
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        return user


def load_secret(workspace: Path) -> bytes:
    """The signing key of sessions (created with 32 random bytes on first use)."""
    path = web_dir(workspace) / SECRET_FILE
    try:
        data = path.read_bytes()
        if len(data) >= 32:
            return data
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise StoreError(f"cannot read the session key: {exc.strerror}", source=str(path)) from None
    _private_dir(workspace)
    data = secrets.token_bytes(32)
    _write_private(path, data)
    return data


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Revocations:
    """Digests of revoked session tokens with the wall-clock time until which each matters."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._until: dict[str, float] = {}
        if path is not None:
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
                self._until = {str(k): float(v) for k, v in raw.get("revoked", {}).items()}
            except FileNotFoundError:
                pass
            except (OSError, ValueError, TypeError, AttributeError) as exc:
                raise ConfigError(f"unreadable list of ended sessions ({exc})", source=str(path)) from None

    def add(self, token: str, until: float) -> None:
        now = time.time()
        self._until = {k: t for k, t in self._until.items() if t > now}
        self._until[_digest(token)] = until
        if self.path is not None:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _write_private(self.path, json.dumps({"revoked": self._until}, sort_keys=True).encode())

    def __contains__(self, token: object) -> bool:
        if not isinstance(token, str):
            return False
        until = self._until.get(_digest(token))
        return until is not None and until > time.time()


class Sessions:
    """Signing and checking session cookies and login-form tokens."""

    def __init__(self, secret: bytes, ttl: int = SESSION_TTL, revoked_file: Path | None = None) -> None:
        self.ttl = ttl
        self._session = URLSafeTimedSerializer(secret, salt="derisk-session")
        self._login = URLSafeTimedSerializer(secret, salt="derisk-login")
        self._revoked = Revocations(revoked_file)
        #: Login tokens already used once (token → monotonic expiry), bounded.
        self._used_login: dict[str, float] = {}
        self._lock = threading.Lock()

    def revoke(self, csrf: str) -> None:
        """End a session (logout) before its cookie expires; remembered until the cookie would expire."""
        with self._lock:
            self._revoked.add(csrf, time.time() + max(self.ttl, 0))

    def issue(self, user: User) -> tuple[str, str]:
        """(cookie value, CSRF token) for a fresh session."""
        csrf = secrets.token_urlsafe(24)
        return self._session.dumps({"u": user.name, "c": csrf, "g": user.generation}), csrf

    def read(self, cookie: str | None, users: dict[str, User]) -> tuple[User, str] | None:
        """(user, CSRF token) of a valid, unexpired session whose account is unchanged."""
        if not cookie or len(cookie) > 4096:
            return None
        try:
            data: Any = self._session.loads(cookie, max_age=self.ttl)
        except (SignatureExpired, BadSignature):
            return None
        if not isinstance(data, dict):
            return None
        user = users.get(str(data.get("u")))
        if user is None or not hmac.compare_digest(str(data.get("g")), user.generation):
            return None
        csrf = str(data.get("c"))
        with self._lock:
            if csrf in self._revoked:
                return None
        return user, csrf

    def login_token(self) -> tuple[str, str]:
        """(cookie value, form token) for the login form."""
        token = secrets.token_urlsafe(24)
        return self._login.dumps(token), token

    def check_login_token(self, cookie: str | None, form_token: str | None) -> bool:
        """True once for a valid login token: the check uses it up."""
        if not cookie or not form_token or len(cookie) > 1024:
            return False
        try:
            expected = self._login.loads(cookie, max_age=LOGIN_TOKEN_TTL)
        except (SignatureExpired, BadSignature):
            return False
        if not (isinstance(expected, str) and hmac.compare_digest(expected, form_token)):
            return False
        now = time.monotonic()
        with self._lock:
            if self._used_login.get(expected, 0.0) > now:
                return False
            if len(self._used_login) > 100_000:
                self._used_login = {k: t for k, t in self._used_login.items() if t > now}
            self._used_login[expected] = now + LOGIN_TOKEN_TTL
        return True
