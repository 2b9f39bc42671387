"""Alerts as RFC 5424 syslog messages over UDP (RFC 5426), TCP (RFC 6587) or TLS (RFC 5425).

A message is ``<PRI>1 TIMESTAMP HOSTNAME derisk PROCID MSGID [SD-ID k="v" …] BOM MSG``: PRI from the
configured facility and the alert's severity, MSGID the alert kind, one SD-ELEMENT with the alert's
fields, and MSG the alert's sentence. Names from the network reach the receiver only inside
PARAM-VALUEs and MSG, where ``"``, ``\\`` and ``]`` are escaped as RFC 5424 section 6.3.3 asks, and
control and invisible format characters (line breaks, NUL, bidi overrides) are shown as ``\\xNN`` /
``\\uNNNN`` text, so no name can end a frame, a line or the STRUCTURED-DATA. Each value is cut to
:data:`MAX_VALUE_CHARS`; the message is cut (at a UTF-8 character boundary) to the target's
``max_bytes``. Over TCP and TLS each message is framed by octet counting (``LEN SP MSG``, RFC 6587
section 3.4.1; RFC 5425 section 4.3), which a message's content cannot break.

UDP is fire-and-forget: a receiver that is down loses the messages without derisk knowing (an ICMP
refusal on the loopback is seen and retried). Over TCP and TLS, a connection the receiver has closed is
noticed before the next message and reopened; syslog has no acknowledgement, so a message written
into a connection the receiver drops at that moment can be lost.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import ssl
import threading
from datetime import UTC, datetime
from typing import Final

from derisk.deliver.base import DeliveryFailed, Item, describe
from derisk.deliver.config import SyslogTarget, check_ca_file
from derisk.detect.alert import Alert
from derisk.errors import UsageError
from derisk.safetext import visible

#: alert severity -> RFC 5424 severity (2 critical, 3 error, 4 warning, 5 notice).
SEVERITY: Final = {"critical": 2, "high": 3, "medium": 4, "low": 5}
MAX_VALUE_CHARS: Final = 256
BOM: Final = b"\xef\xbb\xbf"
NILVALUE: Final = "-"


def _ascii_field(text: str | None, limit: int) -> str:
    """A HEADER field: PRINTUSASCII (33-126) only, at most ``limit`` characters, NILVALUE when empty."""
    kept = "".join(ch for ch in (text or "") if 33 <= ord(ch) <= 126)[:limit]
    return kept or NILVALUE


def escape_value(text: str) -> str:
    """A PARAM-VALUE: controls made visible, bounded, then ``\\``, ``"`` and ``]`` escaped."""
    shown = visible(text, MAX_VALUE_CHARS)
    return shown.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _params(alert: Alert) -> list[tuple[str, str | None]]:
    """SD-PARAMs in order of importance (the last ones are dropped first when a message is too long)."""
    t = alert.target
    pairs: list[tuple[str, str | None]] = [
        ("alert_id", alert.alert_id),
        ("kind", alert.kind),
        ("severity", alert.severity),
        ("score", f"{alert.score:.3f}"),
        ("system", t.system),
        ("src_ip", t.src_ip),
        ("destination", t.destination),
        ("dst_ip", t.dst_ip),
        ("jurisdiction", t.jurisdiction),
        ("controller", t.controller),
        ("organisation", t.organisation),
        ("server_name", t.server_name),
        ("jurisdiction_basis", t.jurisdiction_basis),
        ("first_seen", alert.first_seen.isoformat() if alert.first_seen else None),
        ("last_seen", alert.last_seen.isoformat() if alert.last_seen else None),
        ("flow_count", str(alert.flow_count)),
        ("laws", "; ".join(law.label() for law in alert.laws) or None),
    ]
    return [(key, value) for key, value in pairs if value]


def _cut_utf8(data: bytes, limit: int) -> bytes:
    if len(data) <= limit:
        return data
    return data[:limit].decode("utf-8", "ignore").encode("utf-8")


