"""Every legal fact the product ships cites a text a reader can follow; nothing cites a file outside it.

The reviewers' checklist (shared/reference/LEGAL-FACTS.md) is a working file beside the repository, not
a source: no shipped regime, law file, template or screening output may cite it.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from derisk.know.laws import load_legal_base
from derisk.screen.memo import render_html
from derisk.screen.regimes import data_dir, load_catalogue
from derisk.screen.run import screen_file

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples" / "deals").glob("*.yaml"))
FORBIDDEN = re.compile(r"LEGAL-FACTS|shared/reference", re.IGNORECASE)
READ_DATES = {None, dt.date(2026, 12, 6)}
CAT = load_catalogue()


def _shipped() -> list[Path]:
    data = data_dir()
    files = [
        *sorted((data / "regimes").glob("*.yaml")),
        *sorted((data / "laws").glob("*.yaml")),
        data / "sectors.yaml",
        data / "eu-members.yaml",
        *sorted((ROOT / "src" / "derisk" / "screen" / "templates").glob("*")),
        *sorted((ROOT / "src" / "derisk" / "screen").glob("*.py")),
        ROOT / "src" / "derisk" / "know" / "laws.py",
        ROOT / "docs" / "screening.md",
        *EXAMPLES,
    ]
    return [f for f in files if f.is_file()]


@pytest.mark.parametrize("path", _shipped(), ids=lambda p: p.name)
def test_no_shipped_file_cites_the_checklist(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    if path.name == "laws.py":  # the loader refuses such citations, so it names them
        text = text.replace('"LEGAL-FACTS" in source or "shared/reference" in source', "")
    if path.name == "test_screen_citations.py":  # pragma: no cover - not shipped
        return
    found = FORBIDDEN.search(text)
    assert found is None, f"{path}: {text[max(0, found.start() - 80) : found.end() + 40]!r}"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_no_screening_output_cites_the_checklist(example: Path) -> None:
    doc = screen_file(example, today=dt.date(2025, 3, 1))
    import json

    for text in (json.dumps(doc, ensure_ascii=False), render_html(doc)):
        assert FORBIDDEN.search(text) is None, FORBIDDEN.search(text)


def test_every_regime_source_is_a_followable_text() -> None:
    for regime in CAT.regimes.values():
        assert regime.sources, regime.code
        for source in regime.sources.values():
            assert source.read in READ_DATES, (regime.code, source.id)
            if source.kind != "derisk":
                assert source.url and source.url.startswith("https://"), (regime.code, source.id)
                assert source.language, (regime.code, source.id)


def test_every_cited_statement_names_a_url_or_derisk() -> None:
    for regime in CAT.regimes.values():
        items = [
            *regime.facts.values(),
            *regime.lists.values(),
            *regime.thresholds.values(),
            *regime.rules,
            *regime.deadlines,
            *regime.penalties,
            *regime.notes,
            *regime.advice.values(),
            regime.authority,
            regime.instrument,
        ]
        for item in items:
            assert "https://" in item.source or item.source.startswith("derisk"), (regime.code, item)
            assert "read 2026-12-06" in item.source or "not read" in item.source or "derisk" in item.source


def test_primary_texts_are_the_official_sites() -> None:
    urls = {s.url for r in CAT.regimes.values() for s in r.sources.values() if s.kind == "primary"}
    for official in (
        "https://eur-lex.europa.eu/eli/reg/2019/452/oj",
        "https://www.gesetze-im-internet.de/awv_2013/",
        "https://www.legifrance.gouv.fr/codes/texte_lc/LEGITEXT000006072026/",
        "https://wetten.overheid.nl/BWBR0046747",
        "https://www.ejustice.just.fgov.be/",
    ):
        assert official in urls, official


def test_every_law_carries_a_url_and_no_checklist() -> None:
    base = load_legal_base()
    for code, laws in base.by_jurisdiction.items():
        for law in laws:
            assert law.url and law.url.startswith("https://"), (code, law.law, law.article)
            assert not FORBIDDEN.search(law.source), (code, law.law)


def test_corrected_dates_of_the_legal_base() -> None:
    laws = {
        (law.law, law.article): law for laws in load_legal_base().by_jurisdiction.values() for law in laws
    }
    gdpr = next(v for k, v in laws.items() if k[0].startswith("General Data Protection Regulation"))
    assert (gdpr.in_force, gdpr.applies_from) == ("2016-05-24", "2018-05-25")
    yarovaya = next(v for k, v in laws.items() if k[0].startswith("Yarovaya"))
    assert yarovaya.in_force == "2016-07-20"
    assert yarovaya.applies_from is not None and "2018-07-01" in yarovaya.applies_from


def test_the_screening_doc_lists_every_text_cited() -> None:
    text = (ROOT / "docs" / "screening.md").read_text(encoding="utf-8")
    for regime in CAT.regimes.values():
        for source in regime.sources.values():
            if source.kind != "derisk":
                read = source.read.isoformat() if source.read else "not read"
                assert f"| {source.url} | {read} |" in text, (regime.code, source.id)
