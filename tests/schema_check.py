"""Validate a document derisk wrote against its shipped JSON Schema (draft 2020-12, formats checked)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from derisk.schemas import load_schema, schema_name


def assert_valid(doc: Any, name: str | None = None) -> None:
    """Fail with every problem when ``doc`` breaks the schema ``name`` (default: its ``schema`` key)."""
    short = schema_name(name or doc["schema"])
    validator = Draft202012Validator(load_schema(short), format_checker=FormatChecker())
    errors = [
        f"{'/'.join(map(str, e.absolute_path)) or '(document)'}: {e.message[:300]}"
        for e in validator.iter_errors(doc)
    ]
    assert not errors, f"{short}: " + "; ".join(errors[:10])


def assert_file_valid(path: Path, name: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    assert_valid(doc, name)
    return doc
