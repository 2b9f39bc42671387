#!/usr/bin/env python3
"""Screenshot review: the dashboard pages, the HTML report and its PDF in English, French, Dutch and
German, from the demo workspace, as PNG files to look at, plus the checks a person would make.

    .venv/bin/python scripts/screenshot_review.py OUT [--workspace DIR] [--lang fr ...] [--no-browser]

Without ``--workspace`` it builds the demo (``derisk demo --out OUT/demo``). It adds a review account
to the workspace, starts ``derisk serve`` on a free loopback port, and for each language fetches the
overview, the alert list, a beacon alert, the entity page of that alert's controller, the screening
memo, the plan and the full report (HTML and PDF). Each page is checked for

* **pictures**: every picture the page should carry is there, as an ``<svg role="img">`` with a
  ``<title>`` (the text alternative);
* **English data sentences** in a French, Dutch or German page: each alert's explanation parts,
  every text of the English page that the data catalogue translates (law summaries, plan steps,
  memo reasons...), every data string of the catalogue (the curated groups' link summaries,
  control types and assessments among them), also inside a longer text, and the English words of
  every template (" ← controlled by ") must not appear in English;
* **overflow** (in the browser): a page wider than the window.

With Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright) each page is saved as
``OUT/<lang>-<page>.png`` (full page), the report also in print layout (``<lang>-report-print.png``,
what WeasyPrint lays out for the PDF); the PDF goes to ``OUT/<lang>-report.pdf`` and its text is
checked with pypdf and, when poppler's ``pdftoppm`` is installed, its pages are rendered to
``OUT/<lang>-report-<n>.png``. Findings go to ``OUT/findings.json`` and the terminal; the exit code is 1 when a
check failed. ``tests/test_screenshot_review.py`` runs the same checks.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Final

LANGS: Final = ("en", "fr", "nl", "de")
CHROMIUM: Final = Path("/usr/bin/chromium")
CHROMIUM_ARGS: Final = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
REVIEWER: Final = ("reviewer", "screenshot review password")
#: The pictures each page must carry: the class of each ``<svg role="img">`` (one entry per picture).
PICTURES: Final = {
    "overview": ("diagram", "diagram", "trend"),
    "alerts": (),
    "alert": ("trend",),
    "entity": ("chain-picture",),
    "memo": ("timeline",),
    "plan": ("plan-bars",),
    "report": ("diagram", "diagram", "trend"),
}
#: Words of a block of text at which it counts as a sentence worth looking for.
MIN_WORDS: Final = 4

Get = Callable[[str], tuple[int, str]]


@dataclass(frozen=True)
class Finding:
    page: str
    lang: str
    check: str  # "picture", "english", "overflow", "status", "pdf"
    detail: str


# -- reading pages -------------------------------------------------------------------------------
class _Blocks(HTMLParser):
    """The text of each block element (paragraph, list item, cell, heading...), whitespace folded."""

    BLOCKS: Final = frozenset({"p", "li", "td", "th", "dd", "dt", "h1", "h2", "h3", "h4", "caption", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[list[str]] = []
        self.blocks: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script"):
            self.skip += 1
        if tag in self.BLOCKS:
            self.stack.append([])

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script"):
            self.skip = max(0, self.skip - 1)
        if tag in self.BLOCKS and self.stack:
            text = " ".join("".join(self.stack.pop()).split())
            if text:
                self.blocks.append(text)
                if self.stack:
                    self.stack[-1].append(" " + text + " ")

    def handle_data(self, data: str) -> None:
        if not self.skip and self.stack:
            self.stack[-1].append(data)


def blocks(html: str) -> list[str]:
    parser = _Blocks()
    parser.feed(html)
    return parser.blocks


def visible_text(html: str) -> str:
    """The page's text as a reader sees it (tags dropped, entities decoded, whitespace folded)."""
    return " ".join(blocks(html))


_SVG: Final = re.compile(r"<svg\b([^>]*)>(.*?)</svg>", re.DOTALL)


def pictures(html: str) -> list[str]:
    """The class of each picture of the page: an ``<svg role="img">`` whose first child is a ``<title>``
    with text (the parts' own titles inside do not count)."""
    found = []
    for m in _SVG.finditer(html):
        attrs, body = m.group(1), m.group(2)
        title = re.match(r"\s*<title>([^<]*)</title>", body)  # its own title, first: the text alternative
        if 'role="img"' not in attrs or title is None or not title.group(1).strip():
            continue
        cls = re.search(r'class="([^"]*)"', attrs)
        found.append(cls.group(1) if cls else "")
    return found


