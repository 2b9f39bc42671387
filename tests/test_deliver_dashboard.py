"""The alert list shows new alerts without a restart: a ``Refresh`` header (no JavaScript) with a
configurable interval, checked through the test client, then in Debian's Chromium against a real
``derisk serve`` while alerts are written into the workspace under it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from derisk.errors import StoreError
from derisk.store.alerts import load_alerts, replace_alerts
from derisk.store.workspace import Workspace
from derisk.web.app import create_app
from derisk.web.pages import ALERTS_REFRESH
from test_deliver_support import alert
from web_helpers import PASSWORD, TestClient, build_workspace, csrf_of

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
NEW_DESTINATION = "fresh-beacon.example.cn\"'><script>alert(9)</script>"


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory, ipdata_dir: Path) -> Path:
    return build_workspace(tmp_path_factory.mktemp("deliver-dashboard"), ipdata_dir)


def test_the_alert_list_asks_the_browser_to_reload_it(ws: Path) -> None:
    with TestClient(create_app(ws, warm=False), base_url="http://127.0.0.1") as c:
        page = c.get("/login")
        r = c.post("/login", data={"csrf": csrf_of(page.text), "username": "vic", "password": PASSWORD})
        assert r.status_code == 200
        assert c.get("/alerts").headers["refresh"] == str(ALERTS_REFRESH)
        assert c.get("/alerts?refresh=10&kind=beacon").headers["refresh"] == "10"
        assert "refresh" not in c.get("/alerts?refresh=0").headers
        for bad in ("3", "3601", "-5", "ten", "1e3"):
            assert c.get(f"/alerts?refresh={bad}").status_code == 400, bad
        # A download is not a page to reload; other pages are left alone.
        assert "refresh" not in c.get("/alerts?export=html").headers
        assert "refresh" not in c.get("/destinations").headers


def _add_alert(ws: Path) -> None:
    """Store one more alert the way ``derisk watch`` does (one write transaction), waiting for the
    dashboard to let go of its read-only connection (it closes it after two idle seconds)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with Workspace.open(ws, create=False) as w:
                replace_alerts(w, [*load_alerts(w), alert(7, destination=NEW_DESTINATION)])
            return
        except StoreError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@pytest.fixture
def served(ws: Path, tmp_path: Path) -> Iterator[str]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (scripts/system-deps installs it)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from derisk.cli import main; sys.exit(main())",
         "serve", "--workspace", str(ws), "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/login", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, "derisk serve exited"
            assert time.monotonic() < deadline, "derisk serve did not come up"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.mark.browser
def test_a_new_alert_appears_in_chromium_without_a_restart_or_javascript(ws: Path, served: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            context = browser.new_context(java_script_enabled=False)  # the refresh needs none
            page = context.new_page()
            page.goto(served + "/login?next=/alerts%3Frefresh%3D5")
            page.fill("input[name=username]", "vic")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/alerts?refresh=5")
            rows_before = page.locator("table.alerts tbody tr").count()
            assert rows_before > 0 and "fresh-beacon.example.cn" not in page.inner_text("main")
            _add_alert(ws)
            deadline = time.monotonic() + 40
            while True:  # the browser reloads by itself every 5 s; nothing here navigates
                try:
                    text = page.inner_text("main")
                except Exception:  # the page is being replaced by its reload
                    text = ""
                if "fresh-beacon.example.cn" in text:
                    break
                assert time.monotonic() < deadline, "the new alert did not appear"
                time.sleep(0.5)
            assert page.url.endswith("/alerts?refresh=5")
            assert page.locator("table.alerts tbody tr").count() == rows_before + 1
            assert "<script>alert(9)</script>" in text  # shown as text, inert
        finally:
            browser.close()
