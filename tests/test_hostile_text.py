"""Traffic is attacker-controlled text: what a capture names must stay inert in every output."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest

from derisk.cli import main
from derisk.gen.model import Conversation, Exchange, HttpRequest, TlsHello
from derisk.gen.packets import write_capture
from derisk.safetext import csv_cell, visible

T0 = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)
MARKUP_NAME = "[bold red]pwned[/bold red].example.com"
SCRIPT_NAME = "<script>alert(1)</script>.example.com"
LONG_NAME = ".".join(["a" * 63] * 3) + ".example.com"
NASTY_UA = 'UA "quoted" \x1b[2J\x07 <img src=x onerror=alert(1)>'


@pytest.fixture
def hostile_capture(tmp_path: Path) -> Path:
    convs = [
        Conversation(
            "tcp", "10.1.0.5", "8.8.8.10", T0, 40000, 443, (Exchange("c2s", 500),), tls=TlsHello(MARKUP_NAME)
        ),
        Conversation(
            "tcp", "10.1.0.5", "8.8.8.47", T0, 40001, 443, (Exchange("c2s", 500),), tls=TlsHello(SCRIPT_NAME)
        ),
        Conversation(
            "tcp", "10.1.0.5", "8.8.8.84", T0, 40002, 443, (Exchange("c2s", 500),), tls=TlsHello(LONG_NAME)
        ),
        Conversation(
            "tcp",
            "10.1.0.5",
            "1.1.1.10",
            T0,
            40003,
            80,
            http=HttpRequest(host="ctl.example.com", user_agent=NASTY_UA),
        ),
    ]
    path = tmp_path / "hostile.pcap"
    write_capture(convs, path)
    return path


def test_terminal_output_shows_markup_literally_and_no_control_bytes(
    tmp_path: Path, data_env: Path, hostile_capture: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["analyze", str(hostile_capture), "-w", str(tmp_path / "ws"), "--top", "10"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "[bold red]pwned" in out.replace("\n", "")  # shown as text, not interpreted as rich markup


def test_json_and_html_keep_names_but_render_them_inert(
    tmp_path: Path, data_env: Path, hostile_capture: Path
) -> None:
    out = tmp_path / "a.json"
    html = tmp_path / "a.html"
    assert (
        main(
            [
                "analyze",
                str(hostile_capture),
                "-w",
                str(tmp_path / "ws"),
                "-q",
                "--json",
                str(out),
                "--html",
                str(html),
            ]
        )
        == 0
    )
    doc = json.loads(out.read_text())
    names = {n for d in doc["destinations"] for n in d["server_names"]}
    assert SCRIPT_NAME in names and MARKUP_NAME in names  # evidence is kept as seen
    text = html.read_text()
    assert "<script>alert(1)" not in text and "<img src=x" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.example.com" in text


def test_safetext_helpers() -> None:
    assert visible("a\x1b[2Jb\x07") == "a\\x1b[2Jb\\x07"
    assert len(visible("x" * 10_000, 50)) == 50
    assert csv_cell('=HYPERLINK("http://x")').startswith("'=")
    buf = io.StringIO()
    csv.writer(buf).writerow([csv_cell(NASTY_UA)])
    assert "\x1b" not in buf.getvalue()