def missing_pictures(page: str, html: str) -> list[str]:
    have = pictures(html)
    missing = []
    for wanted in PICTURES.get(page, ()):
        if wanted in have:
            have.remove(wanted)
        else:
            missing.append(wanted)
    return missing


# -- English in the other languages -------------------------------------------------------------
def alert_sentences(alerts: list[dict[str, Any]], lang: str) -> list[str]:
    """The English text of every explanation part that has a translation in ``lang``."""
    from derisk.i18n import data

    out = []
    for alert in alerts:
        for part in alert.get("explanation") or ():
            if part.get("part") == "destination" or part.get("fields") is None:
                continue
            english = data.fill(part["template"], **part["fields"])
            if data.phrase(lang, part) != english and len(english.split()) >= MIN_WORDS:
                out.append(english)
    return out


@lru_cache(maxsize=1)
def law_titles() -> frozenset[str]:
    """The laws' recorded titles: shown beside their translation on purpose, and inside citations."""
    from derisk.i18n.extract import data_messages

    return frozenset(m for m, places in data_messages().items() if any(p.endswith(".law") for p in places))


def data_sentences(english_html: str, lang: str) -> list[str]:
    """Texts of the English page that the data catalogue translates into ``lang`` (law summaries,
    plan steps, memo reasons, regime texts...): each must be shown translated in ``lang``."""
    from derisk.i18n import data

    out = []
    titles = law_titles()
    for text in blocks(english_html):
        if len(text.split()) < MIN_WORDS or text in titles:
            continue
        if data.sentence(lang, text) != text or data.text(lang, text) != text:
            out.append(text)
    return out


@lru_cache(maxsize=4)
def catalogue_sentences(lang: str) -> tuple[str, ...]:
    """Every data string of the catalogue (law summaries, regime texts, plan steps, the curated groups'
    link summaries, control types and assessments...) of :data:`MIN_WORDS` words or more whose
    translation into ``lang`` differs from it: wherever a page shows one, even inside a longer text
    (a control chain's step, a risk factor's evidence), it must be shown translated. Law titles are left
    out (shown beside their translation on purpose), and templates (matched on whole texts above)."""
    from derisk.i18n import data

    titles = law_titles()
    out = []
    for message in data.data_catalog(lang):
        english, shown = str(message.id or ""), str(message.string or "")
        if not english or message.context or not shown or shown == english or message.fuzzy:
            continue
        if english in titles or len(english.split()) < MIN_WORDS or data.PLACEHOLDER.search(english):
            continue
        out.append(english)
    return tuple(out)


@lru_cache(maxsize=4)
def template_words(lang: str) -> tuple[str, ...]:
    """The English words between the placeholders of every sentence template and phrase of the catalogue
    (" ← controlled by ", "whose laws compel cooperation or data access"), three words or more, that
    their translation into ``lang`` does not keep: a value shown inside an English template (an investor
    chain, a Know sentence) leaves them on the page. Quoted sources could, in principle, contain one."""
    from derisk.i18n import data

    out = set()
    for message in data.data_catalog(lang):
        english, shown = str(message.id or ""), str(message.string or "")
        if not shown or message.fuzzy or not data.PLACEHOLDER.search(english):
            continue
        for literal in data.PLACEHOLDER.split(english)[::2]:
            words = literal.strip(" ,;:.()[]")
            if len(words.split()) >= 3 and words not in shown:
                out.add(words)
    return tuple(sorted(out))


def know_sentences(path: str, lang: str) -> list[str]:
    """The English text of each part of Know's own sentences about the entity at ``path`` (who controls
    it, its supplier-risk factors, its control chain's link phrases) that has a translation in
    ``lang``, computed over the shipped control graph as the entity page does. Empty for an entity the
    shipped graph does not hold (an imported one)."""
    from urllib.parse import unquote

    from derisk.i18n import data
    from derisk.know.curated import load_curated
    from derisk.know.explain import Part, resolution_parts
    from derisk.know.resolve import resolve_controller
    from derisk.know.risk import supplier_risk

    entity_id = unquote(path.rstrip("/").rsplit("/", 1)[-1])
    graph = load_curated()
    if entity_id not in graph.entities:
        return []
    res = resolve_controller(graph, entity_id)
    parts: list[Part] = list(resolution_parts(res))
    for factor in supplier_risk(graph, entity_id):
        parts.extend(factor.parts)
    for step in res.path:
        parts.extend(step.link.describe_parts())
    out = []
    for template, values in parts:
        english = data.fill(template, **values)
        shown = data.phrase(lang, {"template": template, "fields": values})
        if shown != english and len(english.split()) >= MIN_WORDS:
            out.append(english)
    return out


