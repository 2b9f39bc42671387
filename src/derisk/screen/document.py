"""Reading a deal file safely: bounded size, no YAML aliases, bounded nesting, in time linear in its size.

A deal file comes from whoever wrote it. YAML aliases let a 1.5 kB file expand into billions of nodes
(the "billion laughs" shape), and deep nesting exhausts the parser's stack; both are refused before any
value is built. The check walks the parser's event stream (libyaml when present), so it costs one pass
over the file: an alias, a nesting deeper than :data:`MAX_DEPTH` or a file larger than :data:`MAX_BYTES`
is a one-line :class:`~derisk.errors.InputError` (exit 3). Deal files need neither aliases nor anchors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

import yaml

from derisk.errors import InputError

MAX_BYTES: Final = 1_000_000
MAX_DEPTH: Final = 64
MAX_TEXT: Final = 1024  # characters of any text value or key: no field of a deal file needs more
MAX_ITEMS: Final = 1000  # entries of any list or mapping
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _check_events(text: str, source: str) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent):
            mark = event.start_mark
            where = f" (line {mark.line + 1})" if mark is not None else ""
            raise InputError(
                f"YAML aliases (*name) are not accepted in a deal file{where}: write the value out",
                source=source,
            )
        if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise InputError(f"nesting deeper than {MAX_DEPTH} levels", source=source)
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            depth -= 1


def check_bounds(value: Any, source: str, where: str = "", depth: int = 0) -> None:
    """Refuse nesting deeper than MAX_DEPTH, text longer than MAX_TEXT and lists longer than MAX_ITEMS.

    Runs on the parsed document, before any deal-specific check, so that a hostile file is refused
    without loading the regimes; the deal checks repeat the field limits with the field's own name.
    """
    if depth > MAX_DEPTH:
        raise InputError(f"nesting deeper than {MAX_DEPTH} levels", source=source)
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise InputError(
                f"{where or 'the document'}: text longer than {MAX_TEXT:,} characters ({len(value):,})",
                source=source,
            )
    elif isinstance(value, dict | list):
        if len(value) > MAX_ITEMS:
            raise InputError(
                f"{where or 'the document'}: more than {MAX_ITEMS:,} entries ({len(value):,})", source=source
            )
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, v in items:
            if isinstance(key, str) and len(key) > MAX_TEXT:
                raise InputError(
                    f"{where or 'the document'}: a key longer than {MAX_TEXT:,} characters", source=source
                )
            label = f"{where}.{key}" if isinstance(key, str) else f"{where}[{key}]"
            check_bounds(v, source, label.lstrip("."), depth + 1)


def parse_text(text: str, source: str, *, is_json: bool = False) -> Any:
    """Parse deal-file text (YAML, or JSON when ``is_json``) under the limits above."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise InputError(f"larger than {MAX_BYTES:,} bytes: a deal file is a few kB", source=source)
    if "\x00" in text:
        raise InputError("contains a NUL character: not a text file", source=source)
    kind = "JSON" if is_json else "YAML"
    try:
        if is_json:
            value = json.loads(text)
        else:
            _check_events(text, source)
            value = yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader, aliases refused above
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        line = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise InputError(f"not valid {kind}: {line}", source=source) from None
    except RecursionError:
        raise InputError(f"nesting deeper than {MAX_DEPTH} levels", source=source) from None
    except (ValueError, OverflowError) as exc:  # a value YAML recognises but cannot build: 2025-00-05
        raise InputError(f"not valid {kind}: {exc}", source=source) from None
    check_bounds(value, source)
    return value


def read_document(path: Path) -> Any:
    """Read and parse a deal file (YAML, or JSON by the ``.json`` suffix), or raise InputError naming it."""
    if path.exists() and not path.is_file() and not path.is_dir():
        raise InputError(
            "not a regular file (a pipe, socket or device): a deal file is a file", source=str(path)
        )
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise InputError(f"larger than {MAX_BYTES:,} bytes: a deal file is a few kB", source=str(path))
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(
            f"cannot read the file ({exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''})",
            source=str(path),
        ) from None
    return parse_text(text, str(path), is_json=path.suffix.lower() == ".json")
