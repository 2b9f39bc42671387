"""Nothing derisk ships or writes cites the reviewers' checklist (a file outside the product).

The screening's own files and outputs are checked in tests/test_screen_citations.py; this covers the
whole package, the documentation and the examples, and the plan's output.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = re.compile(r"LEGAL-FACTS|shared/reference", re.IGNORECASE)
#: The legal-base loader refuses such citations, so it names them.
REFUSER = '"LEGAL-FACTS" in source or "shared/reference" in source'


def _shipped() -> list[Path]:
    roots = [ROOT / "src" / "derisk", ROOT / "docs", ROOT / "examples"]
    files = [ROOT / "README.md"]
    for root in roots:
        files += [p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return sorted(f for f in files if f.suffix not in (".pyc", ".mo", ".png", ".arrow"))


@pytest.mark.parametrize("path", _shipped(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_shipped_file_cites_the_checklist(path: Path) -> None:
    try:
        text = path.read_text(encoding="utf-8").replace(REFUSER, "")
    except UnicodeDecodeError:
        return  # binary data (fixtures of real formats) cites nothing
    found = FORBIDDEN.search(text)
    assert found is None, f"{path}: {text[max(0, found.start() - 80) : found.end() + 40]!r}"


def test_the_plan_cites_no_checklist() -> None:
    from derisk.reduce.run import reduce_site

    doc = reduce_site(ROOT / "examples" / "sites" / "liege-hub.yaml")
    assert FORBIDDEN.search(json.dumps(doc, ensure_ascii=False)) is None
