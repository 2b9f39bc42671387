"""Dashboard access: accounts, sessions, CSRF, roles, audit log, security headers, serve's refusals."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from derisk.cli import main
from derisk.web.app import create_app
from derisk.web.auth import UserStore
from web_helpers import PASSWORD, TestClient, build_workspace, csrf_of

BASE = "http://127.0.0.1"


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory, ipdata_dir: Path) -> Path:
    return build_workspace(tmp_path_factory.mktemp("web-access"), ipdata_dir)


@pytest.fixture
def client(ws: Path) -> Iterator[TestClient]:
    with TestClient(create_app(ws, warm=False), base_url=BASE) as c:
        yield c


def login(c: TestClient, name: str, password: str = PASSWORD) -> int:
    c.cookies.clear()
    form = c.get("/login")
    r = c.post("/login", data={"csrf": csrf_of(form.text), "username": name, "password": password, "next": "/"},
               follow_redirects=False)  # fmt: skip
    return r.status_code


def test_every_page_needs_a_login(client: TestClient) -> None:
    for path in ("/", "/alerts", "/destinations", "/entities", "/search?q=x", "/screening", "/plan", "/audit",
                 "/report/analysis.pdf", "/?export=pdf"):  # fmt: skip
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/login?next=")


def test_login_sets_a_strict_http_only_session_cookie(client: TestClient) -> None:
    assert login(client, "vic") == 303
    cookie = next(v for k, v in client.cookies.items() if k == "derisk_session")
    assert cookie
    form = client.get("/login")
    assert form.status_code == 200  # a logged-in user is redirected to the page asked for
    raw = TestClient(client.app, base_url=BASE)
    page = raw.get("/login")
    r = raw.post("/login", data={"csrf": csrf_of(page.text), "username": "vic", "password": PASSWORD},
                 follow_redirects=False)  # fmt: skip
    header = r.headers["set-cookie"].lower()
    assert "derisk_session=" in header and "httponly" in header and "samesite=strict" in header
    assert "secure" not in header  # loopback: plain HTTP is allowed


def test_cookies_are_secure_off_loopback(ws: Path) -> None:
    app = create_app(ws, host="192.0.2.10", allowed_hosts=["127.0.0.1"], warm=False)
    with TestClient(app, base_url=BASE) as c:
        page = c.get("/login")
        assert "secure" in page.headers["set-cookie"].lower()


def test_wrong_password_and_unknown_user_look_the_same(client: TestClient) -> None:
    assert login(client, "vic", "wrong password, long enough") == 401
    assert login(client, "nobody-here", "wrong password, long enough") == 401
    assert client.get("/", follow_redirects=False).status_code == 303


def test_login_without_or_with_a_forged_csrf_token_is_refused(client: TestClient) -> None:
    client.get("/login")
    r = client.post("/login", data={"username": "vic", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 403
    r = client.post(
        "/login", data={"csrf": "forged", "username": "vic", "password": PASSWORD}, follow_redirects=False
    )
    assert r.status_code == 403
    assert "Traceback" not in r.text and "<h1>" in r.text


def test_repeated_failures_are_throttled(client: TestClient) -> None:
    for _ in range(5):
        assert login(client, "ann", "not the password at all") == 401
    assert login(client, "ann") == 429  # even the right password waits


def test_logout_needs_the_session_csrf_token(client: TestClient) -> None:
    login(client, "vic")
    assert client.post("/logout", data={"csrf": "nope"}, follow_redirects=False).status_code == 403
    token = csrf_of(client.get("/").text)
    stolen = client.cookies["derisk_session"]
    assert client.post("/logout", data={"csrf": token}, follow_redirects=False).status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 303
    client.cookies.set("derisk_session", stolen)  # a copy of the cookie is no use after logout
    assert client.get("/", follow_redirects=False).status_code == 303


def test_expired_session_leads_back_to_login(client: TestClient) -> None:
    login(client, "vic")
    assert client.get("/", follow_redirects=False).status_code == 200
    client.app.state.derisk.sessions.ttl = -1  # type: ignore[attr-defined]
    r = client.get("/alerts", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/alerts"


def test_changing_a_password_ends_its_sessions(client: TestClient, ws: Path) -> None:
    store = UserStore(ws)
    store.add("temp", PASSWORD, "viewer")
    login(client, "temp")
    assert client.get("/", follow_redirects=False).status_code == 200
    store.add("temp", PASSWORD + "!", "viewer", replace=True)
    assert client.get("/", follow_redirects=False).status_code == 303
    store.remove("temp")


def test_roles(client: TestClient) -> None:
    login(client, "vic")
    assert client.get("/audit").status_code == 403
    token = csrf_of(client.get("/").text)
    r = client.post("/screening", data={"csrf": token}, files={"deal": ("d.yaml", b"x: 1")})
    assert r.status_code == 403
    assert "Screen a deal file" not in client.get("/screening").text
    login(client, "ada")
    assert client.get("/audit").status_code == 200


def test_audit_log_records_views_and_exports(client: TestClient, ws: Path) -> None:
    login(client, "ada")
    client.get("/alerts")
    client.get("/alerts?export=html")
    lines = [
        json.loads(line) for line in (ws / "web" / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    mine = [e for e in lines if e["user"] == "ada"]
    assert {"action": "view", "path": "/alerts"}.items() <= mine[-2].items()
    assert {"action": "export", "path": "/alerts?export=html", "detail": "html"}.items() <= mine[-1].items()
    assert any(e["action"] == "login" for e in mine)
    assert "ada" in client.get("/audit").text
    assert oct((ws / "web" / "audit.jsonl").stat().st_mode & 0o777) == "0o600"
    assert oct((ws / "web" / "users.json").stat().st_mode & 0o777) == "0o600"


def test_passwords_are_stored_as_argon2id_hashes(ws: Path) -> None:
    raw = (ws / "web" / "users.json").read_text(encoding="utf-8")
    assert PASSWORD not in raw
    assert json.loads(raw)["users"]["vic"]["hash"].startswith("$argon2id$")


def test_security_headers_everywhere(client: TestClient) -> None:
    for path in ("/login", "/nope", "/static/dashboard.css"):
        h = client.get(path).headers
        csp = h["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert h["x-frame-options"] == "DENY"
        assert h["x-content-type-options"] == "nosniff"
        assert h["referrer-policy"] == "no-referrer"


def test_a_foreign_host_header_is_refused(ws: Path) -> None:
    with TestClient(create_app(ws, warm=False), base_url="http://attacker.example") as c:
        assert c.get("/login").status_code == 400


def test_a_locked_workspace_gives_a_busy_page(client: TestClient, ws: Path) -> None:
    login(client, "vic")
    alert = re.findall(r'href="(/alerts/[^"?]+)"', client.get("/alerts").text)[0]
    time.sleep(2.5)  # the dashboard lets go of the workspace two seconds after its last request
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); time.sleep(30)",
         str(ws / "derisk.duckdb")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        r = client.get(alert)
        assert r.status_code == 503
        assert "take turns" in r.text and "Traceback" not in r.text
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    deadline = time.monotonic() + 10
    while client.get("/alerts").status_code != 200:
        assert time.monotonic() < deadline


def test_users_commands(
    ws: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NEWPW", PASSWORD)
    assert main(["users", "add", "carol", "--role", "analyst", "--password-env", "NEWPW", "-w", str(ws)]) == 0
    assert main(["users", "add", "carol", "--password-env", "NEWPW", "-w", str(ws)]) == 2  # exists
    monkeypatch.setenv("SHORT", "short")
    assert main(["users", "add", "dave", "--password-env", "SHORT", "-w", str(ws)]) == 2
    assert main(["users", "add", "bad name", "--password-env", "NEWPW", "-w", str(ws)]) == 2
    capsys.readouterr()
    assert main(["users", "list", "-w", str(ws)]) == 0
    assert "carol\tanalyst" in capsys.readouterr().out
    assert main(["users", "remove", "carol", "-w", str(ws)]) == 0
    assert main(["users", "remove", "carol", "-w", str(ws)]) == 7


def test_serve_refuses_a_public_address_without_accounts(
    tmp_path: Path, ws: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "derisk.duckdb").write_bytes((ws / "derisk.duckdb").read_bytes())
    assert main(["serve", "-w", str(fresh), "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "refusing to listen on 0.0.0.0" in err and "derisk users add" in err
    assert main(["serve", "-w", str(tmp_path / "none")]) == 6
