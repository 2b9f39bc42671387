"""Server name → registrable domain, with tldextract's bundled public suffix list (no network).

Only the ICANN section of the list is used, so ``bucket.s3.amazonaws.com`` belongs to
``amazonaws.com`` (the operator), not to a customer's private suffix.

Subdomains of a name already seen cost a dictionary lookup instead of a walk of the list: a name
that no rule matches on its own (it is not a rule and not covered by a wildcard rule ``*.parent``;
exception rules ``!name`` only occur under wildcards) has the public suffix of its parent, so when the parent has a registrable domain the
name has the same one. The shortcut is taken only for plain host names (ASCII letters, digits,
``-`` and ``_``, no empty label, no punycode label, whose rules the list spells in Unicode); every
other name goes to tldextract as it is. A test checks the two ways agree on every rule of the list.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Final, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from derisk.flows import contiguous

if TYPE_CHECKING:
    import tldextract

_MAX_NAME = 253
_BLANK_OR_CONTROL: Final = re.compile(r"[\x00-\x20\s]")
_PLAIN_HOST: Final = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)+")


class _Suffixes(NamedTuple):
    """The bundled list, parsed once on first use (about 0.3 CPU s, which a run without server
    names, or ``--help``, should not pay)."""

    extract: tldextract.TLDExtract
    rules: frozenset[str]
    wildcard_bases: frozenset[str]
    rules_array: pa.Array
    wildcard_array: pa.Array


@lru_cache(maxsize=1)
def _suffixes() -> _Suffixes:
    import tldextract  # 0.16 CPU s to import: only runs with server names pay it

    extract = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, include_psl_private_domains=False)
    rules = frozenset(extract.tlds)
    wildcards = frozenset(rule[2:] for rule in rules if rule.startswith("*."))
    return _Suffixes(
        extract,
        rules,
        wildcards,
        pa.array(sorted(rules), pa.string()),
        pa.array(sorted(wildcards), pa.string()),
    )


def extractor() -> tldextract.TLDExtract:
    """The one public-suffix splitter of derisk (ICANN section, bundled list, no network)."""
    return _suffixes().extract


@lru_cache(maxsize=200_000)
def registrable_domain(name: str) -> str | None:
    """``eu.oss.aliyuncs.com`` → ``aliyuncs.com``; None for IP literals, junk and over-long names."""
    candidate = name.strip().rstrip(".").lower()
    if not candidate or len(candidate) > _MAX_NAME or _BLANK_OR_CONTROL.search(candidate):
        return None
    return registrable_clean(candidate)


@lru_cache(maxsize=200_000)
def registrable_clean(candidate: str) -> str | None:
    """The registrable domain of a name already stripped and lower-cased, without the checks for
    junk of :func:`registrable_domain` (for DNS query names, which may carry anything)."""
    _, dot, parent = candidate.partition(".")
    if dot and _inherits_suffix(candidate, parent):
        above = registrable_clean(parent)
        if above is not None:
            return above
    parts = _suffixes().extract(candidate)
    if not parts.suffix or not parts.domain:
        return None
    return f"{parts.domain}.{parts.suffix}"


def _inherits_suffix(name: str, parent: str) -> bool:
    """Whether ``name`` has its parent's public suffix (see the module's description)."""
    psl = _suffixes()
    return (
        len(name) <= _MAX_NAME  # a DNS name's length: bounds the recursion over parents
        and "xn--" not in name
        and _PLAIN_HOST.fullmatch(name) is not None
        and name not in psl.rules
        and parent not in psl.wildcard_bases  # exception rules (``!name``) sit under a wildcard too
    )


def registrable_domains(names: pa.Array | pa.ChunkedArray) -> pa.Array:
    """:func:`registrable_domain` of each name, vectorised over the distinct names of a column.

    Plain host names already in canonical form that inherit their parent's suffix (the common case:
    many subdomains of few domains) are resolved per distinct parent with Arrow kernels; only the
    parents, and the other names, go through Python one by one.
    """
    encoded = contiguous(names).dictionary_encode()
    uniques = encoded.dictionary
    if len(uniques) == 0:  # no name at all: the suffix list is not needed
        return pa.nulls(len(encoded), pa.string())
    psl = _suffixes()
    canonical = pc.and_(
        pc.match_substring_regex(uniques, f"^{_PLAIN_HOST.pattern}$"),
        pc.less_equal(pc.utf8_length(uniques), _MAX_NAME),
    )
    parents = pc.replace_substring_regex(uniques, r"^[^.]*\.", "", max_replacements=1)
    inherits = pc.and_(
        pc.and_(canonical, pc.invert(pc.match_substring(uniques, "xn--"))),
        pc.and_(
            pc.invert(pc.is_in(uniques, psl.rules_array)), pc.invert(pc.is_in(parents, psl.wildcard_array))
        ),
    )
    wanted = pc.unique(pc.filter(parents, inherits))
    resolved = pa.array([registrable_clean(p) for p in wanted.to_pylist()], pa.string())
    via_parent = pc.if_else(inherits, pc.take(resolved, pc.index_in(parents, value_set=wanted)), None)
    own = pc.is_null(via_parent)
    rest = [registrable_domain(n) for n in pc.filter(uniques, own).to_pylist()]
    mapped = pc.replace_with_mask(via_parent, own, pa.array(rest, pa.string()))
    return pc.take(mapped, encoded.indices)
