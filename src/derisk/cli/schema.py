"""``derisk schema``: the JSON Schemas of derisk's documents and files, and a check against one."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from derisk.errors import InputError

MAX_CHECK_BYTES = 200_000_000


def _read(path: Path) -> object:
    """A JSON document, or a YAML one (site and deal files), read bounded."""
    import json

    from derisk import yamlguard
    from derisk.schemas import as_json_data

    try:
        with path.open("rb") as f:
            data = f.read(MAX_CHECK_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc.__class__.__name__})", source=str(path)) from None
    if len(data) > MAX_CHECK_BYTES:
        raise InputError(f"larger than {MAX_CHECK_BYTES:,} bytes", source=str(path))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", source=str(path)) from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise InputError(f"not valid JSON: {str(exc)[:200]}", source=str(path)) from None
    value = yamlguard.load(text, str(path), InputError, max_bytes=MAX_CHECK_BYTES)
    try:
        return as_json_data(value)
    except RecursionError:
        raise InputError(
            "a YAML alias refers to itself (the document has no end)", source=str(path)
        ) from None


@click.command("schema")
@click.argument("name", required=False)
@click.option(
    "--check",
    "check_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Validate this JSON or YAML file against the schema instead of printing it (exit 3 when invalid).",
)
def schema_command(name: str | None, check_path: Path | None) -> None:
    """Print the JSON Schema (2020-12) NAME, or list the schemas when NAME is omitted.

    NAME is a short name (analysis, alerts, site, deal ...) or the document's schema value
    (derisk.analysis/1). The printed text is the schema itself, for validators and YAML editors.
    """
    from derisk.schemas import ID_BASE, SCHEMAS, file_name, schema_text, validate

    if name is None:
        if check_path is not None:
            raise click.UsageError("--check needs a schema NAME")
        for short, what in SCHEMAS.items():
            click.echo(f"{short:<10} {ID_BASE}{file_name(short)}  ({what})")
        return
    if check_path is None:
        sys.stdout.write(schema_text(name))
        sys.stdout.flush()
        return
    validate(_read(check_path), name, source=str(check_path))
    click.echo(f"{check_path}: valid against {file_name(name)}")


def register(group: click.Group) -> None:
    group.add_command(schema_command)
