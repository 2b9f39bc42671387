"""Server name → registrable domain, with tldextract's bundled public suffix list (no network).

Only the ICANN section of the list is used, so ``bucket.s3.amazonaws.com`` belongs to
``amazonaws.com`` (the operator), not to a customer's private suffix.

Subdomains of a name already seen cost a dictionary lookup instead of a walk of the list: a name
that no rule matches on its own (it is not a rule and not covered by a wildcard rule ``*.parent``;
exception rules ``!name`` only occur under wildcards) has the public suffix of its parent, so when the parent has a registrable domain the
name has the same one. The shortcut is taken only for plain host names (ASCII letters, digits,
``-`` and ``_``, no empty label, no punycode label, whose rules the list spells in Unicode); every
other name goes to tldextract as it is. A plain name's public suffix is found by the walk
tldextract makes over the same rules, read from its bundled list without importing it; tldextract
is imported only for the other names. Tests check the ways agree on every rule of the list.
"""

from __future__ import annotations

import importlib.util
import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Final, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from derisk.flows import contiguous

if TYPE_CHECKING:
    import tldextract

_MAX_NAME = 253
_BLANK_OR_CONTROL: Final = re.compile(r"[\x00-\x20\s]")
_PLAIN_HOST: Final = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)+")
_PLAIN_LABELS: Final = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")


class _Suffixes(NamedTuple):
    """The ICANN rules of tldextract's bundled list, read once on first use (5 ms; tldextract
    itself, 0.12 CPU s to import and 0.06 to parse its list, only for names not plain)."""

    rules: frozenset[str]
    #: Every rule and every trailing part of one (``uk`` of ``co.uk``): the nodes of tldextract's trie.
    nodes: frozenset[str]
    wildcard_bases: frozenset[str]
    rules_array: pa.Array
    wildcard_array: pa.Array


#: How tldextract picks the rules out of the list's text (``suffix_list.PUBLIC_SUFFIX_RE``).
_RULE: Final = re.compile(r"^(?P<suffix>[.*!]*\w[\S]*)", re.UNICODE | re.MULTILINE)
_PRIVATE_START: Final = "// ===BEGIN PRIVATE DOMAINS==="


def _snapshot() -> str:
    """The text of the list tldextract bundles (``.tld_set_snapshot``), found without importing it."""
    spec = importlib.util.find_spec("tldextract")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("tldextract is not installed", name="tldextract")
    folder = Path(next(iter(spec.submodule_search_locations)))
    return (folder / ".tld_set_snapshot").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _suffixes() -> _Suffixes:
    public, _, _ = _snapshot().partition(_PRIVATE_START)
    rules = frozenset(_RULE.findall(public))  # the one group: the rule
    nodes = set(rules)
    for rule in rules:  # add the trailing parts, up to one already there (its own are then too)
        while "." in rule:
            rule = rule.partition(".")[2]
            if rule in nodes:
                break
            nodes.add(rule)
    wildcards = frozenset(rule[2:] for rule in rules if rule.startswith("*."))
    return _Suffixes(
        rules,
        frozenset(nodes),
        wildcards,
        pa.array(sorted(rules), pa.string()),
        pa.array(sorted(wildcards), pa.string()),
    )


@lru_cache(maxsize=1)
def extractor() -> tldextract.TLDExtract:
    """The one public-suffix splitter of derisk (ICANN section, bundled list, no network)."""
    import tldextract  # 0.12 CPU s to import: only what needs more than plain host names pays it

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, include_psl_private_domains=False)


def _plain_suffix_index(labels: list[str], psl: _Suffixes) -> int | None:
    """Where the public suffix of a plain host name's ``labels`` starts, as tldextract's trie walk
    (``_PublicSuffixListTLDExtractor.suffix_index``) finds it, over the same rules; None: no suffix.
    Plain names (see the module's description) need neither its punycode decoding nor its URL
    parsing; a test checks that both agree on names built from every rule of the list."""
    found = len(labels)
    matched = ""  # the labels matched so far, joined: a node of the trie ("" is its root)
    for i in range(len(labels) - 1, -1, -1):
        node = f"{labels[i]}.{matched}" if matched else labels[i]
        if node in psl.nodes:
            matched = node
            if node in psl.rules:
                found = i
            continue
        if (f"*.{matched}" if matched else "*") in psl.nodes:
            return i + 1 if f"!{node}" in psl.nodes else i
        break
    return None if found == len(labels) else found


class NameParts(NamedTuple):
    """A host name split as tldextract splits it: ``a.b.example.co.uk`` → ``a.b``, ``example``, ``co.uk``."""

    subdomain: str
    domain: str
    suffix: str


def split_name(name: str) -> NameParts:
    """``extractor()(name)``'s subdomain, domain and suffix, without tldextract for a plain host name
    (its import and parse cost 0.2 CPU s; see :func:`_plain_suffix_index`); other names go to it."""
    if _plain(name):
        labels = name.split(".")
        start = _plain_suffix_index(labels, _suffixes())
        if start is None and not (len(labels) == 4 and name[0].isdigit()):  # that may be an address
            return NameParts(".".join(labels[:-1]), labels[-1], "")
        if start is not None:
            first = max(start - 1, 0)
            return NameParts(
                ".".join(labels[:first]), labels[first] if start else "", ".".join(labels[start:])
            )
    parts = extractor()(name)
    return NameParts(parts.subdomain, parts.domain, parts.suffix)


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
    if _plain(candidate):
        labels = candidate.split(".")
        start = _plain_suffix_index(labels, _suffixes())
        return None if not start else ".".join(labels[start - 1 :])
    parts = extractor()(candidate)
    if not parts.suffix or not parts.domain:
        return None
    return f"{parts.domain}.{parts.suffix}"


def _plain(name: str) -> bool:
    """A plain host name (or label): ASCII letters, digits, ``-`` and ``_``, no empty label, no
    punycode."""
    return len(name) <= _MAX_NAME and "xn--" not in name and _PLAIN_LABELS.fullmatch(name) is not None


def _inherits_suffix(name: str, parent: str) -> bool:
    """Whether ``name`` has its parent's public suffix (see the module's description)."""
    psl = _suffixes()
    return (
        _plain(name)  # a DNS name's length (in it) bounds the recursion over parents
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
