"""Server name → registrable domain, with the public suffix list bundled with tldextract."""

from __future__ import annotations

import pyarrow as pa
import pytest

from derisk.enrich.domains import registrable_domain, registrable_domains


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
def test_registrable_domain(name: str, expected: str | None) -> None:
    assert registrable_domain(name) == expected


def test_registrable_domains_keeps_rows_and_nulls() -> None:
    names = pa.array(["a.example.org", None, "b.example.org", "a.example.org", "10.0.0.1"])
    assert registrable_domains(names).to_pylist() == [
        "example.org",
        None,
        "example.org",
        "example.org",
        None,
    ]
