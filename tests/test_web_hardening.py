"""The dashboard under attack: login floods, audit floods, replayed tokens, restarts, proxies, slow clients.

Each test names the finding of the security audit (issue 14) it guards and fails without its fix.
The server tests run the real ``derisk serve`` (uvicorn) on a free loopback port.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from derisk.store.workspace import Workspace
from derisk.web.app import create_app
from derisk.web.audit import AuditLog
from derisk.web.auth import UserStore
from derisk.web.limits import AuditBudget, LoginGate
from web_helpers import PASSWORD, TestClient, csrf_of

BASE = "http://127.0.0.1"


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("web-hardening") / "ws"
    with Workspace.open(path, create=True):
        pass
    store = UserStore(path)
    store.add("ada", PASSWORD, "admin")
    store.add("vic", PASSWORD, "viewer")
    return path


def _audit(ws: Path) -> list[dict[str, object]]:
    path = ws / "web" / "audit.jsonl"
    return (
        [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []
    )


def _attempt(c: TestClient, name: str, password: str) -> int:
    page = c.get("/login")
    r = c.post("/login", data={"csrf": csrf_of(page.text), "username": name, "password": password},
               follow_redirects=False)  # fmt: skip
    return r.status_code


def test_failed_logins_are_limited_per_address_before_any_hash(ws: Path) -> None:
    """Finding 1: 40 attempts with 40 different names each cost an Argon2id hash."""
    with TestClient(create_app(ws, warm=False), base_url=BASE) as c:
        codes = [_attempt(c, f"nobody{i}", "wrong password, long enough") for i in range(14)]
    assert codes[:10] == [401] * 10
    assert codes[10:] == [429] * 4
    refused = [e for e in _audit(ws) if e["action"] == "login-refused"]
    assert [e["detail"] for e in refused[-4:]] == ["address"] * 4


def test_password_checks_are_bounded_server_wide() -> None:
    """Finding 1: at most ``concurrent`` checks run at once and few may queue; the rest are refused."""
    gate = LoginGate(concurrent=1, queue=1)
    assert gate.acquire(timeout=0.1)
    assert not gate.acquire(timeout=0.1)  # the slot is taken: the waiter gives up
    gate.release()
    assert gate.acquire(timeout=0.1)
    gate.release()


def test_a_login_form_token_is_good_for_one_attempt(ws: Path) -> None:
    """Finding 1: a login form token could be replayed for an hour."""
    with TestClient(create_app(ws, warm=False), base_url=BASE) as c:
        token = csrf_of(c.get("/login").text)
        form = {"csrf": token, "username": "vic", "password": "wrong password, long enough"}
        assert c.post("/login", data=form, follow_redirects=False).status_code == 401
        c.cookies.set("derisk_login", c.cookies.get("derisk_login") or "", path="/login")
        assert c.post("/login", data=form, follow_redirects=False).status_code == 403


def test_an_audit_flood_is_bounded_and_summarised(tmp_path: Path) -> None:
    """Finding 2: each refused attempt wrote a line (332 lines/s from one client)."""
    now = [0.0]
    log = AuditLog(tmp_path, budget=AuditBudget(limit=10, window=60.0, clock=lambda: now[0]))
    for _ in range(1000):
        log.record("login-refused", user="x", role=None, path="/login", client="192.0.2.7")
    log.record("view", user="ada", role="admin", path="/", client="192.0.2.8")  # another client is unaffected
    now[0] = 61.0
    log.record("login-refused", user="x", role=None, path="/login", client="192.0.2.7")
    lines = [json.loads(line) for line in log.path.read_text(encoding="utf-8").splitlines()]
    flood = [e for e in lines if e["client"] == "192.0.2.7"]
    assert len(flood) == 10 + 1 + 2  # the budget, one notice, then the summary and the next event
    assert flood[10]["action"] == "audit-suppressed"
    assert flood[11] == {**flood[11], "action": "audit-suppressed", "detail": "990 events not written"}
    assert any(e["client"] == "192.0.2.8" for e in lines)


def test_the_audit_log_rotates_and_its_tail_reads_only_the_end(tmp_path: Path) -> None:
    """Finding 2: the audit page re-read the whole file on every view."""
    log = AuditLog(tmp_path, budget=AuditBudget(limit=10**9), max_bytes=50_000, keep=2)
    for i in range(3000):
        log.record("view", user="ada", role="admin", path=f"/p{i}", client="127.0.0.1")
    assert log.path.stat().st_size < 50_000 + 500
    assert log.path.with_name("audit.jsonl.1").exists() and log.path.with_name("audit.jsonl.2").exists()
    assert not log.path.with_name("audit.jsonl.3").exists()
    newest = log.tail(5)
    assert [e["path"] for e in newest] == ["/p2999", "/p2998", "/p2997", "/p2996", "/p2995"]
    assert len(log.tail(10_000)) == len(log.path.read_text(encoding="utf-8").splitlines())


def test_a_logged_out_session_stays_ended_after_a_restart(ws: Path) -> None:
    """Finding 5: revocations lived in memory only."""
    with TestClient(create_app(ws, warm=False), base_url=BASE) as c:
        assert _attempt(c, "ada", PASSWORD) == 303
        stolen = c.cookies["derisk_session"]
        token = csrf_of(c.get("/audit").text)
        assert c.post("/logout", data={"csrf": token}, follow_redirects=False).status_code == 303
    assert oct((ws / "web" / "revoked.json").stat().st_mode & 0o777) == "0o600"
    assert stolen not in (ws / "web" / "revoked.json").read_text(encoding="utf-8")
    with TestClient(create_app(ws, warm=False), base_url=BASE) as restarted:
        restarted.cookies.set("derisk_session", stolen)
        assert restarted.get("/audit", follow_redirects=False).status_code == 303


def test_behind_a_tls_proxy_cookies_are_secure_and_hsts_is_sent(ws: Path) -> None:
    """Finding 6: the Secure flag followed the listen address, not TLS; no HSTS."""
    with TestClient(create_app(ws, warm=False, tls=True), base_url=BASE) as c:
        page = c.get("/login")
        assert "secure" in page.headers["set-cookie"].lower()
        assert page.headers["strict-transport-security"] == "max-age=31536000"
    with TestClient(create_app(ws, warm=False), base_url=BASE) as c:
        page = c.get("/login")
        assert "secure" not in page.headers["set-cookie"].lower()
        assert "strict-transport-security" not in page.headers


def test_denied_requests_are_audited(ws: Path) -> None:
    """Finding 11: 403s (wrong role, bad CSRF) left no trace."""
    with TestClient(create_app(ws, warm=False), base_url=BASE) as c:
        assert _attempt(c, "vic", PASSWORD) == 303
        assert c.get("/audit").status_code == 403
        assert c.post("/logout", data={"csrf": "forged"}, follow_redirects=False).status_code == 403
    denied = [e for e in _audit(ws) if e["action"] == "denied"]
    assert {"user": "vic", "path": "GET /audit"}.items() <= denied[-2].items()
    assert {"user": "vic", "path": "POST /logout"}.items() <= denied[-1].items()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def server(ws: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    port = _free_port()
    extra: list[str] = getattr(request, "param", [])
    proc = subprocess.Popen(
        [sys.executable, "-m", "derisk.cli", "serve", "-w", str(ws), "--port", str(port), *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/login", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()


def _login_via(url: str, forwarded: str) -> None:
    with httpx.Client(base_url=url, headers={"X-Forwarded-For": forwarded}) as c:
        page = c.get("/login")
        c.post("/login", data={"csrf": csrf_of(page.text), "username": "probe", "password": "x" * 12})


def test_forwarded_addresses_are_ignored_unless_the_proxy_is_trusted(ws: Path, server: str) -> None:
    """Finding 7: X-Forwarded-For was believed from 127.0.0.1, so a local user could forge the audit."""
    _login_via(server, "203.0.113.66")
    failed = [e for e in _audit(ws) if e["action"] == "login-failed" and e["user"] == "probe"]
    assert failed[-1]["client"] == "127.0.0.1"


@pytest.mark.parametrize("server", [["--trusted-proxies", "127.0.0.1"]], indirect=True)
def test_a_trusted_proxy_gives_the_client_address(ws: Path, server: str) -> None:
    _login_via(server, "203.0.113.67")
    failed = [e for e in _audit(ws) if e["action"] == "login-failed" and e["user"] == "probe"]
    assert failed[-1]["client"] == "203.0.113.67"


@pytest.mark.parametrize("server", [["--head-timeout", "1"]], indirect=True)
def test_half_open_connections_are_closed(server: str) -> None:
    """Finding 12: connections that never finish their request head were held for ever."""
    port = int(server.rsplit(":", 1)[1])
    socks = []
    for i in range(30):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        if i % 2:
            s.sendall(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # a head that never ends
        socks.append(s)
    time.sleep(2.5)
    closed = 0
    for s in socks:
        try:
            closed += s.recv(1) == b""
        except OSError:
            closed += 1
        finally:
            s.close()
    assert closed == 30
    assert httpx.get(server + "/login", timeout=5).status_code == 200  # the server still serves


def test_serve_refuses_a_proxy_that_is_not_an_address(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from derisk.cli import main

    assert main(["serve", "-w", str(ws), "--trusted-proxies", "proxy.example"]) == 2
    assert "--trusted-proxies: 'proxy.example' is not an IP address" in capsys.readouterr().err


def test_pdf_export_fetches_nothing_and_still_renders() -> None:
    """Finding 13: the fetch blocker did not fit WeasyPrint 70's API (AttributeError on any resource)."""
    from derisk.web.pdf import html_to_pdf

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        listener.settimeout(0.5)
        port = listener.getsockname()[1]
        html = (
            f'<html><head><link rel="stylesheet" href="http://127.0.0.1:{port}/a.css">'
            '<link rel="stylesheet" href="file:///etc/passwd"></head>'
            f'<body><p>report</p><img src="http://127.0.0.1:{port}/x.png"></body></html>'
        )
        pdf = html_to_pdf(html)
        with pytest.raises(TimeoutError):
            listener.accept()  # nobody connected
    assert pdf.startswith(b"%PDF")


def test_a_page_too_large_for_a_pdf_is_refused_before_rendering() -> None:
    """Finding 9: a 60 MB entity name made a PDF export run on at 5.8 GB."""
    from derisk.errors import UsageError
    from derisk.web.pdf import MAX_HTML_BYTES, html_to_pdf

    with pytest.raises(UsageError, match="too large for a PDF"):
        html_to_pdf("<p>" + "A" * MAX_HTML_BYTES + "</p>")


def test_every_printed_string_is_neutralised_and_bounded() -> None:
    """Findings 3, 9 and 14: bidi overrides, ESC and NUL in pages; unbounded names."""
    from derisk.report.html import environment as report_environment
    from derisk.safetext import MAX_SHOWN_CHARS
    from derisk.web.render import environment as web_environment

    hostile = "safe\u202egnp.exe \u061c\ufeff\u2060\x1b[31m\x07\x00" + "A" * 100_000
    for env in (web_environment("en"), report_environment("en")):
        out = env.from_string("<p>{{ name }}</p>").render(name=hostile)
        for bad in ("\u202e", "\u061c", "\ufeff", "\u2060", "\x1b", "\x07", "\x00"):
            assert bad not in out
        assert "safe\\u202egnp.exe" in out and "\\x1b[31m" in out
        assert len(out) < MAX_SHOWN_CHARS + 100


def test_downloaded_pages_carry_their_own_policy(ws: Path) -> None:
    """Finding 15: "Download this page" files had no meta CSP (a file has no server to send one)."""
    with TestClient(create_app(ws, warm=False), base_url=BASE) as c:
        assert _attempt(c, "ada", PASSWORD) == 303
        page = c.get("/audit?export=html")
    assert page.status_code == 200
    assert '<meta http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;' in page.text


def test_a_hostile_deal_upload_is_refused_quickly_off_the_event_loop(ws: Path) -> None:
    """Finding 8: deep YAML gave a 500 and ~3,000 log lines; parsing ran on the event loop."""
    with TestClient(create_app(ws, warm=False), base_url=BASE) as c:
        assert _attempt(c, "ada", PASSWORD) == 303
        token = csrf_of(c.get("/screening").text)
        deep = b"a: " + b"[" * 5000 + b"]" * 5000
        laughs = b"a: &a [x, x, x, x, x, x, x, x]\n" + b"".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n".encode()
            for i in range(9)
        )
        for body in (deep, laughs, b"\xff\xfe not utf-8"):
            r = c.post("/screening", data={"csrf": token}, files={"deal": ("d.yaml", body)})
            assert r.status_code == 400, body[:40]
            assert "Traceback" not in r.text
