"""Alerts as signed JSON POSTs: one request per alert, HMAC-SHA256 over the exact body.

The body is ``{"schema": "derisk.webhook/1", "delivery_id", "timestamp", "sent_at", "alert"}`` (the
alert as ``derisk alerts --json`` has it). Headers: ``X-Derisk-Signature: sha256=HEX`` with
``HEX = HMAC-SHA256(secret, body)``, ``X-Derisk-Timestamp`` (Unix seconds, equal to the body's
``timestamp``, so the signature covers it) and ``X-Derisk-Delivery`` (a fresh id per attempt). A
receiver checks the signature with a constant-time comparison, refuses a timestamp more than a few
minutes old, and may remember delivery ids to refuse a replay within that window.

2xx is delivered. 408, 429 and 5xx, timeouts and connection failures are retried (``Retry-After`` in
seconds is honoured up to the maximum backoff); any other status (redirects are not followed: the
signature is for the configured receiver) is a refusal and dead-letters the alert at once. A whole
exchange is bounded by the timeout even when the receiver trickles bytes: a timer closes the
connection when time is up.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import json
import socket
import ssl
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

from derisk import __version__
from derisk.deliver.base import DeliveryFailed, Item, Rejected, describe
from derisk.deliver.config import WebhookTarget

WEBHOOK_SCHEMA: Final = "derisk.webhook/1"
SIGNATURE_HEADER: Final = "X-Derisk-Signature"
TIMESTAMP_HEADER: Final = "X-Derisk-Timestamp"
DELIVERY_HEADER: Final = "X-Derisk-Delivery"
#: Response bytes read (and ignored) at most.
MAX_RESPONSE: Final = 64 * 1024


def sign(secret: bytes, body: bytes) -> str:
    """The ``X-Derisk-Signature`` value for ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(
    secret: bytes, body: bytes, signature: str, timestamp: str, *, now: float, tolerance: float = 300
) -> bool:
    """What a receiver does (and what the tests do): the signature matches the body, the timestamp
    header equals the body's, and it is within ``tolerance`` seconds of ``now``."""
    if not hmac.compare_digest(sign(secret, body), signature):
        return False
    try:
        stamp = int(timestamp)
        doc = json.loads(body)
    except ValueError:
        return False
    return isinstance(doc, dict) and doc.get("timestamp") == stamp and abs(now - stamp) <= tolerance


def build_body(item: Item, *, now: float, delivery_id: str) -> bytes:
    doc: dict[str, Any] = {
        "schema": WEBHOOK_SCHEMA,
        "delivery_id": delivery_id,
        "timestamp": int(now),
        "sent_at": datetime.fromtimestamp(int(now), UTC).isoformat().replace("+00:00", "Z"),
        "alert": item.alert.to_json(),
    }
    return json.dumps(doc, ensure_ascii=True, sort_keys=True).encode("ascii")


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return float(value.strip())
    return None


class WebhookSink:
    name = "webhook"

    def __init__(self, target: WebhookTarget, secret: bytes, *, timeout: float) -> None:
        self.target = target
        self.timeout = timeout
        self._secret = secret
        parts = urlsplit(target.url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._shown = f"{parts.scheme}://{parts.netloc}{parts.path}"  # the query may hold a token
        self._lock = threading.Lock()
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=self.timeout, context=ssl.create_default_context()
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)

    def send(self, item: Item) -> None:
        now = time.time()
        delivery_id = uuid.uuid4().hex
        body = build_body(item, now=now, delivery_id=delivery_id)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"derisk/{__version__}",
            SIGNATURE_HEADER: sign(self._secret, body),
            TIMESTAMP_HEADER: str(int(now)),
            DELIVERY_HEADER: delivery_id,
        }
        conn = self._connection()
        with self._lock:
            self._conn = conn
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            self.abort()

        timer = threading.Timer(self.timeout, expire)
        timer.daemon = True
        timer.start()
        try:
            conn.request("POST", self._path, body=body, headers=headers)
            response = conn.getresponse()
            status = response.status
            retry_after = _retry_after(response.getheader("Retry-After"))
            response.read(MAX_RESPONSE)
        except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
            # the socket's own timeout and the timer measure the same limit; whichever fires first
            timed_out = expired.is_set() or isinstance(exc, TimeoutError)
            reason = f"no answer within {self.timeout:g} s" if timed_out else describe(exc)
            raise DeliveryFailed(f"POST {self._shown}: {reason}") from None
        finally:
            timer.cancel()
            with self._lock:
                self._conn = None
            conn.close()
        if expired.is_set():  # cut off mid-answer: a status seen, but not the whole response
            raise DeliveryFailed(f"POST {self._shown}: no whole answer within {self.timeout:g} s")
        if 200 <= status < 300:
            return
        text = f"POST {self._shown}: HTTP {status}"
        if status in (408, 429) or status >= 500:
            raise DeliveryFailed(text, retry_after=retry_after)
        raise Rejected(text)

    def flush(self) -> None:
        """Nothing to make durable: the receiver has the message once :meth:`send` returned."""

    def abort(self) -> None:
        """Shut the connection down so a blocked read returns at once."""
        with self._lock:
            conn = self._conn
        sock = conn.sock if conn is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.abort()
