"""Hostile YAML in user files (site files here; deal files have their own stricter reader)."""

from __future__ import annotations

from pathlib import Path

import pytest

from derisk import yamlguard
from derisk.cli import main
from derisk.errors import ConfigError


def _laughs(levels: int, fan: int = 9) -> str:
    lines = ["a0: &a0 [" + ", ".join(["x"] * fan) + "]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fan) + "]")
    return "\n".join(lines) + "\n"


def test_aliases_used_sensibly_pass() -> None:
    doc = yamlguard.load("hosts: &h [10.0.0.1, 10.0.0.2]\na: *h\nb: *h\n", "s.yaml", ConfigError)
    assert doc == {
        "hosts": ["10.0.0.1", "10.0.0.2"],
        "a": ["10.0.0.1", "10.0.0.2"],
        "b": ["10.0.0.1", "10.0.0.2"],
    }


def test_billion_laughs_is_refused_by_counting_not_expanding() -> None:
    text = _laughs(9)
    assert len(text) < 2000
    with pytest.raises(ConfigError, match="expands to more than 1,000,000 values"):
        yamlguard.load(text, "s.yaml", ConfigError)


def test_expansion_is_counted_exactly() -> None:
    # a0: a list of 9 scalars (10 nodes); each next level: a list of 9 aliases of the one before
    # (1 + 9 x previous); the top mapping and its 4 keys: 5.
    sizes = [10]
    for _ in range(3):
        sizes.append(1 + 9 * sizes[-1])
    total = sum(sizes) + 5
    yamlguard.check(_laughs(3), "s.yaml", ConfigError, max_nodes=total)
    with pytest.raises(ConfigError):
        yamlguard.check(_laughs(3), "s.yaml", ConfigError, max_nodes=total - 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("site: x\nsystems: " + "[" * 100 + "]" * 100 + "\n", "nesting deeper than 64 levels"),
        ("site: x\nsystems: " + "[" * 5000 + "]" * 5000 + "\n", "s.yaml"),
        ("site: x\x00\n", "NUL"),
        ("site: [unclosed\n", "not valid YAML"),
        ("site: x\nwhen: 2025-00-05\n", "month must be in 1..12"),
        ("site: x\nwhen: 2025-02-30\n", "day is out of range"),
    ],
)
def test_hostile_shapes_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        yamlguard.load(text, "s.yaml", ConfigError)


def test_a_hostile_site_file_is_exit_4_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = Path(__file__).parent / "fixtures" / "pcap" / "golden.pcap"
    for name, text in (
        ("deep.yaml", "site: x\nsystems: " + "[" * 3000 + "]" * 3000),
        ("laughs.yaml", _laughs(9)),
    ):
        site = tmp_path / name
        site.write_text(text, encoding="utf-8")
        assert main(["analyze", str(capture), "--site", str(site), "-w", str(tmp_path / "ws")]) == 4
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err and name in err
        assert not (tmp_path / "ws").exists()
