"""JSON Schemas (draft 2020-12) of the documents derisk writes and of the files it reads.

One file per document, ``derisk.NAME-1.schema.json``, with ``$id``
``https://derisk.invalid/schemas/derisk.NAME-1.schema.json`` (``.invalid`` is reserved and never
resolves: the id names the schema, the copy is the one shipped here; see docs/schemas.md). Written
documents are open to added keys (a ``/1`` document may gain keys, never lose or retype one); the site
and deal files are closed, as derisk's own checks are.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, Final

from derisk.errors import InputError, NotFoundError

ID_BASE: Final = "https://derisk.invalid/schemas/"

#: Schema name -> what it describes, in the order ``derisk schema`` lists them.
SCHEMAS: Final[dict[str, str]] = {
    "analysis": "derisk analyze --json",
    "alerts": "derisk alerts --json",
    "inputs": "derisk inputs --json",
    "data": "derisk data update/status --json",
    "entity": "derisk entity show --json",
    "entities": "derisk entity list --json",
    "evidence": "derisk evidence list --json",
    "screening": "derisk screen --json",
    "reduce": "derisk reduce --json",
    "webhook": "the body of each webhook POST of derisk watch --webhook",
    "dead-letter": "a line of a dead-letter file (derisk watch --dead-letter)",
    "users": "derisk users list --json",
    "import": "derisk entity import --json",
    "watch-status": "derisk watch --status-file (rewritten after every batch)",
    "parquet": "manifest.json of a Parquet flow dataset (derisk export parquet, --engine spark --out)",
    "site": "the site file (--site, derisk reduce SITE)",
    "deal": "the deal file (derisk screen DEAL)",
}


def schema_name(name: str) -> str:
    """``analysis``, ``derisk.analysis/1`` or ``derisk.analysis-1`` -> ``analysis``."""
    short = name.strip()
    if short.startswith("derisk."):
        short = short[len("derisk.") :]
    for suffix in ("/1", "-1", "-1.schema.json"):
        short = short.removesuffix(suffix)
    if short not in SCHEMAS:
        raise NotFoundError(f"no schema named {name[:80]!r}", details=[f"known: {', '.join(SCHEMAS)}"])
    return short


def file_name(name: str) -> str:
    return f"derisk.{schema_name(name)}-1.schema.json"


def schema_text(name: str) -> str:
    """The schema as shipped (JSON text)."""
    return resources.files(__name__).joinpath(file_name(name)).read_text(encoding="utf-8")


def load_schema(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(schema_text(name))
    return doc


def problems(doc: Any, name: str, *, limit: int = 20) -> list[str]:
    """Where ``doc`` breaks the schema ``name`` (empty when it is valid), format checks included."""
    from jsonschema import Draft202012Validator, FormatChecker

    validator = Draft202012Validator(load_schema(name), format_checker=FormatChecker())
    found = []
    for error in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        where = "/".join(str(p) for p in error.absolute_path) or "(document)"
        found.append(f"{where}: {error.message[:300]}")
        if len(found) >= limit:
            break
    return found


def validate(doc: Any, name: str, *, source: str) -> None:
    """Raise :class:`InputError` listing the problems when ``doc`` breaks schema ``name``."""
    found = problems(doc, name)
    if found:
        raise InputError(f"does not match {file_name(name)}", source=source, details=found)


def as_json_data(value: Any) -> Any:
    """A YAML document as JSON sees it: dates and times become ISO 8601 text (as YAML editors show them)."""
    if isinstance(value, dict):
        return {str(k): as_json_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_json_data(v) for v in value]
    if hasattr(value, "isoformat") and not isinstance(value, str):
        return value.isoformat()
    return value
