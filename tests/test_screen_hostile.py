"""Hostile deal files: refused with exit 3 and one line, in time linear in their size.

The "billion laughs" shape (owners that are YAML aliases reused 8 times over 9 levels, 1.5 kB on disk)
once ran for minutes and took gigabytes. The subprocess timeout below is a hang guard only, not a speed
assertion: a refusal is instant, a regression is a hang.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from derisk.errors import InputError
from derisk.screen.dealfile import load_deal
from derisk.screen.document import MAX_BYTES, parse_text
from derisk.screen.regimes import load_catalogue

VOCAB = load_catalogue().vocabulary
TAIL = (
    "target: {name: T, country: BE, sectors: [energy]}\n"
    "stake: {after_pct: 25, control_after: false}\n"
    "dates: {signing: 2025-03-03, closing: 2025-06-30}\n"
)


def billion_laughs() -> str:
    """Owners that are aliases reused 8 times over 9 levels: 8**9 = 134 million parties if expanded."""
    lines = ["l0: &l0 {name: P, country: CN, kind: person, stake_pct: 1}"]
    for level in range(1, 10):
        reuse = ", ".join([f"*l{level - 1}"] * 8)
        lines.append(
            f"l{level}: &l{level} {{name: C{level}, country: CN, kind: company, stake_pct: 1, owners: [{reuse}]}}"
        )
    return "\n".join(lines) + "\ninvestor: *l9\n" + TAIL


def run_cli(path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "derisk", "screen", str(path), "-q"],
        capture_output=True,
        text=True,
        timeout=10,  # hang guard only
        env=env,
        check=False,
    )


def assert_refused(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 3, (result.returncode, result.stderr[-500:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-1000:]
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0][:300]
    assert len(lines[0]) < 2000  # the huge value itself is never echoed


def test_billion_laughs_is_refused_by_the_cli(tmp_path: Path) -> None:
    text = billion_laughs()
    assert 1200 < len(text.encode()) < 2000  # the 1.5 kB file of the report
    path = tmp_path / "laughs.yaml"
    path.write_text(text, encoding="utf-8")
    assert_refused(run_cli(path), "aliases")


def test_a_10_mb_title_is_refused_by_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("title: " + "x" * 10_000_000 + "\n" + TAIL, encoding="utf-8")
    assert_refused(run_cli(path), "larger than")


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("empty.yaml", b"", ("deal file",)),
        ("nul.yaml", b"title: a\x00b\n", ("NUL",)),
        ("latin1.yaml", "title: caf\xe9\n".encode("latin-1"), ("cannot read",)),
        ("random.yaml", bytes(range(256)) * 4, ()),
        ("deep.yaml", b"a: " + b"[" * 5000 + b"]" * 5000, ()),
        ("deep-block.yaml", "".join(f"{' ' * i}k{i}:\n" for i in range(200)).encode(), ("nesting",)),
        ("deep.json", b"[" * 100_000 + b"]" * 100_000, ("nesting",)),
        ("anchor-alias.yaml", ("x: &a 1\ny: *a\n" + TAIL).encode(), ("aliases",)),
    ],
)
def test_hostile_files_are_one_line_input_errors(
    tmp_path: Path, name: str, content: bytes, words: tuple[str, ...]
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        load_deal(path, VOCAB)
    line = info.value.one_line()
    assert "\n" not in line and len(line) < 2000
    for word in words:
        assert word in line, line[:300]


def test_random_bytes_exit_3_from_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "random.yaml"
    path.write_bytes(bytes(range(256)) * 4)
    assert_refused(run_cli(path))


def test_file_size_limit_is_checked_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("wb") as f:
        f.truncate(MAX_BYTES + 1)
    with pytest.raises(InputError, match="larger than"):
        load_deal(path, VOCAB)


@pytest.mark.parametrize(
    ("where", "value"),
    [
        ("title", "t" * 1025),
        ("investor.name", "n" * 1025),
        ("target.name", "n" * 1025),
        ("target.sectors", ["s" * 1025]),
    ],
)
def test_every_text_field_is_bounded(where: str, value: object) -> None:
    raw = {
        "title": "ok",
        "investor": {"name": "I", "country": "CN", "kind": "company"},
        "target": {"name": "T", "country": "BE", "sectors": ["energy"]},
        "stake": {"after_pct": 25, "control_after": False},
        "dates": {"signing": "2025-03-03", "closing": "2025-06-30"},
    }
    key, _, sub = where.partition(".")
    if sub:
        raw[key][sub] = value  # type: ignore[index]
    else:
        raw[key] = value
    from derisk.screen.dealfile import parse_deal

    with pytest.raises(InputError) as info:
        parse_deal(raw, VOCAB, source="t")
    line = info.value.one_line()
    assert where in line and ("1024" in line or "1,024" in line) and len(line) < 1000


def test_lists_are_bounded() -> None:
    owners = [{"name": f"P{i}", "country": "CN", "kind": "person", "stake_pct": 0.01} for i in range(1001)]
    text = json.dumps(
        {
            "investor": {"name": "I", "country": "CN", "kind": "company", "owners": owners},
            "target": {"name": "T", "country": "BE", "sectors": ["energy"]},
            "stake": {"after_pct": 25, "control_after": False},
            "dates": {"signing": "2025-03-03", "closing": "2025-06-30"},
        }
    )
    from derisk.screen.dealfile import parse_deal

    with pytest.raises(InputError, match=r"investor\.owners: more than 1,000 entries"):
        parse_text(text, "t", is_json=True)  # refused before the regimes are even loaded
    with pytest.raises(InputError, match="more than 1000 entries"):
        parse_deal(json.loads(text), VOCAB, source="t")  # and again by the deal checks (web, API)


def test_long_text_is_refused_by_the_reader_naming_its_place() -> None:
    with pytest.raises(InputError, match=r"investor\.owners\[0\]\.name: text longer than 1,024"):
        parse_text("investor: {owners: [{name: " + "x" * 2000 + "}]}\n", "t")


def test_anchors_without_aliases_are_harmless() -> None:
    value = parse_text("a: &x 1\nb: 2\n", "t")
    assert value == {"a": 1, "b": 2}
