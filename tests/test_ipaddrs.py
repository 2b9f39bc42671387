"""The vectorised address parser agrees with the standard library on every input."""

from __future__ import annotations

import ipaddress

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from derisk import ipaddrs

TRICKY = [
    "1.2.3.4",
    "01.2.3.4",
    "256.1.1.1",
    "1.2.3",
    "1.2.3.4.5",
    " 1.2.3.4",
    "1.2.3.4\n",
    "::ffff:8.8.8.8",
    "2001:db8::1",
    "fe80::1%eth0",
    "",
    "<script>",
    "0.0.0.0",
    "255.255.255.255",
    "::",
    None,
]


def _expected(text: str | None) -> tuple[int, bytes]:
    if text is None:
        return 0, ipaddrs.INVALID_KEY
    got = ipaddrs.key_of(text)
    return got if got else (0, ipaddrs.INVALID_KEY)


def _check(values: list[str | None]) -> None:
    parsed = ipaddrs.parse(pa.array(values, pa.string()))
    for i, value in enumerate(values):
        fam, key = _expected(value)
        assert int(parsed.family[i]) == fam, value
        assert bytes(parsed.keys[i]).ljust(16, b"\0") == key, value


def test_tricky_values() -> None:
    _check(TRICKY)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.ip_addresses().map(str), st.text(max_size=20), st.none()), max_size=30))
def test_agrees_with_ipaddress(values: list[str | None]) -> None:
    _check(values)


def test_in_network_and_v4_ints() -> None:
    parsed = ipaddrs.parse(pa.array(["10.1.2.3", "10.255.0.1", "11.0.0.0", "2001:db8::5", "junk"]))
    mask = ipaddrs.in_network(parsed, ipaddress.ip_network("10.0.0.0/8"))
    assert mask.tolist() == [True, True, False, False, False]
    assert ipaddrs.in_network(parsed, ipaddress.ip_network("2001:db8::/32")).tolist() == [
        False,
        False,
        False,
        True,
        False,
    ]
    assert parsed.v4.tolist()[:3] == [
        int(ipaddress.ip_address(a)) for a in ("10.1.2.3", "10.255.0.1", "11.0.0.0")
    ]
