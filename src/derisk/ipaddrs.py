"""Vectorised IP address parsing: a column of address text to comparable 16-byte keys.

IPv4 addresses, the bulk of any capture or log, are parsed with Arrow compute kernels and NumPy
(no Python call per address); only what is not dotted-quad IPv4 (IPv6, scoped or malformed text)
goes through :mod:`ipaddress`, once per distinct value. Keys are big-endian and 16 bytes wide, IPv4
left-padded with zeros and IPv4-mapped IPv6 folded to IPv4, so ranges of both families sort in one
array and compare with ``numpy.searchsorted``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_OCTET: Final = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_DOTTED_QUAD: Final = rf"^{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}$"
INVALID_KEY: Final = b"\xff" * 16

NDArray = np.ndarray[Any, Any]


@dataclass(frozen=True)
class ParsedAddresses:
    """Per input row: 4, 6 or 0 (not an address), and the 16-byte key (``INVALID_KEY`` when 0)."""

    family: NDArray
    keys: NDArray

    @property
    def v4(self) -> NDArray:
        """IPv4 addresses as unsigned 32-bit integers (0 where the row is not IPv4)."""
        tail = np.ascontiguousarray(self.keys).view(np.uint8).reshape(-1, 16)[:, 12:]
        ints = tail.copy().view(">u4").ravel().astype(np.uint32)
        return np.where(self.family == 4, ints, 0).astype(np.uint32)


def v4_keys(ints: NDArray) -> NDArray:
    """16-byte keys of IPv4 addresses given as integers."""
    raw = np.zeros((len(ints), 16), dtype=np.uint8)
    raw[:, 12:] = np.asarray(ints, dtype=np.uint64).astype(">u4").view(np.uint8).reshape(-1, 4)
    return raw.view("S16").ravel()


def key_of(text: str) -> tuple[int, bytes] | None:
    """(family, key) of one address; IPv4-mapped IPv6 counts as IPv4; None when not an address."""
    try:
        addr = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.version, addr.packed.rjust(16, b"\0")


def parse(texts: pa.Array | pa.ChunkedArray) -> ParsedAddresses:
    """Parse a string column; nulls and junk get family 0."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    n = len(texts)
    family = np.zeros(n, dtype=np.int8)
    keys = np.full(n, INVALID_KEY, dtype="S16")
    if n == 0:
        return ParsedAddresses(family, keys)
    quad = pc.fill_null(pc.match_substring_regex(texts, _DOTTED_QUAD), False)
    quad_np = np.asarray(quad.to_numpy(zero_copy_only=False), dtype=bool)
    if quad_np.any():
        picked = pc.filter(texts, quad)
        octets = pc.cast(pc.list_flatten(pc.split_pattern(picked, ".")), pa.uint32()).to_numpy()
        o = octets.reshape(-1, 4).astype(np.uint32)
        ints = (o[:, 0] << 24) | (o[:, 1] << 16) | (o[:, 2] << 8) | o[:, 3]
        keys[quad_np] = v4_keys(ints)
        family[quad_np] = 4
    rest = np.flatnonzero(~quad_np)
    if len(rest):
        others = pc.take(texts, pa.array(rest))
        uniques = pc.unique(others)
        parsed = [key_of(t) if t is not None else None for t in uniques.to_pylist()]
        fam_u = np.array([p[0] if p else 0 for p in parsed], dtype=np.int8)
        key_u = np.array([p[1] if p else INVALID_KEY for p in parsed], dtype="S16")
        idx = pc.index_in(others, value_set=uniques).to_numpy(zero_copy_only=False)
        idx = np.nan_to_num(np.asarray(idx, dtype=np.float64), nan=-1).astype(np.int64)
        ok = idx >= 0
        family[rest[ok]] = fam_u[idx[ok]]
        keys[rest[ok]] = key_u[idx[ok]]
    return ParsedAddresses(family, keys)


def network_bounds(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> tuple[bytes, bytes]:
    """First and last 16-byte key of a network, for range tests against :func:`parse` keys."""
    first = network.network_address.packed.rjust(16, b"\0")
    last = network.broadcast_address.packed.rjust(16, b"\0")
    return first, last


def in_network(parsed: ParsedAddresses, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> NDArray:
    """Boolean mask of addresses inside ``network`` (same family only)."""
    first, last = network_bounds(network)
    lo = np.array([first], dtype="S16")[0]
    hi = np.array([last], dtype="S16")[0]
    keys = parsed.keys
    return np.asarray((parsed.family == network.version) & (keys >= lo) & (keys <= hi), dtype=bool)


#: Addresses that are never a destination, whatever the site: multicast, limited broadcast,
#: link-local and unspecified ("this network") ranges of both families, with the kind reported.
NOT_DESTINATION_RANGES: Final = (
    ("multicast", ipaddress.ip_network("224.0.0.0/4")),
    ("broadcast", ipaddress.ip_network("255.255.255.255/32")),
    ("link-local", ipaddress.ip_network("169.254.0.0/16")),
    ("unspecified", ipaddress.ip_network("0.0.0.0/8")),
    ("multicast", ipaddress.ip_network("ff00::/8")),
    ("link-local", ipaddress.ip_network("fe80::/10")),
    ("unspecified", ipaddress.ip_network("::/128")),
)


def directed_broadcasts(
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...],
) -> tuple[ipaddress.IPv4Address, ...]:
    """The directed-broadcast address of each IPv4 network that has one (prefix /30 or shorter)."""
    return tuple(
        n.broadcast_address for n in networks if isinstance(n, ipaddress.IPv4Network) and n.prefixlen <= 30
    )


def not_destination(parsed: ParsedAddresses, broadcasts: tuple[ipaddress.IPv4Address, ...] = ()) -> NDArray:
    """Boolean mask of addresses that are not destinations (see :data:`NOT_DESTINATION_RANGES`)."""
    mask = np.zeros(len(parsed.family), dtype=bool)
    for _, network in NOT_DESTINATION_RANGES:
        mask |= in_network(parsed, network)
    if broadcasts:
        wanted = np.array([a.packed.rjust(16, b"\0") for a in broadcasts], dtype="S16")
        mask |= (parsed.family == 4) & np.isin(parsed.keys, wanted)
    return mask


def scope_kind(text: str, broadcasts: tuple[ipaddress.IPv4Address, ...] = ()) -> str | None:
    """``multicast``, ``broadcast``, ``link-local`` or ``unspecified`` for a non-destination address."""
    try:
        addr = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if addr in broadcasts:
        return "broadcast"
    for kind, network in NOT_DESTINATION_RANGES:
        if addr.version == network.version and addr in network:
            return kind
    return None
