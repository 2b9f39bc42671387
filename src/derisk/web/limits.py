"""Limits that keep the dashboard available under attack, checked before any expensive work.

* :class:`LoginGate` decides whether a login attempt may cost a password hash at all: at most
  ``per_address`` failures per client address and ``per_account`` per account name within
  ``window`` seconds, and at most ``concurrent`` Argon2id verifications at once for the whole
  server (each costs 64 MiB and about half a second of CPU; by default half the cores, at least
  one), with a short queue beyond which an attempt is refused at once. A refused attempt costs a dictionary lookup.
* :class:`AuditBudget` bounds how many audit lines one client can cause per window; repeats beyond
  the budget are counted and written as one summary line when the window closes, so an attacker
  cannot fill the disk but the audit still says what happened.

State lives in memory and is bounded (the oldest keys are dropped beyond ``max_keys``): a restart
forgets failures, which costs an attacker nothing he could not get by waiting for the window.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

LOGIN_WINDOW: Final = 300.0


class _Window:
    """Event times per key within a sliding window, bounded in keys and events per key."""

    def __init__(self, limit: int, window: float, max_keys: int = 50_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._events: OrderedDict[str, list[float]] = OrderedDict()

    def count(self, key: str, now: float) -> int:
        recent = [t for t in self._events.get(key, ()) if now - t < self.window]
        if recent:
            self._events[key] = recent
        else:
            self._events.pop(key, None)
        return len(recent)

    def add(self, key: str, now: float) -> None:
        events = self._events.setdefault(key, [])
        events.append(now)
        del events[: max(0, len(events) - self.limit)]
        self._events.move_to_end(key)
        while len(self._events) > self.max_keys:
            self._events.popitem(last=False)

    def clear(self, key: str) -> None:
        self._events.pop(key, None)


@dataclass(frozen=True)
class Verdict:
    """Whether an attempt may go on, and if not, why (for the page and the audit log)."""

    allowed: bool
    reason: str = ""


class LoginGate:
    """Per-address and per-account failure limits plus a bound on concurrent password checks."""

    def __init__(
        self,
        *,
        per_address: int = 10,
        per_account: int = 5,
        window: float = LOGIN_WINDOW,
        concurrent: int | None = None,
        queue: int = 4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._addresses = _Window(per_address, window)
        self._accounts = _Window(per_account, window)
        self._clock = clock
        self._lock = threading.Lock()
        # Half the cores (at least one): a flood of wrong passwords can never take every core.
        self._slots = threading.BoundedSemaphore(concurrent or max(1, (os.cpu_count() or 2) // 2))
        self._waiting = 0
        self._queue = queue

    def check(self, address: str | None, account: str) -> Verdict:
        """Before any work: is this address or account over its failure budget?"""
        now = self._clock()
        with self._lock:
            if self._addresses.count(address or "-", now) >= self._addresses.limit:
                return Verdict(False, "address")
            if self._accounts.count(account, now) >= self._accounts.limit:
                return Verdict(False, "account")
        return Verdict(True)

    def acquire(self, timeout: float = 5.0) -> bool:
        """A slot for one password verification; False when too many wait already or none frees up."""
        with self._lock:
            if self._waiting >= self._queue:
                return False
            self._waiting += 1
        try:
            return self._slots.acquire(timeout=timeout)
        finally:
            with self._lock:
                self._waiting -= 1

    def release(self) -> None:
        self._slots.release()

    def failed(self, address: str | None, account: str) -> None:
        now = self._clock()
        with self._lock:
            self._addresses.add(address or "-", now)
            self._accounts.add(account, now)

    def succeeded(self, account: str) -> None:
        with self._lock:
            self._accounts.clear(account)


@dataclass(frozen=True)
class Admission:
    """What the audit log writes for one event of a client."""

    write: bool
    #: Lines suppressed in this client's previous window, to be summarised now (0: nothing to say).
    summarise: int = 0
    #: This event is the first one over the budget: say once that further ones are only counted.
    first_suppressed: bool = False


class AuditBudget:
    """At most ``limit`` audit lines per client and window; the rest are counted and summarised.

    The first suppressed event of a window writes one line saying that further events are counted;
    the count is written when the client's next event opens a new window.
    """

    def __init__(
        self, limit: int = 120, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._spent: OrderedDict[str, tuple[float, int, int]] = OrderedDict()

    def admit(self, client: str | None) -> Admission:
        key = client or "-"
        now = self._clock()
        with self._lock:
            start, used, suppressed = self._spent.get(key, (now, 0, 0))
            closed = 0
            if now - start >= self.window:
                start, used, closed, suppressed = now, 0, suppressed, 0
            if used < self.limit:
                self._spent[key] = (start, used + 1, suppressed)
                result = Admission(True, closed)
            else:
                self._spent[key] = (start, used, suppressed + 1)
                result = Admission(False, closed, first_suppressed=suppressed == 0)
            self._spent.move_to_end(key)
            while len(self._spent) > 50_000:
                self._spent.popitem(last=False)
        return result