def format_message(
    alert: Alert,
    target: SyslogTarget,
    *,
    hostname: str | None = None,
    procid: int | None = None,
    now: datetime | None = None,
) -> bytes:
    """One RFC 5424 message (without transport framing), at most ``target.max_bytes`` octets."""
    pri = target.facility * 8 + SEVERITY.get(alert.severity, 5)
    stamp = (
        (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    )
    header = (
        f"<{pri}>1 {stamp} {_ascii_field(hostname or socket.gethostname(), 255)} derisk "
        f"{_ascii_field(str(procid if procid is not None else os.getpid()), 128)} {_ascii_field(alert.kind, 32)} "
    ).encode("ascii")
    budget = target.max_bytes - len(header) - len(BOM) - 1
    sd = f"[{target.sd_id}"
    for key, value in _params(alert):
        if value is None:
            continue
        param = f' {key}="{escape_value(value)}"'
        if (
            len((sd + param + "]").encode("utf-8", "replace")) > budget // 2
            and len(sd) > len(target.sd_id) + 1
        ):
            break  # keep at least half of the message for MSG; later params are the least needed
        sd += param
    sd_bytes = (sd + "]").encode("utf-8", "replace")
    msg = visible(alert.sentence, 4000).encode("utf-8", "replace")
    body = header + sd_bytes + b" " + (BOM if target.bom else b"")
    return body + _cut_utf8(msg, max(0, target.max_bytes - len(body)))


def frame(message: bytes) -> bytes:
    """Octet-counting framing (RFC 6587 3.4.1, RFC 5425 4.3): ``MSG-LEN SP SYSLOG-MSG``."""
    return str(len(message)).encode("ascii") + b" " + message


class SyslogSink:
    name = "syslog"

    def __init__(self, target: SyslogTarget, *, timeout: float) -> None:
        self.target = target
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._context: ssl.SSLContext | None = None
        if target.transport == "tls":
            if target.ca_file is not None and (problem := check_ca_file(target.ca_file)):
                raise UsageError(problem, source="--syslog")
            ctx = ssl.create_default_context(cafile=str(target.ca_file) if target.ca_file else None)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            self._context = ctx

    def _connect(self) -> socket.socket:
        t = self.target
        if t.transport == "udp":
            family, kind, proto, _, addr = socket.getaddrinfo(t.host, t.port, type=socket.SOCK_DGRAM)[0]
            sock = socket.socket(family, kind, proto)
            sock.settimeout(self.timeout)
            sock.connect(addr)  # connected: an ICMP refusal shows on the next send
            return sock
        raw = socket.create_connection((t.host, t.port), timeout=self.timeout)
        if self._context is None:
            return raw
        try:
            return self._context.wrap_socket(raw, server_hostname=t.host)
        except BaseException:
            raw.close()
            raise

    def _stale(self, sock: socket.socket) -> bool:
        """Whether the receiver has closed or reset the connection. A syslog receiver sends no data,
        so a readable socket means end of stream, a reset, or TLS records such as the session
        tickets a TLS 1.3 server sends after the handshake (read and dropped here)."""
        if self.target.transport == "udp":
            return False
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return False
            sock.setblocking(False)
            try:
                if isinstance(sock, ssl.SSLSocket):
                    return sock.recv(4096) == b""
                return sock.recv(1, socket.MSG_PEEK) == b""
            finally:
                sock.settimeout(self.timeout)
        except (ssl.SSLWantReadError, BlockingIOError):
            return False  # only TLS housekeeping was waiting
        except (OSError, ValueError):
            return True

    def send(self, item: Item) -> None:
        message = format_message(item.alert, self.target)
        data = message if self.target.transport == "udp" else frame(message)
        with self._lock:
            sock = self._sock
        try:
            if sock is not None and self._stale(sock):
                self._drop()
                sock = None
            if sock is None:
                sock = self._connect()
                with self._lock:
                    self._sock = sock
            if self.target.transport == "udp":
                sock.send(data)
            else:
                sock.sendall(data)
        except (OSError, ssl.SSLError) as exc:
            self._drop()
            where = f"{self.target.transport}://{self.target.host}:{self.target.port}"
            raise DeliveryFailed(f"{where}: {describe(exc)}") from None

    def _drop(self) -> None:
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def flush(self) -> None:
        """Nothing to make durable: the receiver has the message once :meth:`send` returned."""

    def abort(self) -> None:
        with self._lock:
            sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._drop()
