"""Zeek field names as writers other than Zeek's defaults spell them.

Zeek names the fields of a nested record with a scope separator: ``id.orig_h`` is field ``orig_h`` of
the record ``id``. ``Log::default_scope_sep`` (or a writer's ``scope_sep``) changes it, most often to
``_`` (``id_orig_h``) because Elasticsearch and Splunk read a dot as an object path. A log written
that way is read as if it had Zeek's dotted names: the separator is learnt from the originator
address field (``id<sep>orig_h``) and every field of the ``id`` record is renamed back. A log written
with ``Log::default_field_name_map`` as Zeek's documentation and tests show it (``src``/``src_ip``,
``src_port``, ``dst``/``dst_ip``, ``dst_port`` for the four ``id`` fields) is read the same way. The
map is documented for users in ``docs/ingest-zeek.md`` ("Field names").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

#: The nested ``conn_id`` record every log we read has, and the fields of it we use.
SCOPED_RECORD: Final = "id"
_SCOPED = re.compile(r"^id(.{1,4}?)orig_h$")


def scope_separator(names: Iterable[str]) -> str | None:
    """The scope separator the names use, when it is not Zeek's default ``.`` (else None)."""
    names = list(names)
    if "id.orig_h" in names:
        return None
    for name in names:
        match = _SCOPED.match(name)
        if match and match.group(1) != ".":
            return match.group(1)
    return None


def canonical_names(names: Iterable[str]) -> dict[str, str]:
    """``{name in the log: Zeek's default name}`` for the names a scope separator changed."""
    names = list(names)
    separator = scope_separator(names)
    if separator is None:
        return _field_name_map(names)
    prefix = SCOPED_RECORD + separator
    return {name: f"{SCOPED_RECORD}.{name[len(prefix) :]}" for name in names if name.startswith(prefix)}


#: ``Log::default_field_name_map`` as in Zeek's tests (``src``, ``src_port``, ``dst``, ``dst_port``;
#: or ``src_ip`` and ``dst_ip``), applied only to a log that has no ``id`` field under any separator.
_MAPPED: Final = (
    {"src": "id.orig_h", "src_port": "id.orig_p", "dst": "id.resp_h", "dst_port": "id.resp_p"},
    {"src_ip": "id.orig_h", "src_port": "id.orig_p", "dst_ip": "id.resp_h", "dst_port": "id.resp_p"},
)


def _field_name_map(names: list[str]) -> dict[str, str]:
    if "id.orig_h" in names or "uid" not in names:
        return {}
    for mapped in _MAPPED:
        if all(name in names for name in mapped):
            return dict(mapped)
    return {}
