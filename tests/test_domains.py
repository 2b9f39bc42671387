"""Server name → registrable domain, with the public suffix list bundled with tldextract."""

from __future__ import annotations

import pyarrow as pa
import pytest

from derisk.enrich.domains import extractor, registrable_clean, registrable_domain, registrable_domains


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("eu.oss.aliyuncs.com", "aliyuncs.com"),
        ("WWW.Example.CO.UK.", "example.co.uk"),
        # the ICANN section only: the operator, not a customer's private suffix
        ("bucket.s3.amazonaws.com", "amazonaws.com"),
        ("user.github.io", "github.io"),
        ("  cdn.alicdn.com  ", "alicdn.com"),
        ("203.0.113.7", None),
        ("com", None),
        ("", None),
        ("evil.example.com\x1b[2J", None),
        ("a b.example.com", None),
        ("tab\t.example.com", None),
        ("nbsp\u00a0.example.com", None),
        ("x" * 250 + ".example.com", None),
    ],
)
def testregistrable_clean_domain(name: str, expected: str | None) -> None:
    assert registrable_domain(name) == expected


def testregistrable_clean_domains_keeps_rows_and_nulls() -> None:
    names = pa.array(["a.example.org", None, "b.example.org", "a.example.org", "10.0.0.1"])
    assert registrable_domains(names).to_pylist() == [
        "example.org",
        None,
        "example.org",
        "example.org",
        None,
    ]


def _reference(name: str) -> str | None:
    """tldextract alone, for every name (what registrable_domain computes without its shortcut)."""
    cleaned = name.strip().rstrip(".").lower()
    if len(cleaned) > 253 or any(c.isspace() or ord(c) < 0x21 for c in cleaned):
        return None
    parts = extractor()(cleaned)
    return f"{parts.domain}.{parts.suffix}" if parts.domain and parts.suffix else None


def test_the_subdomain_shortcut_agrees_with_tldextract_on_every_rule() -> None:
    """Names built from each rule of the bundled list (the rule itself, one and two labels more,
    wildcards filled in, exceptions) get the same registrable domain as tldextract gives."""
    names: set[str] = set()
    for rule in extractor().tlds:
        base = rule.lstrip("!").replace("*", "w1")
        names.update({base, f"a.{base}", f"b-2.a.{base}", f"c.b-2.a.{base}"})
        if not base.isascii():  # the same in punycode, as names arrive in SNI and DNS
            puny = ".".join(
                label if label.isascii() else "xn--" + label.encode("punycode").decode()
                for label in base.split(".")
            )
            names.update({puny, f"a.{puny}", f"b-2.a.{puny}"})
    names.update({"co.uk", "a.co.uk", "x.a.co.uk", "www.ck", "x.www.ck", "a.b.ck", "x..example.com"})
    names.update(
        {"a.b.example.com:8443", "x/y.example.com", "user@a.b.example.com", "xn--p1ai", "a.xn--p1ai"}
    )
    names.update(
        {"WWW.Example.CO.UK.", "  cdn.alicdn.com  ", "a.b.example.com.", "x" * 250 + ".a.example.com"}
    )
    names.update({"a.b\x1b.example.com", "tab\t.b.example.com"})
    ordered = sorted(names)
    assert registrable_domains(pa.array(ordered)).to_pylist() == [_reference(n) for n in ordered]
    for longest_first in (False, True):  # parents met before their subdomains, then after
        registrable_domain.cache_clear()
        registrable_clean.cache_clear()
        for name in sorted(names, key=len, reverse=longest_first):
            assert registrable_domain(name) == _reference(name), name


def test_names_of_thousands_of_labels_do_not_exhaust_the_stack() -> None:
    """DNS query names reach the detections unchecked; a hostile one of 5,000 labels is answered
    like any other, as tldextract answers it."""
    name = "a." * 5_000 + "example.com"
    parts = extractor()(name)
    assert registrable_clean(name) == f"{parts.domain}.{parts.suffix}" == "example.com"
    assert registrable_domain(name) is None  # longer than any DNS name
