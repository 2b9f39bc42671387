"""`--pdf` wherever a command writes an HTML report: analyze, reduce (and report, tested with the dashboard)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pypdf import PdfReader

from derisk.cli import main

FIXTURES = Path(__file__).parent / "fixtures"


def _text(pdf: Path) -> str:
    assert pdf.read_bytes().startswith(b"%PDF-")
    return " ".join(page.extract_text() or "" for page in PdfReader(pdf).pages)


def test_analyze_writes_the_report_as_pdf_and_html(tmp_path: Path, data_env: Path) -> None:
    pdf, html = tmp_path / "report.pdf", tmp_path / "report.html"
    capture = FIXTURES / "pcap" / "golden.pcap"
    args = ["analyze", str(capture), "-w", str(tmp_path / "ws"), "-q", "--pdf", str(pdf), "--html", str(html)]
    assert main(args) == 0
    text = _text(pdf)
    assert "Who controls the other end?" in text and "Traffic over time" in text
    assert "Traffic over time" in html.read_text(encoding="utf-8")


def test_reduce_writes_its_page_as_pdf(tmp_path: Path) -> None:
    pdf = tmp_path / "trade.pdf"
    assert main(["reduce", "--trade-sample", "-q", "--pdf", str(pdf)]) == 0
    assert "Illustrative" in _text(pdf)


def test_pdf_into_a_missing_folder_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reduce", "--trade-sample", "-q", "--pdf", str(tmp_path / "no" / "x.pdf")]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "output folder does not exist" in err


def test_screen_writes_its_memo_as_pdf(tmp_path: Path) -> None:
    pdf = tmp_path / "memo.pdf"
    deal = Path(__file__).parent.parent / "examples" / "deals" / "liege-cargo.yaml"
    assert main(["screen", str(deal), "--today", "2025-04-01", "-q", "--pdf", str(pdf), "--lang", "fr"]) == 0
    text = _text(pdf)
    assert "Note de filtrage des investissements" in text and "pas un avis juridique" in text
