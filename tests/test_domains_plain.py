"""Plain host names get their registrable domain from derisk's walk of tldextract's rules, read
from the list tldextract bundles without importing tldextract; the rules are tldextract's own."""

from __future__ import annotations

import subprocess
import sys

import pyarrow as pa

from derisk.enrich import domains
from derisk.enrich.domains import extractor, registrable_clean, registrable_domains, split_name


def test_the_rules_are_those_tldextract_uses() -> None:
    psl = domains._suffixes()
    assert psl.rules == frozenset(extractor().tlds)
    assert {"co.uk", "*.ck", "!www.ck", "uk", "ck"} <= psl.nodes
    assert "ck" not in psl.rules and "ck" in psl.nodes  # a node of the trie, not a rule


def test_plain_names_match_tldextract_around_wildcards_and_exceptions() -> None:
    names = [
        "www.ck", "a.www.ck", "x.ck", "a.x.ck", "ck", "a.b.c.kawasaki.jp", "city.kawasaki.jp",
        "a.city.kawasaki.jp", "b.a.city.kawasaki.jp", "kawasaki.jp", "x.kawasaki.jp", "a_b.example.com",
        "-a.example.com", "1.2.3.4", "10.0.0.1.example", "a.b.c.d.e.f.example.co.uk", "example.zz", "com",
        "localhost", "uk", "jp",
    ]  # fmt: skip
    for name in names:
        registrable_clean.cache_clear()
        parts = extractor()(name)
        expected = f"{parts.domain}.{parts.suffix}" if parts.domain and parts.suffix else None
        assert registrable_clean(name) == expected, name
    assert registrable_domains(pa.array(names)).to_pylist() == [registrable_clean(n) for n in names]


def test_plain_names_need_no_tldextract() -> None:
    code = (
        "import sys\n"
        "from derisk.enrich.domains import registrable_domain, registrable_domains\n"
        "import pyarrow as pa\n"
        "assert registrable_domain('www.example.co.uk') == 'example.co.uk'\n"
        "assert registrable_domains(pa.array(['a.b.aliyuncs.com'])).to_pylist() == ['aliyuncs.com']\n"
        "assert 'tldextract' not in sys.modules\n"
        "assert registrable_domain('xn--80ak6aa92e.com') == 'xn--80ak6aa92e.com'\n"
        "assert 'tldextract' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_split_name_is_tldextracts_split() -> None:
    names: set[str] = {"com", "localhost", "a.b.example.co.uk", "www.ck", "a.www.ck", "x.ck", "a.x.ck"}
    for rule in extractor().tlds:
        base = rule.lstrip("!").replace("*", "w1")
        names.update({base, f"a.{base}", f"b-2.a.{base}"})
    names.update({"1.2.3.4", "xn--p1ai", "a.xn--p1ai", "a..b.com", "Mixed.Case.COM", "a.b:80"})
    for name in sorted(names):
        parts = extractor()(name)
        assert split_name(name) == (parts.subdomain, parts.domain, parts.suffix), name
