"""Documentation that states a contract must agree with the code (after datasette's test_docs)."""

from __future__ import annotations

import re
from pathlib import Path

from derisk.errors import EXIT_CODES
from derisk.flows import FLOW_SCHEMA

DOCS = Path(__file__).parent.parent / "docs"
README = Path(__file__).parent.parent / "README.md"


def _documented_columns(text: str) -> set[str]:
    return set(re.findall(r"^\| `([a-z0-9_]+)` \|", text, flags=re.MULTILINE))


def test_flow_schema_page_lists_exactly_the_columns() -> None:
    documented = _documented_columns((DOCS / "flow-schema.md").read_text(encoding="utf-8"))
    assert documented == set(FLOW_SCHEMA.names)


def test_readme_documents_every_exit_code() -> None:
    text = README.read_text(encoding="utf-8")
    for code in EXIT_CODES:
        assert re.search(rf"^\| {code} \|", text, flags=re.MULTILINE), f"exit code {code} not in README"


def test_readme_names_the_two_setup_commands_and_ci_runs_one() -> None:
    text = README.read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci
