"""The dashboard in headless Chromium (Debian's, never a downloaded one), driven by Playwright.

A real ``derisk serve`` on a free loopback port over a workspace built from a generated capture:
log in, open the site, follow the warehouse alert to its flows, its endpoint, the controller and its
Chinese laws, switch to French, export a PDF, and check that hostile strings stay inert (a dialog
fails the test). Screenshots go to test-artifacts/ (gitignored).
"""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pypdf import PdfReader

from web_helpers import PASSWORD, REPO, build_workspace

pytestmark = pytest.mark.browser
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
ARTIFACTS = REPO / "test-artifacts"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, ipdata_dir: Path) -> Iterator[str]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (scripts/system-deps installs it)")
    ws = build_workspace(tmp_path_factory.mktemp("browser"), ipdata_dir)
    port = _free_port()
    log_path = tmp_path_factory.mktemp("serve-log") / "serve.log"
    log = log_path.open("w")
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
        log.flush()
        assert f"open {url}/" in log_path.read_text(encoding="utf-8")  # serve prints where to go
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_alert_to_controller_laws_language_pdf_and_inert_strings(server: str) -> None:
    from playwright.sync_api import Dialog, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    dialogs: list[str] = []
    console_errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            context = browser.new_context(accept_downloads=True, viewport={"width": 1366, "height": 900})
            page = context.new_page()

            def on_dialog(dialog: Dialog) -> None:
                dialogs.append(dialog.message)
                dialog.dismiss()

            page.on("dialog", on_dialog)
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)

            # Log in; the site overview opens.
            page.goto(server + "/")
            assert "/login" in page.url
            page.fill("input[name=username]", "ada")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(server + "/")
            assert "Who controls the other end?" in page.inner_text("h1")
            assert page.locator("svg.diagram path").count() > 0
            page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)

            # Click 1: the warehouse system's alert; its flows are on the page.
            page.locator("table.alerts tr", has_text="Warehouse management").first.locator("a").first.click()
            page.wait_for_url("**/alerts/**")
            assert "Flows behind this alert" in page.inner_text("main")
            assert page.locator("table.flows tbody tr").count() >= 10
            page.screenshot(path=str(ARTIFACTS / "alert.png"), full_page=True)

            # Click 2: the endpoint; click 3: its controller, with the Chinese laws and their tags.
            page.locator("dd a[href^='/destinations/']").first.click()
            page.wait_for_url("**/destinations/**")
            assert "Alibaba Group Holding Limited" in page.inner_text("main")
            page.get_by_role("link", name="Alibaba Group Holding Limited").first.click()
            page.wait_for_url("**/entities/alibaba-group-holding")
            main = page.inner_text("main")
            assert "National Intelligence Law" in main and "[V]" in main
            page.screenshot(path=str(ARTIFACTS / "entity-en.png"), full_page=True)

            # Switch language: the same page in French, and the choice sticks.
            page.locator(".langs a", has_text="FR").click()
            page.wait_for_load_state()
            assert "Qui la contrôle" in page.inner_text("main")
            assert page.locator("html").get_attribute("lang") == "fr"
            page.goto(server + "/alerts")
            assert "Alertes" in page.inner_text("h1")
            page.go_back()
            page.screenshot(path=str(ARTIFACTS / "entity-fr.png"), full_page=True)

            # Export the page as a PDF, in French.
            with page.expect_download() as info:
                page.locator(".exports a", has_text="PDF").first.click()
            pdf_path = ARTIFACTS / "entity-fr.pdf"
            info.value.save_as(str(pdf_path))
            data = pdf_path.read_bytes()
            assert data.startswith(b"%PDF")
            text = " ".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(data)).pages)
            assert "Lois de la juridiction de contrôle" in text and "[V]" in text

            # Hostile strings: shown as text, nothing runs, no element injected.
            page.goto(server + "/search?q=evil.example&lang=en")
            page.locator("table a[href^='/destinations/']").first.click()
            page.wait_for_url("**/destinations/**")
            body = page.inner_text("main")
            assert "<img src=x onerror=alert(7)>" in body
            assert "</title><script>alert(8)</script>" in body
            assert page.locator("main img, main script, script").count() == 0
            page.screenshot(path=str(ARTIFACTS / "hostile.png"), full_page=True)
            page.goto(server + "/search?q=cdnjs")
            page.locator("table a[href^='/destinations/']").first.click()
            page.wait_for_url("**/destinations/**")
            assert '"><script>alert(1)</script>' in page.inner_text("main")
            page.goto(server + "/")
            assert page.evaluate("document.scripts.length") == 0
        finally:
            browser.close()
    assert dialogs == [], f"a hostile string ran: {dialogs}"
    assert console_errors == [], f"the page broke its content security policy or failed: {console_errors}"
