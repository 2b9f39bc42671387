"""Webhook delivery to real HTTP servers in the test process: a server that answers 500 then 200 (the
signature checked as a receiver would), one that refuses, one that hangs, one that trickles; the
other sinks and the caller never wait for it; deduplication across restarts."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from derisk.deliver import Deliverer, DeliveryConfig, EcsFileTarget, RetryPolicy, WebhookTarget, from_options
from derisk.deliver.webhook import verify
from derisk.deliver.worker import backoff
from derisk.errors import UsageError
from schema_check import assert_valid
from test_deliver_support import FAST, HOSTILE, alert, dead_letters, settled, wait_for

SECRET = "s3cret-for-tests-only"
ENV = "DERISK_TEST_WEBHOOK_SECRET"


class Receiver:
    """An HTTP server answering POSTs with the next status of ``script`` (the last one repeats)."""

    def __init__(self, script: list[int], headers: dict[str, str] | None = None) -> None:
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                owner.requests.append({"headers": dict(self.headers), "body": body, "path": self.path})
                status = owner.script.pop(0) if len(owner.script) > 1 else owner.script[0]
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/derisk?team=soc"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Silent:
    """Accepts connections and never answers (or trickles a byte every ``trickle`` seconds)."""

    def __init__(self, trickle: float | None = None) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/"
        self.trickle = trickle
        self.stop = threading.Event()
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        held = []
        while not self.stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                break
            self.accepted += 1
            held.append(conn)
            if self.trickle is not None:
                threading.Thread(target=self._drip, args=(conn,), daemon=True).start()
        for c in held:
            c.close()

    def _drip(self, conn: socket.socket) -> None:
        try:
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            while not self.stop.wait(self.trickle):
                conn.sendall(b"X")
        except OSError:
            pass

    def close(self) -> None:
        self.stop.set()
        self.server.close()


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv(ENV, SECRET)
    yield ENV


def hook_config(tmp_path: Path, url: str, **extra: Any) -> DeliveryConfig:
    return DeliveryConfig(
        webhook=WebhookTarget(url=url, secret_env=ENV), dead_letter=tmp_path / "dead", retry=FAST, **extra
    )


def test_a_500_is_retried_and_each_attempt_is_signed(tmp_path: Path, secret_env: str) -> None:
    rx = Receiver([500, 200])
    a = alert(1, destination=HOSTILE[0])
    d = Deliverer(hook_config(tmp_path, rx.url, timeout=5.0), tmp_path / "state")
    try:
        d.submit([a])
        wait_for(settled(d, "webhook", 1))
    finally:
        d.close(2)
        rx.close()
    status = d.status()["webhook"]
    assert (status["delivered"], status["failed"], status["retried"], status["dead_lettered"]) == (1, 1, 1, 0)
    assert len(rx.requests) == 2 and all(r["path"] == "/hooks/derisk?team=soc" for r in rx.requests)
    ids = set()
    for r in rx.requests:
        h, body = r["headers"], r["body"]
        assert h["Content-Type"] == "application/json"
        assert verify(
            SECRET.encode(), body, h["X-Derisk-Signature"], h["X-Derisk-Timestamp"], now=time.time()
        )
        assert not verify(
            b"another secret", body, h["X-Derisk-Signature"], h["X-Derisk-Timestamp"], now=time.time()
        )
        tampered = body.replace(b'"kind": "beacon"', b'"kind": "upload"')
        assert tampered != body
        assert not verify(
            SECRET.encode(), tampered, h["X-Derisk-Signature"], h["X-Derisk-Timestamp"], now=time.time()
        )
        # A replay hours later is refused by the timestamp the signature covers.
        assert not verify(
            SECRET.encode(), body, h["X-Derisk-Signature"], h["X-Derisk-Timestamp"], now=time.time() + 3600
        )
        doc = json.loads(body)
        assert_valid(doc)
        assert doc["schema"] == "derisk.webhook/1" and doc["alert"] == json.loads(json.dumps(a.to_json()))
        assert h["X-Derisk-Delivery"] == doc["delivery_id"]
        assert doc["sent_at"] == datetime.fromtimestamp(doc["timestamp"], UTC).isoformat().replace(
            "+00:00", "Z"
        )
        ids.add(doc["delivery_id"])
    assert len(ids) == 2
    assert SECRET not in json.dumps(d.status())


def test_a_4xx_is_dead_lettered_at_once_but_429_is_retried(tmp_path: Path, secret_env: str) -> None:
    refused = Receiver([403])
    busy = Receiver([429, 200], headers={"Retry-After": "0"})
    d1 = Deliverer(hook_config(tmp_path / "a", refused.url), tmp_path / "a" / "state")
    d2 = Deliverer(hook_config(tmp_path / "b", busy.url), tmp_path / "b" / "state")
    try:
        d1.submit([alert(1)])
        d2.submit([alert(1)])
        wait_for(settled(d1, "webhook", 1))
        wait_for(settled(d2, "webhook", 1))
    finally:
        d1.close(2)
        d2.close(2)
        refused.close()
        busy.close()
    assert len(refused.requests) == 1
    (letter,) = dead_letters(tmp_path / "a" / "dead", "webhook")
    assert_valid(letter)
    assert (
        letter["reason"]
        == f"refused: POST http://127.0.0.1:{refused.server.server_address[1]}/hooks/derisk: HTTP 403"
    )
    assert letter["attempts"] == 1 and letter["alert"]["alert_id"] == alert(1).alert_id
    assert "team=soc" not in letter["reason"]  # a token in the query is not written out
    assert d2.status()["webhook"]["delivered"] == 1 and len(busy.requests) == 2


def test_a_hanging_webhook_blocks_neither_the_caller_nor_the_ecs_file(
    tmp_path: Path, secret_env: str
) -> None:
    hang = Silent()
    ecs = tmp_path / "alerts.ndjson"
    cfg = DeliveryConfig(
        ecs_file=EcsFileTarget(ecs),
        webhook=WebhookTarget(url=hang.url, secret_env=ENV),
        dead_letter=tmp_path / "dead",
        retry=RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.01),
        timeout=0.5,
    )
    d = Deliverer(cfg, tmp_path / "state")
    alerts = [alert(n) for n in range(20)]
    try:
        d.submit(alerts)  # returns while the webhook is stuck on the first alert
        wait_for(settled(d, "ecs-file", 20))
        assert d.status()["webhook"]["delivered"] == 0 and d.status()["webhook"]["queued"] >= 19
        started = time.monotonic()
        d.close(1.0)
        took = time.monotonic() - started
    finally:
        hang.close()
    assert took < 5, f"close(1.0) took {took:.1f} s"  # bounded: not 20 alerts x 2 attempts x 0.5 s
    assert len(ecs.read_text(encoding="utf-8").splitlines()) == 20
    letters = dead_letters(tmp_path / "dead", "webhook")
    assert sorted(x["alert"]["alert_id"] for x in letters) == sorted(a.alert_id for a in alerts)
    assert any("close timed out" in x["reason"] for x in letters)
    status = d.status()["webhook"]
    assert status["dead_lettered"] == 20 and status["delivered"] == 0
    assert "no answer within 0.5 s" in (status["last_error"] or "")


def test_a_server_that_trickles_bytes_is_cut_off_at_the_timeout(tmp_path: Path, secret_env: str) -> None:
    drip = Silent(trickle=0.1)
    cfg = hook_config(tmp_path, drip.url, timeout=0.6)
    cfg = DeliveryConfig(**{**cfg.__dict__, "retry": RetryPolicy(max_attempts=1)})
    d = Deliverer(cfg, tmp_path / "state")
    try:
        d.submit([alert(1)])
        wait_for(settled(d, "webhook", 1), timeout=5)  # a per-read timeout alone would wait forever
    finally:
        d.close(1)
        drip.close()
    (letter,) = dead_letters(tmp_path / "dead", "webhook")
    assert "gave up after 1 attempt:" in letter["reason"]


def test_an_alert_is_sent_once_per_content_also_across_restarts(tmp_path: Path, secret_env: str) -> None:
    rx = Receiver([200])
    try:
        d = Deliverer(hook_config(tmp_path, rx.url), tmp_path / "state")
        d.submit([alert(1), alert(1)])
        d.submit([alert(1)])
        wait_for(settled(d, "webhook", 1))
        d.close(2)
        assert len(rx.requests) == 1 and d.status()["webhook"]["duplicates"] == 2
        again = Deliverer(hook_config(tmp_path, rx.url), tmp_path / "state")
        again.submit([alert(1)])  # same content after a restart: not sent
        changed = alert(1, score=0.95)  # same alert id, new content: sent
        assert changed.alert_id == alert(1).alert_id
        again.submit([changed])
        wait_for(settled(again, "webhook", 1))
        again.close(2)
    finally:
        rx.close()
    assert len(rx.requests) == 2
    assert json.loads(rx.requests[1]["body"])["alert"]["score"] == 0.95


def test_the_secret_comes_from_the_environment_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(UsageError) as err:
        from_options(webhook="https://soc.example/hook", webhook_secret_env=ENV)
    assert f"environment variable {ENV} is not set" in str(err.value)
    with pytest.raises(UsageError) as err:
        Deliverer(hook_config(tmp_path, "https://soc.example/hook"), tmp_path / "state")
    assert "--webhook-secret-env" in str(err.value)
    monkeypatch.setenv(ENV, SECRET)
    cfg = from_options(webhook="https://soc.example/hook", webhook_secret_env=ENV)
    assert cfg.webhook is not None and SECRET not in repr(cfg)


def test_a_full_queue_dead_letters_at_once_instead_of_blocking(tmp_path: Path, secret_env: str) -> None:
    hang = Silent()
    cfg = hook_config(tmp_path, hang.url, timeout=5.0, queue_size=2)
    d = Deliverer(cfg, tmp_path / "state")
    try:
        d.submit([alert(n) for n in range(8)])  # one may be taken in flight at once, two wait
        status = d.status()["webhook"]
        assert status["dead_lettered"] >= 5 and status["queued"] <= 3
        assert all(
            x["reason"] == "queue full (2 alerts waiting)" for x in dead_letters(tmp_path / "dead", "webhook")
        )
    finally:
        d.close(0.2)
        hang.close()
    assert d.status()["webhook"]["dead_lettered"] == 8


def test_backoff_doubles_up_to_the_cap_with_jitter_between_half_and_all() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=1.0, max_delay=60.0)
    assert [backoff(n, policy, rand=lambda: 1.0) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert [backoff(n, policy, rand=lambda: 0.0) for n in (1, 3, 9)] == [0.5, 2.0, 30.0]
    spread = {round(backoff(4, policy), 3) for _ in range(200)}
    assert len(spread) > 100 and min(spread) >= 4.0 and max(spread) <= 8.0
