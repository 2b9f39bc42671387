"""Curated data shipped with derisk: YAML files, each fact with its source, read one way."""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from typing import Any

import yaml

from derisk.errors import DataError

#: The C implementation of the safe loader when PyYAML has it (much faster), else the Python one.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(relative: str) -> Any:
    """One shipped YAML document, e.g. ``"eu-members.yaml"`` or ``"regimes/be.yaml"``."""
    item = resources.files("derisk.data").joinpath(relative)
    try:
        return yaml.load(item.read_text(encoding="utf-8"), Loader=_LOADER)  # noqa: S506 - a safe loader
    except FileNotFoundError:
        raise DataError("missing from the installed package", source=f"derisk/data/{relative}") from None
    except yaml.YAMLError as exc:
        raise DataError(f"not valid YAML: {exc}", source=f"derisk/data/{relative}") from None


def read_yaml_folder(folder: str) -> dict[str, Any]:
    """Every ``*.yaml`` document of a shipped folder, by file name, in name order."""
    root = resources.files("derisk.data").joinpath(folder)
    names = sorted(entry.name for entry in root.iterdir() if entry.name.endswith(".yaml"))
    return {name: read_yaml(f"{folder}/{name}") for name in names}


def content_digest(documents: dict[str, Any]) -> str:
    """A short content hash of parsed documents (by name): changes when any value changes.

    Hashes a canonical JSON form (sorted keys; dates and other non-JSON values as text), which is
    much cheaper than serialising the YAML again.
    """
    digest = hashlib.sha256()
    for name in sorted(documents):
        digest.update(name.encode() + b"\0")
        digest.update(json.dumps(documents[name], sort_keys=True, default=str, ensure_ascii=False).encode())
    return digest.hexdigest()[:16]
