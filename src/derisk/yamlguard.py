"""YAML from users, read in bounded time and memory: size, nesting and alias expansion checked first.

YAML aliases let a 1.5 kB file expand into billions of nodes (the "billion laughs" shape) and deep
nesting exhausts the parser's stack. :func:`load` walks the parser's event stream once (libyaml when
present) before any value is built, and refuses a document that is larger than ``max_bytes``, nests
deeper than ``max_depth``, or whose aliases would expand it beyond ``max_nodes`` nodes. Anchors and
aliases used for what they are meant for (a list of hosts written once, referred to twice) pass.
The error class is the caller's: a site file is configuration (exit 4), a deal file an input (exit 3).
"""

from __future__ import annotations

from typing import Any, Final

import yaml

from derisk.errors import DeriskError

MAX_BYTES: Final = 10_000_000
MAX_DEPTH: Final = 64
MAX_NODES: Final = 1_000_000
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_OPEN = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSE = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def check(
    text: str,
    source: str,
    error: type[DeriskError],
    *,
    max_depth: int = MAX_DEPTH,
    max_nodes: int = MAX_NODES,
) -> None:
    """Raise ``error`` if the document nests too deep or its aliases expand it too far."""
    depth = 0
    nodes = 0
    #: Nodes counted when each open collection started, and the anchor it carries.
    starts: list[tuple[int, str | None]] = []
    sizes: dict[str, int] = {}
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent):
            nodes += sizes.get(event.anchor or "", 1)
        elif isinstance(event, yaml.ScalarEvent):
            nodes += 1
            if event.anchor:
                sizes[event.anchor] = 1
        elif isinstance(event, _OPEN):
            depth += 1
            if depth > max_depth:
                raise error(f"nesting deeper than {max_depth} levels", source=source)
            starts.append((nodes, event.anchor))
            nodes += 1
        elif isinstance(event, _CLOSE):
            depth -= 1
            began, anchor = starts.pop()
            if anchor:
                sizes[anchor] = nodes - began
        if nodes > max_nodes:
            raise error(
                f"expands to more than {max_nodes:,} values (YAML aliases repeated over and over?)",
                source=source,
            )


def load(
    text: str,
    source: str,
    error: type[DeriskError],
    *,
    what: str = "YAML",
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    max_nodes: int = MAX_NODES,
) -> Any:
    """The document in ``text`` after :func:`check`; every failure is one ``error`` naming ``source``."""
    if len(text) > max_bytes:
        raise error(f"larger than {max_bytes:,} characters: not a {what}", source=source)
    if "\x00" in text:
        raise error("contains a NUL character: not a text file", source=source)
    try:
        check(text, source, error, max_depth=max_depth, max_nodes=max_nodes)
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader; expansion checked above
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise error(f"not valid YAML{at}", source=source) from None
    except RecursionError:
        raise error(f"nesting deeper than {max_depth} levels", source=source) from None
    except (ValueError, OverflowError) as exc:  # a value YAML recognises but cannot build: 2025-00-05
        raise error(f"not valid YAML: {exc}", source=source) from None
