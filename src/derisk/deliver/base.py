"""What every sink shares: the item a worker carries, the two kinds of failure, and append-only NDJSON
files whose lines are whole or absent (the dead-letter files, the delivered log, the ECS file)."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from derisk.detect.alert import Alert
from derisk.store.alert_flows import AlertFlows


class DeliveryFailed(Exception):
    """A delivery attempt failed; ``retry`` says whether another attempt may succeed."""

    retry = True

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        #: Seconds the receiver asked us to wait (HTTP ``Retry-After``), if it did.
        self.retry_after = retry_after


class Rejected(DeliveryFailed):
    """The receiver refused the alert for good (an HTTP 4xx other than 408 and 429): no retry."""

    retry = False


@dataclass(frozen=True)
class Item:
    """One alert on its way to one sink."""

    alert: Alert
    #: The flows behind the alert (for the ECS document), when the caller passed them.
    flows: AlertFlows | None
    digest: str


class Sink(Protocol):
    name: str

    def send(self, item: Item) -> None:
        """Deliver one alert or raise :class:`DeliveryFailed`."""

    def flush(self) -> None:
        """Make what :meth:`send` wrote durable (raise OSError if it cannot); a no-op for network sinks,
        whose receiver took the alert when :meth:`send` returned."""

    def abort(self) -> None:
        """Break a blocked :meth:`send` from another thread (close its connection)."""

    def close(self) -> None: ...


#: Keys of an alert's JSON form that restate others (``explanation``: the sentence's translatable
#: templates with the values the other keys hold); left out of the digest, so that a version that
#: adds such a key does not deliver every alert again.
_RESTATED: Final = frozenset({"explanation"})


def content_digest(alert: Alert) -> str:
    """SHA-256 of the alert's JSON form: equal digests, equal content (deduplication key)."""
    doc = {k: v for k, v in alert.to_json().items() if k not in _RESTATED}
    text = json.dumps(doc, sort_keys=True, ensure_ascii=True, default=str)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def describe(exc: BaseException) -> str:
    """A one-line reason for a failure (``OSError`` names its errno)."""
    if isinstance(exc, DeliveryFailed):
        return exc.reason
    if isinstance(exc, OSError) and exc.errno is not None:
        name = errno.errorcode.get(exc.errno, str(exc.errno))
        return f"{name}: {exc.strerror or exc}"
    return f"{type(exc).__name__}: {exc}"[:300]


def append_line(fd: int, data: bytes) -> None:
    """Append ``data`` (one line, newline included) with one write; on a short write (disk full, file
    size limit) cut the file back to where it was, so a reader never sees half a line."""
    start = os.fstat(fd).st_size
    try:
        written = os.write(fd, data)
    except OSError:
        _cut(fd, start)
        raise
    if written != len(data):
        _cut(fd, start)
        raise OSError(
            errno.ENOSPC, f"short write ({written} of {len(data)} bytes): disk full or file too large"
        )


def _cut(fd: int, size: int) -> None:
    with contextlib.suppress(OSError):
        os.ftruncate(fd, size)


def open_append(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new file in ``folder`` durable."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def dump_line(doc: dict[str, Any]) -> bytes:
    """One NDJSON line; a lone surrogate (undecodable bytes kept by a reader) becomes a JSON escape."""
    return (json.dumps(doc, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8", "backslashreplace")