def english_leaks(html: str, known: list[str]) -> list[str]:
    """The known English sentences shown in ``html``."""
    text = visible_text(html)
    return sorted({s for s in known if s in text})


def suspects(english_html: str, html: str, *, words: int = 8) -> list[str]:
    """For the person reviewing: longer English blocks shown identically in the other language (names,
    citations and quoted law are expected among them; they are not translated on purpose)."""
    text = visible_text(html)
    return sorted({b for b in blocks(english_html) if len(b.split()) >= words and b in text})


#: Words that mark English prose and are rare in French, Dutch and German prose ("is", "of", "was" are
#: Dutch or German words too, so they are not among them).
ENGLISH_WORDS: Final = frozenset({
    "the", "and", "by", "from", "with", "not", "which", "this", "that", "its", "has", "have", "were", "been",
    "shares", "controlled", "owned", "held", "are", "into", "through", "under", "whose", "would", "should",
    "because",
})  # fmt: skip


def english_like(html: str, *, least: int = 4) -> list[str]:
    """For the person reviewing: texts of a French, Dutch or German page with ``least`` English words or
    more, whatever the catalogue knows (names, sources' own words and citations are expected among
    them; anything else is English the catalogue does not translate yet)."""
    out = set()
    for block in blocks(html):
        words = re.findall(r"[a-z]+", block.lower())
        if sum(w in ENGLISH_WORDS for w in words) >= least:
            out.add(block[:300])
    return sorted(out)


#: A number written the English way: a decimal point before a percent sign ("87.4%"), or thousands
#: grouped with commas ("3,514,671"; one group, "1,234", may be a French or German decimal).
ENGLISH_NUMBER: Final = re.compile(r"(?<![\w.,])(?:\d+\.\d+ ?%|\d{1,3}(?:,\d{3}){2,}(?![\d.,]*\d))")


def english_numbers(html: str) -> list[str]:
    """For the person reviewing: the numbers a French, Dutch or German page writes the English way,
    each with the text around it (inside names and sources' own words they are expected)."""
    text = re.sub(r"\s+", " ", visible_text(html))
    return sorted({text[max(0, m.start() - 50) : m.end() + 15] for m in ENGLISH_NUMBER.finditer(text)})


# -- the pages -------------------------------------------------------------------------------------
def page_paths(get: Get) -> dict[str, str]:
    """Each page to review and its path, found by following the English pages' links."""
    paths = {"overview": "/", "alerts": "/alerts", "plan": "/plan", "report": "/report/analysis.html"}
    _, alerts = get("/alerts?lang=en")
    beacon = re.search(r'href="/alerts/(beacon:[0-9a-f]+)"', alerts) or re.search(
        r'href="/alerts/([^"]+)"', alerts
    )
    if beacon:
        paths["alert"] = f"/alerts/{beacon.group(1)}"
        _, alert = get(paths["alert"] + "?lang=en")
        entity = re.findall(r'href="(/entities/[^"?]+)"', alert)
        if entity:
            paths["entity"] = entity[0]  # the operator, whose control chain leads to the controller
    _, cases = get("/screening?lang=en")
    case = re.search(r'href="(/screening/[^"?]+)"', cases)
    if case:
        paths["memo"] = case.group(1)
    return paths


def review_html(
    get: Get, alerts: list[dict[str, Any]], langs: tuple[str, ...] = LANGS
) -> tuple[list[Finding], dict[str, dict[str, str]], dict[str, str]]:
    """Fetch every page in every language and check it; returns the findings, the pages' HTML by
    language and page, and the pages' paths."""
    paths = page_paths(get)
    findings = [Finding(page, "en", "status", "page not found from the English pages' links")
                for page in PICTURES if page not in paths]  # fmt: skip
    pages: dict[str, dict[str, str]] = {}
    for lang in ("en", *[x for x in langs if x != "en"]):
        pages[lang] = {}
        for page, path in paths.items():
            status, html = get(f"{path}?lang={lang}")
            if status != 200:
                findings.append(Finding(page, lang, "status", f"HTTP {status} for {path}"))
                continue
            pages[lang][page] = html
            findings += [Finding(page, lang, "picture", f"missing picture: svg.{cls} with a <title>")
                         for cls in missing_pictures(page, html)]  # fmt: skip
            if lang == "en":
                continue
            known = alert_sentences(alerts, lang) + data_sentences(pages["en"].get(page, ""), lang)
            known += catalogue_sentences(lang) + template_words(lang)
            if page == "entity":
                known += know_sentences(path, lang)
            findings += [Finding(page, lang, "english", f"English data sentence: {s[:160]}")
                         for s in english_leaks(html, known)]  # fmt: skip
    return findings, pages, paths


