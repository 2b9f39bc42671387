"""The site's side of flows between two public addresses, when no site file says which are the site's.

Without a site file, derisk takes the private, shared and link-local ranges as the site. A capture
made on a host with a public address (a campus on public IPv4 space, a cloud server) or over IPv6
(every IPv6 host has a global address) then has no internal side at all, and its traffic would be
left out as "external". Most captures are taken on one host, so one address (one /64 for IPv6,
where a host rotates temporary addresses inside its prefix) takes part in most of those flows: the
*capturing host*. :class:`SideGuess` counts, per address family, in how many flows between two
public addresses each address (IPv6: each /64) takes part; the first one found in more than half of
them, and in more than any other, is taken as the site's (per family, once: the choice is never
revoked, so later batches are oriented as earlier ones were). On a tie (a host that talked to one
peer only) the one of the two that opened more of the flows is taken, as the capturing host is
normally the client; a tie there too decides nothing.

This is a guess from the traffic, not a fact about the site: the analysis says which addresses it
took and how to make it certain (a site file with ``internal_networks``).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pyarrow as pa

from derisk import ipaddrs

NDArray = np.ndarray[Any, Any]

#: Distinct prefixes counted per family before counting stops (bounded memory on transit traffic).
MAX_KEYS: Final = 100_000
#: Flows between two public addresses counted per family without finding the capturing host, after
#: which counting stops (traffic of many hosts, such as a transit link's: nothing to find).
MAX_UNDECIDED: Final = 2_000_000


def prefix_keys(parsed: ipaddrs.ParsedAddresses) -> NDArray:
    """The 16-byte key of each address's counted prefix: the address for IPv4, its /64 for IPv6."""
    raw = np.ascontiguousarray(parsed.keys).view(np.uint8).reshape(-1, 16).copy()
    raw[parsed.family == 6, 8:] = 0
    out: NDArray = raw.view("S16").ravel()
    return out


@dataclass
class SideGuess:
    """Counts of flows between two public addresses per prefix, and the prefix chosen per family."""

    counts: dict[int, dict[bytes, int]] = field(default_factory=lambda: {4: {}, 6: {}})
    #: Per family, the flows each prefix opened (was the source of).
    opened: dict[int, dict[bytes, int]] = field(default_factory=lambda: {4: {}, 6: {}})
    totals: dict[int, int] = field(default_factory=lambda: {4: 0, 6: 0})
    chosen: dict[int, bytes] = field(default_factory=dict)

    def site_side(self, addresses: pa.Array, src: NDArray, dst: NDArray) -> NDArray:
        """Per address of ``addresses`` (distinct), whether it is on the site's side, after counting
        the flows between them given as code pairs ``src``/``dst`` (flows between two public
        addresses, none of them known to be the site's)."""
        # only the addresses of these flows: codes renumbered into them
        needed, inverse = np.unique(np.concatenate([src, dst]), return_inverse=True)
        parsed = ipaddrs.parse(addresses.take(pa.array(needed, pa.int64())))
        keys = prefix_keys(parsed)
        a, b = inverse[: len(src)], inverse[len(src) :]
        for family in (4, 6):
            if family in self.chosen or self.totals[family] >= MAX_UNDECIDED:
                continue
            on = (parsed.family[a] == family) & (parsed.family[b] == family)
            if on.any():
                self._count(family, keys[a[on]], keys[b[on]])
        side = np.zeros(len(addresses), dtype=bool)
        for family, key in self.chosen.items():
            side[needed] |= (parsed.family == family) & (keys == key)
        return side

    def _count(self, family: int, a: NDArray, b: NDArray) -> None:
        # each flow counts once per prefix it touches (both ends in one /64 count once)
        both = np.concatenate([a, b[b != a]])
        counts, opened = self.counts[family], self.opened[family]
        _add(counts, *np.unique(both, return_counts=True))
        _add(opened, *np.unique(a, return_counts=True))
        self.totals[family] += len(a)
        ranked = heapq.nlargest(3, counts.items(), key=lambda kv: kv[1])
        if not ranked:
            return
        top, first = ranked[0]
        second = ranked[1][1] if len(ranked) > 1 else 0
        if first * 2 <= self.totals[family]:
            return
        if first == second and (len(ranked) < 3 or ranked[2][1] < first):  # two tied: who opened more
            one, other = opened.get(top, 0), opened.get(ranked[1][0], 0)
            if one == other:
                return
            top = top if one > other else ranked[1][0]
        elif first == second:
            return
        self.chosen[family] = top
        self.counts[family], self.opened[family] = {}, {}

    def described(self) -> list[str]:
        """The chosen prefixes as text (``203.0.113.7``, ``2001:db8:1:2::/64``)."""
        import ipaddress

        out = []
        for family, key in sorted(self.chosen.items()):
            raw = key.ljust(16, b"\0")  # NumPy drops a key's trailing zero bytes
            if family == 4:
                out.append(str(ipaddress.IPv4Address(raw[12:])))
            else:
                out.append(str(ipaddress.IPv6Network((raw, 64))))
        return out


def _add(counts: dict[bytes, int], keys: NDArray, n: NDArray) -> None:
    """Add ``n`` to the counts of ``keys``; new keys only while fewer than :data:`MAX_KEYS` are kept."""
    for key, c in zip(keys.tolist(), n.tolist(), strict=True):
        if key in counts:
            counts[key] += c
        elif len(counts) < MAX_KEYS:
            counts[key] = c
