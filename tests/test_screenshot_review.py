"""The screenshot review's checks on the demo workspace: every dashboard page, the full report and its
PDF, in English, French, Dutch and German, carry their pictures (an ``<svg role="img">`` with a
``<title>``) and show no English data sentence outside English (alert explanations, law summaries,
plan steps, memo reasons...). The checks are those of ``scripts/screenshot_review.py``; the browser
test also takes the screenshots with Debian's Chromium."""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from derisk.cli import main
from derisk.web.app import create_app
from web_helpers import REPO, TestClient, csrf_of


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "screenshot_review", REPO / "scripts" / "screenshot_review.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["screenshot_review"] = module
    spec.loader.exec_module(module)
    return module


review = _script()
BASE = "http://127.0.0.1:8765"


@pytest.fixture(scope="module")
def demo_ws(tmp_path_factory: pytest.TempPathFactory, ipdata_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("review") / "demo"
    assert main(["demo", "--out", str(out), "--data-dir", str(ipdata_dir), "--hours", "3", "-q"]) == 0
    ws = out / "workspace"
    review.add_reviewer(ws)
    return ws


@pytest.fixture(scope="module")
def alerts(demo_ws: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = review.stored_alerts(demo_ws)
    return found


@pytest.fixture(scope="module")
def client(demo_ws: Path) -> Iterator[TestClient]:
    with TestClient(create_app(demo_ws, warm=False), base_url=BASE) as c:
        form = c.get("/login").text
        name, password = review.REVIEWER
        r = c.post("/login", data={"csrf": csrf_of(form), "username": name, "password": password})
        assert r.status_code == 200
        yield c


@pytest.fixture(scope="module")
def reviewed(client: TestClient, alerts: list[dict[str, Any]]) -> tuple[Any, ...]:
    def get(path: str) -> tuple[int, str]:
        r = client.get(path)
        return r.status_code, r.text

    result: tuple[Any, ...] = review.review_html(get, alerts)
    return result


def test_every_page_in_every_language_has_its_pictures_and_no_english_data_sentence(
    reviewed: tuple[Any, ...], alerts: list[dict[str, Any]]
) -> None:
    findings, pages, paths = reviewed
    assert set(paths) == set(review.PICTURES), paths
    assert paths["alert"].startswith("/alerts/beacon")  # a beacon, with its timing picture
    assert findings == []
    assert set(pages) == set(review.LANGS) and all(len(p) == len(paths) for p in pages.values())
    # the checks had something to look for: alert explanations and data sentences of the pages
    for lang in ("fr", "nl", "de"):
        assert len(review.alert_sentences(alerts, lang)) > 20
        for page in ("entity", "memo", "plan", "report"):
            assert review.data_sentences(pages["en"][page], lang), (lang, page)


def test_the_checks_catch_an_english_sentence_and_a_missing_picture(
    reviewed: tuple[Any, ...], alerts: list[dict[str, Any]]
) -> None:
    _, pages, _ = reviewed
    english_alert, french_alert = pages["en"]["alert"], pages["fr"]["alert"]
    known = review.alert_sentences(alerts, "fr")
    assert review.english_leaks(english_alert, known)  # the English page does show them
    assert not review.english_leaks(french_alert, known)
    # an English sentence slipped into the French page is found, and so is a picture without its title
    leaked = french_alert.replace("</main>", f"<p>{known[0]}</p></main>")
    assert review.english_leaks(leaked, known) == [known[0]]
    untitled = re.sub(
        r"(<svg class=\"diagram\"[^>]*>\s*)<title>(.*?)</title>",
        r"\1<desc>\2</desc>",
        pages["fr"]["overview"],
        count=1,
    )
    assert review.missing_pictures("overview", untitled) == ["diagram"]
    assert review.missing_pictures("alert", french_alert.replace('role="img"', "")) == ["trend"]


def test_know_sentences_of_the_entity_page_are_checked(reviewed: tuple[Any, ...]) -> None:
    """Know's own sentences (who controls the entity, its risk factors, its chain's links) are among
    the known English sentences: shown on the English entity page, absent from the others, and found
    when one slips back in."""
    _, pages, paths = reviewed
    for lang in ("fr", "nl", "de"):
        known = review.know_sentences(paths["entity"], lang)
        assert len(known) >= 5, (lang, known)
        assert any("controlled" in s or "Ownership chain" in s for s in known)
        assert review.english_leaks(pages["en"]["entity"], known)
        assert review.english_leaks(pages[lang]["entity"], known) == []
        leaked = pages[lang]["entity"].replace("</main>", f"<p>{known[0]}</p></main>")
        assert review.english_leaks(leaked, known) == [known[0]]


def test_curated_sentences_are_checked_also_inside_longer_texts(reviewed: tuple[Any, ...]) -> None:
    """Every data string of the catalogue (a curated link's summary, a control type, a published
    assessment, a law summary...) counts as a known English sentence wherever it is shown: the entity
    page of the beacon's operator (Hikvision) shows its link summaries inside the control chain's steps
    in English only; English prose the catalogue does not know is listed for the person reviewing."""
    _, pages, _ = reviewed
    summary = "Largest and controlling shareholder (38.88%); Wikipedia states the controlling shares"
    for lang in ("fr", "nl", "de"):
        known = review.catalogue_sentences(lang)
        assert any(s.startswith(summary) for s in known) and "VIE contractual arrangements" not in known
        shown = review.english_leaks(pages["en"]["entity"], list(known))
        assert any(s.startswith(summary) for s in shown), shown  # inside "A ← B: 38.88% of shares; ..."
        assert review.english_leaks(pages[lang]["entity"], list(known)) == []
        # a template's English words: the memo's investor chain ("... (CN) ← controlled by ... (KY, run from CN)")
        words = list(review.template_words(lang))
        assert "← controlled by" in words and "← controlled by" in review.english_leaks(
            pages["en"]["memo"], words
        )
        assert "← controlled by" not in review.english_leaks(pages[lang]["memo"], words)
        prose = "The holding company is controlled by the state through a trust that has not been named."
        leaked = pages[lang]["entity"].replace("</main>", f"<p>{prose}</p></main>")
        assert prose in review.english_like(leaked) and prose not in review.english_like(
            pages[lang]["entity"]
        )


def test_the_memo_writes_dates_in_the_page_language(reviewed: tuple[Any, ...]) -> None:
    """The memo's own dates (as of, the question's signing and closing, deadlines, the timeline's axis) in the page's
    language; a date inside a law's name ("Cooperation Agreement of 30 November 2022") stays."""
    _, pages, _ = reviewed
    months = "January|February|March|April|May|June|July|August|September|October|November|December"
    english_date = re.compile(rf"\b\d{{1,2}} ({months}) \d{{4}}\b|\b20\d\d-\d\d-\d\d\b")

    def own_dates(html: str) -> str:
        lead = re.findall(r'<p class="(?:lead|sub mono)">(.*?)</p>', html, re.DOTALL)
        cells = re.findall(r"<td>([^<]*)</td>", html)
        timeline = re.findall(r"<text[^>]*>([^<]*)</text>", html)  # the deadline picture's axis
        return " ".join(lead + cells + timeline)

    assert english_date.search(own_dates(pages["en"]["memo"]))  # the English memo does write them
    for lang in ("fr", "nl", "de"):
        assert not english_date.search(own_dates(pages[lang]["memo"])), lang


@pytest.mark.parametrize("lang", review.LANGS)
def test_the_report_pdf_has_pages_and_its_language(
    lang: str, client: TestClient, alerts: list[dict[str, Any]]
) -> None:
    r = client.get(f"/report/analysis.pdf?lang={lang}")
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    assert review.pdf_findings(r.content, lang, alerts) == []
    if lang == "en":  # the English PDF read as if it were French: the check sees English sentences
        assert any(f.check == "english" for f in review.pdf_findings(r.content, "fr", alerts))


@pytest.mark.browser
def test_screenshots_of_every_page_in_every_language(
    demo_ws: Path, reviewed: tuple[Any, ...], tmp_path: Path
) -> None:
    if not review.CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (scripts/system-deps installs it)")
    _, pages, paths = reviewed
    with review.serve(demo_ws, tmp_path / "serve.log") as url:
        findings = review.screenshots(url, paths, pages, review.LANGS, tmp_path)
    assert findings == []
    for lang in review.LANGS:
        for page in paths:
            shot = tmp_path / f"{lang}-{page}.png"
            assert shot.stat().st_size > 20_000, shot  # a page, not a blank
        assert (tmp_path / f"{lang}-report-print.png").exists()


def test_plan_and_memo_words_and_numbers_in_the_page_language(reviewed: tuple[Any, ...]) -> None:
    """The plan's shares and supplier roles, the memo's finding labels and the overview's shares in
    the page's language (the fourth pass): no "60.0%", no "software vendor of", no raw finding code."""
    from derisk.reduce.register import ROLE_LABELS
    from derisk.screen.findings import FINDING_LABELS

    _, pages, _ = reviewed
    assert review.english_numbers(pages["en"]["plan"]) and "of Warehouse" in pages["en"]["plan"]
    for lang in ("fr", "nl", "de"):
        plan, memo = review.visible_text(pages[lang]["plan"]), review.visible_text(pages[lang]["memo"])
        assert not review.english_numbers(pages[lang]["plan"]), lang
        assert not [n for n in review.english_numbers(pages[lang]["overview"]) if "%" in n], lang
        assert not any(f"{label} of " in plan for label in ROLE_LABELS.values()), lang
        assert not any(code in memo for code in FINDING_LABELS), lang


def test_plan_roles_are_labels_in_the_page_language(reviewed: tuple[Any, ...]) -> None:
    """The plan's Role column shows the role's label ("software vendor", "éditeur de logiciel"), not
    the register's code ("vendor")."""
    _, pages, _ = reviewed
    assert "<td>vendor</td>" not in pages["en"]["plan"] and "<td>software vendor</td>" in pages["en"]["plan"]
    assert "<td>éditeur de logiciel</td>" in pages["fr"]["plan"]
    assert "<td>Softwarehersteller</td>" in pages["de"]["plan"]
