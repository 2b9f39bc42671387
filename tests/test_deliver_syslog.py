"""Syslog delivery to real listeners in the test process (UDP, TCP, TLS with a certificate made here):
RFC 5424 messages that a strict parser reads back field for field, octet-counted frames that hostile
names cannot break, and a receiver that is down, then back."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from derisk.deliver import Deliverer, DeliveryConfig, SyslogTarget
from derisk.deliver.syslog import BOM, format_message, frame
from derisk.safetext import visible
from test_deliver_support import FAST, HOSTILE, alert, certificate, dead_letters, settled, wait_for

HEADER = re.compile(rb"^<(\d{1,3})>1 (\S{1,64}) ([!-~]{1,255}) ([!-~]{1,48}) ([!-~]{1,128}) ([!-~]{1,32}) ")


def parse_5424(data: bytes) -> tuple[dict[str, bytes], dict[str, dict[str, str]], bytes]:
    """A strict reading of RFC 5424: HEADER fields, STRUCTURED-DATA (every ``"``, ``\\`` and ``]`` in a
    PARAM-VALUE must be escaped), MSG. Raises ValueError on anything else."""
    m = HEADER.match(data)
    if not m:
        raise ValueError(f"bad header: {data[:120]!r}")
    header = dict(zip(("pri", "timestamp", "hostname", "app", "procid", "msgid"), m.groups(), strict=True))
    pos = m.end()
    elements: dict[str, dict[str, str]] = {}
    if data[pos : pos + 1] == b"-":
        pos += 1
    while data[pos : pos + 1] == b"[":
        end = pos + 1
        while data[end : end + 1] not in (b" ", b"]"):
            end += 1
        sd_id = data[pos + 1 : end].decode("ascii")
        params: dict[str, str] = {}
        pos = end
        while data[pos : pos + 1] == b" ":
            eq = data.index(b"=", pos)
            name = data[pos + 1 : eq].decode("ascii")
            if data[eq + 1 : eq + 2] != b'"' or not re.fullmatch(r"[!#-<>-\\^-~]{1,32}", name):
                raise ValueError(f"bad param {name!r}")
            i, value = eq + 2, bytearray()
            while True:
                c = data[i : i + 1]
                if c == b"":
                    raise ValueError("unterminated value")
                if c == b"\\" and data[i + 1 : i + 2] in (b'"', b"\\", b"]"):
                    value += data[i + 1 : i + 2]
                    i += 2
                    continue
                if c == b"]":
                    raise ValueError("unescaped ] in a value")
                if c == b'"':
                    break
                value += c
                i += 1
            params[name] = value.decode("utf-8")
            pos = i + 1
        if data[pos : pos + 1] != b"]":
            raise ValueError("SD-ELEMENT not closed")
        elements[sd_id] = params
        pos += 1
    if pos == len(data):
        return header, elements, b""
    if data[pos : pos + 1] != b" ":
        raise ValueError("no space before MSG")
    return header, elements, data[pos + 1 :]


def read_frames(conn: socket.socket) -> Iterator[bytes]:
    """Octet-counted frames (RFC 6587 3.4.1) until the peer closes."""
    buf = b""
    while True:
        while b" " not in buf[:12]:
            chunk = conn.recv(65536)
            if not chunk:
                return
            buf += chunk
        size, rest = buf.split(b" ", 1)
        assert size.isdigit() and not size.startswith(b"0"), size
        while len(rest) < int(size):
            chunk = conn.recv(65536)
            if not chunk:
                raise AssertionError("frame cut short")
            rest += chunk
        yield rest[: int(size)]
        buf = rest[int(size) :]


class StreamListener:
    """A TCP (or TLS) syslog receiver in a thread; ``messages`` collects the de-framed messages."""

    def __init__(self, context: ssl.SSLContext | None = None, port: int = 0) -> None:
        self.server = socket.create_server(("127.0.0.1", port))
        self.port = self.server.getsockname()[1]
        self.context = context
        self.messages: list[bytes] = []
        self.connections = 0
        self.conn: socket.socket | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            self.conn = conn
            try:
                if self.context is not None:
                    conn = self.context.wrap_socket(conn, server_side=True)
                for message in read_frames(conn):
                    self.messages.append(message)
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()

    def close(self) -> None:
        """Stop listening and close the open connection, as a receiver that restarts does."""
        self.server.close()
        if self.conn is not None:
            with contextlib.suppress(OSError):
                self.conn.shutdown(socket.SHUT_RDWR)


def config(tmp_path: Path, transport: str, port: int, **extra: object) -> DeliveryConfig:
    target = SyslogTarget(transport=transport, host="127.0.0.1", port=port, **extra)  # type: ignore[arg-type]
    return DeliveryConfig(syslog=target, dead_letter=tmp_path / "dead", retry=FAST, timeout=2.0)


def test_a_message_reads_back_field_for_field() -> None:
    a = alert(1)
    target = SyslogTarget("udp", "h", 514)
    when = dt.datetime(2026, 3, 2, 7, 0, 1, 250000, tzinfo=dt.UTC)
    data = format_message(a, target, hostname="sensor-1", procid=42, now=when)
    header, sd, msg = parse_5424(data)
    assert a.severity == "high"  # medium by its score, one level up for a compelling law
    assert header["pri"] == str(16 * 8 + 3).encode()  # facility local0 (16), severity error (3)
    assert header["timestamp"] == b"2026-03-02T07:00:01.250000Z"
    assert (header["hostname"], header["app"], header["procid"], header["msgid"]) == (
        b"sensor-1",
        b"derisk",
        b"42",
        b"beacon",
    )
    params = sd["derisk@32473"]
    assert params["alert_id"] == a.alert_id and params["destination"] == "cn-1.example.com"
    assert params["jurisdiction"] == "CN" and params["laws"] == "National Intelligence Law art. 7 [A]"
    assert msg.startswith(BOM) and msg[len(BOM) :].decode("utf-8") == a.sentence
    _, _, bare = parse_5424(
        format_message(a, SyslogTarget("udp", "h", 514, bom=False), hostname="h", procid=1)
    )
    assert bare.decode("utf-8") == a.sentence


@pytest.mark.parametrize("hostile", HOSTILE)
@pytest.mark.parametrize("max_bytes", [480, 2048, 8192])
def test_hostile_names_stay_inside_their_values(hostile: str, max_bytes: int) -> None:
    a = alert(2, destination=hostile)
    data = format_message(a, SyslogTarget("tcp", "h", 514, max_bytes=max_bytes), hostname="h", procid=1)
    assert len(data) <= max_bytes
    assert not re.search(rb"[\x00-\x1f\x7f]", data), "a raw control character in the message"
    data.decode("utf-8")  # cut at a character boundary
    header, sd, _msg = parse_5424(data)
    assert list(sd) == ["derisk@32473"] and header["msgid"] == b"beacon"
    params = sd["derisk@32473"]
    assert params["alert_id"] == a.alert_id
    if "destination" in params:  # the value is the escaped, bounded name: nothing leaked out of it
        assert visible(hostile, 256) == params["destination"]
    # A frame with this message in it is one frame, whatever the name holds.
    framed = frame(data) + frame(b"<13>1 - - - - - - next")
    a_side, b_side = socket.socketpair()
    with a_side, b_side:
        a_side.sendall(framed)
        a_side.shutdown(socket.SHUT_WR)
        assert list(read_frames(b_side)) == [data, b"<13>1 - - - - - - next"]


def test_udp_datagrams_reach_a_real_listener(tmp_path: Path) -> None:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(5)
    with rx:
        d = Deliverer(config(tmp_path, "udp", rx.getsockname()[1]), tmp_path / "state")
        alerts = [alert(n) for n in range(3)] + [alert(9, destination=HOSTILE[0])]
        d.submit(alerts)
        got = [rx.recvfrom(65535)[0] for _ in alerts]
        d.close(2)
    ids = [parse_5424(g)[1]["derisk@32473"]["alert_id"] for g in got]
    assert sorted(ids) == sorted(a.alert_id for a in alerts)
    assert all(len(g) <= 2048 for g in got)
    assert d.status()["syslog"]["delivered"] == 4


def test_tcp_frames_reach_a_real_listener_and_a_closed_connection_is_reopened(tmp_path: Path) -> None:
    server = StreamListener()
    d = Deliverer(config(tmp_path, "tcp", server.port), tmp_path / "state")
    try:
        d.submit([alert(1), alert(2, destination=HOSTILE[1])])
        wait_for(lambda: len(server.messages) == 2)
        # The receiver restarts: the old connection is closed; the next alert goes over a new one.
        server.close()
        wait_for(lambda: not server._thread.is_alive())
        server = StreamListener(port=server.port)
        d.submit([alert(3)])
        wait_for(lambda: len(server.messages) == 1)
    finally:
        d.close(2)
        server.close()
    assert parse_5424(server.messages[0])[1]["derisk@32473"]["alert_id"] == alert(3).alert_id
    assert d.status()["syslog"]["delivered"] == 3


def test_tls_delivers_to_a_server_whose_certificate_chains_to_the_ca_file(tmp_path: Path) -> None:
    cert_file, key_file = certificate(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file, key_file)
    server = StreamListener(ctx)
    d = Deliverer(config(tmp_path, "tls", server.port, ca_file=cert_file, max_bytes=8192), tmp_path / "state")
    try:
        d.submit([alert(1, destination=HOSTILE[0])])
        wait_for(lambda: len(server.messages) == 1)
        time.sleep(0.2)  # the server's TLS 1.3 session tickets are waiting on the connection now
        d.submit([alert(2), alert(3)])
        wait_for(lambda: len(server.messages) == 3)
    finally:
        d.close(2)
        server.close()
    assert server.connections == 1  # one connection for all: the tickets are not taken for a close
    _header, sd, _ = parse_5424(server.messages[0])
    assert sd["derisk@32473"]["destination"] == visible(HOSTILE[0], 256)


def test_tls_refuses_a_server_the_ca_file_does_not_vouch_for(tmp_path: Path) -> None:
    cert_file, key_file = certificate(tmp_path)
    (tmp_path / "other").mkdir()
    other, _ = certificate(tmp_path / "other")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file, key_file)
    server = StreamListener(ctx)
    d = Deliverer(config(tmp_path, "tls", server.port, ca_file=other), tmp_path / "state")
    try:
        d.submit([alert(1)])
        wait_for(settled(d, "syslog", 1))
    finally:
        d.close(2)
        server.close()
    assert server.messages == []
    (dead,) = dead_letters(tmp_path / "dead", "syslog")
    assert "CERTIFICATE_VERIFY_FAILED" in dead["reason"] or "certificate verify failed" in dead["reason"]


def test_a_receiver_that_is_down_is_retried_then_dead_lettered_and_others_go_on(tmp_path: Path) -> None:
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now: connections are refused
    d = Deliverer(config(tmp_path, "tcp", port), tmp_path / "state")
    d.submit([alert(1), alert(2)])
    wait_for(settled(d, "syslog", 2))
    status = d.status()["syslog"]
    assert status["delivered"] == 0 and status["dead_lettered"] == 2
    assert status["failed"] == 2 * FAST.max_attempts and status["retried"] == 2 * (FAST.max_attempts - 1)
    assert "ECONNREFUSED" in status["last_error"]
    letters = dead_letters(tmp_path / "dead", "syslog")
    assert [x["alert"]["alert_id"] for x in letters] == [alert(1).alert_id, alert(2).alert_id]
    assert all(x["schema"] == "derisk.dead-letter/1" and x["attempts"] == FAST.max_attempts for x in letters)
    assert all("gave up after 4 attempts" in x["reason"] for x in letters)
    # The receiver comes back: an alert the same as a dead-lettered one is tried again (not settled).
    server = StreamListener(port=port)
    try:
        d.submit([alert(1)])
        wait_for(lambda: len(server.messages) == 1)
    finally:
        d.close(2)
        server.close()


def test_a_receiver_that_stops_reading_does_not_hold_close(tmp_path: Path) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.append(server.accept()[0]), daemon=True).start()
    cfg = config(tmp_path, "tcp", server.getsockname()[1], max_bytes=8192)
    d = Deliverer(DeliveryConfig(**{**cfg.__dict__, "timeout": 30.0}), tmp_path / "state")
    alerts = [alert(n, destination=HOSTILE[1] + str(n)) for n in range(600)]  # ~5 MB of messages
    try:
        d.submit(alerts)
        wait_for(lambda: d.status()["syslog"]["delivered"] > 0)  # written until the buffers are full
        started = time.monotonic()
        d.close(1.0)
        took = time.monotonic() - started
    finally:
        for conn in held:
            conn.close()
        server.close()
    assert took < 5, f"close(1.0) took {took:.1f} s with a 30 s send timeout"
    status = d.status()["syslog"]
    assert status["delivered"] + status["dead_lettered"] == len(alerts) and status["dead_lettered"] > 0
    letters = dead_letters(tmp_path / "dead", "syslog")
    assert len(letters) == status["dead_lettered"]
    assert {x["alert"]["alert_id"] for x in letters} <= {a.alert_id for a in alerts}
    assert any(x["reason"].startswith("close timed out") for x in letters)