def pdf_findings(pdf: bytes, lang: str, alerts: list[dict[str, Any]]) -> list[Finding]:
    """The report's PDF: it has pages, its pictures' text (the diagrams are vector drawings with
    text), and no English alert sentence in a translated report."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(pdf))
    text = " ".join(" ".join((p.extract_text() or "").split()) for p in reader.pages)
    found = []
    if len(reader.pages) < 2:
        found.append(Finding("report-pdf", lang, "pdf", f"only {len(reader.pages)} page(s)"))
    if lang != "en":
        for sentence in [*alert_sentences(alerts, lang), *catalogue_sentences(lang)]:
            # PDF text breaks lines anywhere: compare without spaces
            if sentence.replace(" ", "") in text.replace(" ", ""):
                found.append(
                    Finding("report-pdf", lang, "english", f"English data sentence: {sentence[:160]}")
                )
    return found


def pdf_pictures(pdf: Path, dpi: int = 60) -> list[Finding]:
    """The PDF's pages as PNG files beside it (``<name>-1.png``, ...) with poppler's ``pdftoppm``, to
    look at what WeasyPrint laid out; nothing (and no finding) when pdftoppm is not installed
    (``scripts/system-deps`` installs poppler-utils)."""
    import shutil

    tool = shutil.which("pdftoppm")
    if tool is None:
        return []
    done = subprocess.run(
        [tool, "-png", "-r", str(dpi), str(pdf), str(pdf.with_suffix(""))],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        return [Finding("report-pdf", pdf.stem[:2], "pdf", f"pdftoppm failed: {done.stderr.strip()[:200]}")]
    return []


# -- the workspace, the server and the browser ---------------------------------------------------
def build_demo(out: Path, hours: float) -> Path:
    subprocess.run([sys.executable, "-m", "derisk", "demo", "--out", str(out), "--hours", str(hours), "-q"],
                   check=True)  # fmt: skip
    return out / "workspace"


def stored_alerts(workspace: Path) -> list[dict[str, Any]]:
    from derisk.store.alerts import load_alerts
    from derisk.store.workspace import Workspace

    with Workspace.open(workspace, create=False, read_only=True) as ws:
        return [a.to_json() for a in load_alerts(ws)]


def add_reviewer(workspace: Path) -> None:
    from derisk.web.auth import UserStore

    UserStore(workspace).add(REVIEWER[0], REVIEWER[1], "viewer", replace=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serve(workspace: Path, log: Path) -> Iterator[str]:
    """``derisk serve`` on a free loopback port; yields its URL and stops it afterwards."""
    import httpx

    port = _free_port()
    with log.open("w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "derisk", "serve", "-w", str(workspace), "--port", str(port)],
                                stdout=fh, stderr=subprocess.STDOUT)  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(url + "/login", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"derisk serve did not come up (see {log})")
                time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def http_get(url: str) -> tuple[Get, Callable[[str], bytes]]:
    """A logged-in client of the server at ``url``: ``get(path) -> (status, text)`` and ``raw(path)``."""
    import httpx

    client = httpx.Client(base_url=url, timeout=120)
    page = client.get("/login").text
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    if token is None:
        raise RuntimeError("no login form")
    data = {"csrf": token.group(1), "username": REVIEWER[0], "password": REVIEWER[1]}
    if client.post("/login", data=data).status_code >= 400:
        raise RuntimeError("login refused")

    def get(path: str) -> tuple[int, str]:
        r = client.get(path)
        return r.status_code, r.text

    def raw(path: str) -> bytes:
        r = client.get(path)
        r.raise_for_status()
        return r.content

    return get, raw


def screenshots(
    url: str, paths: dict[str, str], pages: dict[str, dict[str, str]], langs: tuple[str, ...], out: Path
) -> list[Finding]:
    """Each page in each language as a full-page PNG in ``out``; overflow and empty pictures found.
    The report is a download (a self-contained file): its HTML from ``pages`` is shown as it is."""
    from playwright.sync_api import sync_playwright

    findings = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1366, "height": 900})
            page = context.new_page()
            page.goto(url + "/login")
            page.fill("input[name=username]", REVIEWER[0])
            page.fill("input[name=password]", REVIEWER[1])
            page.click("button[type=submit]")
            page.wait_for_load_state()
            for lang in langs:
                for name, path in paths.items():
                    if name == "report":
                        if name not in pages.get(lang, {}):
                            continue
                        page.set_content(pages[lang][name])
                    else:
                        response = page.goto(f"{url}{path}?lang={lang}")
                        if response is not None and response.status != 200:  # what the PNG shows
                            findings.append(
                                Finding(name, lang, "status", f"HTTP {response.status} in the browser")
                            )
                    page.wait_for_load_state()
                    page.screenshot(path=str(out / f"{lang}-{name}.png"), full_page=True)
                    wide = page.evaluate(
                        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                    )
                    if wide > 2:
                        findings.append(
                            Finding(name, lang, "overflow", f"page {wide}px wider than the window")
                        )
                    empty = page.evaluate(
                        "[...document.querySelectorAll('svg[role=img]')]"
                        ".filter(s => { const r = s.getBoundingClientRect(); return r.width < 20 || r.height < 20; })"
                        ".map(s => s.getAttribute('class'))"
                    )
                    findings += [Finding(name, lang, "picture", f"svg.{c} drawn smaller than 20px")
                                 for c in empty if c in PICTURES[name]]  # fmt: skip
                    if name == "report":
                        page.emulate_media(media="print")
                        page.screenshot(path=str(out / f"{lang}-report-print.png"), full_page=True)
                        page.emulate_media(media="screen")
        finally:
            browser.close()
    return findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("out", type=Path, help="folder for the PNG files, PDFs and findings.json")
    parser.add_argument(
        "--workspace", type=Path, help="workspace to review (default: build the demo in OUT/demo)"
    )
    parser.add_argument("--hours", type=float, default=6.0, help="hours of demo traffic (default 6)")
    parser.add_argument(
        "--lang", action="append", choices=LANGS, help="a language (repeatable; default all four)"
    )
    parser.add_argument("--no-browser", action="store_true", help="HTML and PDF checks only, no screenshots")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    langs = tuple(args.lang or LANGS)
    workspace = args.workspace or build_demo(out / "demo", args.hours)
    alerts = stored_alerts(workspace)
    add_reviewer(workspace)
    with serve(workspace, out / "serve.log") as url:
        get, raw = http_get(url)
        findings, pages, paths = review_html(get, alerts, langs)
        notes: dict[str, list[str]] = {}
        english: dict[str, list[str]] = {}
        numbers: dict[str, list[str]] = {}
        for lang in langs:
            pdf = raw(f"/report/analysis.pdf?lang={lang}")
            (out / f"{lang}-report.pdf").write_bytes(pdf)
            findings += pdf_findings(pdf, lang, alerts)
            findings += pdf_pictures(out / f"{lang}-report.pdf")
            for name, html in pages.get(lang, {}).items():
                (out / f"{lang}-{name}.html").write_text(html, encoding="utf-8")
                if lang != "en":
                    found = suspects(pages["en"].get(name, ""), html)
                    if found:
                        notes[f"{lang}-{name}"] = found
                    found = english_like(html)
                    if found:
                        english[f"{lang}-{name}"] = found
                    found = english_numbers(html)
                    if found:
                        numbers[f"{lang}-{name}"] = found
        if not args.no_browser:
            if CHROMIUM.exists():
                findings += screenshots(url, paths, pages, langs, out)
            else:
                findings.append(Finding("-", "-", "status", f"{CHROMIUM} missing: no screenshots"))
    result = {"paths": paths, "findings": [asdict(f) for f in findings], "same_as_english": notes,
              "english_like": english, "english_numbers": numbers}  # fmt: skip
    (out / "findings.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    for f in findings:
        sys.stdout.write(f"{f.lang:2} {f.page:10} {f.check:8} {f.detail}\n")
    sys.stdout.write(f"{len(findings)} findings; pages: {', '.join(paths)}; written to {out}\n")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
