"""The exported screening memo in French, Dutch and German: Screen's risk-factor evidence lines and
finding codes shown in the page's language; the JSON document keeps English sentences and codes."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from derisk.cli import main
from derisk.i18n.data import sentence
from derisk.screen.exposure import exposure_from_flows
from derisk.screen.findings import FINDING_LABELS
from derisk.screen.risk import sector_factors

ROOT = Path(__file__).parent.parent
DEALS = ROOT / "examples" / "deals"


def _text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


@pytest.mark.parametrize("lang", ["fr", "nl", "de"])
def test_memo_shows_evidence_and_findings_translated(tmp_path: Path, lang: str) -> None:
    doc_path, page = tmp_path / "memo.json", tmp_path / "memo.html"
    deal = DEALS / "liege-cargo.yaml"
    args = ["screen", str(deal), "--today", "2025-03-01", "--json", str(doc_path), "-q"]
    assert main([*args, "--html", str(page), "--lang", lang]) == 0
    doc = json.loads(doc_path.read_text(encoding="utf-8"))
    shown = _text(page.read_text(encoding="utf-8"))
    codes = {f["finding"] for f in doc["risk_factors"]} & set(FINDING_LABELS)
    assert codes, "the memo has Screen findings"
    for code in codes:  # the document keeps the code, the page shows the translated label
        assert f": {code}" not in shown
        assert sentence(lang, FINDING_LABELS[code]) != FINDING_LABELS[code]
    evidence = [e for f in doc["risk_factors"] for e in f["evidence"]]
    assert any(e.startswith("Know graph") for e in evidence)
    for line in evidence:
        if line.startswith(("Know graph: ", "Know graph path: ", "Deal file chain: ")):
            assert line.split(": ", 1)[0] + ": " not in shown


def test_sector_and_exposure_evidence_match_their_templates() -> None:
    import pyarrow as pa

    from derisk.screen.dealfile import load_deal
    from derisk.screen.regimes import load_catalogue

    catalogue = load_catalogue()
    deal = load_deal(DEALS / "liege-cargo.yaml", catalogue.vocabulary)
    factor = sector_factors(deal, catalogue)
    assert factor is not None and factor.evidence
    for line in factor.evidence:
        assert sentence("fr", line) != line and " [V] : " in sentence("fr", line)
    flows = pa.table(
        {
            "system": ["scanner"],
            "dst_org": ["Alibaba Cloud"],
            "dst_org_id": ["x"],
            "dst_controller": ["Alibaba Group Holding Limited"],
            "dst_controller_id": ["alibaba"],
            "dst_jurisdiction": ["CN"],
            "bytes_out": [3514671],
            "bytes_in": [1000],
            "first_seen": pa.array([None], type=pa.timestamp("us", tz="UTC")),
            "last_seen": pa.array([None], type=pa.timestamp("us", tz="UTC")),
        }
    )
    exposure = exposure_from_flows(flows, ["alibaba"], [], "WS")
    line = exposure.evidence[0]
    assert line.startswith("system scanner → Alibaba Cloud (control exercised from CN): 3,514,671 bytes sent")
    de = sentence("de", line)
    assert de.startswith(
        "System scanner → Alibaba Cloud (Kontrolle ausgeübt aus CN): 3.514.671 Bytes gesendet"
    )
    assert "3,514,671" in exposure.sentence and "3,514,671" not in sentence("fr", exposure.sentence)


@pytest.mark.parametrize("lang", ["fr", "nl", "de"])
def test_know_sentences_inside_memo_evidence_are_translated(tmp_path: Path, lang: str) -> None:
    """Know's resolution and path-step sentences quoted in the memo's evidence read in the page's
    language (read back phrase by phrase), names kept; the document keeps English."""
    doc_path = tmp_path / "memo.json"
    deal = DEALS / "liege-cargo.yaml"
    assert main(["screen", str(deal), "--today", "2025-03-01", "--json", str(doc_path), "-q"]) == 0
    doc = json.loads(doc_path.read_text(encoding="utf-8"))
    evidence = [e for f in doc["risk_factors"] for e in f["evidence"]]
    know = [e for e in evidence if e.startswith(("Know graph: ", "Know graph path: "))]
    assert any(e.startswith("Know graph: ") for e in know) and any("path" in e for e in know)
    english_words = ("ultimately controlled by", "Control is exercised from", "weakest link", " controls ")
    for line in know:
        shown = sentence(lang, line)
        assert shown != line
        assert not any(words in shown for words in english_words), shown
        assert "Alibaba" in shown


@pytest.mark.parametrize(
    ("lang", "eu"), [("fr", "Union européenne"), ("nl", "Europese Unie"), ("de", "Europäische Union")]
)
def test_regime_names_are_in_the_page_language(tmp_path: Path, lang: str, eu: str) -> None:
    page = tmp_path / "memo.html"
    deal = DEALS / "liege-cargo.yaml"
    assert (
        main(["screen", str(deal), "--today", "2025-03-01", "--html", str(page), "--lang", lang, "-q"]) == 0
    )
    shown = _text(page.read_text(encoding="utf-8"))
    assert eu in shown and "European Union:" not in shown
