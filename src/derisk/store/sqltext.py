"""Text spliced into DuckDB SQL where a parameter cannot go (file paths in table functions, column names)."""

from __future__ import annotations


def literal(text: str) -> str:
    """A SQL string literal: ``it's`` → ``'it''s'``."""
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    """A quoted SQL identifier: ``id.orig_h`` → ``"id.orig_h"``."""
    return '"' + name.replace('"', '""') + '"'
