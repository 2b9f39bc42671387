"""Dashboard pages over a workspace built from a generated capture: content, the two-click path from
the overview to the controller's laws, inert hostile strings in pages and exports, and bad input."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from markupsafe import escape
from pypdf import PdfReader

from derisk.web.app import create_app
from web_helpers import HOSTILE_HOST, PASSWORD, TestClient, build_workspace, csrf_of

BASE = "http://127.0.0.1"
PAGES = ("/", "/alerts", "/destinations", "/entities", "/search?q=cloudflare", "/screening", "/plan",
         "/screening/liege-cargo.yaml", "/audit")  # fmt: skip


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory, ipdata_dir: Path) -> Path:
    return build_workspace(tmp_path_factory.mktemp("web-pages"), ipdata_dir)


@pytest.fixture(scope="module")
def client(ws: Path) -> Iterator[TestClient]:
    with TestClient(create_app(ws, warm=False), base_url=BASE) as c:
        page = c.get("/login")
        r = c.post("/login", data={"csrf": csrf_of(page.text), "username": "ada", "password": PASSWORD})
        assert r.status_code == 200
        yield c


def links(html: str, prefix: str) -> list[str]:
    return re.findall(rf'href="({re.escape(prefix)}[^"]*)"', html)


def assert_inert(html: str) -> None:
    """No markup from the network survives: no script or event handler, no raw control characters."""
    low = html.lower()
    assert "<script" not in low
    assert "<img" not in low and "onerror=" not in low.replace("onerror=alert", "")  # only escaped text
    assert not re.search(r"<[^>]*\son\w+\s*=", html), "an event handler attribute in the markup"
    assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", html), "a raw control character"


def test_every_page_renders(client: TestClient) -> None:
    for path in PAGES:
        r = client.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("text/html")
        assert_inert(r.text)


def test_export_and_language_links_keep_the_query(client: TestClient) -> None:
    html = client.get("/search?q=cloudflare").text
    assert 'href="?q=cloudflare&amp;export=pdf"' in html and 'href="?q=cloudflare&amp;lang=de"' in html
    r = client.get("/search?q=cloudflare&export=html")
    assert "Cloudflare" in r.text and r.headers["content-disposition"].startswith("attachment")


def test_overview_shows_exposure_diagram_matrix_and_trend(client: TestClient) -> None:
    html = client.get("/").text
    assert "Alibaba Group Holding Limited" in html
    assert "China (CN)" in html
    # the system → controller → jurisdiction bands and the stands-in → controlled-from bands
    assert html.count('<svg class="diagram"') == 2 and html.count('<svg class="trend"') == 1
    assert 'aria-label="Where servers stand versus who controls them"' in html
    assert 'class="matrix"' in html and "differ" in html  # Alibaba Cloud in Germany, controlled from China
    assert "National Intelligence Law" in html and "[V]" in html


def test_from_the_overview_to_the_chinese_laws_in_two_clicks_each(client: TestClient) -> None:
    overview = client.get("/").text
    # Click 1: the warehouse system's beaconing to its vendor's cloud.
    rows = [
        r
        for r in re.findall(r"<tr>.*?</tr>", overview, re.S)
        if "Warehouse management" in r and "/alerts/" in r
    ]
    assert rows, "the overview lists the warehouse alert"
    alert_url = links(rows[0], "/alerts/")[0]
    alert = client.get(alert_url).text
    assert "Warehouse management" in alert and "Flows behind this alert" in alert
    assert alert.count('<tr><td class="mono">') >= 10  # the flows behind it
    # Click 2: the endpoint; click 3: its controller.
    endpoint = links(alert, "/destinations/")[0]
    dest = client.get(endpoint).text
    assert "Cainiao" in dest and "Alibaba Group Holding Limited" in dest
    assert "/entities/alibaba-group-holding" in alert  # also reachable straight from the alert
    entity = client.get("/entities/alibaba-group-holding").text
    assert "Alibaba Group Holding Limited" in entity
    for law in ("National Intelligence Law", "Data Security Law"):
        assert law in entity
    assert 'class="tag tag-v">[V]</span>' in entity
    assert "Risk factors" in entity and "Who controls it" in entity


def test_hostile_strings_are_escaped_and_bounded(client: TestClient) -> None:
    html = client.get("/search?q=evil.example").text
    assert "&#34;&#39;&gt;&lt;img src=x onerror=alert(7)&gt;.evil.example" in html
    assert str(escape(HOSTILE_HOST)) in html
    dests = links(html, "/destinations/")
    assert dests
    page = client.get(dests[0]).text
    assert_inert(page)
    assert "&lt;/title&gt;&lt;script&gt;alert(8)&lt;/script&gt;" in page
    assert "\\x1b[31m" in page  # control characters shown as escapes, never sent raw
    assert "A" * 200 not in page  # a 3000-character user agent is cut
    assert "…[truncated]" in page
    demo = client.get("/search?q=cdnjs").text
    ua_page = client.get(links(demo, "/destinations/")[0]).text
    assert "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;\\x1b[2J\\x07 &#39;quoted&#39;" in ua_page
    assert_inert(ua_page)


def test_exports_are_self_contained_and_inert(client: TestClient) -> None:
    html_dest = links(client.get("/search?q=evil.example").text, "/destinations/")[0]
    r = client.get(html_dest + "?export=html")
    assert r.status_code == 200
    assert r.headers["content-disposition"].startswith('attachment; filename="derisk-destination-')
    assert "<style>" in r.text and "/static/" not in r.text and "<form" not in r.text
    assert_inert(r.text)
    r = client.get(html_dest + "?export=pdf")
    assert r.headers["content-type"] == "application/pdf" and r.content.startswith(b"%PDF")
    text = " ".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(r.content)).pages)
    assert "onerror=alert(7)" in text  # shown as text, the only way a PDF can show it
    assert "\x1b" not in text and "\x00" not in text
    assert "A" * 200 not in text


def test_flows_export_as_csv_without_formulas_or_control_characters(client: TestClient) -> None:
    dest = links(client.get("/search?q=evil.example").text, "/destinations/")[0]
    r = client.get(dest + "?export=csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 2 and rows[0]["dst_ip"] == dest.rsplit("/", 1)[1]
    agent = next(row["user_agent"] for row in rows if row["user_agent"])
    assert agent.startswith("</title><script>alert(8)</script>\\x1b[31m")
    assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", r.text)
    assert all(not v.startswith(("=", "+", "-", "@")) for row in rows for v in row.values())
    assert client.get("/?export=csv").status_code == 400


def test_full_report_in_each_language(client: TestClient) -> None:
    expected = {"en": "Who controls the other end?", "fr": "Qui contrôle l'autre bout ?",
                "nl": "Wie controleert de andere kant?", "de": "Wer kontrolliert die Gegenseite?"}  # fmt: skip
    for lang, title in expected.items():
        r = client.get(f"/report/analysis.html?lang={lang}")
        assert r.status_code == 200
        assert title in r.text
        assert_inert(r.text)
    r = client.get("/report/analysis.pdf?lang=nl")
    text = " ".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(r.content)).pages)
    assert "Wie controleert de andere kant?" in text
    assert client.get("/report/analysis.docx").status_code == 404
    client.get("/?lang=en")


def test_screening_case_upload_and_plan(client: TestClient) -> None:
    memo = client.get("/screening/liege-cargo.yaml").text
    assert "Notification required" in memo and "Belgium" in memo
    assert '<svg class="timeline"' in memo and 'aria-label="Deadlines"' in memo, "the deadline timeline"
    token = csrf_of(client.get("/screening").text)
    deal = (Path(__file__).parent.parent / "examples" / "deals" / "nl-gas-storage.yaml").read_bytes()
    r = client.post("/screening", data={"csrf": token}, files={"deal": ("nl-gas-storage.yaml", deal)})
    assert r.status_code == 200 and "uploaded, not stored" in r.text
    r = client.post("/screening", data={"csrf": token}, files={"deal": ("bad.yaml", b"{not: [valid")})
    assert r.status_code == 400 and "bad.yaml" in r.text
    plan = client.get("/plan").text
    assert "Dependency register and de-risking plan" in plan and "Alibaba" in plan
    bars = plan.split('<svg class="plan-bars"', 1)[1].split("</svg>", 1)[0]
    assert 'aria-label="Each step\'s measures before and after it"' in bars
    assert bars.count("<rect ") % 2 == 0 and bars.count("<rect ") >= 8, (
        "a before and an after bar per measure"
    )


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/no/such/page", 404),
        ("GET", "/destinations?page=abc", 400),
        ("GET", "/destinations?size=100000", 400),
        ("GET", "/destinations?page=99999", 404),
        ("GET", "/destinations/%3Cscript%3E", 404),
        ("GET", "/alerts/not-an-alert", 404),
        ("GET", "/alerts/beacon:0000000000000000", 404),
        ("GET", "/alerts?kind=%3Cscript%3E", 400),
        ("GET", "/entities/..%2F..%2Fetc%2Fpasswd", 404),
        ("GET", "/entities/no-such-entity", 404),
        ("GET", "/search?q=" + "x" * 201, 400),
        ("GET", "/?export=docx", 400),
        ("GET", "/screening/..%2Fsite.yaml", 404),
        ("GET", "/static/../web/users.json", 404),
        ("POST", "/", 405),
        ("DELETE", "/alerts", 405),
    ],
)
def test_bad_requests_get_an_error_page(client: TestClient, method: str, path: str, status: int) -> None:
    r = client.request(method, path)
    assert r.status_code == status
    assert "Traceback" not in r.text and 'File "' not in r.text
    if status != 405 or method == "POST":
        assert "<h1>" in r.text and "Error" in r.text and "<script" not in r.text.lower()


def test_oversized_and_unsized_bodies_are_refused(client: TestClient) -> None:
    token = csrf_of(client.get("/screening").text)
    r = client.post(
        "/screening", data={"csrf": token}, files={"deal": ("big.yaml", b"x" * (3 * 1024 * 1024))}
    )
    assert r.status_code == 413 and "too large" in r.text

    def chunks() -> Iterator[bytes]:
        yield b"csrf=x&username=a"

    r = client.post("/login", content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 411


def test_error_pages_follow_the_language(client: TestClient) -> None:
    fresh = TestClient(client.app, base_url=BASE)  # no language cookie yet
    r = fresh.get("/nope", headers={"accept-language": "es, de-DE;q=0.9, en;q=0.5"})
    assert r.status_code == 404 and "Unter dieser Adresse gibt es nichts." in r.text
    assert isinstance(r, httpx.Response)
    r = fresh.get("/nope?lang=nl", headers={"accept-language": "de"})
    assert "Er staat niets op dit adres." in r.text  # the query parameter wins, and is remembered
    assert "Er staat niets op dit adres." in fresh.get("/nope", headers={"accept-language": "de"}).text


def test_an_empty_workspace_renders_every_page(tmp_path: Path) -> None:
    from derisk.store.workspace import Workspace
    from derisk.web.auth import UserStore

    empty = tmp_path / "empty"
    with Workspace.open(empty) as w, w.transaction():
        pass
    UserStore(empty).add("ada", PASSWORD, "admin")
    with TestClient(create_app(empty, warm=False), base_url=BASE) as c:
        page = c.get("/login")
        c.post("/login", data={"csrf": csrf_of(page.text), "username": "ada", "password": PASSWORD})
        assert "holds no flows yet" in c.get("/").text
        for path in (*PAGES[1:7], "/report/analysis.html", "/?export=pdf"):
            assert c.get(path).status_code == 200, path
        assert c.get("/screening/liege-cargo.yaml").status_code == 404


def test_a_broken_accounts_file_gives_an_error_page_not_a_traceback(tmp_path: Path, ws: Path) -> None:
    copy = tmp_path / "ws"
    copy.mkdir()
    (copy / "derisk.duckdb").write_bytes((ws / "derisk.duckdb").read_bytes())
    (copy / "web").mkdir()
    (copy / "web" / "users.json").write_text("{not json", encoding="utf-8")
    with TestClient(create_app(copy, warm=False), base_url=BASE, raise_server_exceptions=False) as c:
        r = c.get("/login")
        assert r.status_code == 503 and "unreadable accounts file" in r.text
        assert "Traceback" not in r.text


def test_report_command_writes_the_analysis_in_a_language(tmp_path: Path, ws: Path) -> None:
    from derisk.cli import main

    html, pdf = tmp_path / "r.html", tmp_path / "r.pdf"
    assert main(["report", "-w", str(ws), "--lang", "de", "--html", str(html), "--pdf", str(pdf)]) == 0
    text = html.read_text(encoding="utf-8")
    assert "Wer kontrolliert die Gegenseite?" in text and "Entscheidungshilfe" in text
    assert_inert(text)
    pages = PdfReader(io.BytesIO(pdf.read_bytes())).pages
    assert "Wer kontrolliert die Gegenseite?" in " ".join(p.extract_text() or "" for p in pages)
    assert main(["report", "-w", str(ws)]) == 2
    assert main(["report", "-w", str(ws), "--lang", "es", "--html", str(html)]) == 2
    assert main(["report", "-w", str(tmp_path / "none"), "--html", str(html)]) == 6


def test_beacon_alert_shows_its_timing_and_evidence_as_lists(client: TestClient) -> None:
    """A beacon's page plots the rhythm of its flows (intervals and sizes, a text alternative) and
    shows evidence values as values: lists as lists, never a Python repr; the explanation is whole."""
    listing = client.get("/alerts?kind=beacon").text
    beacons = [u for u in links(listing, "/alerts/beacon") if "?" not in u]
    assert beacons, "the demo raises beacon alerts"
    page = client.get(beacons[0]).text
    assert 'aria-label="Timing of the flows behind this alert"' in page
    assert page.count("<circle ") >= 5 and "median interval" in page
    assert "[&#39;" not in page and "['" not in page, "no Python list repr in the evidence"
    assert "…[truncated]" not in page.split('<p class="lead', 1)[1].split("</p>", 1)[0]
    non_beacon = [
        u for u in links(client.get("/alerts").text, "/alerts/") if "beacon" not in u and "?" not in u
    ]
    if non_beacon:
        assert "Timing of the flows behind this alert" not in client.get(non_beacon[0]).text


def test_entity_page_draws_its_control_chain(client: TestClient) -> None:
    """The Liège hub's operator: a picture from it up to its ultimate controller, each box a link to
    that entity's page, each arrow carrying its confidence tag, with a text alternative."""
    page = client.get("/entities/cainiao-liege-ehub").text
    assert 'class="chain-picture"' in page and 'aria-label="Control chain"' in page
    picture = page.split('class="chain-picture"', 1)[1].split("</svg>", 1)[0]
    assert "Alibaba Group Holding Limited" in picture
    assert picture.count("<rect ") >= 3, "the entity, at least one owner, the ultimate controller"
    assert re.findall(r'<a href="(/entities/[^"]+)">', picture)[0] == "/entities/cainiao-liege-ehub"
    assert re.search(r"\[(?:V|S|U)\]", picture)
